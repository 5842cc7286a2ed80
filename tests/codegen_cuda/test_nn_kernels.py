"""The GPU's convolution and pooling kernels (codegen_cuda/kernels/nn.py) on numba's CUDA
simulator, against the reference interpreter.

Beyond the op table's examples: strides of 2, SAME- and VALID-like pads, dilation 2,
float64, float16 and bfloat16; ties, NaN, -inf and signed zeros in max pooling (the
first maximum of the padded window wins, a padding position only as the window's
first). Pooling sums in the reference's order, so it must match bit for bit;
convolutions sum in another order than the reference's matrix product, so they match
within rounding. Shapes stay small: the simulator runs every GPU thread as a Python
thread.

Runs only in a process that already simulates (``TRACEJIT_GPU=sim``): turning the
simulator on here would change numba.cuda for every later test of the run.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from tests.codegen_cuda.simulated import require_gpu, run_on, simulated_gpu
from tests.ir.op_examples import T, random_array
from tracejit.ir import OPS, GraphBuilder, interpret
from tracejit.ir import dtypes as dt

require_gpu()

f16, bf16, f32, f64 = dt.float16, dt.bfloat16, dt.float32, dt.float64

# relative (and absolute) tolerance of a convolution per float width
RTOL = {16: 2e-2, 32: 2e-5, 64: 1e-12}

SAME3 = (1, 1, 1, 1)        # a 3x3 window, stride 1: SAME
S2 = {"strides": (2, 2)}

# (case id, op name, input types, params)
CASES = [
    ("conv_stride2_same_f32", "conv2d", [T((1, 5, 5, 2), f32), T((3, 3, 2, 3), f32)],
     {**S2, "pads": SAME3}),
    ("conv_dilation2_valid_f64", "conv2d", [T((1, 6, 5, 2), f64), T((2, 2, 2, 2), f64)],
     {"dilations": (2, 2)}),
    ("conv_stride2_uneven_pads_bf16", "conv2d", [T((2, 4, 4, 1), bf16),
                                                 T((2, 2, 1, 2), bf16)],
     {**S2, "pads": (0, 1, 0, 1)}),
    ("conv_dilation_stride_f16", "conv2d", [T((1, 5, 6, 2), f16), T((2, 3, 2, 2), f16)],
     {"strides": (1, 2), "pads": (1, 0, 2, 1), "dilations": (2, 1)}),
    ("dx_stride2_same_f32", "conv2d_backprop_input",
     [T((1, 3, 3, 3), f32), T((3, 3, 2, 3), f32)],
     {"input_shape": (1, 5, 5, 2), **S2, "pads": SAME3}),
    ("dx_dilation2_valid_f64", "conv2d_backprop_input",
     [T((1, 4, 3, 2), f64), T((2, 2, 2, 2), f64)],
     {"input_shape": (1, 6, 5, 2), "dilations": (2, 2)}),
    ("dx_stride2_bf16", "conv2d_backprop_input",
     [T((2, 2, 2, 2), bf16), T((2, 2, 1, 2), bf16)],
     {"input_shape": (2, 4, 4, 1), **S2, "pads": (0, 1, 0, 1)}),
    ("dx_stride_gap_f64", "conv2d_backprop_input",       # stride 3 > window: gaps
     [T((1, 2, 2, 2), f64), T((2, 2, 1, 2), f64)],
     {"input_shape": (1, 6, 6, 1), "strides": (3, 3)}),
    ("dw_stride2_same_f32", "conv2d_backprop_filter",
     [T((1, 5, 5, 2), f32), T((1, 3, 3, 3), f32)],
     {"filter_shape": (3, 3, 2, 3), **S2, "pads": SAME3}),
    ("dw_dilation2_valid_f64", "conv2d_backprop_filter",
     [T((1, 6, 5, 2), f64), T((1, 4, 3, 2), f64)],
     {"filter_shape": (2, 2, 2, 2), "dilations": (2, 2)}),
    ("dw_stride2_bf16", "conv2d_backprop_filter",
     [T((2, 4, 4, 1), bf16), T((2, 2, 2, 2), bf16)],
     {"filter_shape": (2, 2, 1, 2), **S2, "pads": (0, 1, 0, 1)}),
    ("maxpool_same_stride2_f64", "max_pool2d", [T((1, 5, 5, 2), f64)],
     {"ksize": (3, 3), **S2, "pads": SAME3}),
    ("maxpool_valid_bf16", "max_pool2d", [T((2, 4, 5, 1), bf16)], {"ksize": (2, 2), **S2}),
    ("maxpool_bp_overlap_f64", "max_pool2d_backprop",
     [T((1, 4, 4, 2), f64), T((1, 4, 4, 2), f64)], {"ksize": (3, 3), "pads": SAME3}),
    ("maxpool_bp_stride2_bf16", "max_pool2d_backprop",
     [T((1, 5, 5, 1), bf16), T((1, 3, 3, 1), bf16)],
     {"ksize": (3, 3), **S2, "pads": SAME3}),
    ("maxpool_bp_f16", "max_pool2d_backprop",
     [T((1, 4, 4, 1), f16), T((1, 2, 2, 1), f16)], {"ksize": (2, 2), **S2}),
    ("maxpool_select_overlap_f32", "max_pool2d_select",
     [T((1, 4, 4, 2), f32)] * 2, {"ksize": (3, 3), "pads": SAME3}),
    ("maxpool_select_bf16", "max_pool2d_select", [T((1, 5, 4, 1), bf16)] * 2,
     {"ksize": (2, 3), "strides": (2, 1), "pads": (1, 0, 1, 1)}),
    ("avgpool_same_stride2_f64", "avg_pool2d", [T((1, 5, 5, 2), f64)],
     {"ksize": (3, 3), **S2, "pads": SAME3}),
    ("avgpool_bf16", "avg_pool2d", [T((2, 4, 4, 1), bf16)],
     {"ksize": (2, 2), "pads": (0, 1, 0, 1)}),
    ("avgpool_f16", "avg_pool2d", [T((1, 5, 4, 2), f16)],
     {"ksize": (3, 2), "strides": (2, 1), "pads": (1, 1, 0, 1)}),
    ("avgpool_bp_overlap_f64", "avg_pool2d_backprop", [T((1, 3, 3, 2), f64)],
     {"input_shape": (1, 5, 5, 2), "ksize": (3, 3), **S2, "pads": SAME3}),
    ("avgpool_bp_bf16", "avg_pool2d_backprop", [T((2, 4, 4, 1), bf16)],
     {"input_shape": (2, 4, 4, 1), "ksize": (2, 2), "pads": (0, 1, 0, 1)}),
]

CONVS = {"conv2d", "conv2d_backprop_input", "conv2d_backprop_filter"}


def case_graph(name, types, params):
    b = GraphBuilder(f"nn_{name}")
    ins = [b.add_input(t) for t in types]
    return b.build(list(b.emit(OPS[name], ins, dict(params))))


def case_inputs(case_id, name, graph):
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    args = [random_array(rng, v.type.shape, v.type.dtype, low=-3.0, high=3.0)
            for v in graph.inputs]
    if name.startswith("max_pool2d"):
        # few distinct values: windows hold ties, so the first maximum must win
        args[0] = np.round(args[0].astype(np.float64)).astype(args[0].dtype)
    return args


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def _check(got, want, graph, exact: bool) -> None:
    assert len(got) == len(want)
    for g, w, var in zip(got, want, graph.outputs, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        if exact:
            np.testing.assert_array_equal(_bits(g), _bits(w))
        else:
            rtol = RTOL[var.type.dtype.bits]
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64),
                                       rtol=rtol, atol=rtol, equal_nan=True)


@pytest.fixture(scope="module")
def gpu():
    return simulated_gpu()


_run = run_on


@pytest.mark.parametrize("case_id,name,types,params", CASES, ids=[c[0] for c in CASES])
def test_nn_kernel_matches_the_interpreter(gpu, case_id, name, types, params):
    graph = case_graph(name, types, params)
    args = case_inputs(case_id, name, graph)
    _check(_run(gpu, graph, args), interpret(graph, args), graph, exact=name not in CONVS)


CONV_CASES = [c for c in CASES if c[1] in CONVS]


@pytest.mark.parametrize("case_id,name,types,params", CONV_CASES,
                         ids=[c[0] for c in CONV_CASES])
def test_direct_convolutions_match_the_interpreter_too(gpu, monkeypatch, case_id, name,
                                                       types, params):
    # the direct kernels serve where im2col's scratch would be too big (and halves'
    # input gradient): force them with a zero scratch limit
    from tracejit.codegen_cuda.kernels import conv_gemm
    monkeypatch.setattr(conv_gemm, "COLS_LIMIT", 0)
    graph = case_graph(name, types, params)
    args = case_inputs(case_id, name, graph)
    _check(_run(gpu, graph, args), interpret(graph, args), graph, exact=False)


def test_float_convolutions_are_im2col_and_a_gemm(gpu):
    from tracejit.codegen_cuda.program import build_steps
    from tracejit.codegen_cuda.steps import GemmStep
    for name, types, params in [
            ("conv2d", [T((1, 5, 5, 2), f32), T((3, 3, 2, 3), f32)], {"pads": SAME3}),
            ("conv2d_backprop_input", [T((1, 5, 5, 3), f64), T((3, 3, 2, 3), f64)],
             {"pads": SAME3, "input_shape": (1, 5, 5, 2)}),
            ("conv2d_backprop_filter", [T((1, 5, 5, 2), f32), T((1, 5, 5, 3), f32)],
             {"pads": SAME3, "filter_shape": (3, 3, 2, 3)})]:
        graph = case_graph(name, types, params)
        steps = build_steps(gpu.optimize(graph), True)
        assert [type(s).__name__ for s in steps].count("GemmStep") == 1, name
        assert any(isinstance(s, GemmStep) for s in steps)


def test_max_pool_nan_inf_and_signed_zeros(gpu):
    """NaN is the maximum (the first NaN wins), -0.0 < +0.0 in the forward maximum but a
    tie for the first maximum, and a window of -inf only routes its gradient to its
    first position, which may be padding (the gradient then goes nowhere)."""
    inf, nan = np.inf, np.nan
    x = np.array([[-inf, -inf, 1.0, 2.0],
                  [-inf, -inf, nan, 2.0],
                  [-0.0, 0.0, 5.0, nan],
                  [0.0, -0.0, 5.0, 5.0]], np.float32).reshape(1, 4, 4, 1)
    rng = np.random.default_rng(3)
    params = {"ksize": (2, 2), "strides": (1, 1), "pads": (1, 0, 1, 0)}
    for name, extra in (("max_pool2d", []), ("max_pool2d_backprop", [(1, 4, 4, 1)]),
                        ("max_pool2d_select", [(1, 4, 4, 1)])):
        types = [T(x.shape, f32)] + [T(s, f32) for s in extra]
        graph = case_graph(name, types, params)
        args = [x] + [rng.uniform(1.0, 2.0, s).astype(np.float32) for s in extra]
        _check(_run(gpu, graph, args), interpret(graph, args), graph, exact=True)


def test_conv_padding_is_a_zero_term(gpu):
    """An infinite filter tap over padding gives NaN (0 * inf), as the reference's
    im2col does."""
    x = np.ones((1, 2, 2, 1), np.float32)
    w = np.array([np.inf, 1.0, 1.0, 1.0], np.float32).reshape(2, 2, 1, 1)
    graph = case_graph("conv2d", [T(x.shape, f32), T(w.shape, f32)],
                       {"pads": (1, 0, 1, 0)})
    got, want = _run(gpu, graph, [x, w]), interpret(graph, [x, w])
    assert np.isnan(np.asarray(want[0])).any()
    _check(got, want, graph, exact=True)


def test_backprop_kernels_give_the_same_bits_every_run(gpu):
    """A thread per output and a fixed order: no run-to-run variation."""
    graph = case_graph("conv2d_backprop_filter", [T((2, 4, 4, 2), f32),
                                                  T((2, 2, 2, 2), f32)],
                       {"filter_shape": (3, 3, 2, 2), **S2, "pads": SAME3})
    args = case_inputs("determinism", "conv2d_backprop_filter", graph)
    program = gpu.host_program(gpu.compile(graph), graph)
    first = np.asarray(program(args)[0])
    np.testing.assert_array_equal(_bits(np.asarray(program(args)[0])), _bits(first))
