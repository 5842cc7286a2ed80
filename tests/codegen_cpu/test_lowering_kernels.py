"""Fused kernels from ``optimize()``, lowered one equation at a time and run against the
reference interpreter: the benchmark graphs (W1, W2), an MLP layer, softmax, reductions
of every loop structure, random programs; threading forced on and off; in place."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.passes.strategies import programs
from tracejit.codegen_cpu.parallel.settings import parallel_settings
from tracejit.codegen_cpu.pipeline import CPU_PASSES
from tracejit.ir import GraphBuilder, interpret, ops
from tracejit.ir import dtypes as dt
from tracejit.ir.core import Graph, TensorType
from tracejit.passes import optimize as optimize_cleanups

from .compare import assert_matches
from .lowering_util import EPS, Compiled, random_input


def optimize(graph):
    """The CPU device's pipeline: the cleanups, then its fusion."""
    return optimize_cleanups(graph, device_passes=CPU_PASSES)


# (threads, min_work): single-threaded, and two threads for every kernel however small.
THREADING = [pytest.param((1, None), id="serial"), pytest.param((2, 0), id="threads")]


def emit(b, name, *ins, **params):
    return b.emit1(ops.OPS[name], list(ins), params)


def const(b, value, dtype="f32"):
    return emit(b, "constant", value=np.asarray(value, dt.as_dtype(dtype).np_dtype))


def w1(n, dtype="f32"):
    b = GraphBuilder("w1")
    a, x, bias = (b.add_input(TensorType((n,), dt.as_dtype(dtype))) for _ in range(3))
    t = emit(b, "tanh", emit(b, "add", emit(b, "mul", a, x), bias))
    e = emit(b, "exp", emit(b, "neg", x))
    s = emit(b, "div", const(b, 1.0, dtype), emit(b, "add", const(b, 1.0, dtype), e))
    return b.build([emit(b, "add", emit(b, "mul", t, s), emit(b, "mul", x, x))])


def w2(shape, axes=(0,)):
    b = GraphBuilder("w2")
    x = b.add_input(TensorType(shape, dt.float32))
    d = emit(b, "sub", emit(b, "mul", x, x), emit(b, "mul", const(b, 0.5), x))
    return b.build([emit(b, "sum", d, axes=axes)])


def mlp_layer(m, k, n, dtype="f32"):
    b = GraphBuilder("layer")
    d = dt.as_dtype(dtype)
    x, w, bias = (b.add_input(TensorType(s, d)) for s in ((m, k), (k, n), (n,)))
    return b.build([emit(b, "relu", emit(b, "add", emit(b, "matmul", x, w), bias))])


def softmax(shape, axis):
    b = GraphBuilder("softmax")
    x = b.add_input(TensorType(shape, dt.float32))
    m = emit(b, "max", x, axes=(axis,), keepdims=True)
    e = emit(b, "exp", emit(b, "sub", x, m))
    s = emit(b, "sum", e, axes=(axis,), keepdims=True)
    return b.build([emit(b, "div", e, s)])


def run_fused(graph: Graph, args, threading=(None, None), ulps=8, atol_scale=None):
    """Optimize ``graph``, lower each equation alone, run them in order (each on the
    reference's own inputs) and compare every result with the reference's."""
    fused = optimize(graph)
    env = {id(v): a for v, a in zip(fused.inputs, args, strict=True)}
    for eqn in fused.eqns:
        for var, value in zip(eqn.outs, eqn.op.evaluate([env[id(v)] for v in eqn.ins],
                                                         eqn.params), strict=True):
            env[id(var)] = value
    threads, min_work = threading
    compiled = Compiled({f"e{i}": e for i, e in enumerate(fused.eqns)}, threads=threads,
                        min_work=min_work)
    for i, eqn in enumerate(fused.eqns):
        got = compiled(f"e{i}", [env[id(v)] for v in eqn.ins])
        for k, (var, g) in enumerate(zip(eqn.outs, got, strict=True)):
            want = env[id(var)]
            atol = 0.0
            if var.dtype.is_float and atol_scale is not None:
                atol = atol_scale * EPS[var.dtype]
            assert_matches(g, want, var.dtype, ulps=ulps, atol=atol,
                           what=f"{graph.name} eqn {i} ({eqn.op.name}) out {k}")
    final = interpret(graph, args)
    return fused, final


@pytest.mark.parametrize("threading", THREADING)
@pytest.mark.parametrize("n", [0, 1, 67, 100_003])
def test_w1(n, threading):
    rng = np.random.default_rng(n)
    g = w1(n)
    args = [random_input(rng, v.type) for v in g.inputs]
    # NOTE: absolute slack for cancellation: terms of size ~16 (x*x) may cancel, and a
    # contracted a*x+b (one FMA) rounds differently from NumPy's two steps.
    fused, _ = run_fused(g, args, threading, atol_scale=64)
    assert [e.params["kind"] for e in fused.eqns] == ["elementwise"]


@pytest.mark.parametrize("dtype", ["f64", "f16", "bf16"])
def test_w1_other_dtypes(dtype):
    g = w1(1000, dtype)
    rng = np.random.default_rng(1)
    run_fused(g, [random_input(rng, v.type) for v in g.inputs], ulps=8, atol_scale=64)


@pytest.mark.parametrize("threading", THREADING)
@pytest.mark.parametrize("shape, axes", [((0,), (0,)), ((1,), (0,)), ((100_003,), (0,)),
                                         ((37, 1001), (1,)), ((1001, 37), (0,)),
                                         ((3, 50, 7), (0, 2)), ((5, 0), (1,)),
                                         ((5, 0), (0,))])
def test_w2_and_reduction_structures(shape, axes, threading):
    rng = np.random.default_rng(7)
    g = w2(shape, axes)
    x = rng.normal(size=shape).astype(np.float32)
    scale = float(np.sum(np.abs(x * x - 0.5 * x))) + 1.0
    fused, _ = run_fused(g, [x], threading, atol_scale=4 * scale)
    assert [e.params["kind"] for e in fused.eqns] == ["reduction"]


@pytest.mark.parametrize("threading", THREADING)
@pytest.mark.parametrize("m, k, n, dtype", [(8, 32, 16, "f32"), (1, 1, 1, "f32"),
                                            (67, 129, 65, "f32"), (33, 70, 40, "f64"),
                                            (5, 7, 3, "i32"), (9, 33, 17, "bf16")])
def test_mlp_layer(m, k, n, dtype, threading):
    rng = np.random.default_rng(m)
    g = mlp_layer(m, k, n, dtype)
    args = [random_input(rng, v.type, specials=False, low=-1, high=1) for v in g.inputs]
    fused, _ = run_fused(g, args, threading, atol_scale=8 * k)
    assert [e.params["kind"] for e in fused.eqns] == ["matmul_epilogue"]


@pytest.mark.parametrize("threading", THREADING)
@pytest.mark.parametrize("shape, axis", [((4, 10), 1), ((1000, 67), 1), ((67, 1000), 0),
                                         ((3, 5, 7), 1), ((1, 1), 0)])
def test_softmax(shape, axis, threading):
    rng = np.random.default_rng(3)
    g = softmax(shape, axis)
    x = random_input(rng, g.inputs[0].type, specials=False)
    fused, _ = run_fused(g, [x], threading, atol_scale=4 * shape[axis])
    assert len(fused.eqns) == (3 if shape[axis] > 1 else 2)


def test_reduction_with_prologue_side_output_and_epilogue():
    """mean and argmax of one prologue, a side output, an epilogue using both."""
    b = GraphBuilder("mixed")
    x = b.add_input(TensorType((6, 129), dt.float32))
    y = b.add_input(TensorType((6, 1), dt.float32))
    p = emit(b, "mul", x, y)
    mean = emit(b, "mean", emit(b, "tanh", p), axes=(1,), keepdims=True)
    top = emit(b, "argmax", p, axis=1)
    out = emit(b, "sub", emit(b, "mul", mean, const(b, 2.0)), y)
    g = b.build([p, out, top])
    rng = np.random.default_rng(5)
    args = [random_input(rng, v.type, specials=False) for v in g.inputs]
    for threading in (None, None), (2, 0):
        fused, _ = run_fused(g, args, threading, atol_scale=4 * 129)
        assert [e.params["kind"] for e in fused.eqns] == ["reduction"]


def test_elementwise_kernel_in_place():
    """The memory plan may give an elementwise kernel's output its operand's buffer."""
    fused = optimize(w1(1003))
    (eqn,) = fused.eqns
    rng = np.random.default_rng(0)
    args = [random_input(rng, v.type) for v in fused.inputs]
    want = eqn.op.evaluate(args, eqn.params)[0]
    for threading in (1, None), (2, 0):
        compiled = Compiled({"k": eqn}, threads=threading[0], min_work=threading[1])
        x = args[1].copy()
        compiled("k", [args[0], x, args[2]], outs=[x])
        assert_matches(x, want, dt.float32, ulps=8, atol=64 * EPS[dt.float32])


def test_threading_switch_controls_the_pool():
    fused = optimize(w1(1 << 20))
    with parallel_settings(threads=1):
        assert "tj_parallel_for" not in Compiled({"k": fused.eqns[0]}).ir
    with parallel_settings(threads=2, min_work=1):
        assert "tj_parallel_for" in Compiled({"k": fused.eqns[0]}).ir
    small = optimize(w1(64))
    with parallel_settings(threads=2):
        assert "tj_parallel_for" not in Compiled({"k": small.eqns[0]}).ir


def test_broadcast_reads_and_reshapes_in_a_kernel():
    """Sources read through broadcasts, reshapes that split and merge axes, a transposed
    read (standalone) and an iota generator inside one elementwise kernel."""
    b = GraphBuilder("shapes")
    x = b.add_input(TensorType((6, 35), dt.float32))
    bias = b.add_input(TensorType((1, 5, 1), dt.float32))
    y = emit(b, "reshape", emit(b, "exp", x), shape=(6, 5, 7))
    z = emit(b, "add", y, emit(b, "broadcast_to", bias, shape=(6, 5, 7)))
    r = emit(b, "iota", shape=(6, 5, 7), dimension=1, dtype=dt.float32)
    out = emit(b, "mul", emit(b, "reshape", emit(b, "add", z, r), shape=(42, 5)),
               emit(b, "reshape", x, shape=(42, 5)))
    g = b.build([out, emit(b, "transpose", out, perm=(1, 0))])
    rng = np.random.default_rng(2)
    args = [random_input(rng, v.type) for v in g.inputs]
    for threading in THREADING:
        run_fused(g, args, threading.values[0], atol_scale=1e3)


RELAXED = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])


@settings(max_examples=25, **RELAXED)
@given(program=programs(max_steps=12, specials=True))
def test_random_programs(program):
    run_fused(program.graph, program.args, ulps=16, atol_scale=1e4)


@pytest.mark.parametrize("threading", THREADING)
@pytest.mark.parametrize("name", ["argmax", "argmin", "max", "sum"])
def test_long_reductions_to_one_value_split_over_threads(name, threading):
    """One output point: the reduced range is shared by the threads and the partials
    merged in order, so the first extreme (or the first NaN) still wins."""
    rng = np.random.default_rng(11)
    x = rng.integers(-50, 50, size=100_003).astype(np.float32)
    x[[5, 70_000]] = 1000.0                 # ties: the first one must win
    x[[6, 80_000]] = -1000.0
    params = {"axis": 0} if name.startswith("arg") else {"axes": (0,)}
    b = GraphBuilder(name)
    v = b.add_input(TensorType(x.shape, dt.float32))
    g = b.build([emit(b, name, emit(b, "mul", v, const(b, 2.0)), **params)])
    run_fused(g, [x], threading, atol_scale=4e6)
    x[[90_000, 99_999]] = np.nan
    run_fused(g, [x], threading, atol_scale=4e6)


def test_matmul_result_kept_in_an_output_while_the_epilogue_writes_others():
    b = GraphBuilder("mm")
    x = b.add_input(TensorType((40, 50), dt.float32))
    w = b.add_input(TensorType((50, 30), dt.float32))
    y = emit(b, "matmul", x, w)
    g = b.build([emit(b, "tanh", y), emit(b, "mul", y, y)])
    rng = np.random.default_rng(4)
    args = [random_input(rng, v.type, specials=False, low=-1, high=1) for v in g.inputs]
    fused, _ = run_fused(g, args, atol_scale=400)
    assert [e.params["kind"] for e in fused.eqns] == ["matmul_epilogue"]
