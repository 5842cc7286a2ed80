"""tracejit.nn activations and small composites against NumPy references, eagerly and
inside ``@jit``, including extreme inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracejit as tj

from .checks import FAST, arrays, check, shapes

erf = np.vectorize(math.erf, otypes=[np.float64])


def ref_softplus(x):
    return np.logaddexp(0.0, x)


def ref_gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def ref_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def ref_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACTIVATIONS = [
    (tj.nn.relu, lambda x: np.maximum(x, 0)),
    (tj.nn.relu6, lambda x: np.clip(x, 0, 6)),
    (tj.nn.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x)),
    (lambda x: tj.nn.leaky_relu(x, alpha=0.01), lambda x: np.where(x > 0, x, 0.01 * x)),
    (tj.nn.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    (tj.nn.softplus, ref_softplus),
    (tj.nn.gelu, ref_gelu),
    (lambda x: tj.nn.gelu(x, approximate=True), ref_gelu_tanh),
    (tj.nn.silu, lambda x: x / (1 + np.exp(-x))),
    (tj.nn.swish, lambda x: x / (1 + np.exp(-x))),
    (tj.nn.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (tj.nn.tanh, np.tanh),
]


@pytest.mark.parametrize("fn, ref", ACTIVATIONS, ids=lambda v: getattr(v, "__name__", "fn"))
@FAST
@given(data=st.data())
def test_activations_match_numpy(fn, ref, data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    x = data.draw(arrays(dtype, data.draw(shapes()), -10, 10))
    check(fn, (x,), ref(x.astype(np.float64)).astype(dtype), rtol=1e-5, atol=1e-6)


def test_activations_at_extremes():
    x = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], np.float32)
    check(tj.nn.softplus, (x,), ref_softplus(x.astype(np.float64)).astype(np.float32),
          rtol=1e-6, atol=1e-30)
    big = np.array([1e30, 3e38], np.float32)
    check(tj.nn.softplus, (big,), big)                   # no overflow to inf
    check(tj.nn.relu6, (x,), np.clip(x, 0, 6))
    check(tj.nn.elu, (x,), np.where(x > 0, x, np.expm1(np.minimum(x, 0))), atol=1e-7)
    check(tj.nn.sigmoid, (x,), np.where(x == 0, 0.5, x > 0).astype(np.float32), atol=3e-9)
    check(tj.nn.silu, (np.array([-100.0, 100.0], np.float32),), np.array([0, 100], np.float32),
          atol=1e-30)
    check(tj.nn.gelu, (x,), np.where(x > 0, x, 0).astype(np.float32), atol=1e-30)


def test_relu_and_relu6_keep_integers():
    x = np.arange(-3, 10, dtype=np.int32)
    check(tj.nn.relu, (x,), np.maximum(x, 0))
    check(tj.nn.relu6, (x,), np.clip(x, 0, 6))


def test_activations_keep_the_input_float_type():
    for dtype in (np.float16, np.float32, np.float64):
        x = np.linspace(-3, 3, 7).astype(dtype)
        for fn in (tj.nn.relu, tj.nn.relu6, tj.nn.leaky_relu, tj.nn.elu, tj.nn.softplus,
                   tj.nn.gelu, tj.nn.silu, tj.nn.softmax, tj.nn.log_softmax):
            assert fn(x).dtype == tj.as_dtype(dtype), (fn, dtype)


@FAST
@given(data=st.data())
def test_softmax_and_log_softmax(data):
    shape = data.draw(shapes(min_dims=1, min_side=1))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    x = data.draw(arrays(dtype, shape, -20, 20))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    expected = ref_softmax(x.astype(np.float64), axis)
    check(lambda t: tj.nn.softmax(t, axis=axis), (x,), expected.astype(dtype), rtol=1e-5)
    check(lambda t: tj.nn.log_softmax(t, axis), (x,), np.log(expected).astype(dtype),
          rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.sum(tj.nn.softmax(x, axis), axis=axis), 1.0, rtol=1e-5)


def test_softmax_is_stable_for_large_logits():
    x = np.array([[1e4, 1e4 - 1.0, -1e4], [3e38, 0.0, -3e38], [-1e4, -1e4, -1e4]], np.float32)
    p = tj.nn.softmax(x)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(np.sum(p, axis=-1), 1.0, rtol=1e-6)
    e = np.exp(-1.0)
    np.testing.assert_allclose(p[0], [1 / (1 + e), e / (1 + e), 0.0], rtol=1e-6)
    np.testing.assert_allclose(p[1], [1, 0, 0])
    np.testing.assert_allclose(p[2], [1 / 3] * 3, rtol=1e-6)
    log_p = tj.jit(tj.nn.log_softmax)(x)
    assert np.all(np.isfinite(np.asarray(log_p)[:, :2]))
    np.testing.assert_allclose(np.asarray(log_p)[0, :2], [-np.log1p(e), -1 - np.log1p(e)],
                               rtol=1e-6)
    np.testing.assert_allclose(tj.nn.softmax(np.array([1, 2, 3])), ref_softmax(np.arange(1, 4.0)),
                               rtol=1e-6)    # integer logits become float32


@pytest.mark.parametrize("data_format", [None, "NHWC", "NCHW"])
def test_bias_add(data_format):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    channels = 3 if data_format == "NCHW" else 5
    bias = np.linspace(-1, 1, channels).astype(np.float32)
    expected = x + (bias[:, None, None] if data_format == "NCHW" else bias)
    check(lambda v, b: tj.nn.bias_add(v, b, data_format=data_format), (x, bias), expected)
    if data_format != "NCHW":
        matrix = x.reshape(-1, 5)
        check(tj.nn.bias_add, (matrix, bias), matrix + bias)


def test_bias_add_nchw_on_rank_3():
    x = np.ones((2, 3, 4), np.float32)
    bias = np.array([1.0, 2.0, 3.0], np.float32)
    check(lambda v, b: tj.nn.bias_add(v, b, data_format="NCHW"), (x, bias), x + bias[:, None])


@FAST
@given(data=st.data())
def test_l2_loss_and_l2_normalize(data):
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(arrays(np.float32, shape, -3, 3))
    x64 = x.astype(np.float64)
    check(tj.nn.l2_loss, (x,), np.float32(np.sum(x64 ** 2) / 2), rtol=1e-5)
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    norms = np.sqrt(np.maximum(np.sum(x64 ** 2, axis=axis, keepdims=True), 1e-12))
    check(lambda t: tj.nn.l2_normalize(t, axis=axis), (x,), (x64 / norms).astype(np.float32),
          rtol=1e-5)
    total = np.sqrt(np.maximum(np.sum(x64 ** 2), 1e-12))
    check(tj.nn.l2_normalize, (x,), (x64 / total).astype(np.float32), rtol=1e-5)


def test_l2_normalize_of_zeros_stays_finite_and_unit_rows():
    x = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    check(lambda t: tj.nn.l2_normalize(t, axis=1), (x,), np.array([[0, 0], [0.6, 0.8]],
                                                                  np.float32))
    assert tj.nn.l2_loss(np.array([3.0, 4.0], np.float32)).dtype == tj.float32
