"""Kernels whose buffers overlap, and loop shapes LLVM cannot compile (issue 10).

Each program here gave wrong values, or a compile that never finished, before the fix
named beside it; each is checked against the reference interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracejit as tj

from .compare import assert_matches


def compiled_and_reference(f, *args):
    got = tj.jit(f)(*args)
    want = tj.jit(f, executor="interpreter")(*args)
    if not isinstance(got, tuple):
        got, want = (got,), (want,)
    return [np.asarray(g) for g in got], [np.asarray(w) for w in want]


def check(f, *args, ulps=4):
    got, want = compiled_and_reference(f, *args)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_matches(g, w, w.dtype, ulps=ulps, what=f"result {k}")


# ---- stores wait for every load of an iteration (PointEval.store_all) -------------------


def test_matmul_epilogue_side_output_does_not_overwrite_the_product():
    # The gemm wrote its product into the first output of the right size (tanh a), and
    # the epilogue stored tanh a there before reading the product back.
    def f(a, g, c, b):
        h = tj.tanh(a)
        return (g @ c) * h, h @ b

    a = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    g = np.ones((2, 4), np.float32)
    c = (np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
    check(f, a, g, c, np.ascontiguousarray(c.T))


def test_gradient_of_a_tanh_layer_into_a_dense_layer():
    grad = tj.grad(lambda x, w: tj.reduce_sum(tj.tanh(x) @ w), argnums=(0, 1))
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    check(grad, x, w)


def test_in_place_kernel_with_a_reshaped_output_reads_before_it_writes():
    # The negation ran in place over the gather's buffer; the reshaped output re-read
    # that buffer through another index expression after the store.
    def f(c, w):
        e = -tj.gather(c, [1, 0, 3, 2], axis=0)
        return tj.reshape(e, [3, 4]) + 1.0, e @ w

    check(f, np.arange(12, dtype=np.float32).reshape(4, 3), np.ones((3, 2), np.float32))


def test_several_outputs_over_one_in_place_buffer():
    def f(x):
        y = tj.exp(-x)
        return tj.reshape(y, [6, 2]) * 2.0, tj.reshape(y, [3, 4]) - 1.0, y @ np.ones(
            (4, 1), np.float32)

    check(f, np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4))


# ---- reductions of values that do not vary along the reduced axes ----------------------


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod", "argmax", "argmin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_reduction_over_broadcast_axes_with_a_side_output(reduce, dtype):
    if reduce == "mean" and dtype == np.int32:
        pytest.skip("mean takes floats only")
    fn = {"sum": tj.reduce_sum, "mean": tj.reduce_mean, "max": tj.reduce_max,
          "min": tj.reduce_min, "prod": tj.reduce_prod, "argmax": tj.argmax,
          "argmin": tj.argmin}[reduce]

    def f(x, d):
        v = tj.floordiv(tj.broadcast_to(x, [5, 17]), d)
        return v, fn(v, axis=1)

    x = np.array([3, -7, 11, 2, 9], dtype).reshape(5, 1)
    d = np.array([[2]], dtype)
    check(f, x, d, ulps=8)


def test_broadcast_reduction_over_several_axes_keeps_the_middle_axis():
    def f(x):
        v = tj.mod(tj.broadcast_to(x, [3, 4, 5]), 3.0)
        return v, tj.reduce_sum(v, axis=(0, 2))

    check(f, np.linspace(-5, 5, 4, dtype=np.float32).reshape(1, 4, 1))


def test_broadcast_reduction_of_a_bool():
    def f(x):
        v = tj.broadcast_to(x, [4, 9]) > 0.5
        return v, tj.reduce_any(v, axis=1), tj.reduce_all(v, axis=1)

    check(f, np.array([[0.1], [0.9], [0.5], [2.0]], np.float32))


HANG = """
import warnings
import numpy as np, tracejit as tj
warnings.simplefilter("error")      # a compile that times out falls back with a warning
@tj.jit
def f(x, d):
    v = tj.floordiv(tj.broadcast_to(x, [5, 17]), d)
    return v, tj.reduce_sum(v, axis=1)
print(np.asarray(f(np.array([3.0], np.float32), np.array([[2.0]], np.float32))[1]).tolist())
def g(c):
    m = tj.reduce_mean(-tj.broadcast_to(c, [200_000, 8]), axis=-1, keepdims=True)
    return tj.reduce_mean(tj.floordiv(m, m), axis=1)
print(float(np.asarray(tj.jit(g)(np.array([3.0], np.float32)))[0]))
def h(a):
    c = tj.cast(tj.broadcast_to(a, [4, 3, 8]), tj.float32)
    return tj.floordiv(c, c), c >= np.linspace(0, 5, 96, dtype=np.float32).reshape(4, 3, 8)
print(np.asarray(tj.jit(h)(np.array([[3]], np.int32))[0]).sum())
"""


def test_loop_invariant_floordiv_reductions_compile(tmp_path):
    # LLVM's loop vectorizer never finished on these loops; in a subprocess so that a
    # regression fails in bounded time instead of hanging the suite.
    # h: an elementwise kernel of a broadcast scalar (the floordiv is now computed once,
    # before the loops: lower_body.PointEval.value).
    env = {"TRACEJIT_CACHE_DIR": "off", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "TRACEJIT_COMPILE_TIMEOUT": "40"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(HANG)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["[17.0, 17.0, 17.0, 17.0, 17.0]", "1.0", "96.0"]


# ---- short rows: no store past the end of an array (compile_worker.LLVM_OPTIONS) --------


@pytest.mark.parametrize("vector_bits", ["256", "512"])
@pytest.mark.parametrize("row", [9, 17])
@pytest.mark.parametrize("dtype", [tj.bfloat16, tj.float16])
def test_short_rows_of_half_floats_write_nothing_past_the_array(monkeypatch, vector_bits,
                                                                row, dtype):
    # A loop of fewer than 16 iterations was vectorized with a masked tail; LLVM 22.1
    # stored the one-lane tail of a float32 -> bfloat16 rounding as a 4-byte store, two
    # bytes past the array (a later free() aborted, or a neighbour read inf). The output
    # lands in a donated array with a sentinel behind it.
    monkeypatch.setenv("TRACEJIT_VECTOR_BITS", vector_bits)
    rng = np.random.default_rng(row)
    shape = (4, 1, row)
    size = 4 * row
    np_dtype = np.dtype(dtype.np_dtype)
    backing = np.full(size + 8, 7, np_dtype)
    e = backing[:size].reshape(shape)
    e[...] = rng.uniform(0.5, 2.0, size=shape).astype(np_dtype)
    a = rng.normal(size=shape).astype(np.float32)
    c = rng.normal(size=(4, 1, 1)).astype(np_dtype)
    w = rng.normal(size=4).astype(np_dtype)

    def layer(e, a, c, w):
        return tj.cast(a, dtype) + tj.reshape(w, (4, 1, 1)) * (c / e)

    want = tj.jit(layer, executor="interpreter")(e.copy(), a, c, w)
    got = tj.jit(layer, donate_argnums=(0,))(e, a, c, w)
    assert np.shares_memory(np.asarray(got), backing)
    np.testing.assert_array_equal(backing[size:].astype(np.float32), 7.0)
    assert_matches(np.asarray(got), np.asarray(want), np_dtype, ulps=4, what="layer")


# ---- half precision: every op rounds, nothing is reassociated (lower_ops.fm) ------------


@pytest.mark.parametrize("dtype", [np.float16, tj.bfloat16])
def test_half_precision_products_are_not_reassociated(dtype):
    # (x * 2) * w is 7553 in float16; reassociated as (w + w) * x it overflowed to inf
    # (a float16 gradient through square, seen by the fuzzer).
    np_dtype = np.dtype(getattr(dtype, "np_dtype", dtype))
    x = np.full(64, -0.0751, np_dtype)
    w = np.full(64, -50270.0 if np_dtype == np.float16 else -3.0e38, np_dtype)

    def f(x, w):
        return (x * 2.0) * w

    got, want = compiled_and_reference(f, x, w)
    assert np.isfinite(want[0].astype(np.float32)).all()
    assert_matches(got[0], want[0], np_dtype, ulps=0, what="(x*2)*w")


# ---- the sign of a zero from maximum/minimum (ops_elementwise.signed_maximum) -----------


def test_maximum_and_minimum_order_negative_zero_below_positive_zero():
    # NumPy returns either zero of a -0.0/+0.0 pair (np.minimum(-0.0, 0.0) is 0.0 on one
    # code path, -0.0 on another); the reference now orders them as IEEE 754-2019 and the
    # compiled code (llvm.maximum) do, so 1/clip(...) has one sign: the fuzzer saw inf
    # against -inf.
    z = np.array([0.0, -0.0, 0.0, -0.0] * 4, np.float32)
    y = np.array([0.0, 0.0, -0.0, -0.0] * 4, np.float32)
    x = np.full(16, -1.28, np.float32)

    def f(x, y, z):
        return (tj.maximum(y, z), tj.minimum(y, z), tj.relu(-y), tj.clip(x, z, y),
                1.0 / tj.clip(x, z, y))

    got, want = compiled_and_reference(f, x, y, z)
    expected_signs = [np.signbit(y) & np.signbit(z), np.signbit(y) | np.signbit(z),
                      np.zeros(16, bool), np.signbit(y) | np.signbit(z)]
    for k, signs in enumerate(expected_signs):
        np.testing.assert_array_equal(np.signbit(want[k]), signs, err_msg=f"reference {k}")
        np.testing.assert_array_equal(np.signbit(got[k]), signs, err_msg=f"compiled {k}")
    np.testing.assert_array_equal(got[4], want[4])


def test_convolution_with_no_input_channels_is_zero():
    # the reference's reshape(-1, co) of an empty filter failed (fuzz seed 3000 #36462)
    def f(x, w):
        return tj.nn.conv2d(x, w, strides=1, padding="SAME")

    x, w = np.zeros((1, 3, 3, 0), np.float32), np.zeros((2, 2, 0, 4), np.float32)
    got, want = compiled_and_reference(f, x, w)
    assert want[0].shape == (1, 3, 3, 4) and not want[0].any()
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("x_shape, w_shape", [((1, 3, 3, 0), (2, 2, 0, 4)),
                                              ((0, 3, 3, 2), (2, 2, 2, 4)),
                                              ((1, 3, 3, 2), (2, 2, 2, 0))])
def test_convolution_gradients_of_empty_tensors(x_shape, w_shape):
    # the reference's backprop-input reshape(-1, co) failed on empty operands (fuzz seed
    # 4000 #71619); backprop-filter had the same reshape
    def loss(x, w):
        return tj.reduce_sum(tj.nn.conv2d(x, w, strides=1, padding="SAME") * 2.0)

    x, w = np.ones(x_shape, np.float32), np.ones(w_shape, np.float32)
    got, want = compiled_and_reference(tj.grad(loss, argnums=(0, 1)), x, w)
    for g, r, shape in zip(got, want, (x_shape, w_shape), strict=True):
        assert r.shape == shape
        np.testing.assert_array_equal(g, r)


def test_min_and_max_reductions_order_signed_zeros():
    # seed 5000 #35309: np.min of [0.0, -0.0] returns either zero; the reference now
    # orders -0.0 below +0.0 as the compiled llvm.minimum/maximum reductions do
    x = np.array([[0.0, -0.0, 1.0], [-0.0, 0.0, -1.0], [0.0, 0.0, 2.0], [-0.0, -0.0, 3.0]],
                 np.float32)[:, :2]

    def f(x):
        return tj.reduce_min(x, axis=1), tj.reduce_max(x, axis=1), tj.reduce_min(x)

    got, want = compiled_and_reference(f, x)
    signs = [[True, True, False, True], [False, False, False, True], True]
    for k, expected in enumerate(signs):
        np.testing.assert_array_equal(np.signbit(want[k]), expected, err_msg=f"reference {k}")
        np.testing.assert_array_equal(np.signbit(got[k]), expected, err_msg=f"compiled {k}")
