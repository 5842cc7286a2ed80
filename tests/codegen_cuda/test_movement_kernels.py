"""The GPU's movement kernels (codegen_cuda/kernels/movement.py) on numba's CUDA
simulator, against the reference interpreter, bit for bit.

Beyond the op table's examples: narrow and odd dtypes (bool, bfloat16, float16, int8,
uint8 indices), negative and out-of-range indices (wrapped once, then clamped; one_hot
all off), repeated scatter indices and empty tensors. Shapes stay small:
the simulator runs every GPU thread as a Python thread.

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
i8, u8, i32, i64, b1 = dt.int8, dt.uint8, dt.int32, dt.int64, dt.bool_

# (case id, op name, input types, params)
CASES = [
    ("gather_i8_idx_axis1", "gather", [T((3, 4, 2), f32), T((2, 3), i8)], {"axis": 1}),
    ("gather_bf16_scalar_idx", "gather", [T((5,), bf16), T((), i64)], {"axis": 0}),
    ("gather_bool_u8_idx", "gather", [T((4, 3), b1), T((5,), u8)], {"axis": 0}),
    ("gather_f16_last_axis", "gather", [T((2, 3), f16), T((4,), i32)], {"axis": 1}),
    ("gather_i8_values", "gather", [T((6,), i8), T((2, 2), i64)], {"axis": 0}),
    ("gather_empty_idx", "gather", [T((3, 4), f32), T((0, 2), i32)], {"axis": 1}),
    ("gather_empty_x", "gather", [T((0, 3), f32), T((0,), i32)], {"axis": 0}),
    ("scatter_i8_axis1", "scatter_add",
     [T((3, 4), i8), T((2, 2), i8), T((3, 2, 2), i8)], {"axis": 1}),
    ("scatter_bf16_repeats", "scatter_add",
     [T((5,), bf16), T((7,), i32), T((7,), bf16)], {"axis": 0}),
    ("scatter_f16", "scatter_add",
     [T((3, 2), f16), T((6,), i64), T((6, 2), f16)], {"axis": 0}),
    ("scatter_bool", "scatter_add",
     [T((4,), b1), T((5,), i32), T((5,), b1)], {"axis": 0}),
    ("scatter_u8_idx_i32", "scatter_add",
     [T((2, 3), i32), T((4,), u8), T((2, 4), i32)], {"axis": 1}),
    ("scatter_empty_idx", "scatter_add",
     [T((2, 4), f32), T((0,), i32), T((2, 0), f32)], {"axis": 1}),
    ("scatter_empty_operand", "scatter_add",
     [T((0, 3), f32), T((2,), i32), T((0, 2), f32)], {"axis": 1}),
    ("one_hot_axis1_i8", "one_hot", [T((2, 3), i8), T((), i32), T((), i32)],
     {"depth": 4, "axis": 1, "dtype": i32}),
    ("one_hot_bf16_last", "one_hot", [T((5,), i64), T((), bf16), T((), bf16)],
     {"depth": 3, "dtype": bf16}),
    ("one_hot_scalar_idx", "one_hot", [T((), i32), T((), b1), T((), b1)],
     {"depth": 5, "axis": 0, "dtype": b1}),
    ("one_hot_depth0", "one_hot", [T((3,), i32), T((), f32), T((), f32)],
     {"depth": 0, "dtype": f32}),
    ("pad_bool", "pad", [T((2, 2), b1), T((), b1)], {"low": (0, 1), "high": (2, 0)}),
    ("pad_bf16_3d", "pad", [T((1, 2, 3), bf16), T((), bf16)],
     {"low": (1, 0, 2), "high": (0, 1, 1)}),
    ("pad_i8_nothing", "pad", [T((3,), i8), T((), i8)], {"low": (0,), "high": (0,)}),
    ("pad_scalar", "pad", [T((), f32), T((), f32)], {"low": (), "high": ()}),
    ("pad_empty_x", "pad", [T((0, 2), f16), T((), f16)], {"low": (1, 0), "high": (1, 1)}),
    ("concat_bf16_axis1", "concat", [T((2, 1), bf16), T((2, 3), bf16), T((2, 2), bf16)],
     {"axis": 1}),
    ("concat_i8_empty_piece", "concat", [T((0, 2), i8), T((3, 2), i8)], {"axis": 0}),
    ("concat_bool_last_axis", "concat", [T((2, 2), b1), T((2, 1), b1)], {"axis": 1}),
    ("concat_all_empty", "concat", [T((0,), f32), T((0,), f32)], {"axis": 0}),
    ("stack_bool_axis0", "stack", [T((2, 3), b1)] * 2, {"axis": 0}),
    ("stack_bf16_last", "stack", [T((3,), bf16)] * 3, {"axis": 1}),
    ("stack_i8_middle", "stack", [T((2, 2), i8)] * 3, {"axis": 1}),
    ("stack_empty", "stack", [T((0, 2), f32)] * 2, {"axis": 1}),
    ("custom_vjp_two_outputs", "custom_vjp",
     [T((3,), f32), T((2, 2), bf16), T((4,), b1)], {"num_outputs": 2, "rule": 1}),
    ("custom_vjp_i8", "custom_vjp", [T((2,), i8), T((2,), i8)],
     {"num_outputs": 1, "rule": 1}),
    ("custom_vjp_empty", "custom_vjp", [T((0, 3), f32)], {"num_outputs": 1, "rule": 1}),
]


def case_graph(name, types, params):
    b = GraphBuilder(f"movement_{name}")
    ins = [b.add_input(t) for t in types]
    outs = b.emit(OPS[name], ins, dict(params))
    return b.build(list(outs))


def _indices(rng, shape, dtype, n):
    """Indices of ``dtype`` covering [-n-2, n+2): negative (wrapped), in range and out of
    range (clamped, or all off for one_hot), as far as the dtype reaches."""
    info = np.iinfo(dtype.np_dtype)
    lo, hi = max(-n - 2, int(info.min)), min(n + 2, int(info.max))
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype.np_dtype)


def case_inputs(case_id, name, graph, params):
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    types = [v.type for v in graph.inputs]
    args = [random_array(rng, t.shape, t.dtype, low=-3.0, high=3.0) for t in types]
    if name in ("gather", "scatter_add"):
        axis = params["axis"] % len(types[0].shape)
        args[1] = _indices(rng, types[1].shape, types[1].dtype, types[0].shape[axis])
    elif name == "one_hot":
        args[0] = _indices(rng, types[0].shape, types[0].dtype, params["depth"])
    return args


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view(np.uint8) if a.dtype.itemsize == 1 else a.view(f"u{a.dtype.itemsize}")


@pytest.fixture(scope="module")
def gpu():
    return simulated_gpu()


@pytest.mark.parametrize("case_id,name,types,params", CASES, ids=[c[0] for c in CASES])
def test_movement_kernel_matches_the_interpreter(gpu, case_id, name, types, params):
    graph = case_graph(name, types, params)
    args = case_inputs(case_id, name, graph, params)
    got = run_on(gpu, graph, args)
    want = interpret(graph, args)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_array_equal(_bits(g), _bits(w))


def test_scatter_add_gives_the_same_bits_every_run(gpu):
    """Many float32 updates onto few slots: an order-dependent sum would differ."""
    types = [T((3,), f32), T((40,), i32), T((40,), f32)]
    graph = case_graph("scatter_add", types, {"axis": 0})
    rng = np.random.default_rng(7)
    args = [np.zeros(3, np.float32), rng.integers(0, 3, 40).astype(np.int32),
            (rng.standard_normal(40) * 10.0 ** rng.integers(-6, 6, 40)).astype(np.float32)]
    program = gpu.host_program(gpu.compile(graph), graph)
    first = np.asarray(program(args)[0])
    np.testing.assert_array_equal(_bits(first), _bits(interpret(graph, args)[0]))
    np.testing.assert_array_equal(_bits(np.asarray(program(args)[0])), _bits(first))


def test_negative_index_wraps_once_then_clamps(gpu):
    graph = case_graph("gather", [T((4,), i32), T((6,), i32)], {"axis": 0})
    x = np.array([10, 11, 12, 13], np.int32)
    idx = np.array([-1, -4, -5, -9, 4, 100], np.int32)
    got = np.asarray(run_on(gpu, graph, [x, idx])[0])
    np.testing.assert_array_equal(got, [13, 10, 10, 10, 13, 13])
