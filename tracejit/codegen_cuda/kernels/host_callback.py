"""``host_callback`` on the GPU: a host step between kernels (``tf.Print``).

The step waits for the stream, downloads ``x`` and the other arguments, calls the
registered Python function (ir/ops_host.py), and copies ``x`` to the result on the
device. The wait is the cost: the kernels queued before it must finish first, so a
callback in a loop body makes every iteration wait for the GPU.
"""

from __future__ import annotations

import numpy as np

from ...ir import ops
from ...ir.core import Eqn, Var
from ...ir.ops_host import call_host_callback
from ..memory import storage_dtype
from ..steps import HostStep

__all__ = ["RULES", "run_host_step"]


def _download(storage, var: Var) -> np.ndarray:
    sdt = storage_dtype(var.dtype)
    count = var.type.size
    out = np.empty(count, dtype=sdt)
    if count:
        flat = storage if storage.dtype == sdt else storage.view(sdt)
        flat.reshape(count).copy_to_host(out)
    return out.view(var.dtype.np_dtype).reshape(var.shape)


def run_host_step(device, step: HostStep, values: dict) -> None:
    """Call the callback on the arguments' values; the result is ``x``."""
    eqn = step.eqn
    device.synchronize()
    call_host_callback(eqn.params["callback"],
                       [_download(values[id(v)], v) for v in eqn.ins])
    out, x = values[id(eqn.outs[0])], values[id(eqn.ins[0])]
    if eqn.outs[0].type.size:
        out.copy_to_device(x, stream=device.stream or 0)


def _host_steps(eqn: Eqn, simulating: bool) -> list[HostStep]:
    return [HostStep(eqn)]


RULES = {ops.HOST_CALLBACK: _host_steps}
