"""The math functions of the tracejit namespace, Tensor methods and Python operators,
each checked against NumPy both eagerly and inside ``@tracejit.jit``.

Shape and movement functions are in test_array_functions.py.
"""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracejit as tj

from .checks import FAST, arrays, check

NUMERIC = [np.int32, np.int64, np.float32, np.float64]


def broadcast_pair(data, dtype, lo=-5, hi=5):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    return [data.draw(arrays(dtype, s, lo, hi)) for s in shapes.input_shapes]


# ---- elementwise binary ------------------------------------------------------------------------

BINARY = [
    (tj.add, np.add), (tj.subtract, np.subtract), (tj.multiply, np.multiply),
    (tj.maximum, np.maximum), (tj.minimum, np.minimum),
    (tj.floordiv, np.floor_divide), (tj.mod, np.mod), (tj.floormod, np.mod),
]


@pytest.mark.parametrize("fn, ref", BINARY, ids=lambda v: getattr(v, "__name__", ""))
@FAST
@given(data=st.data())
def test_binary_arithmetic_broadcasts_like_numpy(fn, ref, data):
    dtype = data.draw(st.sampled_from(NUMERIC + [np.int8, np.uint8]))
    x, y = broadcast_pair(data, dtype)
    if fn in (tj.floordiv, tj.mod, tj.floormod):
        y = np.where(y == 0, 1, y).astype(dtype)
    check(fn, (x, y), ref(x, y), rtol=1e-5)


@FAST
@given(data=st.data())
def test_divide_and_pow(data):
    dtype = data.draw(st.sampled_from(NUMERIC))
    x, y = broadcast_pair(data, dtype, 1, 4)
    # True division of integers gives float32, as in JAX and TF2's tf.math.divide.
    out = np.float32 if np.dtype(dtype).kind == "i" else dtype
    check(tj.divide, (x, y), (x / y).astype(out), rtol=1e-6)
    check(tj.truediv, (x, y), (x / y).astype(out), rtol=1e-6)
    exponent = (y - 2).astype(dtype) if np.dtype(dtype).kind == "f" else y % 3
    check(tj.pow, (x, exponent), np.power(x, exponent), rtol=1e-5)


COMPARISONS = [(tj.equal, np.equal), (tj.not_equal, np.not_equal), (tj.less, np.less),
               (tj.less_equal, np.less_equal), (tj.greater, np.greater),
               (tj.greater_equal, np.greater_equal)]
LOGICAL = [(tj.logical_and, np.logical_and), (tj.logical_or, np.logical_or),
           (tj.logical_xor, np.logical_xor)]


@pytest.mark.parametrize("fn, ref", COMPARISONS + LOGICAL,
                         ids=lambda v: getattr(v, "__name__", ""))
@FAST
@given(data=st.data())
def test_comparisons_and_logic_give_bool(fn, ref, data):
    dtype = np.bool_ if (fn, ref) in LOGICAL else data.draw(st.sampled_from(NUMERIC))
    x, y = broadcast_pair(data, dtype, -2, 2)
    check(fn, (x, y), ref(x, y))


@FAST
@given(data=st.data())
def test_where_and_clip_by_value(data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    c, a, b = shapes.input_shapes
    cond = data.draw(arrays(np.bool_, c))
    x, y = data.draw(arrays(np.float32, a)), data.draw(arrays(np.float32, b))
    check(tj.where, (cond, x, y), np.where(cond, x, y))
    check(lambda t: tj.where(t > 0, t, 0.0), (x,), np.where(x > 0, x, np.float32(0)))
    lo, hi = np.minimum(x, y), np.maximum(x, y)
    check(tj.clip_by_value, (cond.astype(np.float32) * 10 - 5, lo, hi),
          np.clip(cond.astype(np.float32) * 10 - 5, lo, hi))


def test_truncatediv_and_nan_propagation():
    a, b = np.array([-7, 7, -7, 7, 0], np.int32), np.array([2, 2, -2, -2, 3], np.int32)
    check(tj.truncatediv, (a, b), np.trunc(a / b).astype(np.int32))
    check(tj.truncatediv, (a * 1.0, b * 1.0), a / b)          # floats: true division
    x = np.array([[1.0, np.nan, 2.0], [0.0, -1.0, 3.0]], np.float32)
    check(lambda t: tj.maximum(t, 0.5), (x,), np.maximum(x, 0.5))
    check(lambda t: tj.minimum(t, 0.5), (x,), np.minimum(x, 0.5))
    check(lambda t: tj.reduce_max(t, 1), (x,), np.max(x, 1))
    check(lambda t: tj.reduce_sum(t, 0), (x,), np.sum(x, 0))
    check(lambda t: tj.argmax(t, 1), (x,), np.argmax(x, 1))   # NaN wins, as in NumPy


def test_where_rejects_a_non_bool_condition():
    with pytest.raises(tj.DTypeError, match="condition must be bool"):
        tj.where(np.ones(2, np.float32), 1.0, 2.0)


# ---- elementwise unary -------------------------------------------------------------------------

erf = np.vectorize(math.erf, otypes=[np.float64])
UNARY = [  # (function, reference, low, high, accepts integers unchanged)
    (tj.negative, np.negative, -5, 5, True), (tj.abs, np.abs, -5, 5, True),
    (tj.sign, np.sign, -5, 5, True), (tj.square, np.square, -5, 5, True),
    (tj.relu, lambda x: np.maximum(x, 0), -5, 5, True),
    (tj.exp, np.exp, -5, 5, False), (tj.expm1, np.expm1, -5, 5, False),
    (tj.log, np.log, 0.1, 5, False), (tj.log1p, np.log1p, -0.5, 5, False),
    (tj.sqrt, np.sqrt, 0, 5, False), (tj.rsqrt, lambda x: 1 / np.sqrt(x), 0.1, 5, False),
    (tj.reciprocal, lambda x: 1 / x, 0.1, 5, False), (tj.tanh, np.tanh, -5, 5, False),
    (tj.sigmoid, lambda x: 1 / (1 + np.exp(-x)), -5, 5, False),
    (tj.sin, np.sin, -5, 5, False), (tj.cos, np.cos, -5, 5, False),
    (tj.erf, erf, -3, 3, False),
    (tj.floor, np.floor, -5, 5, True), (tj.ceil, np.ceil, -5, 5, True),
    (tj.round, np.round, -5, 5, True),
]


@pytest.mark.parametrize("fn, ref, lo, hi, keeps_ints", UNARY,
                         ids=lambda v: getattr(v, "__name__", None))
@FAST
@given(data=st.data())
def test_unary_math_like_numpy(fn, ref, lo, hi, keeps_ints, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int32]))
    if np.dtype(dtype).kind == "i":
        lo, hi = math.ceil(lo), math.floor(hi)
    x = data.draw(arrays(dtype, shape, lo, hi))
    if fn is tj.round:
        x = x + np.asarray(0.5, dtype) * data.draw(st.booleans())   # exact halves: to even
    # Float-only functions take integers to float32, like JAX.
    out = dtype if keeps_ints or np.dtype(dtype).kind == "f" else np.float32
    check(fn, (x,), ref(x.astype(np.float64)).astype(out), rtol=2e-6, atol=1e-6)


def test_predicates_and_logical_not():
    x = np.array([0.0, -np.inf, np.nan, 2.5], np.float32)
    check(tj.isnan, (x,), np.isnan(x))
    check(tj.is_nan, (x,), np.isnan(x))
    check(tj.isfinite, (x,), np.isfinite(x))
    check(tj.is_finite, (x,), np.isfinite(x))
    check(tj.logical_not, (x > 0,), ~(x > 0))


def test_round_is_half_to_even():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.7], np.float32)
    check(tj.round, (x,), np.array([-2, -2, -0, 0, 2, 2, 4], np.float32))


# ---- reductions --------------------------------------------------------------------------------

REDUCTIONS = [  # (function, reference, output dtype for an int32 input)
    (tj.reduce_sum, np.sum, np.int32), (tj.reduce_prod, np.prod, np.int32),
    (tj.reduce_mean, np.mean, np.float32), (tj.reduce_max, np.max, np.int32),
    (tj.reduce_min, np.min, np.int32), (tj.reduce_any, np.any, np.bool_),
    (tj.reduce_all, np.all, np.bool_),
]


@st.composite
def axis_specs(draw, ndim):
    """None, an int (maybe negative), or a tuple of distinct axes (maybe negative)."""
    if ndim == 0:
        return draw(st.sampled_from([None, ()]))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")
@pytest.mark.parametrize("fn, ref, int_out", REDUCTIONS, ids=lambda v: getattr(v, "__name__", ""))
@FAST
@given(data=st.data())
def test_reductions_over_any_axes(fn, ref, int_out, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int32]))
    x = data.draw(arrays(dtype, shape, -2, 2))
    axis, keepdims = data.draw(axis_specs(len(shape))), data.draw(st.booleans())
    axes = tuple(range(x.ndim)) if axis is None else np.atleast_1d(axis).tolist()
    if fn in (tj.reduce_max, tj.reduce_min) and any(x.shape[a] == 0 for a in axes):
        with pytest.raises(ValueError, match="empty"):   # NumPy raises too
            fn(x, axis=axis)
        return
    out = dtype if np.dtype(dtype).kind == "f" and int_out is not np.bool_ else int_out
    np_axis = tuple(axes) if axis is not None else None
    if fn in (tj.reduce_sum, tj.reduce_prod):     # in the output type: integers wrap
        expected = ref(x, axis=np_axis, keepdims=keepdims, dtype=out)
    else:
        expected = ref(x if out == np.bool_ else x.astype(np.float64), axis=np_axis,
                       keepdims=keepdims)
    check(lambda t: fn(t, axis=axis, keepdims=keepdims), (x,), np.asarray(expected).astype(out),
          rtol=1e-5, atol=1e-5)
    check(lambda t: fn(t, axis, keep_dims=keepdims), (x,), np.asarray(expected).astype(out),
          rtol=1e-5, atol=1e-5)


def test_reductions_of_bools_and_bad_axes():
    b = np.array([[True, False, True], [True, True, True]])
    check(tj.reduce_sum, (b,), np.int32(5))            # bools count as int32
    check(lambda t: tj.reduce_mean(t, 1), (b,), np.array([2 / 3, 1], np.float32))
    check(lambda t: tj.reduce_all(t, -1), (b,), np.array([False, True]))
    with pytest.raises(tj.ParamError, match="out of range"):
        tj.reduce_sum(b, axis=2)
    with pytest.raises(tj.ParamError, match="repeated axis"):
        tj.reduce_sum(b, axis=(0, -2))


@pytest.mark.parametrize("fn, ref", [(tj.argmax, np.argmax), (tj.argmin, np.argmin)])
@FAST
@given(data=st.data())
def test_argmax_argmin(fn, ref, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = data.draw(arrays(np.float32, shape, -2, 2)).round()   # many ties: the first wins
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    expected = ref(x, axis=0 if axis is None else axis)       # TensorFlow's default is axis 0
    check(lambda t: fn(t, axis), (x,), expected.astype(np.int64))
    check(lambda t: fn(t, axis, output_type=tj.int32), (x,), expected.astype(np.int32))


# ---- matmul ------------------------------------------------------------------------------------

@FAST
@given(data=st.data())
def test_matmul_batches_broadcasts_and_transposes(data):
    batch = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    n, k, m = (data.draw(st.integers(0, 3)) for _ in range(3))
    rank_a, rank_b = data.draw(st.sampled_from([(1, 2), (2, 1), (1, 1), (2, 2), (3, 3)]))
    shape_a = (k,) if rank_a == 1 else batch.input_shapes[0] + (n, k)
    shape_b = (k,) if rank_b == 1 else batch.input_shapes[1] + (k, m)
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int32]))
    a, b = data.draw(arrays(dtype, shape_a)), data.draw(arrays(dtype, shape_b))
    expected = np.matmul(a, b)
    check(tj.matmul, (a, b), expected, rtol=1e-5)
    check(lambda x, y: x @ y, (a, b), expected, rtol=1e-5, wrap=True)
    ta, tb = a.ndim > 1 and data.draw(st.booleans()), b.ndim > 1 and data.draw(st.booleans())
    stored_a = np.swapaxes(a, -1, -2).copy() if ta else a
    stored_b = np.swapaxes(b, -1, -2).copy() if tb else b
    check(lambda x, y: tj.matmul(x, y, transpose_a=ta, transpose_b=tb), (stored_a, stored_b),
          expected, rtol=1e-5)


def test_matmul_errors_name_the_shapes():
    with pytest.raises(tj.ShapeError, match=r"matmul.*\[2,3\].*\[4,5\]|matmul.*3.*4"):
        tj.matmul(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32))
    with pytest.raises(tj.DTypeError, match="bool"):
        tj.matmul(np.ones((2, 2), bool), np.ones((2, 2), bool))
    with pytest.raises(tj.DTypeError, match="rank >= 1"):
        tj.matmul(np.float32(2), np.ones(2, np.float32))


# ---- Tensor methods and operators -----------------------------------------------------------

def test_tensor_methods():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7
    check(lambda t: t.T, (x,), x.T, wrap=True)
    check(lambda t: t.reshape(4, -1), (x,), x.reshape(4, -1), wrap=True)
    check(lambda t: t.reshape((6, 4)), (x,), x.reshape(6, 4), wrap=True)
    check(lambda t: t.transpose(1, 0, 2), (x,), x.transpose(1, 0, 2), wrap=True)
    check(lambda t: t.sum(axis=(0, -1)), (x,), x.sum(axis=(0, -1)), wrap=True)
    check(lambda t: t.sum(), (x,), x.sum(), wrap=True)
    check(lambda t: t.mean(axis=1, keepdims=True), (x,), x.mean(1, keepdims=True), wrap=True)
    check(lambda t: t.max(axis=-1), (x,), x.max(-1), wrap=True)
    check(lambda t: t.min(), (x,), x.min(), wrap=True)
    check(lambda t: t.prod(axis=0), (x,), x.prod(0), wrap=True, rtol=1e-5)
    check(lambda t: t.astype(np.int32), (x,), x.astype(np.int32), wrap=True)
    check(lambda t: t.astype(tj.float64), (x,), x.astype(np.float64), wrap=True)
    check(lambda t: t.flatten(), (x,), x.flatten(), wrap=True)
    check(lambda t: t.ravel(), (x,), x.ravel(), wrap=True)
    check(lambda t: t.argmax(), (x,), np.argmax(x), wrap=True)        # NumPy's: flattened
    check(lambda t: t.argmax(axis=-1), (x,), np.argmax(x, -1), wrap=True)
    check(lambda t: t.argmin(1), (x,), np.argmin(x, 1), wrap=True)
    check(lambda t: t.sum(dtype=np.float64), (x,), x.sum(dtype=np.float64), wrap=True)
    check(lambda t: (t > 0).any(axis=0), (x,), (x > 0).any(0), wrap=True)
    check(lambda t: (t > -8).all(), (x,), (x > -8).all(), wrap=True)
    check(lambda t: t[:1].squeeze(0), (x,), x[:1].squeeze(0), wrap=True)
    t = tj.constant(x)
    assert (t.shape, t.ndim, t.size, len(t), t.dtype) == ((2, 3, 4), 3, 24, 2, tj.float32)


@FAST
@given(data=st.data())
def test_operators_match_numpy(data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int32]))
    x, y = broadcast_pair(data, dtype, 1, 4)
    ops = [
        (lambda a, b: a + b, x + y), (lambda a, b: a - b, x - y),
        (lambda a, b: a * b, x * y), (lambda a, b: a // b, x // y),
        (lambda a, b: a % b, x % y), (lambda a, b: a ** (b % 3), x ** (y % 3)),
        (lambda a, b: -a, -x), (lambda a, b: +a, x), (lambda a, b: abs(a - 2), abs(x - 2)),
        (lambda a, b: a < b, x < y), (lambda a, b: a <= b, x <= y),
        (lambda a, b: a > b, x > y), (lambda a, b: a >= b, x >= y),
        (lambda a, b: a == b, x == y), (lambda a, b: a != b, x != y),
    ]
    for fn, expected in ops:
        check(fn, (x, y), expected, wrap=True, rtol=1e-5)
    true_div = (x / y).astype(np.float32 if dtype == np.int32 else dtype)
    check(lambda a, b: a / b, (x, y), true_div, wrap=True, rtol=1e-6)


def test_bool_operators():
    p, q = np.array([True, True, False, False]), np.array([True, False, True, False])
    for fn, expected in [(lambda a, b: a & b, p & q), (lambda a, b: a | b, p | q),
                         (lambda a, b: a ^ b, p ^ q), (lambda a, b: ~a, ~p)]:
        check(fn, (p, q), expected, wrap=True)
    with pytest.raises(tj.DTypeError, match="bool"):
        ~tj.constant(np.arange(3))


@pytest.mark.parametrize("left", [np.ones(3, np.float32), np.float32(2.0), 2.0, 3, [1.0, 2.0, 3.0]],
                         ids=["ndarray", "np-scalar", "float", "int", "list"])
def test_reflected_operators_return_arrays(left):
    t = tj.constant(np.array([1.0, 2.0, 4.0], np.float32))
    ref = np.asarray(left, np.float32)
    for fn, numpy_fn in [(lambda a, b: a + b, np.add), (lambda a, b: a - b, np.subtract),
                         (lambda a, b: a * b, np.multiply), (lambda a, b: a / b, np.divide),
                         (lambda a, b: a // b, np.floor_divide), (lambda a, b: a % b, np.mod),
                         (lambda a, b: a ** b, np.power), (lambda a, b: a < b, np.less),
                         (lambda a, b: a >= b, np.greater_equal), (lambda a, b: a == b, np.equal)]:
        got = fn(left, t)
        assert isinstance(got, tj.Array), type(got)
        expected = numpy_fn(ref, np.asarray(t))
        assert got.dtype == tj.as_dtype(expected.dtype)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6)
    got = tj.jit(lambda b: left - b)(t)
    np.testing.assert_allclose(np.asarray(got), ref - np.asarray(t))


def test_reflected_matmul_and_bool_ops_with_numpy_on_the_left():
    m = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = m @ tj.constant(np.ones((3, 2), np.float32))
    assert isinstance(got, tj.Array)
    np.testing.assert_array_equal(got, m @ np.ones((3, 2), np.float32))
    mask = np.array([True, False])
    for got, expected in [(mask & tj.constant([True, True]), [True, False]),
                          (mask | tj.constant([False, True]), [True, True]),
                          (mask ^ tj.constant([True, True]), [False, True])]:
        assert isinstance(got, tj.Array) and got.dtype == tj.bool
        np.testing.assert_array_equal(got, expected)
