"""Control flow compiled by the CPU backend, against the reference interpreter: branches
and loops in the one native entry, nested in each other, with several carried values,
library calls and threaded kernels inside, and loop buffers that do not grow with the
trip count."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ir.op_examples import T, b1, f32, i32
from tests.ir.test_control_flow import ADD, BELOW, CELL, MUL, STEP, SUB, const, region
from tracejit.codegen_cpu.host.program import build_program
from tracejit.codegen_cpu.pipeline import CPU_PASSES
from tracejit.ir import GraphBuilder, interpret, ops
from tracejit.passes import optimize
from tracejit.runtime.registry import get_device

V = T((3,), f32)


def graph_of(types, emit):
    b = GraphBuilder("cf")
    ins = [b.add_input(t) for t in types]
    return b.build(list(emit(b, *ins)))


def check(graph, args, rtol=1e-6):
    got = get_device("cpu").compile(graph)([np.asarray(a) for a in args])
    want = interpret(graph, args)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-6)
    return got


def test_cond_with_every_index_kind():
    x, y = np.arange(3, dtype=np.float32), np.full(3, 2, np.float32)
    g = graph_of([T((), b1), V, V], lambda b, p, x, y: b.emit(
        ops.COND, [p, x, y], {"branches": (ADD, MUL)}))
    for p in (True, False):
        check(g, [np.bool_(p), x, y])
    for dtype in (np.int8, np.uint8, np.int32, np.int64):
        g = graph_of([T((), dtype), V, V], lambda b, k, x, y: b.emit(
            ops.COND, [k, x, y], {"branches": (ADD, MUL, SUB)}))
        for k in (0, 1, 2, 3, 100):
            check(g, [np.asarray(k, dtype), x, y])
        if np.dtype(dtype).kind == "i":
            check(g, [np.asarray(-5, dtype), x, y])


def test_while_loop_with_several_carried_values_and_zero_trips():
    g = graph_of([T((), i32), V, V], lambda b, n, x, y: b.emit(
        ops.WHILE_LOOP, [n, x, y], {"cond": BELOW, "body": STEP, "num_carried": 2}))
    for start in (0, 9, 10, 40, -100):
        check(g, [np.int32(start), np.ones(3, np.float32), np.arange(3, dtype=np.float32)])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("length", [0, 1, 5])
def test_scan_slices_inputs_and_stacks_outputs(reverse, length):
    g = graph_of([V, T((length, 3), f32)], lambda b, c, xs: b.emit(
        ops.SCAN, [c, xs], {"body": CELL, "length": length, "num_carried": 1, "num_xs": 1,
                            "reverse": reverse}))
    check(g, [np.ones(3, np.float32), np.arange(3 * length, dtype=np.float32).reshape(-1, 3)])


def test_a_loop_inside_a_branch_inside_a_loop():
    looping = region("looping", [T((), i32), V, V], lambda b, n, x, y: b.emit(
        ops.WHILE_LOOP, [n, x, y], {"cond": BELOW, "body": STEP, "num_carried": 2})[1:])
    plain = region("plain", [T((), i32), V, V], lambda b, n, x, y: [b.emit1(ops.ADD, [x, y])])

    def body(b, i, c, y):
        odd = b.emit1(ops.EQUAL, [b.emit1(ops.MOD, [i, const(b, 2, np.int32)]),
                                  const(b, 1, np.int32)])
        (picked,) = b.emit(ops.COND, [odd, i, c, y], {"branches": (plain, looping)})
        return [picked, b.emit1(ops.SUM, [picked], {"axes": (0,)})]
    outer = region("outer", [T((), i32), V, V], body)
    g = graph_of([V, V], lambda b, c, y: b.emit(
        ops.SCAN, [c, y], {"body": outer, "length": 6, "num_carried": 1}))
    check(g, [np.zeros(3, np.float32), np.array([0.5, -1.0, 2.0], np.float32)], rtol=1e-5)


def test_blas_and_threaded_kernels_inside_a_loop():
    w_t = T((64, 64), f32)
    big = T((300_000,), f32)

    def body(b, i, h, w, z):
        h2 = b.emit1(ops.TANH, [b.emit1(ops.MATMUL, [h, w])])
        z2 = b.emit1(ops.MUL, [z, const(b, 0.5, np.float32)])
        return [h2, z2]
    loop = region("rnn", [T((), i32), T((8, 64), f32), big, w_t], lambda b, i, h, z, w: body(
        b, i, h, w, z))
    g = graph_of([T((8, 64), f32), big, w_t], lambda b, h, z, w: b.emit(
        ops.SCAN, [h, z, w], {"body": loop, "length": 4, "num_carried": 2}))
    rng = np.random.default_rng(0)
    check(g, [rng.standard_normal((8, 64)).astype(np.float32),
              rng.standard_normal(300_000).astype(np.float32),
              (rng.standard_normal((64, 64)) * 0.1).astype(np.float32)], rtol=2e-5)


def test_loop_memory_does_not_grow_with_the_trip_count():
    def arena(length):
        g = graph_of([V, T((length, 3), f32)], lambda b, c, xs: b.emit(
            ops.SCAN, [c, xs], {"body": CELL, "length": length, "num_carried": 1,
                                "num_xs": 1}))
        return build_program(optimize(g, device_passes=CPU_PASSES)).layout.arena_bytes
    assert arena(2) == arena(1000)


def test_the_entry_has_no_call_back_out_between_iterations():
    g = graph_of([V, T((100, 3), f32)], lambda b, c, xs: b.emit(
        ops.SCAN, [c, xs], {"body": CELL, "length": 100, "num_carried": 1, "num_xs": 1}))
    from tracejit.codegen_cpu.host import target
    built = build_program(optimize(g, device_passes=CPU_PASSES))
    text = target.assembly(built.module)
    start = text.index("tj_run:")
    run = text[start:text.index(".Lfunc_end", start)]
    assert "call" not in run       # the body and its kernel are inlined into the loop
