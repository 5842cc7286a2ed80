"""The CPU executor with the real kernel lowering, against the reference interpreter:
every op of the table, random programs, awkward shapes, threading on and off, a jitted
training step updating variables, eager mode and ``tracejit ir --stage llvm|asm``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit.codegen_cpu.host.cache import ProgramCache
from tracejit.ir import GraphBuilder, interpret
from tracejit.ir import dtypes as dt
from tracejit.ir.opdef import OPS, Tag

from ..ir.op_examples import BY_NAME, random_array
from ..passes.strategies import programs
from .compare import assert_matches

lowering = pytest.importorskip("tracejit.codegen_cpu.kernels.table")
from tracejit.codegen_cpu.host.executor import CpuExecutor  # noqa: E402
from tracejit.codegen_cpu.parallel.settings import parallel_settings  # noqa: E402


@pytest.fixture(scope="module")
def cpu():
    return CpuExecutor(cache=ProgramCache(None))


@pytest.fixture(autouse=True)
def _strict(monkeypatch):
    # NOTE: a silent fallback to the interpreter would make every comparison pass.
    monkeypatch.setenv("TRACEJIT_CPU_STRICT", "1")


def _args(name: str, types, params, rng) -> list[np.ndarray]:
    args = [random_array(rng, t.shape, t.dtype, specials=True) for t in types]
    if name in ("gather", "scatter_add"):       # indices in range of the indexed axis
        size = types[0].shape[params["axis"]]
        args[1] = rng.integers(0, size, size=types[1].shape).astype(types[1].dtype.np_dtype)
    if name == "one_hot":
        args[0] = rng.integers(-1, params["depth"] + 1, size=types[0].shape).astype(
            types[0].dtype.np_dtype)
    return args


def _tolerance(graph) -> dict:
    """Transcendentals: a few ulp (vmath is within 2 of the correctly rounded result,
    NumPy within 1); reassociated sums and products: relative to the operand sizes."""
    ops = [e.op for e in graph.eqns] + [e.op for k in graph.eqns if k.op.name == "kernel"
                                         for e in k.params["body"].eqns]
    if any(op.has(Tag.REDUCE) or op.has(Tag.LINALG) for op in ops):
        return dict(ulps=4, rtol=1e-5, atol=1e-4)
    if any(op.has(Tag.TRANSCENDENTAL) or op.name in ("pow", "div") for op in ops):
        return dict(ulps=4)
    return dict(ulps=0)


EXAMPLES = [(name, i) for name in sorted(BY_NAME) for i in range(len(BY_NAME[name]))]


@pytest.mark.parametrize("name, index", EXAMPLES, ids=[f"{n}-{i}" for n, i in EXAMPLES])
def test_every_op_matches_the_interpreter(cpu, name, index, monkeypatch):
    types, params = BY_NAME[name][index]
    b = GraphBuilder(f"op_{name}")
    ins = [b.add_input(t) for t in types]
    graph = b.build(list(b.emit(OPS[name], ins, params)))
    rng = np.random.default_rng(index)
    args = _args(name, types, params, rng)
    want = interpret(graph, args)
    why = lowering.unsupported_reason(graph.eqns[0])
    if why:                 # the executor still runs it, on the interpreter
        monkeypatch.delenv("TRACEJIT_CPU_STRICT")
    got = cpu.compile(graph)(args)
    for k, (g, w, v) in enumerate(zip(got, want, graph.outputs, strict=True)):
        assert_matches(g, w, v.dtype, what=f"{name} output {k}", **_tolerance(graph))
    if why:
        pytest.xfail(f"runs on the interpreter: {why}")


AWKWARD = [((0,), (0,)), ((1,), (1,)), ((7,), (7,)), ((13, 1), (1, 17)), ((3, 1, 5), (5,)),
           ((2, 0, 3), (3,)), ((), (31, 37)), ((4099,), ())]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("xs, ys", AWKWARD, ids=[f"{x}x{y}" for x, y in AWKWARD])
def test_fused_program_on_awkward_shapes(xs, ys, threads):
    def f(x, y):
        z = tj.tanh(x * y + 1.5) - tj.exp(-tj.abs(y)) * x
        return z, tj.reduce_sum(z * z, axis=-1) if z.ndim else z, tj.maximum(x, 0.0)
    rng = np.random.default_rng(len(xs) + 10 * len(ys))
    x = rng.normal(size=xs).astype(np.float32)
    y = rng.normal(size=ys).astype(np.float32)
    want = tj.jit(f, executor="interpreter")(x, y)
    with parallel_settings(threads=threads, min_work=64):
        got = tj.jit(f, executor="cpu")(x, y)
    for g, w in zip(got, want, strict=True):
        assert_matches(np.asarray(g), np.asarray(w), "f32", ulps=8, rtol=1e-5, atol=1e-5)


def test_threading_on_and_off_agree_on_large_kernels():
    x = np.random.default_rng(0).normal(size=(300, 1001)).astype(np.float32)
    f = tj.jit(lambda x: (tj.sigmoid(x) * x, tj.reduce_max(x * 2.0, axis=0)), executor="cpu")
    with parallel_settings(threads=1):
        one = [np.asarray(v) for v in f(x)]
    f.clear_cache()
    with parallel_settings(threads=2, min_work=1024):
        two = [np.asarray(v) for v in f(x)]
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


RELAXED = dict(deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=60, **RELAXED)
@given(program=programs(max_steps=12, specials=False), threads=st.sampled_from([1, 2]))
def test_random_programs_match_the_interpreter(cpu, program, threads):
    want = interpret(program.graph, program.args)
    with parallel_settings(threads=threads, min_work=16):
        got = cpu.compile(program.graph)(program.args)
    for k, (g, w, v) in enumerate(zip(got, want, program.graph.outputs, strict=True)):
        loose = {dt.float16: 2e-2, dt.bfloat16: 3e-2, dt.float32: 2e-4}.get(v.dtype, 1e-9)
        scale = float(np.max(np.abs(w), initial=1.0, where=np.isfinite(w))) \
            if v.dtype.is_float else 0.0
        assert_matches(g, w, v.dtype, rtol=loose, atol=loose * scale, what=f"output {k}")


def test_jitted_sgd_step_updates_variables():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype(np.float32)
    y = (x @ np.arange(1, 6, dtype=np.float32) + 0.5)[:, None].astype(np.float32)

    def train(executor):
        w = tj.Variable(np.zeros((5, 1), np.float32), name="w")
        b = tj.Variable(np.zeros(1, np.float32), name="b")
        opt = tj.train.GradientDescentOptimizer(0.1)

        @tj.jit(executor=executor)
        def step(x, y):
            loss = tj.reduce_mean(tj.square(x @ w + b - y))
            opt.minimize(loss)
            return loss
        held = w.numpy()
        losses = [float(np.asarray(step(x, y))) for _ in range(50)]
        np.testing.assert_array_equal(held, 0.0)            # earlier reads never change
        return losses, w.numpy(), b.numpy()

    got, want = train("cpu"), train("interpreter")
    assert got[0][-1] < 0.7 * got[0][0]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_eager_ops_run_compiled(cpu):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with tj.settings(executor="cpu"):
        y = tj.exp(tj.Array(x)) * 2.0
        s = tj.reduce_sum(y, axis=1)
    np.testing.assert_allclose(np.asarray(s), (np.exp(x) * 2).sum(1), rtol=1e-6)


@pytest.mark.parametrize("stage, needle", [("llvm", "define"), ("llvm-raw", "_run\""),
                                           ("asm", "\tret")])
def test_cli_dumps_the_compiled_program(tmp_path, stage, needle):
    from click.testing import CliRunner

    from tracejit.cli import main
    source = tmp_path / "prog.py"
    source.write_text("import tracejit as tj\n\ndef f(x, w):\n"
                      "    return tj.tanh(x @ w) + 1.0\n")
    result = CliRunner().invoke(main, ["ir", f"{source}:f", "--arg", "f32[8,4]", "--arg",
                                       "f32[4,3]", "--stage", stage], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert needle in result.output and "_run" in result.output


_CHILD = """
import sys, numpy as np, tracejit as tj
from tracejit.codegen_cpu.parallel.settings import parallel_settings
from tracejit.runtime.registry import get_device
x = np.linspace(-1, 1, 64 * 256, dtype=np.float32).reshape(64, 256)
w = np.linspace(0, 1, 256 * 32, dtype=np.float32).reshape(256, 32)
with parallel_settings(threads=2, min_work=64):     # BLAS and thread-pool symbols in the object
    y = tj.jit(lambda x, w: tj.nn.relu(x @ w - 1.0) + tj.reduce_sum(tj.tanh(x)))(x, w)
want = np.maximum(x @ w - 1.0, 0) + np.tanh(x).sum()
print(dict(get_device("cpu").compiler.cache.hits), float(np.max(np.abs(np.asarray(y) - want))))
"""


def test_second_process_loads_native_code_that_calls_blas_and_the_pool(tmp_path):
    import os
    import subprocess
    import sys
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(tmp_path), TRACEJIT_EXECUTOR="cpu")
    outputs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        hits, error = done.stdout.rsplit(" ", 1)
        assert float(error) < 1e-3
        outputs.append(hits)
    assert "'miss': 1" in outputs[0] and outputs[1] == "{'disk': 1}"
