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
import numpy as np, tracejit as tj
@tj.jit
def f(x, d):
    v = tj.floordiv(tj.broadcast_to(x, [5, 17]), d)
    return v, tj.reduce_sum(v, axis=1)
print(np.asarray(f(np.array([3.0], np.float32), np.array([[2.0]], np.float32))[1]).tolist())
def g(c):
    m = tj.reduce_mean(-tj.broadcast_to(c, [200_000, 8]), axis=-1, keepdims=True)
    return tj.reduce_mean(tj.floordiv(m, m), axis=1)
print(float(np.asarray(tj.jit(g)(np.array([3.0], np.float32)))[0]))
"""


def test_loop_invariant_floordiv_reductions_compile(tmp_path):
    # LLVM's loop vectorizer never finished on these loops; in a subprocess so that a
    # regression fails in bounded time instead of hanging the suite.
    env = {"TRACEJIT_CACHE_DIR": "off", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(HANG)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[17.0, 17.0, 17.0, 17.0, 17.0]", "1.0"]
