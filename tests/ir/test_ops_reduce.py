"""Reductions × every dtype they accept, against independent references: Python ints
(wrapped modulo 2**bits) for integers, float64 for floats, explicit loops for argmax."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tracejit.ir import OPS
from tracejit.ir import dtypes as dt
from tracejit.ir.errors import DTypeError, ParamError, ShapeError

from .op_examples import T, assert_close, infer, random_array, run_op

SETTINGS = settings(max_examples=30, deadline=None)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
seeds = st.integers(0, 2**32 - 1)

ACCEPTS = {
    "sum": dt.NUMERIC_DTYPES, "prod": dt.NUMERIC_DTYPES, "mean": dt.FLOAT_DTYPES,
    "max": dt.ALL_DTYPES, "min": dt.ALL_DTYPES, "any": (dt.bool_,), "all": (dt.bool_,),
}
EPS = {dt.float16: 2.0**-23, dt.bfloat16: 2.0**-23, dt.float32: 2.0**-23,  # halves: f32 acc
       dt.float64: 2.0**-52}


def wrap(values, dtype) -> np.ndarray:
    info = np.iinfo(dtype.np_dtype)
    span = 1 << dtype.bits
    flat = [(int(v) - info.min) % span + info.min for v in np.ravel(values)]
    return np.array(flat, dtype=dtype.np_dtype).reshape(np.shape(values))


def _axes(data, ndim):
    return tuple(sorted(data.draw(st.sets(st.integers(0, ndim - 1)) if ndim else st.just(()))))


def _expected(name, x, axes, keepdims):
    dtype = dt.as_dtype(x.dtype)
    count = int(np.prod([x.shape[a] for a in axes]))
    if name in ("any", "all"):
        trues = np.sum(x.astype(np.int64), axis=axes, keepdims=keepdims)
        return trues > 0 if name == "any" else trues == count
    if dtype.is_integer or dtype.is_bool:
        objs = x.astype(object)      # Python ints: exact, then wrapped
        fn = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}[name]
        out = np.asarray(fn(objs, axis=axes, keepdims=keepdims), dtype=object)
        return out.astype(bool) if dtype.is_bool else wrap(out, dtype)
    wide = x.astype(np.float64)
    with np.errstate(all="ignore"):
        if name == "mean":
            return np.sum(wide, axis=axes, keepdims=keepdims) / count
        fn = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}[name]
        return fn(wide, axis=axes, keepdims=keepdims)


@pytest.mark.parametrize("name, dtype", [(n, d) for n, ds in ACCEPTS.items() for d in ds],
                         ids=str)
@SETTINGS
@given(shape=shapes, seed=seeds, keepdims=st.booleans(), data=st.data())
def test_reduction(name, dtype, shape, seed, keepdims, data):
    axes = _axes(data, len(shape))
    rng = np.random.default_rng(seed)
    low, high = (0.5, 1.5) if name == "prod" else (-5.0, 5.0)
    x = random_array(rng, shape, dtype, low=low, high=high, wide=name == "sum",
                     specials=name in ("max", "min"))
    if name in ("max", "min") and any(shape[a] == 0 for a in axes):
        with pytest.raises(ShapeError, match=rf"^{name}: .*{dtype.short}\["):
            run_op(OPS[name], [x], {"axes": axes, "keepdims": keepdims})
        return
    got = run_op(OPS[name], [x], {"axes": axes, "keepdims": keepdims})
    want = _expected(name, x, axes, keepdims)
    atol = 0.0
    if dtype.is_float and name in ("sum", "mean"):
        # NOTE: the order of a float sum is the implementation's choice; allow each
        # addition one rounding of the accumulator type, relative to sum |x|.
        count = max(1, int(np.prod([shape[a] for a in axes])))
        scale = np.sum(np.abs(x.astype(np.float64)), axis=axes, keepdims=keepdims)
        atol = 2 * count * EPS[dtype] * scale / (count if name == "mean" else 1)
        atol = np.nan_to_num(atol, nan=0.0, posinf=0.0)
    if dtype is dt.float16 and name == "prod":
        atol = 1e-7          # tiny products land on float16 subnormals (ulp 6e-8)
    assert_close(got, want, dtype if name not in ("any", "all") else dt.bool_, atol=atol)


def test_integer_sum_and_prod_wrap():
    x = np.array([100, 100, 27], np.int8)
    assert run_op(OPS["sum"], [x], {"axes": (0,)}) == np.int8(-29)
    assert run_op(OPS["prod"], [x], {"axes": (0,)}) == np.int8(np.int64(270000) % 256 - 256)
    big = np.array([2**62, 2**62], np.int64)
    assert run_op(OPS["sum"], [big], {"axes": (0,)}) == np.int64(-(2**63))


def test_half_sum_accumulates_in_float32():
    # 4096 halves of 1.0: a float16 accumulator would stop at 2048.
    x = np.ones(4096, np.float16)
    assert run_op(OPS["sum"], [x], {"axes": (0,)}) == np.float16(4096)


def test_empty_reductions_follow_numpy():
    empty = np.zeros((0, 3), np.float32)
    np.testing.assert_array_equal(run_op(OPS["sum"], [empty], {"axes": (0,)}), [0, 0, 0])
    np.testing.assert_array_equal(run_op(OPS["prod"], [empty], {"axes": (0,)}), [1, 1, 1])
    assert np.isnan(run_op(OPS["mean"], [empty], {"axes": (0,)})).all()
    flags = np.zeros((2, 0), bool)
    np.testing.assert_array_equal(run_op(OPS["any"], [flags], {"axes": (1,)}), [False] * 2)
    np.testing.assert_array_equal(run_op(OPS["all"], [flags], {"axes": (1,)}), [True] * 2)


# ---- argmax, argmin ------------------------------------------------------------------------

def _first_extreme(row, want_max):
    """Index of the first NaN if there is one, else of the first extreme value."""
    best = None
    for i, v in enumerate(row):
        if v != v:
            return i
        if best is None or (v > row[best] if want_max else v < row[best]):
            best = i
    return best


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", dt.ALL_DTYPES, ids=str)
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4), seed=seeds,
       index_dtype=st.sampled_from([dt.int32, dt.int64]), data=st.data())
def test_arg_reduction(name, dtype, shape, seed, index_dtype, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    rng = np.random.default_rng(seed)
    # Few distinct values, so ties (which the first index must win) are common.
    x = random_array(rng, shape, dtype, low=-2, high=2, specials=True)
    if dtype.is_float:
        x = np.round(x.astype(np.float32)).astype(dtype.np_dtype)
    params = {"axis": axis, "index_dtype": index_dtype}
    if shape[axis] == 0:
        with pytest.raises(ShapeError, match=rf"^{name}: .*{dtype.short}\["):
            run_op(OPS[name], [x], params)
        return
    got = run_op(OPS[name], [x], params)
    rows = np.moveaxis(x, axis, -1).astype(np.float64)
    want = np.empty(rows.shape[:-1], np.int64)
    for index in np.ndindex(*want.shape):
        want[index] = _first_extreme(list(rows[index]), name == "argmax")
    assert_close(got, want, index_dtype)


def test_first_nan_wins():
    x = np.array([[1.0, np.nan, 5.0, np.nan], [3.0, 3.0, -1.0, -1.0]], np.float32)
    for name in ("argmax", "argmin"):
        got = run_op(OPS[name], [x], {"axis": 1})
        np.testing.assert_array_equal(got, [1, 0 if name == "argmax" else 2])


# ---- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, dtype", [(n, d) for n, ds in ACCEPTS.items()
                                         for d in dt.ALL_DTYPES if d not in ds], ids=str)
def test_rejected_dtypes(name, dtype):
    with pytest.raises(DTypeError, match=rf"^{name}: .*{dtype.short}\[2,3\]"):
        infer(OPS[name], [T((2, 3), dtype)], {"axes": (0,)})


@pytest.mark.parametrize("name", sorted(ACCEPTS))
def test_axes_are_checked(name):
    t = T((2, 3), ACCEPTS[name][-1])
    with pytest.raises(ParamError, match=rf"^{name}: .*-1.*\[1\]"):
        infer(OPS[name], [t], {"axes": (-1,)})
    with pytest.raises(ParamError, match=rf"^{name}: axis 2 is out of range"):
        infer(OPS[name], [t], {"axes": (0, 2)})
    with pytest.raises(ParamError, match=rf"^{name}: repeated axis"):
        infer(OPS[name], [t], {"axes": (1, 1)})
    # Axes are stored sorted, so (1, 0) and (0, 1) are one graph.
    assert OPS[name].make_params({"axes": (1, 0)})["axes"] == (0, 1)


def test_arg_reduction_errors():
    t = T((2, 3), dt.float32)
    with pytest.raises(ParamError, match=r"^argmax: index_dtype .*int8"):
        infer(OPS["argmax"], [t], {"axis": 0, "index_dtype": dt.int8})
    with pytest.raises(ParamError, match=r"^argmin: axis 2 is out of range"):
        infer(OPS["argmin"], [t], {"axis": 2})
    with pytest.raises(ParamError, match=r"^argmax: "):
        infer(OPS["argmax"], [T((), dt.float32)], {"axis": 0})
    with pytest.raises(ShapeError, match=r"^argmin: .*f32\[2,0\]"):
        infer(OPS["argmin"], [T((2, 0), dt.float32)], {"axis": 1})
    assert infer(OPS["argmax"], [t], {"axis": 1}) == T((2,), dt.int64)
