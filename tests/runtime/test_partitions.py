"""Graphs placed over several CPU devices (TRACEJIT_CPU_DEVICES): tj.device scopes,
placement, partitioning into stages with transfers, and the executor of partitions --
each checked against the same program on one device."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit.ir.interpret import interpret
from tracejit.passes.partition import partition, rendezvous_key
from tracejit.passes.place import place
from tracejit.runtime.device import CAN_RUN, HOST_MEMORY, Device
from tracejit.runtime.devices import DeviceError
from tracejit.runtime.partitions import (
    CONCURRENT,
    STEP_DEADLINE_ENV,
    PartitionedProgram,
    StepTimeout,
)
from tracejit.runtime.registry import CPU_DEVICES_ENV, get_device
from tracejit.trace.device_scope import current_device

CPU = "/job:localhost/replica:0/task:0/device:CPU:{}"


@pytest.fixture(autouse=True)
def three_devices(monkeypatch):
    monkeypatch.setenv(CPU_DEVICES_ENV, "3")


def _program(f):
    (entry,) = f._cache.values()
    return entry.program


def _mlp(params, x, y, split: bool):
    w1, b1, w2, b2 = params
    if split:                           # the hidden layer on /cpu:1, the head on /cpu:2
        with tj.device("/cpu:1"):
            h = tj.nn.relu(x @ w1 + b1)
        with tj.device("/cpu:2"):
            logits = h @ w2 + b2
    else:
        h = tj.nn.relu(x @ w1 + b1)
        logits = h @ w2 + b2
    return tj.reduce_mean(tj.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                         logits=logits))


def test_an_mlp_split_over_devices_trains_to_the_same_values():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 20)).astype(np.float32)
    y = rng.integers(0, 5, 32).astype(np.int32)
    start = [rng.standard_normal((20, 16)).astype(np.float32) * 0.3, np.zeros(16, np.float32),
             rng.standard_normal((16, 5)).astype(np.float32) * 0.3, np.zeros(5, np.float32)]
    trained = {}
    for split in (False, True):
        step = tj.jit(tj.value_and_grad(lambda p, split=split: _mlp(p, x, y, split)))
        params = [p.copy() for p in start]
        for _ in range(20):
            loss, grads = step(params)
            params = [p - 0.1 * np.asarray(g) for p, g in zip(params, grads, strict=True)]
        trained[split] = (float(loss), params)
        assert isinstance(_program(step), PartitionedProgram) == split
    assert trained[True][0] == pytest.approx(trained[False][0], rel=1e-5)
    for a, b in zip(trained[True][1], trained[False][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_stages_and_their_transfers():
    def f(x, w):
        with tj.device("/cpu:1"):
            h = tj.tanh(x @ w)
        return tj.reduce_sum(h * 2.0) + tj.reduce_sum(h)

    x = np.ones((4, 3), np.float32)
    w = np.full((3, 2), 0.5, np.float32)
    jf = tj.jit(f)
    assert float(jf(x, w)) == pytest.approx(3 * float(np.tanh(1.5) * 8))
    parts = _program(jf).parts
    assert [(s.device, s.level) for s in parts.stages] == [(CPU.format(1), 0), (CPU.format(0), 1)]
    # h crosses once, though two equations on /cpu:0 read it; the constant 2.0 is made
    # where it is used, not sent
    ((key, var),) = parts.transfers
    assert key.startswith(f"{CPU.format(1)};{CPU.format(0)};") and key.endswith(";0")
    assert var.meta.device == CPU.format(1)
    text = str(_program(jf))
    assert "send %" in text and f"<- recv {key}" in text


def test_a_stage_no_other_device_reads_joins_its_devices_later_stage():
    def f(x, w, n):
        with tj.device("/cpu:1"):
            counted = n + 1             # level 0, read by no one (a global step's increment)
        h = tj.tanh(x @ w)              # /cpu:0, level 0
        with tj.device("/cpu:1"):
            total = tj.reduce_sum(h * 2.0)      # level 1
        return total, counted

    x = np.ones((4, 3), np.float32)
    w = np.full((3, 2), 0.5, np.float32)
    jf = tj.jit(f)
    total, counted = jf(x, w, np.int32(4))
    assert int(counted) == 5
    assert float(total) == pytest.approx(2 * 8 * float(np.tanh(1.5)), rel=1e-6)
    parts = _program(jf).parts
    # the increment runs with /cpu:1's level-1 stage: one program call (on a remote
    # task, one round trip) fewer than a stage of its own
    assert [(s.device, s.level) for s in parts.stages] == [(CPU.format(0), 0),
                                                             (CPU.format(1), 1)]
    assert {"add", "sum"} <= {e.op.name for e in parts.stages[1].graph.eqns}


def test_placement_rules():
    def f(x):
        with tj.device("/cpu:2"):
            y = x * 3.0                 # the constant 3.0 goes with its consumer
        return y + 1.0

    graph = tj.make_ir(f)(np.ones(2, np.float32))
    placed = place(graph, lambda pin: pin.replace("/device:CPU:", "@"), "@0")
    devices = [(e.op.name, e.outs[0].meta.device) for e in placed.eqns]
    assert devices == [("constant", "@2"), ("mul", "@2"), ("constant", "@0"), ("add", "@0")]
    assert all(v.meta.device == "@0" for v in placed.inputs)
    assert len(partition(placed).stages) == 2
    assert rendezvous_key("/a", "/b", "t") == "/a;/b;t;0"


def test_scopes_merge_and_a_bad_string_fails_at_the_with():
    with tj.device("/job:localhost"):
        with tj.device("/cpu:1"):
            assert current_device() == "/job:localhost/device:CPU:1"
        with tj.device(None):
            assert current_device() is None
    assert current_device() is None
    with pytest.raises(DeviceError, match="bad device string"):
        with tj.device("cpu1"):
            pass


def test_a_pin_to_a_device_the_process_lacks_names_it():
    def f(x):
        with tj.device("/cpu:7"):
            return x + 1.0
    with pytest.raises(DeviceError, match="no /device:CPU:7"):
        tj.jit(f)(np.ones(2, np.float32))


def test_a_scope_around_a_call_does_not_replace_compiled_code():
    f = tj.jit(lambda x: x * 2.0)
    with tj.device("/cpu:1"):
        f(np.ones(3, np.float32))
    assert not isinstance(_program(f), PartitionedProgram)


def test_eager_operations_run_on_the_scopes_device():
    device = get_device("/cpu:2")
    with tj.device("/cpu:2"):
        y = tj.exp(np.zeros(3, np.float32))
    np.testing.assert_array_equal(np.asarray(y), np.ones(3, np.float32))
    assert device._compiler is not None


# ---- random programs, randomly placed, against the same program on one device --------

_OPS = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: tj.tanh(a) - b,
        lambda a, b: a @ b, lambda a, b: tj.exp(-tj.abs(a)) + tj.reduce_sum(b, axis=0)]
_step = st.tuples(st.integers(0, len(_OPS) - 1), st.integers(0, 40), st.integers(0, 40),
                  st.sampled_from([None, "/cpu:0", "/cpu:1", "/cpu:2"]))


def _random_program(steps, pinned: bool):
    def f(x, y):
        values = [x, y]
        for op, i, j, where in steps:
            a, b = values[i % len(values)], values[j % len(values)]
            with tj.device(where if pinned else None):
                values.append(_OPS[op](a, b))
        return values[-1], values[len(values) // 2]
    return f


@settings(max_examples=25, deadline=None)
@given(st.lists(_step, min_size=1, max_size=8))
def test_random_placements_match_the_reference_interpreter(steps):
    rng = np.random.default_rng(len(steps))
    x, y = (rng.uniform(-1, 1, (4, 4)).astype(np.float32) for _ in range(2))
    got = tj.jit(_random_program(steps, pinned=True))(x, y)
    want = tj.jit(_random_program(steps, pinned=False), executor="interpreter")(x, y)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-5, atol=2e-5)


def test_a_variable_lives_on_the_device_it_was_made_on():
    with tj.device("/cpu:1"):
        v = tj.Variable(np.ones(3, np.float32), name="v_on_cpu1")
    assert v.device == "/device:CPU:1"

    @tj.jit
    def step(x):
        with tj.device("/cpu:1"):
            v.assign(v * 2.0 + x)
        return tj.reduce_sum(x)             # on the default device

    assert float(step(np.ones(3, np.float32))) == 3.0
    np.testing.assert_array_equal(np.asarray(v.read_value()), np.full(3, 3.0, np.float32))
    parts = _program(step).parts
    (home,) = [a.meta.device for a in parts.placed.inputs if a.meta.name == "v_on_cpu1"]
    assert home == CPU.format(1)
    assert {s.device for s in parts.stages} == {CPU.format(0), CPU.format(1)}


def test_device_put_commits_arrays_and_computations_follow_them():
    x = tj.device_put(np.arange(3, dtype=np.float32), "/cpu:1")
    assert isinstance(x, tj.DeviceArray) and x.device == "cpu:1"
    y = tj.exp(x) + 1.0                             # eager: on cpu:1, committed there
    assert isinstance(y, tj.DeviceArray) and y.device == "cpu:1"
    np.testing.assert_allclose(np.asarray(y), np.exp(np.arange(3)) + 1.0, rtol=1e-6)
    f = tj.jit(lambda a: a * 2.0)
    plain = f(np.ones(3, np.float32))
    assert type(plain) is tj.Array
    on1 = f(x)
    assert isinstance(on1, tj.DeviceArray) and on1.device == "cpu:1"
    assert type(f(np.ones(3, np.float32))) is tj.Array      # still the default device
    executors = {key[0] for key in f._cache}
    assert executors == {"cpu", "cpu:1"}
    with pytest.raises(DeviceError, match="committed to different devices"):
        tj.jit(lambda a, b: a + b)(x, tj.device_put(np.ones(3, np.float32), "/cpu:2"))
    with pytest.raises(DeviceError, match="committed to 'cpu:1'"):
        tj.jit(lambda a: a, executor="cpu")(x)


def test_a_variables_update_is_computed_where_it_lives():
    with tj.device("/cpu:2"):
        v = tj.Variable(np.zeros(2, np.float32), name="v_on_cpu2")

    @tj.jit
    def step(x):
        v.assign(v + x * 3.0)               # no scope: colocated with the variable
        return x * 1.5

    step(np.ones(2, np.float32))
    np.testing.assert_array_equal(np.asarray(v.read_value()), [3.0, 3.0])
    placed = _program(step).parts.placed
    (update,) = [e for e in placed.eqns if e.op.name == "add"]
    assert update.outs[0].meta.device == CPU.format(2)
    (other,) = [e for e in placed.eqns if e.op.name == "mul" and e.ins[0] is placed.inputs[0]
                and e is not update and any(o is placed.outputs[0] for o in e.outs)]
    assert other.outs[0].meta.device == CPU.format(0)


def test_a_failing_stage_ends_the_step_with_its_own_error(monkeypatch):
    ran = []
    default = get_device("cpu")
    compile_on_cpu0 = default.compile

    def failing(graph, *, donated=()):
        def program(args):
            raise RuntimeError("stage on cpu:1 failed")
        return program

    def recording(graph, *, donated=()):
        program = compile_on_cpu0(graph, donated=donated)
        ran.append("compiled")

        def run(args):
            ran.append(graph.name)
            return program(args)
        return run

    def f(x):
        with tj.device("/cpu:1"):
            y = tj.exp(x)
        return y * 2.0

    monkeypatch.setattr(get_device("/cpu:1"), "compile", failing)
    monkeypatch.setattr(default, "compile", recording)
    with pytest.raises(RuntimeError, match="stage on cpu:1 failed"):
        tj.jit(f)(np.ones(2, np.float32))
    # the stage after it (on /cpu:0) was compiled but never ran: nothing waited on it
    assert ran == ["compiled"]


# ---- stages that run at once: devices whose programs release the GIL -----------------

class _Concurrent(Device):
    """A device declaring "concurrent": the interpreter, calling ``hook`` first."""

    capabilities = frozenset({CAN_RUN, HOST_MEMORY, CONCURRENT})

    def __init__(self, name, hook):
        super().__init__()
        self.kind = self.name = name
        self.hook = hook

    def compile(self, graph, *, donated=()):
        def program(args):
            self.hook()
            return interpret(graph, args)
        return program


def _two_branches(hook_a, hook_b, after=lambda: None):
    def f(x):
        with tj.device("/cpu:1"):
            a = tj.exp(x)
        with tj.device("/cpu:2"):
            b = x * 2.0
        return a + b
    graph = tj.make_ir(f)(np.ones(3, np.float32))
    names = {"/device:CPU:1": "A", "/device:CPU:2": "B"}
    parts = partition(place(graph, names.__getitem__, "D"))
    devices = {"A": _Concurrent("A", hook_a), "B": _Concurrent("B", hook_b),
               "D": _Concurrent("D", after)}
    return PartitionedProgram(parts, devices)


def test_a_levels_stages_run_at_once_on_concurrent_devices():
    meet = threading.Barrier(2, timeout=10)     # passes only if both stages are running
    program = _two_branches(meet.wait, meet.wait)
    assert [together for together, _ in program.levels] == [True, False]
    x = np.linspace(0, 1, 3, dtype=np.float32)
    (out,) = program([x])
    np.testing.assert_allclose(out, np.exp(x) + 2 * x, rtol=1e-6)


def test_a_stage_past_the_step_deadline_ends_the_step(monkeypatch):
    monkeypatch.setenv(STEP_DEADLINE_ENV, "0.2")
    release = threading.Event()
    program = _two_branches(lambda: release.wait(30), lambda: None)
    try:
        with pytest.raises(StepTimeout, match=r"on A still running .*0\.2 s"):
            program([np.ones(3, np.float32)])
    finally:
        release.set()


def test_a_failing_concurrent_stage_ends_the_step():
    ran = []

    def fail():
        raise ValueError("device B failed")
    program = _two_branches(lambda: None, fail, after=lambda: ran.append("D"))
    with pytest.raises(ValueError, match="device B failed"):
        program([np.ones(3, np.float32)])
    assert ran == []
