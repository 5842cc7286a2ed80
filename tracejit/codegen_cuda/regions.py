"""Control flow on the GPU, driven from the host (cond, while_loop, scan)."""

from __future__ import annotations


def run_region(device, step, values) -> None:
    raise NotImplementedError(f"{step.eqn.op.name} on the GPU")
