"""``/gpu:0`` as a runtime device: the registry, @jit, placement with transfers between
``/cpu:0`` and ``/gpu:0``, soft placement, and the compile-only null GPU.

In this process the GPU is numba's simulator (tests/conftest.py); the modes without a
GPU (off, null) run in subprocesses, because a process picks its mode once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cuda.mode import gpu_mode
from tracejit.runtime.device import CAN_RUN
from tracejit.runtime.registry import devices, get_device

ROOT = Path(__file__).resolve().parents[2]
# the simulator in CI, a real GPU under benchmarks/gpu_check.sh
simulated = pytest.mark.skipif(gpu_mode() not in ("sim", "cuda"),
                               reason="needs TRACEJIT_GPU=sim or cuda")


def _run(code: str, mode: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TRACEJIT_GPU=mode, PYTHONPATH=str(ROOT))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


@simulated
def test_the_gpu_is_a_listed_device_with_its_own_memory():
    gpu = get_device("/gpu:0")
    assert gpu is get_device("gpu") and gpu is get_device("/device:GPU:0")
    assert str(gpu.spec) == "/job:localhost/replica:0/task:0/device:GPU:0"
    assert gpu in devices() and CAN_RUN in gpu.capabilities
    buf = gpu.put(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(gpu.get(buf), np.arange(6).reshape(2, 3))
    with pytest.raises(tj.ir.errors.TracejitError, match="GPU:1"):
        get_device("/gpu:1")


@simulated
def test_jit_on_the_gpu_matches_the_cpu():
    def f(x, w, b):
        h = tj.relu(x @ w + b)
        return (h * h).sum(axis=1), tj.argmax(h, axis=1)

    rng = np.random.default_rng(0)
    args = (rng.standard_normal((6, 5), np.float32), rng.standard_normal((5, 4), np.float32),
            rng.standard_normal(4).astype(np.float32))
    on_gpu = tj.jit(f, device="/gpu:0")(*args)
    on_cpu = tj.jit(f)(*args)
    np.testing.assert_allclose(on_gpu[0], on_cpu[0], rtol=1e-5)
    np.testing.assert_array_equal(on_gpu[1], on_cpu[1])


@simulated
def test_a_graph_placed_over_cpu_and_gpu_sends_values_between_them():
    @tj.jit
    def f(x):
        with tj.device("/gpu:0"):
            y = tj.exp(x) * 2.0
        return y.sum() + 1.0

    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(f(x), (np.exp(x) * 2).sum() + 1, rtol=1e-5)


def test_without_a_gpu_a_pinned_op_fails_clearly_unless_placement_is_soft():
    done = _run("""
        import numpy as np
        import tracejit.compat.v1 as tf
        with tf.device('/gpu:0'):
            y = tf.constant([1.0, 2.0]) * 3.0
        try:
            tf.Session().run(y)
        except tf.errors.InvalidArgumentError as exc:
            print("REFUSED", str(exc).splitlines()[0][:400])
        config = tf.ConfigProto(allow_soft_placement=True)
        print("SOFT", tf.Session(config=config).run(y).tolist())
        """, "off")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REFUSED" in done.stdout and "assigned to /device:GPU:0" in done.stdout
    assert "no GPU" in done.stdout
    assert "SOFT [3.0, 6.0]" in done.stdout


def test_the_null_gpu_traces_partitions_and_compiles_but_does_not_run():
    done = _run("""
        import numpy as np
        import tracejit as tj
        from tracejit.runtime.registry import get_device
        from tracejit.runtime.partitions import plan_partitions
        from tracejit.passes.partition import format_partitions

        def step(x, w):
            with tj.device('/gpu:0'):
                h = tj.tanh(x @ w)
            return h.sum()

        f = tj.jit(step)
        x, w = np.ones((4, 3), np.float32), np.ones((3, 2), np.float32)
        graph = f.trace(x, w).graph
        parts, _ = plan_partitions(graph, get_device())
        text = format_partitions(parts)
        print("GPU-STAGE", "GPU:0" in text, "CPU:0" in text)
        gpu = get_device('/gpu:0')
        program = gpu.compile(graph)
        print("STEPS", len(program.steps))
        try:
            tj.jit(step, device='/gpu:0')(x, w)
        except tj.ir.errors.TracejitError as exc:
            print("REFUSED", type(exc).__name__, "compile-only" in str(exc))
        """, "null")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GPU-STAGE True True" in done.stdout
    assert "STEPS" in done.stdout and "STEPS 0" not in done.stdout
    assert "REFUSED UnsupportedOnDevice True" in done.stdout


def test_a_bad_gpu_mode_is_named():
    done = _run("import tracejit.runtime.registry as r; r.get_device('/gpu:0')", "fast")
    assert done.returncode != 0
    assert "TRACEJIT_GPU='fast'" in done.stderr


@simulated
def test_values_committed_to_the_gpu_stay_there_between_calls():
    gpu = get_device("/gpu:0")
    f = tj.jit(lambda a: tj.exp(a) * 2.0)
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    on_gpu = tj.device_put(x, "/gpu:0")
    assert on_gpu.resident is not None and on_gpu.device == "gpu"
    live = gpu.allocator.stats()["live_buffers"]
    y = f(f(on_gpu))            # chained: the middle value never visits the host
    assert y.device == "gpu" and y.resident is not None
    assert gpu.allocator.stats()["live_buffers"] == live + 1
    np.testing.assert_allclose(np.asarray(y), np.exp(np.exp(x) * 2) * 2, rtol=1e-5)
    del y, on_gpu
    import gc
    gc.collect()
    assert gpu.allocator.stats()["live_buffers"] == live - 1


@simulated
def test_variables_made_under_the_gpu_scope_live_and_update_there():
    gpu = get_device("/gpu:0")
    with tj.device("/gpu:0"):
        w = tj.Variable(np.ones((3, 2), np.float32), name="gpu_w")
    v = tj.Variable(np.ones((3, 2), np.float32), name="cpu_w")

    def step_of(var):
        def step(x):
            loss = ((x @ var) ** 2).mean()
            (g,) = tj.gradients(loss, [var])
            var.assign_sub(0.01 * g)
            return loss
        return step

    on_gpu, on_cpu = tj.jit(step_of(w), device="/gpu:0"), tj.jit(step_of(v))
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    live = gpu.allocator.stats()["live_buffers"]
    for _ in range(3):
        np.testing.assert_allclose(np.asarray(on_gpu(x)), np.asarray(on_cpu(x)), rtol=1e-5)
    assert type(w._value).__name__ == "GpuVariable"          # never moved to the host
    assert gpu.allocator.stats()["live_buffers"] == live     # updated in place, no leak
    np.testing.assert_allclose(np.asarray(w), np.asarray(v), rtol=1e-5)
    w.assign(np.zeros((3, 2), np.float32))                   # eager writes stay there too
    assert type(w._value).__name__ == "GpuVariable" and np.asarray(w).sum() == 0


@simulated
def test_eager_ops_on_the_gpu_are_cached_by_their_params_values():
    from tracejit.ir import ops
    from tracejit.ir.const_value import ConstValue
    gpu = get_device("/gpu:0")
    # two constants of one shape and dtype: a cache keyed by their repr would share
    first = gpu.run_op(ops.CONSTANT, [], {"value": ConstValue(np.array([1., 2.], np.float32))})
    second = gpu.run_op(ops.CONSTANT, [], {"value": ConstValue(np.array([3., 4.], np.float32))})
    np.testing.assert_array_equal(first[0], [1, 2])
    np.testing.assert_array_equal(second[0], [3, 4])
    with tj.device("/gpu:0"):
        np.testing.assert_allclose(np.asarray(tj.exp(np.zeros(3, np.float32))), 1.0)


def test_jit_refuses_two_different_places_to_run():
    with pytest.raises(ValueError, match=r"device='/gpu:0', executor='cpu'.*one of them"):
        tj.jit(lambda x: x, device="/gpu:0", executor="cpu")
    assert tj.jit(lambda x: x, device="cpu", executor="cpu") is not None
