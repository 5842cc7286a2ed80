"""constant, iota and fill × every dtype they accept."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tracejit.ir import OPS, ConstValue
from tracejit.ir import dtypes as dt
from tracejit.ir.errors import DTypeError, ParamError

from .op_examples import T, assert_close, assert_same_bits, infer, random_array, run_op

SETTINGS = settings(max_examples=25, deadline=None)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


@pytest.mark.parametrize("dtype", dt.ALL_DTYPES, ids=str)
@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_constant(dtype, shape, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype, specials=True)
    assert infer(OPS["constant"], [], {"value": x}) == T(shape, dtype)
    got = run_op(OPS["constant"], [], {"value": ConstValue(x)})
    assert_same_bits(got, x)
    assert got.flags.writeable    # a copy, not the read-only array the param holds


@pytest.mark.parametrize("value", [np.zeros(2, np.complex64), np.zeros(2, np.uint16),
                                   np.array(["a"]), np.zeros(2, ">f4")], ids=str)
def test_constant_rejects_foreign_dtypes(value):
    with pytest.raises(ParamError, match=r"^constant: parameter value="):
        OPS["constant"].make_params({"value": value})


def test_constant_params_hash_by_content():
    a = OPS["constant"].make_params({"value": np.arange(3.0)})
    b = OPS["constant"].make_params({"value": ConstValue(np.arange(3.0))})
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize("dtype", dt.NUMERIC_DTYPES, ids=str)
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
       data=st.data())
def test_iota(dtype, shape, data):
    dimension = data.draw(st.integers(0, len(shape) - 1))
    got = run_op(OPS["iota"], [], {"shape": shape, "dimension": dimension, "dtype": dtype})
    want = np.empty(shape, np.float64)
    for index in np.ndindex(*shape):
        want[index] = index[dimension]
    assert_close(got, want, dtype)


def test_iota_wraps_and_rounds_like_a_cast():
    got = run_op(OPS["iota"], [], {"shape": (300,), "dimension": 0, "dtype": dt.int8})
    assert got[200] == np.int8(200 - 256)
    got = run_op(OPS["iota"], [], {"shape": (2051,), "dimension": 0, "dtype": dt.float16})
    assert got[2049] == 2048 and got[2050] == 2050       # float16 spacing is 2 there


def test_iota_errors():
    with pytest.raises(DTypeError, match=r"^iota: .*bool.*\[3\]"):
        infer(OPS["iota"], [], {"shape": (3,), "dimension": 0, "dtype": dt.bool_})
    with pytest.raises(ParamError, match=r"^iota: dimension \[-1\]"):
        infer(OPS["iota"], [], {"shape": (3,), "dimension": -1, "dtype": dt.int32})
    with pytest.raises(ParamError, match=r"^iota: axis 0 is out of range .* rank 0"):
        infer(OPS["iota"], [], {"shape": (), "dimension": 0, "dtype": dt.int32})
    with pytest.raises(ParamError, match=r"^iota: .*-1"):
        infer(OPS["iota"], [], {"shape": (-1,), "dimension": 0, "dtype": dt.int32})


FILL_VALUES = {
    "bool": [True, False, 0, 1],
    "int": [0, -1, 7, 2.0, -128],
    "uint": [0, 255, 3.0],
    "float": [0.0, -0.0, 1.5, 0.1, -3, float("inf"), float("nan"), 1e300],
}


@pytest.mark.parametrize("dtype", dt.ALL_DTYPES, ids=str)
@SETTINGS
@given(shape=shapes, data=st.data())
def test_fill(dtype, shape, data):
    value = data.draw(st.sampled_from(FILL_VALUES[dtype.kind]))
    got = run_op(OPS["fill"], [], {"shape": shape, "value": value, "dtype": dtype})
    want = np.empty(shape, np.float64)
    want[...] = float(value)
    assert_close(got, want, dtype)


def test_fill_int64_is_exact_beyond_float_precision():
    got = run_op(OPS["fill"], [], {"shape": (2,), "value": 2**62 + 1, "dtype": dt.int64})
    assert got[0] == 2**62 + 1


@pytest.mark.parametrize("value, dtype", [(300, dt.int8), (-1, dt.uint8), (2.5, dt.int32),
                                          (float("nan"), dt.int64), (2, dt.bool_),
                                          (0.5, dt.bool_), (2**63, dt.int64)], ids=str)
def test_fill_rejects_unrepresentable_values(value, dtype):
    with pytest.raises(ParamError, match=r"^fill: value .*\(shape \[2\]\)"):
        infer(OPS["fill"], [], {"shape": (2,), "value": value, "dtype": dtype})


def test_creation_ops_take_no_inputs():
    with pytest.raises(ParamError, match=r"^fill: takes 0 input"):
        infer(OPS["fill"], [T((), dt.float32)], {"shape": (), "value": 1.0,
                                                 "dtype": dt.float32})
