"""Threads, fork and spawn (issue 10): exact counts, no deadlock, bounded time.

Every test that starts threads joins them with a timeout and fails if one is still
running; fork and spawn run in child processes with a deadline, so a hang fails the
test instead of stopping the suite.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import tracejit as tj
import tracejit.compat.v1 as tf

DEADLINE = 120.0


def run_threads(target, count: int, *args) -> list:
    """Run ``target(k, *args)`` on ``count`` threads; their exceptions are re-raised."""
    errors: list = []

    def guarded(k):
        try:
            target(k, *args)
        except BaseException as exc:       # noqa: BLE001 (reported to the test)
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,), daemon=True) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not any(t.is_alive() for t in threads), "a thread did not finish: deadlock?"
    if errors:
        raise errors[0]
    return threads


def test_jitted_variable_updates_from_threads_are_all_applied():
    w = tj.Variable(np.zeros(1000, np.float32))

    @tj.jit
    def step(x):
        w.assign_add(x)
        return tj.reduce_sum(w.read_value())

    ones = np.ones(1000, np.float32)
    step(ones * 0)
    run_threads(lambda k: [step(ones) for _ in range(100)], 4)
    np.testing.assert_array_equal(w.numpy(), np.full(1000, 400, np.float32))


def test_eager_updates_from_threads_are_all_applied():
    u = tj.Variable(0.0)
    c = tj.Variable(np.zeros((), np.int32))

    def work(k):
        for _ in range(1000):
            u.assign_add(1.0)
            c.assign_sub(1)

    run_threads(work, 4)
    assert float(u.numpy()) == 4000.0 and int(c.numpy()) == -4000


def two_steps_sharing_a_variable():
    """Counters a, b, c and two jitted steps: ab bumps a and b, cb bumps c and b (the
    other order, so a step that locked in program order could deadlock with ab)."""
    a, b, c = (tj.Variable(np.zeros((), np.float64)) for _ in range(3))

    @tj.jit
    def ab():
        a.assign_add(1.0)
        b.assign_add(1.0)

    @tj.jit
    def cb():
        c.assign_add(1.0)
        b.assign_add(1.0)

    return a, b, c, ab, cb


def test_steps_over_overlapping_variables_never_deadlock():
    a, b, c, ab, cb = two_steps_sharing_a_variable()

    def work(k):
        for _ in range(200):
            (ab if k % 2 else cb)()
            a.assign_add(0.0)

    run_threads(work, 4)
    assert (float(a.numpy()), float(b.numpy()), float(c.numpy())) == (400.0, 800.0, 400.0)


def test_first_calls_racing_on_several_threads_trace_separately():
    # Traces lived on one process-wide stack: a thread tracing its first call recorded
    # into another thread's trace, and an eager update landed in someone's graph.
    a, b, c, ab, cb = two_steps_sharing_a_variable()
    barrier = threading.Barrier(4)

    def work(k):
        barrier.wait(DEADLINE)
        for _ in range(100):
            (ab if k % 2 else cb)()
            if k == 0:
                c.assign_add(0.5)

    run_threads(work, 4)
    assert (float(a.numpy()), float(b.numpy()), float(c.numpy())) == (200.0, 400.0, 250.0)
    assert all(len(f.compile_log) >= 1 for f in (ab, cb))


def test_optimizer_steps_from_threads_apply_every_gradient():
    w = tj.Variable(np.zeros(8, np.float32))
    opt = tj.train.GradientDescentOptimizer(1.0)

    @tj.jit
    def train(x):
        loss = tj.reduce_sum(w.read_value() * x)      # d loss / d w = x
        opt.minimize(loss, var_list=[w])
        return loss

    x = np.ones(8, np.float32)
    train(x * 0)
    run_threads(lambda k: [train(x) for _ in range(50)], 4)
    np.testing.assert_array_equal(w.numpy(), np.full(8, -200, np.float32))


def test_session_run_of_an_update_from_threads():
    graph = tf.Graph()
    with graph.as_default():
        counter = tf.Variable(0.0)
        bump = tf.assign_add(counter, 1.0)
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
    run_threads(lambda k: [sess.run(bump) for _ in range(100)], 4)
    assert sess.run(counter) == 400.0


def test_new_shapes_compile_concurrently_and_agree():
    f = tj.jit(lambda x: tj.tanh(x) * 2.0 + tj.reduce_sum(x))
    results: dict = {}

    def work(k):
        for n in range(1, 13):
            x = np.linspace(-1, 1, n * (k + 1), dtype=np.float32)
            results[(k, n)] = (x, np.asarray(f(x)))

    run_threads(work, 4)
    for x, got in results.values():
        np.testing.assert_allclose(got, np.tanh(x) * 2 + x.sum(), rtol=1e-5, atol=1e-5)


CHILD = """
import os, sys, numpy as np, tracejit as tj
f = tj.jit(lambda x: tj.reduce_sum(tj.tanh(x) * 2.0))
x = np.linspace(0, 1, 1 << 20, dtype=np.float32)      # big enough to use the thread pool
want = float(np.sum(np.tanh(x) * 2.0))
assert abs(float(f(x)) - want) < 1e-2 * max(1.0, abs(want))
pid = os.fork()
if pid == 0:                        # the child: compiled code, new compiles, threads
    ok = abs(float(f(x)) - want) < 1e-2 * max(1.0, abs(want))
    g = tj.jit(lambda x: tj.reduce_max(x * 3.0))
    ok = ok and float(g(x)) == 3.0
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_fork_after_the_thread_pool_started():
    env = dict(os.environ, TRACEJIT_CACHE_DIR="off")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD)], env=env,
                          capture_output=True, text=True, timeout=DEADLINE)
    assert done.returncode == 0, done.stderr


def _square_sum(n: int) -> float:
    x = np.arange(n, dtype=np.float64)
    return float(tj.jit(lambda v: tj.reduce_sum(v * v))(x))


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_multiprocessing_after_the_thread_pool_started(method):
    big = np.ones(1 << 20, np.float32)
    assert float(tj.jit(lambda v: tj.reduce_sum(tj.exp(v)))(big)) > 0     # pool running
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        got = pool.map_async(_square_sum, [10, 1000, 1 << 18]).get(DEADLINE)
    assert got == [float(sum(i * i for i in range(n))) for n in (10, 1000)] + [
        float(np.sum(np.arange(1 << 18, dtype=np.float64) ** 2))]
