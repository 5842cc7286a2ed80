"""matmul × every numeric dtype, against a broadcast-multiply-and-sum reference in
float64 (floats) or Python ints wrapped modulo 2**bits (integers)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tracejit.ir import OPS
from tracejit.ir import dtypes as dt
from tracejit.ir.errors import DTypeError, ShapeError

from .op_examples import T, assert_close, infer, random_array, run_op

MATMUL = OPS["matmul"]
# Accumulator precision: halves accumulate in float32.
EPS = {dt.float16: 2.0**-23, dt.bfloat16: 2.0**-23, dt.float32: 2.0**-23,
       dt.float64: 2.0**-52}


def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum_k a[..., i, k] * b[..., k, j], by broadcasting, without np.matmul."""
    dtype = dt.as_dtype(a.dtype)
    wide = object if dtype.is_integer else np.float64
    aw, bw = a.astype(wide), b.astype(wide)
    out = (aw[..., :, :, None] * bw[..., None, :, :]).sum(axis=-2)
    if not dtype.is_integer:
        return np.asarray(out, dtype=np.float64)
    info = np.iinfo(dtype.np_dtype)
    span = 1 << dtype.bits
    flat = [(int(v) - info.min) % span + info.min for v in np.ravel(out)]
    return np.array(flat, dtype=dtype.np_dtype).reshape(out.shape)


@pytest.mark.parametrize("dtype", dt.NUMERIC_DTYPES, ids=str)
@settings(max_examples=30, deadline=None)
@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                               min_side=0, max_side=3),
       m=st.integers(0, 4), k=st.integers(0, 4), n=st.integers(0, 4),
       seed=st.integers(0, 2**32 - 1))
def test_matmul(dtype, batch, m, k, n, seed):
    rng = np.random.default_rng(seed)
    sa, sb = batch.input_shapes
    a = random_array(rng, sa + (m, k), dtype, wide=True)
    b = random_array(rng, sb + (k, n), dtype, wide=True)
    got = run_op(MATMUL, [a, b])
    assert got.shape == batch.result_shape + (m, n)
    want = reference(a, b)
    atol = 0.0
    if dtype.is_float:
        # NOTE: any summation order is allowed: one accumulator rounding per term.
        magnitude = (np.abs(a.astype(np.float64))[..., :, :, None]
                     * np.abs(b.astype(np.float64))[..., None, :, :]).sum(axis=-2)
        atol = 2 * max(k, 1) * EPS[dtype] * magnitude
    assert_close(got, want, dtype, atol=atol)


def test_integer_matmul_wraps():
    a = np.full((1, 20), 100, np.int8)
    assert run_op(MATMUL, [a, a.T]) == np.int8(200000 % 256)    # 64


def test_half_matmul_accumulates_in_float32():
    # 4096 products of 1.0: a float16 accumulator would stop at 2048.
    a = np.ones((1, 4096), np.float16)
    assert run_op(MATMUL, [a, a.T])[0, 0] == np.float16(4096)


def test_empty_inner_dimension_gives_zeros():
    got = run_op(MATMUL, [np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32)])
    np.testing.assert_array_equal(got, np.zeros((2, 3), np.float32))


ERRORS = [
    ([T((2, 3), dt.float32), T((4, 5), dt.float32)], ShapeError,
     r"inner dimensions differ: f32\[2,3\] @ f32\[4,5\]"),
    ([T((3,), dt.float32), T((3, 2), dt.float32)], ShapeError, r"rank >= 2.*f32\[3\]"),
    ([T((2, 2, 3), dt.float32), T((3, 3, 1), dt.float32)], ShapeError,
     r"f32\[2,2,3\] and f32\[3,3,1\]"),
    ([T((2, 3), dt.float32), T((3, 2), dt.float64)], DTypeError, r"f32\[2,3\], f64\[3,2\]"),
    ([T((2, 3), dt.bool_), T((3, 2), dt.bool_)], DTypeError, r"bool\[2,3\]"),
]


@pytest.mark.parametrize("types, error, pattern", ERRORS)
def test_errors_name_the_op_and_shapes(types, error, pattern):
    with pytest.raises(error, match=rf"^matmul: .*{pattern}"):
        infer(MATMUL, types)


def test_batch_dimensions_broadcast():
    out = infer(MATMUL, [T((5, 1, 2, 3), dt.int32), T((4, 3, 6), dt.int32)])
    assert out == T((5, 4, 2, 6), dt.int32)


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_matmul_transpose_flags_match_numpy(ta, tb):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 4, 3) if ta else (2, 3, 4))
    b = rng.normal(size=(5, 4) if tb else (4, 5))
    from tracejit.ir import GraphBuilder, TensorType, interpret, ops
    from tracejit.ir import dtypes as dt
    builder = GraphBuilder()
    x = builder.add_input(TensorType(a.shape, dt.float64))
    y = builder.add_input(TensorType(b.shape, dt.float64))
    out = builder.emit1(ops.MATMUL, [x, y], {"transpose_a": ta, "transpose_b": tb})
    got = interpret(builder.build([out]), [a, b], check=True)[0]
    expected = (np.swapaxes(a, -1, -2) if ta else a) @ (b.T if tb else b)
    np.testing.assert_allclose(got, expected)
