"""Elementwise ops × every dtype they accept, against independent references.

Float references compute in float64 from the same (already rounded) inputs; integer
references compute with Python's unbounded ints and then wrap modulo 2**bits, so they
share no code path with the NumPy implementations under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tracejit.ir import OPS
from tracejit.ir import dtypes as dt
from tracejit.ir.errors import DTypeError, ShapeError

from .op_examples import T, assert_close, assert_same_bits, infer, random_array, run_op

FLOATS = dt.FLOAT_DTYPES
INTS = dt.INT_DTYPES
NUMERIC = dt.NUMERIC_DTYPES
ALL = dt.ALL_DTYPES
BOOL = (dt.bool_,)

SETTINGS = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)


def pyfunc(fn, *arrays) -> np.ndarray:
    """Apply a Python function elementwise (with broadcasting) to Python values."""
    objs = [np.asarray(a).astype(object) for a in arrays]
    with np.errstate(all="ignore"):     # NaN comparisons set the FP 'invalid' flag
        return np.asarray(np.frompyfunc(fn, len(objs), 1)(*objs), dtype=object)


def wrap(values: np.ndarray, dtype) -> np.ndarray:
    """Python ints reduced modulo 2**bits into ``dtype``'s range (two's complement)."""
    info = np.iinfo(dtype.np_dtype)
    span = 1 << dtype.bits
    return pyfunc(lambda v: (int(v) - info.min) % span + info.min, values).astype(
        dtype.np_dtype)


def f64(fn):
    """A float reference: float64 NumPy on float64 copies of the inputs."""
    def ref(*arrays):
        with np.errstate(all="ignore"):
            return fn(*(np.asarray(a, dtype=np.float64) for a in arrays))
    return ref


def nan_aware(fn):
    """NaN in, NaN out; otherwise ``fn`` (max/min/relu/clip propagate NaN like np.maximum)."""
    def ref(*arrays):
        wide = [np.asarray(a, dtype=np.float64) for a in arrays]
        anynan = np.zeros(np.broadcast_shapes(*(w.shape for w in wide)), bool)
        for w in wide:
            anynan = anynan | np.isnan(w)
        return np.where(anynan, np.nan, fn(*wide))
    return ref


def _int_pow(a, b, bits):
    if b < 0:
        return 1 if a == 1 else (-1 if b % 2 else 1) if a == -1 else 0
    return pow(a, b, 1 << bits)


def _trunc_div(a, b):
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


# name -> (accepted dtypes, float reference, Python-int reference or None)
UNARY = {
    "exp": (FLOATS, f64(np.exp), None),
    "expm1": (FLOATS, f64(np.expm1), None),
    "log": (FLOATS, f64(np.log), None),
    "log1p": (FLOATS, f64(np.log1p), None),
    "sqrt": (FLOATS, f64(np.sqrt), None),
    "rsqrt": (FLOATS, f64(lambda x: 1.0 / np.sqrt(x)), None),
    "reciprocal": (FLOATS, f64(lambda x: 1.0 / x), None),
    "tanh": (FLOATS, f64(np.tanh), None),
    "sigmoid": (FLOATS, f64(lambda x: 1.0 / (1.0 + np.exp(-x))), None),
    "sin": (FLOATS, f64(np.sin), None),
    "cos": (FLOATS, f64(np.cos), None),
    "erf": (FLOATS, lambda x: pyfunc(math.erf, x.astype(np.float64)).astype(float), None),
    "floor": (FLOATS, f64(np.floor), None),
    "ceil": (FLOATS, f64(np.ceil), None),
    "round": (FLOATS, f64(np.rint), None),                 # rint: half to even
    "isnan": (FLOATS, f64(lambda x: x != x), None),
    "isfinite": (FLOATS, f64(lambda x: np.abs(x) < np.inf), None),
    "neg": (NUMERIC, f64(lambda x: -x), lambda x: -x),
    "abs": (NUMERIC, f64(np.abs), abs),
    "sign": (NUMERIC, f64(np.sign), lambda x: (x > 0) - (x < 0)),
    "square": (NUMERIC, f64(lambda x: x * x), lambda x: x * x),
    "relu": (NUMERIC, nan_aware(lambda x: np.where(x > 0, x, 0.0)), lambda x: max(x, 0)),
    "logical_not": (BOOL, None, lambda x: not x),
}

BINARY = {
    "add": (NUMERIC, f64(np.add), lambda a, b: a + b),
    "sub": (NUMERIC, f64(np.subtract), lambda a, b: a - b),
    "mul": (NUMERIC, f64(np.multiply), lambda a, b: a * b),
    "div": (NUMERIC, f64(np.true_divide), _trunc_div),
    "floordiv": (NUMERIC, f64(np.floor_divide), lambda a, b: 0 if b == 0 else a // b),
    "mod": (NUMERIC, f64(np.mod), lambda a, b: 0 if b == 0 else a % b),
    "pow": (NUMERIC, f64(np.power), None),                 # integers: see _int_pow
    "maximum": (ALL, nan_aware(lambda a, b: np.where(a >= b, a, b)), max),
    "minimum": (ALL, nan_aware(lambda a, b: np.where(a <= b, a, b)), min),
    "equal": (ALL, f64(lambda a, b: a == b), lambda a, b: a == b),
    "not_equal": (ALL, f64(lambda a, b: a != b), lambda a, b: a != b),
    "less": (ALL, f64(lambda a, b: a < b), lambda a, b: a < b),
    "less_equal": (ALL, f64(lambda a, b: a <= b), lambda a, b: a <= b),
    "greater": (ALL, f64(lambda a, b: a > b), lambda a, b: a > b),
    "greater_equal": (ALL, f64(lambda a, b: a >= b), lambda a, b: a >= b),
    "logical_and": (BOOL, None, lambda a, b: a and b),
    "logical_or": (BOOL, None, lambda a, b: a or b),
    "logical_xor": (BOOL, None, lambda a, b: a != b),
}
COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
               "isnan", "isfinite"}
WIDE_INPUTS = {"add", "sub", "mul", "neg", "abs", "square", "sign"}   # exercise wrapping


def _expected(name, table, dtype, args):
    accepts, float_ref, int_ref = table[name]
    if dtype.is_float:
        return float_ref(*args)
    if name == "pow":
        return wrap(pyfunc(lambda a, b: _int_pow(a, b, dtype.bits), *args), dtype)
    out = pyfunc(int_ref, *args)
    if dtype.is_bool or name in COMPARISONS:
        return out.astype(bool)
    return wrap(out, dtype)


def _result_dtype(name, dtype):
    return dt.bool_ if name in COMPARISONS else dtype


def _cases(table):
    return [(name, d) for name, (accepts, _, _) in table.items() for d in accepts]


@pytest.mark.parametrize("name, dtype", _cases(UNARY), ids=str)
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), seed=seeds)
def test_unary(name, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, specials=True, wide=name in WIDE_INPUTS)
    got = run_op(OPS[name], [x])
    assert_close(got, _expected(name, UNARY, dtype, [x]), _result_dtype(name, dtype))


@pytest.mark.parametrize("name, dtype", _cases(BINARY), ids=str)
@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                min_side=0, max_side=4), seed=seeds)
def test_binary(name, dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    wide = name in WIDE_INPUTS
    a, b = (random_array(rng, s, dtype, specials=True, wide=wide) for s in shapes.input_shapes)
    if name == "pow" and dtype.is_integer:
        b = random_array(rng, b.shape, dtype) % 7 - (dtype.kind == "int") * 2   # [-2, 4]
        b = b.astype(dtype.np_dtype)
    got = run_op(OPS[name], [a, b])
    assert got.shape == shapes.result_shape
    assert_close(got, _expected(name, BINARY, dtype, [a, b]), _result_dtype(name, dtype))


def test_integer_division_edge_cases():
    """Truncation toward zero, x / 0 == 0, and INT_MIN / -1 wrapping to INT_MIN."""
    a = np.array([-128, -128, -128, 127, -7, 7, -7, 0], np.int8)
    b = np.array([3, -1, 1, -2, 2, -2, 0, 0], np.int8)
    np.testing.assert_array_equal(run_op(OPS["div"], [a, b]),
                                  [-42, -128, -128, -63, -3, -3, 0, 0])
    np.testing.assert_array_equal(run_op(OPS["floordiv"], [a, b]),
                                  [-43, -128, -128, -64, -4, -4, 0, 0])
    np.testing.assert_array_equal(run_op(OPS["mod"], [a, b]), [1, 0, 0, -1, 1, -1, 0, 0])


@pytest.mark.parametrize("dtype", ALL, ids=str)
@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                min_side=0, max_side=3), seed=seeds)
def test_select(dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    kinds = (dt.bool_, dtype, dtype)
    c, a, b = (random_array(rng, s, d)
               for s, d in zip(shapes.input_shapes, kinds, strict=True))
    got = run_op(OPS["select"], [c, a, b])
    cb, ab, bb = np.broadcast_arrays(c, a, b)
    want = np.empty(shapes.result_shape, dtype.np_dtype)
    for index in np.ndindex(*want.shape):
        want[index] = ab[index] if cb[index] else bb[index]
    assert_same_bits(got, want)


@pytest.mark.parametrize("dtype", NUMERIC, ids=str)
@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                min_side=0, max_side=3), seed=seeds)
def test_clip(dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    x, lo, hi = (random_array(rng, s, dtype, specials=True) for s in shapes.input_shapes)
    got = run_op(OPS["clip"], [x, lo, hi])
    if dtype.is_float:
        want = nan_aware(lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi))(x, lo, hi)
    else:
        want = pyfunc(lambda x, lo, hi: min(max(x, lo), hi), x, lo, hi)
    assert_close(got, want, dtype)


def _cast_reference(x: np.ndarray, target: dt.DType) -> np.ndarray:
    source = dt.as_dtype(x.dtype)
    if target.is_bool:
        return pyfunc(lambda v: v != 0, x.astype(np.float64) if source.is_float else x)
    if source.is_float and target.is_integer:
        info = np.iinfo(target.np_dtype)

        def saturate(v):
            return 0 if v != v else int(min(max(math.trunc(max(min(v, 1e300), -1e300)),
                                                info.min), info.max))
        return pyfunc(saturate, x.astype(np.float64)).astype(target.np_dtype)
    if target.is_integer:
        return wrap(x.astype(object) if source.is_integer else x.astype(int), target)
    return x.astype(np.float64) if source.is_float else pyfunc(float, x).astype(float)


@pytest.mark.parametrize("source", ALL, ids=str)
@pytest.mark.parametrize("target", ALL, ids=str)
@settings(max_examples=15, deadline=None)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=5), seed=seeds,
       scale=st.sampled_from([5.0, 300.0, 3e9, 1e20]))
def test_cast(source, target, shape, seed, scale):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, source, low=-scale, high=scale, specials=True, wide=True)
    got = run_op(OPS["cast"], [x], {"dtype": target})
    assert_close(got, _cast_reference(x, target), target)


@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_stop_gradient_is_identity(dtype):
    x = random_array(np.random.default_rng(1), (3, 4), dtype, specials=True)
    assert_same_bits(run_op(OPS["stop_gradient"], [x]), x)


# ---- errors ------------------------------------------------------------------------------

def _rejections(table):
    return [(name, d) for name, (accepts, _, _) in table.items() for d in ALL
            if d not in accepts]


@pytest.mark.parametrize("name, dtype", _rejections(UNARY), ids=str)
def test_unary_rejects_dtype(name, dtype):
    with pytest.raises(DTypeError, match=rf"^{name}: .*{dtype.short}\[2,3\]"):
        infer(OPS[name], [T((2, 3), dtype)])


@pytest.mark.parametrize("name, dtype", _rejections(BINARY), ids=str)
def test_binary_rejects_dtype(name, dtype):
    with pytest.raises(DTypeError, match=rf"^{name}: .*{dtype.short}\[3\]"):
        infer(OPS[name], [T((3,), dtype), T((3,), dtype)])


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_rejects_mixed_dtypes_and_bad_shapes(name):
    d = BINARY[name][0][0]
    other = dt.float64 if d is not dt.float64 else dt.float32
    with pytest.raises(DTypeError, match=rf"^{name}: .*\[2\].*\[2\]"):
        infer(OPS[name], [T((2,), d), T((2,), other)])
    with pytest.raises(ShapeError, match=rf"^{name}: .*\[2, 3\] and \[4\]"):
        infer(OPS[name], [T((2, 3), d), T((4,), d)])


def test_select_clip_cast_errors():
    with pytest.raises(DTypeError, match=r"^select: .*f32\[2\]"):
        infer(OPS["select"], [T((2,), dt.float32), T((2,), dt.float32), T((2,), dt.float32)])
    with pytest.raises(DTypeError, match=r"^select: "):
        infer(OPS["select"], [T((2,), dt.bool_), T((2,), dt.float32), T((2,), dt.int32)])
    with pytest.raises(ShapeError, match=r"^select: .*\[2\] and \[3\]"):
        infer(OPS["select"], [T((2,), dt.bool_), T((3,), dt.int32), T((), dt.int32)])
    with pytest.raises(DTypeError, match=r"^clip: .*b"):
        infer(OPS["clip"], [T((2,), dt.bool_)] * 3)
    assert infer(OPS["cast"], [T((2,), dt.bfloat16)], {"dtype": "int8"}) == T((2,), dt.int8)
