"""Every registered device against the reference interpreter, op by op.

For each device the registry has: every example of every op (tests/ir/op_examples.py)
compiled as a one-equation graph and run on random inputs, and the gradient graph of
every differentiable op on its float64 examples; results must match the interpreter's.
A compile-only device (``null``) must compile each graph and refuse to run it. A new
backend (CUDA) joins by registering its device: nothing here names one.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from tests.ir.op_examples import BY_NAME, random_array
from tests.passes.test_autodiff import NOT_DIFFERENTIABLE, POSITIVE, float64_examples
from tracejit.ir import OPS, GraphBuilder, Tag, interpret
from tracejit.passes.autodiff import gradient_graph
from tracejit.runtime.device import CAN_RUN, UnsupportedOnDevice
from tracejit.runtime.registry import device_names, get_device

DEVICES = device_names()
# Relative tolerance per float width: the CPU's vector math is within a few ulp of the
# reference (docs/cpu_math.md); half types round once more on the way out.
RTOL = {16: 2e-2, 32: 2e-5, 64: 1e-12}


@pytest.fixture(autouse=True)
def strict(monkeypatch):
    """A backend may not pass by quietly running the reference interpreter instead."""
    monkeypatch.setenv("TRACEJIT_CPU_STRICT", "1")


def _graph(name, types, params):
    b = GraphBuilder(f"conformance_{name}")
    ins = [b.add_input(t) for t in types]
    outs = b.emit(OPS[name], ins, dict(params))
    return b.build(list(outs))


def _inputs(name, graph, seed, *, positive=False):
    rng = np.random.default_rng(seed)
    low = 0.1 if positive else -3.0
    return [random_array(rng, v.type.shape, v.type.dtype, low=low, high=3.0)
            for v in graph.inputs]


def _check_same(got, want, graph):
    assert len(got) == len(want)
    for g, w, var in zip(got, want, graph.outputs, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        if var.type.dtype.is_float:
            rtol = RTOL[var.type.dtype.bits]
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
            np.testing.assert_allclose(g64, w64, rtol=rtol, atol=rtol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)


def _run_or_refuse(device, graph, args):
    # NOTE: through the user's boundary: a device with memory of its own (a GPU) takes
    # and returns device buffers; host_program copies NumPy arrays in and out
    program = device.host_program(device.compile(graph), graph)
    if CAN_RUN not in device.capabilities:
        with pytest.raises(UnsupportedOnDevice):
            program(args)
        return None
    return program(args)


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_op_examples_match_the_interpreter(device_name, name):
    device = get_device(device_name)
    seed = zlib.crc32(name.encode())
    for types, params in BY_NAME[name]:
        graph = _graph(name, types, params)
        args = _inputs(name, graph, seed, positive=name in POSITIVE)
        got = _run_or_refuse(device, graph, args)
        if got is not None:
            _check_same(got, interpret(graph, args), graph)


# custom_vjp's rule is the user's (registered at trace time; tests/trace checks it).
DIFFERENTIABLE = sorted(n for n, op in OPS.items()
                        if n not in NOT_DIFFERENTIABLE | {"custom_vjp"}
                        and op.vjp is not None and not op.has(Tag.RANDOM))


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_gradients_match_the_interpreter(device_name, name):
    device = get_device(device_name)
    for types, params in float64_examples(name):
        graph = gradient_graph(_graph(name, types, params))
        args = _inputs(name, graph, zlib.crc32(name.encode()) + 1,
                       positive=name in POSITIVE)
        got = _run_or_refuse(device, graph, args)
        if got is not None:
            _check_same(got, interpret(graph, args), graph)


def test_every_device_has_a_rule_for_every_op():
    # The lowering table, or the device runs the reference (interpreter) or compiles only.
    for name in DEVICES:
        device = get_device(name)
        missing = sorted(op.name for op in OPS.values() if not device.supports(op))
        assert not missing, f"{name} cannot run {missing}"
