"""The runtime's devices: the registry, the Device interface, buffers, capabilities."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tracejit as tj
from tracejit.config import settings
from tracejit.ir import dtypes as dt
from tracejit.ir import ops
from tracejit.runtime.device import (
    CAN_RUN,
    NATIVE_DISPATCH,
    Buffer,
    Device,
    UnsupportedOnDevice,
)
from tracejit.runtime.interpreter import InterpreterDevice
from tracejit.runtime.registry import (
    default_device_name,
    device_names,
    get_device,
    loaded_devices,
    register_device,
)


def test_the_built_in_devices_are_listed_and_made_once():
    assert {"cpu", "interpreter", "null"} <= set(device_names())
    cpu = get_device("cpu")
    assert get_device("cpu") is cpu and cpu in loaded_devices()
    assert cpu.kind == "cpu" and str(cpu.spec) == "/job:localhost/replica:0/task:0/device:CPU:0"
    assert {CAN_RUN, NATIVE_DISPATCH} <= cpu.capabilities
    assert NATIVE_DISPATCH not in get_device("interpreter").capabilities
    assert CAN_RUN not in get_device("null").capabilities
    assert default_device_name() == "cpu"
    with settings(executor="interpreter"):
        assert get_device() is get_device("interpreter")


def test_an_unknown_device_names_the_registered_ones():
    with pytest.raises(ValueError, match=r"unknown device 'tpu'.*'cpu'"):
        get_device("tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'") as caught:
        tj.jit(lambda x: x, executor="tpu")(np.ones(2, np.float32))
    assert "test_registry.py" in str(caught.value)     # the user's line


def test_importing_tracejit_loads_no_backend():
    code = ("import sys, tracejit; "
            "print(sorted(m for m in sys.modules if m.startswith(('llvmlite', "
            "'tracejit.codegen_cpu.host.executor', 'tracejit.codegen_cpu.device'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


class Recording(InterpreterDevice):
    """A device of our own: the interpreter, counting what it compiles and runs."""

    kind = name = "recording"

    def __init__(self):
        super().__init__("/cpu:0")
        self.compiles, self.ops = 0, 0

    def compile(self, graph, *, donated=()):
        self.compiles += 1
        return super().compile(graph, donated=donated)

    def run_op(self, op, args, params):
        self.ops += 1
        return super().run_op(op, args, params)


def test_a_registered_device_runs_jit_and_eager_ops():
    register_device("recording", Recording)
    device = get_device("recording")
    f = tj.jit(lambda x: tj.exp(x) * 2.0, executor="recording")
    x = np.linspace(0, 1, 5, dtype=np.float32)
    np.testing.assert_allclose(np.asarray(f(x)), np.exp(x) * 2.0, rtol=1e-6)
    f(x)
    assert device.compiles == 1
    # No native-dispatch capability: the function keeps the Python path.
    assert type(f) is tj.JitFunction
    with settings(executor="recording"):
        np.testing.assert_allclose(np.asarray(tj.exp(x)), np.exp(x), rtol=1e-6)
    assert device.ops == 1


def test_the_cpu_device_gives_jit_its_native_fast_path():
    f = tj.jit(lambda x: x + 1.0)
    f(np.ones(4, np.float32))
    assert type(f) is not tj.JitFunction and isinstance(f, tj.JitFunction)


def test_the_null_device_compiles_but_never_runs():
    null = get_device("null")
    before = len(null.compiled)
    f = tj.jit(lambda x: tj.exp(tj.negative(tj.negative(x))), executor="null")
    with pytest.raises(UnsupportedOnDevice, match="compiles only"):
        f(np.ones(3, np.float32))
    assert len(null.compiled) == before + 1
    assert [e.op.name for e in null.compiled[-1].eqns] == ["exp"]   # cleanups ran


@pytest.mark.parametrize("name", ["cpu", "interpreter", "null"])
def test_host_buffers_round_trip(name):
    device = get_device(name)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    buf = device.put(x)
    assert isinstance(buf, Buffer) and buf.device is device
    assert buf.shape == (2, 3) and buf.dtype is dt.float32 and buf.nbytes == 24
    x[0, 0] = 99.0                          # put copied
    back = device.get(buf)
    assert back[0, 0] == 0.0 and back.dtype == np.float32
    twin = device.allocator.copy(buf)
    assert twin.storage is not buf.storage
    np.testing.assert_array_equal(device.get(twin), back)
    empty = device.allocator.alloc((4,), "f64")
    assert empty.shape == (4,) and empty.dtype is dt.float64
    device.allocator.free(empty)
    other = get_device("interpreter" if name != "interpreter" else "cpu")
    with pytest.raises(UnsupportedOnDevice, match="allocator"):
        other.get(buf)


def test_the_base_device_states_what_a_backend_must_provide():
    bare = Device("/cpu:0")
    with pytest.raises(NotImplementedError):
        bare.compile(None)
    assert bare.dispatcher(None, None, None, "one", ()) is None
    assert not bare.supports(ops.EXP)           # an empty lowering table
