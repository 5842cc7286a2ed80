"""Convolutions and pooling split across tracejit's threads (1, 2 and 3 threads,
every kernel forced parallel) against the reference implementations, on awkward shapes:
batch 1, odd sizes, strides 2, SAME/VALID, dilation 2, one input channel, blocks that
straddle images, and the NCHW front end."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cpu.gemm.choice import GEMM_ENV
from tracejit.codegen_cpu.gemm.tiles import tile_gemm_exists
from tracejit.codegen_cpu.kernels import conv as lower_nn
from tracejit.codegen_cpu.parallel.pool import PARALLEL_FOR
from tracejit.ir import dtypes as dt
from tracejit.ir.core import TensorType

from .lowering_util import Compiled, one_eqn, reference

THREADS = [1, 2, 3]
GEMMS = ["tiles", "blas"]       # the register-tiled products (AVX-512 hosts), or BLAS
f32, f64, bf16 = dt.float32, dt.float64, dt.bfloat16


def _pads(kind: str, size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME rule (the odd pixel at the end), or VALID."""
    if kind == "VALID":
        return 0, 0
    span = (k - 1) * dilation + 1
    total = max(0, (-(-size // stride) - 1) * stride + span - size)
    return total // 2, total - total // 2


def _conv_params(x_shape, w_shape, padding, strides=(1, 1), dilations=(1, 1)):
    pt, pb = _pads(padding, x_shape[1], w_shape[0], strides[0], dilations[0])
    pl, pr = _pads(padding, x_shape[2], w_shape[1], strides[1], dilations[1])
    return {"strides": strides, "pads": (pt, pb, pl, pr), "dilations": dilations}


def _conv_out(x_shape, w_shape, params):
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = params["strides"], params["pads"], params["dilations"]
    oh = (x_shape[1] + pt + pb - (w_shape[0] - 1) * dh - 1) // sh + 1
    ow = (x_shape[2] + pl + pr - (w_shape[1] - 1) * dw - 1) // sw + 1
    return (x_shape[0], oh, ow, w_shape[3])


# (image NHWC, filter HWIO, padding, strides, dilations)
CONVS = [
    ((1, 5, 7, 3), (3, 3, 3, 4), "SAME", (1, 1), (1, 1)),        # batch 1
    ((4, 9, 8, 3), (3, 2, 3, 5), "VALID", (2, 2), (1, 1)),       # strides 2, VALID
    ((3, 11, 10, 2), (3, 3, 2, 3), "SAME", (1, 1), (2, 2)),      # dilation 2
    ((2, 7, 9, 5), (5, 5, 5, 6), "SAME", (2, 1), (1, 1)),        # odd pads, mixed strides
    ((5, 12, 12, 1), (5, 5, 1, 7), "SAME", (1, 1), (1, 1)),      # one channel (W5's conv1)
    ((9, 6, 6, 4), (1, 1, 4, 3), "VALID", (1, 1), (1, 1)),       # pointwise: one gemm
    ((6, 14, 14, 8), (5, 5, 8, 16), "SAME", (1, 1), (1, 1)),     # W5's conv2, smaller
    ((12, 4, 5, 3), (2, 3, 3, 2), "VALID", (1, 2), (2, 1)),      # 12 images: split on images
]


def _rand(rng, shape, dtype=f32):
    return rng.standard_normal(shape).astype(dtype.np_dtype)


def _conv_eqns(x_shape, w_shape, padding, strides, dilations, dtype):
    params = _conv_params(x_shape, w_shape, padding, strides, dilations)
    out = _conv_out(x_shape, w_shape, params)
    fwd, _ = one_eqn("conv2d", [TensorType(x_shape, dtype), TensorType(w_shape, dtype)], params)
    dx, _ = one_eqn("conv2d_backprop_input",
                    [TensorType(out, dtype), TensorType(w_shape, dtype)],
                    {**params, "input_shape": x_shape})
    dw, _ = one_eqn("conv2d_backprop_filter",
                    [TensorType(x_shape, dtype), TensorType(out, dtype)],
                    {**params, "filter_shape": w_shape})
    return {"fwd": fwd, "dx": dx, "dw": dw}, out


def _close(got, want, arrays, dtype, what):
    """Equal within the rounding of sums in another order (blocks, threads, partials)."""
    got64 = got.astype(np.float64)
    want64 = want.astype(np.float64)
    scale = max(1.0, *(float(np.abs(a.astype(np.float64)).max()) for a in arrays if a.size))
    terms = max(a.size for a in arrays)
    eps = {f32: 2.0 ** -23, f64: 2.0 ** -52, bf16: 2.0 ** -8}[dtype]
    atol = 4 * eps * np.sqrt(terms) * scale ** 2 * (64 if dtype is bf16 else 1)
    np.testing.assert_allclose(got64, want64, rtol=0, atol=atol, err_msg=what)


def _check_convs(compiled, eqns, x_shape, w_shape, out, dtype, rng, what):
    x, w, ct = _rand(rng, x_shape, dtype), _rand(rng, w_shape, dtype), _rand(rng, out, dtype)
    for name, arrays in (("fwd", [x, w]), ("dx", [ct, w]), ("dw", [x, ct])):
        (got,) = compiled(name, arrays)
        (want,) = reference(eqns[name], arrays)
        assert got.shape == want.shape and got.dtype == want.dtype
        _close(got, want, arrays, dtype, f"{what} {name}")


def _use(gemm: str, monkeypatch) -> None:
    if gemm == "tiles" and not tile_gemm_exists(f32):
        pytest.skip("the tiled products need AVX-512")
    monkeypatch.setenv(GEMM_ENV, gemm)


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", CONVS, ids=lambda c: f"{c[0]}x{c[1]}-{c[2]}-s{c[3]}-d{c[4]}")
def test_convolutions_match_reference(case, threads, gemm, monkeypatch):
    _use(gemm, monkeypatch)
    x_shape, w_shape, padding, strides, dilations = case
    eqns, out = _conv_eqns(x_shape, w_shape, padding, strides, dilations, f32)
    compiled = Compiled(eqns, threads=threads, min_work=1)
    _check_convs(compiled, eqns, x_shape, w_shape, out, f32, np.random.default_rng(threads),
                 f"threads={threads}")


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", [CONVS[0], CONVS[3], CONVS[6], CONVS[7]],
                         ids=["batch1", "odd", "w5-like", "12-images"])
def test_small_blocks_straddle_images(case, threads, gemm, monkeypatch):
    """Tiny im2col blocks: many blocks per thread, blocks that cross image boundaries,
    and (backprop_input) threads whose blocks share an image."""
    _use(gemm, monkeypatch)
    monkeypatch.setattr(lower_nn, "IM2COL_ELEMENTS", 40)
    monkeypatch.setattr(lower_nn, "TILE_ELEMENTS", 40)
    x_shape, w_shape, padding, strides, dilations = case
    eqns, out = _conv_eqns(x_shape, w_shape, padding, strides, dilations, f32)
    compiled = Compiled(eqns, threads=threads, min_work=1)
    _check_convs(compiled, eqns, x_shape, w_shape, out, f32, np.random.default_rng(7),
                 f"threads={threads}")


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("dtype", [f64, bf16], ids=str)
@pytest.mark.parametrize("threads", [1, 3])
def test_other_dtypes(dtype, threads, gemm, monkeypatch):
    _use(gemm, monkeypatch)
    x_shape, w_shape, padding, strides, dilations = CONVS[3]
    eqns, out = _conv_eqns(x_shape, w_shape, padding, strides, dilations, dtype)
    compiled = Compiled(eqns, threads=threads, min_work=1)
    _check_convs(compiled, eqns, x_shape, w_shape, out, dtype, np.random.default_rng(3),
                 f"{dtype} threads={threads}")


def test_unthreaded_below_the_work_threshold():
    """A small convolution with the default threshold never calls the thread pool."""
    eqns, _ = _conv_eqns((1, 5, 7, 3), (3, 3, 3, 4), "SAME", (1, 1), (1, 1), f32)
    assert PARALLEL_FOR not in Compiled(eqns, threads=2).ir
    assert PARALLEL_FOR in Compiled(eqns, threads=2, min_work=1).ir


# ---- pooling -----------------------------------------------------------------------------

# (image NHWC, ksize, strides, padding)
POOLS = [
    ((1, 7, 6, 5), (3, 2), (2, 2), "SAME"),        # batch 1, overlapping rows
    ((3, 9, 9, 4), (3, 3), (2, 2), "VALID"),       # overlapping windows both ways
    ((4, 8, 8, 3), (2, 2), (2, 2), "VALID"),       # W5's pooling
    ((2, 7, 7, 67), (2, 2), (2, 2), "SAME"),       # odd size, vector tail of channels
    ((5, 6, 5, 2), (2, 3), (1, 1), "SAME"),        # stride 1
]


def _pool_eqns(x_shape, ksize, strides, padding, dtype):
    pt, pb = _pads(padding, x_shape[1], ksize[0], strides[0])
    pl, pr = _pads(padding, x_shape[2], ksize[1], strides[1])
    params = {"ksize": ksize, "strides": strides, "pads": (pt, pb, pl, pr)}
    oh = (x_shape[1] + pt + pb - ksize[0]) // strides[0] + 1
    ow = (x_shape[2] + pl + pr - ksize[1]) // strides[1] + 1
    out = (x_shape[0], oh, ow, x_shape[3])
    x, o = TensorType(x_shape, dtype), TensorType(out, dtype)
    eqns = {
        "max": one_eqn("max_pool2d", [x], params)[0],
        "avg": one_eqn("avg_pool2d", [x], params)[0],
        "select": one_eqn("max_pool2d_select", [x, x], params)[0],
        "max_bp": one_eqn("max_pool2d_backprop", [x, o], params)[0],
        "avg_bp": one_eqn("avg_pool2d_backprop", [o], {**params, "input_shape": x_shape})[0],
    }
    return eqns, out


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", POOLS, ids=lambda c: f"{c[0]}-k{c[1]}-s{c[2]}-{c[3]}")
def test_pooling_matches_reference(case, threads):
    """Pooling and its gradients add windows back in the reference's order whatever the
    threads: bit for bit equal."""
    x_shape, ksize, strides, padding = case
    eqns, out = _pool_eqns(x_shape, ksize, strides, padding, f32)
    compiled = Compiled(eqns, threads=threads, min_work=1)
    rng = np.random.default_rng(threads)
    # NOTE: a few repeated values so that ties (the first maximum wins) happen.
    x = np.round(_rand(rng, x_shape) * 2) / 2
    g, ct = _rand(rng, x_shape), _rand(rng, out)
    for name, arrays in (("max", [x]), ("avg", [x]), ("select", [x, g]), ("max_bp", [x, ct]),
                         ("avg_bp", [ct])):
        (got,) = compiled(name, arrays)
        (want,) = reference(eqns[name], arrays)
        np.testing.assert_array_equal(got, want, err_msg=f"{name} threads={threads}")


# ---- through the front end ---------------------------------------------------------------

@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv_net_gradients_match_interpreter(data_format):
    """A small conv-pool-conv net and its gradients, compiled with every kernel forced
    onto 2 threads, against the reference interpreter."""
    from tracejit.codegen_cpu.parallel.settings import parallel_settings

    rng = np.random.default_rng(5)
    nchw = data_format == "NCHW"
    x = _rand(rng, (3, 2, 9, 9) if nchw else (3, 9, 9, 2))
    w1, w2 = _rand(rng, (3, 3, 2, 4)), _rand(rng, (2, 2, 4, 3))

    def loss(x, w1, w2):
        h = tj.nn.relu(tj.nn.conv2d(x, w1, strides=1, padding="SAME", data_format=data_format))
        h = tj.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME", data_format=data_format)
        h = tj.nn.conv2d(h, w2, strides=2, padding="VALID", data_format=data_format,
                         dilations=1)
        return tj.reduce_sum(h * h)

    def step(x, w1, w2):
        return tj.value_and_grad(loss, argnums=(0, 1, 2))(x, w1, w2)

    want = tj.jit(step, executor="interpreter")(x, w1, w2)
    with parallel_settings(threads=2, min_work=1):
        got = tj.jit(step, executor="cpu")(x, w1, w2)
    for g, w in zip([got[0], *got[1]], [want[0], *want[1]], strict=True):
        g, w = np.asarray(g), np.asarray(w)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(w).max()))
