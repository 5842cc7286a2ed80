"""conv2d and pooling against direct-loop NumPy references, over strides, padding,
dilation and data formats; their gradients against finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit import nn

from . import reference as ref

CONV_CASES = [  # (input NHWC, filter HWIO, strides, padding, dilations)
    ((2, 7, 6, 3), (3, 3, 3, 4), (1, 1), "SAME", (1, 1)),
    ((2, 7, 6, 3), (3, 2, 3, 2), (2, 2), "SAME", (1, 1)),
    ((1, 8, 7, 2), (3, 3, 2, 3), (2, 3), "VALID", (1, 1)),
    ((1, 8, 9, 2), (2, 3, 2, 2), (1, 1), "SAME", (2, 2)),
    ((2, 9, 9, 1), (3, 3, 1, 2), (1, 1), "VALID", (2, 3)),
    ((1, 5, 6, 2), (3, 3, 2, 2), (2, 1), [[1, 2], [0, 1]], (1, 1)),
    ((1, 6, 6, 1), (1, 1, 1, 3), (3, 3), "SAME", (1, 1)),
]


def _pads(case_padding, x_shape, w_shape, strides, dilations):
    if case_padding == "VALID":
        return (0, 0, 0, 0)
    if case_padding == "SAME":
        return (*ref.same_pads(x_shape[1], w_shape[0], strides[0], dilations[0]),
                *ref.same_pads(x_shape[2], w_shape[1], strides[1], dilations[1]))
    return tuple(v for pair in case_padding for v in pair)


@pytest.mark.parametrize("x_shape, w_shape, strides, padding, dilations", CONV_CASES)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d_matches_loops(x_shape, w_shape, strides, padding, dilations, data_format):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    want = ref.conv2d(x, w, strides, _pads(padding, x_shape, w_shape, strides, dilations),
                      dilations)
    if data_format == "NCHW":
        x, want = x.transpose(0, 3, 1, 2), want.transpose(0, 3, 1, 2)
        strides4, dil4 = (1, 1, *strides), (1, 1, *dilations)
        padding = padding if isinstance(padding, str) else [[0, 0], [0, 0], *padding]
    else:
        strides4, dil4 = (1, *strides, 1), (1, *dilations, 1)
        padding = padding if isinstance(padding, str) else [[0, 0], *padding, [0, 0]]
    got = nn.conv2d(x, w, strides4, padding, data_format, dil4)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
    jitted = tj.jit(lambda x, w: nn.conv2d(x, w, strides4, padding, data_format, dil4))
    np.testing.assert_allclose(np.asarray(jitted(x, w)), want, rtol=1e-12, atol=1e-12)


POOL_CASES = [  # (input, ksize, strides, padding)
    ((2, 6, 6, 3), (2, 2), (2, 2), "VALID"),
    ((2, 5, 7, 2), (2, 2), (2, 2), "SAME"),
    ((1, 7, 6, 2), (3, 3), (2, 2), "SAME"),
    ((1, 7, 6, 2), (3, 2), (1, 2), "VALID"),
    ((1, 5, 5, 1), (3, 3), (1, 1), "SAME"),
]


@pytest.mark.parametrize("x_shape, ksize, strides, padding", POOL_CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_pools_match_loops(x_shape, ksize, strides, padding, kind, data_format):
    rng = np.random.default_rng(1)
    x = rng.normal(size=x_shape)
    pads = (0, 0, 0, 0) if padding == "VALID" else (
        *ref.same_pads(x_shape[1], ksize[0], strides[0]),
        *ref.same_pads(x_shape[2], ksize[1], strides[1]))
    want = ref.pool(x, ksize, strides, pads, kind)
    fn = nn.max_pool2d if kind == "max" else nn.avg_pool2d
    if data_format == "NCHW":
        x, want = x.transpose(0, 3, 1, 2), want.transpose(0, 3, 1, 2)
    got = fn(x, ksize, strides, padding, data_format)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)


def test_tf1_four_element_spellings_and_aliases():
    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    a = nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    b = nn.max_pool2d(x, 2, 2, "VALID")
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    c = nn.avg_pool(value=x, ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1], padding="SAME")
    assert c.shape == (2, 4, 4, 3) and c.dtype == tj.float32
    w = np.ones((1, 1, 3, 2), np.float32)
    d = nn.conv2d(x, filter=w, strides=[1, 1, 1, 1], padding="VALID", use_cudnn_on_gpu=True)
    np.testing.assert_allclose(np.asarray(d), np.repeat(x.sum(-1, keepdims=True), 2, -1))


def test_half_precision_and_shape_errors():
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(1, 5, 5, 2)), rng.normal(size=(3, 3, 2, 2))
    for dtype, tol in ((np.float16, 2e-2), (tj.bfloat16.np_dtype, 5e-2)):
        got = nn.conv2d(x.astype(dtype), w.astype(dtype), 1, "SAME")
        assert got.dtype == tj.as_dtype(dtype)
        want = ref.conv2d(x, w, pads=(1, 1, 1, 1))
        np.testing.assert_allclose(np.asarray(got).astype(np.float64), want, rtol=tol,
                                   atol=tol * 4)
    with pytest.raises(tj.ShapeError, match="conv2d.*input channels"):
        nn.conv2d(x, np.ones((3, 3, 5, 2)), 1, "SAME")
    with pytest.raises(tj.ShapeError, match="conv2d.*rank-4"):
        nn.conv2d(np.ones((5, 5, 2)), w, 1, "SAME")
    with pytest.raises(tj.ParamError, match="padding"):
        nn.conv2d(x, w, 1, "FULL")
    with pytest.raises(tj.ShapeError, match="does not fit"):
        nn.max_pool2d(x, 7, 1, "VALID")


# ---- gradients ----------------------------------------------------------------------------

GRAD_CASES = [  # (input NHWC, filter, strides, padding, dilations, data format)
    ((2, 5, 5, 2), (3, 3, 2, 3), 1, "SAME", 1, "NHWC"),
    ((1, 6, 5, 2), (2, 3, 2, 2), 2, "SAME", 1, "NHWC"),
    ((1, 7, 7, 1), (3, 3, 1, 2), (2, 1), "VALID", 1, "NHWC"),
    ((1, 7, 6, 2), (2, 2, 2, 2), 1, "SAME", 2, "NHWC"),
    ((1, 8, 7, 2), (3, 2, 2, 2), 2, "VALID", (2, 1), "NHWC"),
    ((1, 6, 6, 2), (3, 3, 2, 2), 2, "SAME", 2, "NCHW"),
]


def _layout(shape, data_format):
    return shape if data_format == "NHWC" else (shape[0], shape[3], shape[1], shape[2])


@pytest.mark.parametrize("x_shape, w_shape, strides, padding, dilations, data_format",
                         GRAD_CASES)
def test_conv2d_gradients_match_finite_differences(x_shape, w_shape, strides, padding,
                                                   dilations, data_format):
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=_layout(x_shape, data_format)), rng.normal(size=w_shape)

    def conv(x, w):
        return nn.conv2d(x, w, strides, padding, data_format, dilations)

    r = rng.normal(size=np.shape(conv(x, w)))

    def f(x, w):
        return tj.reduce_sum(conv(x, w) * r)

    gx, gw = tj.grad(f, argnums=(0, 1))(x, w)
    np.testing.assert_allclose(np.asarray(gx), ref.numeric_gradient(
        lambda v: float(f(v, w)), x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(gw), ref.numeric_gradient(
        lambda v: float(f(x, v)), w), rtol=1e-6, atol=1e-7)


def test_conv2d_second_derivative():
    """d/dx of sum(grad_w(conv)^2): the backprop ops differentiate through one another."""
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(1, 4, 4, 2)), rng.normal(size=(3, 3, 2, 2))

    def inner(x, w):
        return tj.reduce_sum(tj.square(nn.conv2d(x, w, 2, "SAME")))

    def outer(x):
        return tj.reduce_sum(tj.square(tj.grad(inner, argnums=1)(x, w)))

    got = np.asarray(tj.grad(outer)(x))
    np.testing.assert_allclose(got, ref.numeric_gradient(lambda v: float(outer(v)), x),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("x_shape, ksize, strides, padding, data_format",
                         [(*case, "NHWC") for case in POOL_CASES]
                         + [((1, 5, 7, 2), (3, 2), (2, 2), "SAME", "NCHW")])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_gradients_match_finite_differences(x_shape, ksize, strides, padding,
                                                 data_format, kind):
    rng = np.random.default_rng(5)
    shape = _layout(x_shape, data_format)
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.01      # distinct: no ties
    fn = nn.max_pool2d if kind == "max" else nn.avg_pool2d
    r = rng.normal(size=np.shape(fn(x, ksize, strides, padding, data_format)))

    def f(x):
        return tj.reduce_sum(fn(x, ksize, strides, padding, data_format) * r)

    np.testing.assert_allclose(np.asarray(tj.grad(f)(x)),
                               ref.numeric_gradient(lambda v: float(f(v)), x, eps=1e-4),
                               rtol=1e-6, atol=1e-8)


def test_max_pool_gradient_goes_to_the_first_maximum():
    x = np.zeros((1, 3, 3, 1))                     # every window is a tie
    g = tj.grad(lambda x: tj.reduce_sum(nn.max_pool2d(x, 2, 1, "VALID")))(x)
    # windows start at (0,0), (0,1), (1,0), (1,1); each picks its top-left element
    want = np.zeros((3, 3))
    want[0, 0] = want[0, 1] = want[1, 0] = want[1, 1] = 1
    np.testing.assert_array_equal(np.asarray(g)[0, :, :, 0], want)
    # overlapping windows sharing one maximum add up there
    x = np.array([[0, 0, 0], [0, 5, 0], [0, 0, 0.0]]).reshape(1, 3, 3, 1)
    g = tj.grad(lambda x: tj.reduce_sum(nn.max_pool2d(x, 2, 1, "VALID")))(x)
    assert np.asarray(g)[0, 1, 1, 0] == 4 and np.asarray(g).sum() == 4
