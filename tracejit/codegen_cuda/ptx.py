"""The PTX of every kernel of a graph, as ``tracejit ir --stage ptx`` prints it.

The graph goes through the GPU device's pipeline and lowering (no GPU needed); each
distinct kernel -- including those of control-flow regions -- is compiled by
numba.cuda for the requested compute capability. The output is every kernel's module
whole, as ``ptxas`` takes it, the modules separated only by ``//`` comment lines
naming the kernel, its kind and the equation it computes.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..ir.core import Graph
from .source import GeneratedKernel
from .steps import GemmStep, KernelStep, RegionStep

__all__ = ["graph_kernels", "graph_ptx", "parse_arch"]


def parse_arch(arch: str) -> tuple[int, int]:
    """``sm_90`` -> (9, 0)."""
    digits = arch.lower().removeprefix("sm_").removeprefix("compute_").rstrip("a")
    if not digits.isdigit() or len(digits) < 2:
        raise ValueError(f"bad GPU architecture {arch!r}; expected e.g. sm_80 or sm_90")
    return int(digits[:-1]), int(digits[-1])


def graph_kernels(graph: Graph, *, optimize: bool = True
                  ) -> Iterator[tuple[GeneratedKernel, str]]:
    """``(kernel, what it computes)`` for every distinct kernel of ``graph`` on a GPU."""
    from ..passes.pipeline import optimize as run_pipeline
    from .pipeline import GPU_PASSES
    from .program import build_steps
    seen: set[str] = set()

    def walk(g: Graph, optimized: bool):
        g = g if optimized else run_pipeline(g, device_passes=GPU_PASSES)
        for step in build_steps(g, False):
            kernels = [step.kernel] if isinstance(step, KernelStep) else \
                [step.fallback] if isinstance(step, GemmStep) else []
            for kernel in kernels:
                if kernel.name not in seen:
                    seen.add(kernel.name)
                    yield kernel, _describe(step)
            if isinstance(step, RegionStep):
                for region in step.regions.values():
                    yield from walk(region, True)
    yield from walk(graph, not optimize)


def _describe(step) -> str:
    eqn = step.eqn
    outs = ", ".join(str(v.type) for v in eqn.outs)
    what = eqn.op.name if eqn.op.name != "kernel" else f"kernel[{eqn.params['kind']}]"
    return f"{what} -> {outs}"


def graph_ptx(graph: Graph, arch: str = "sm_90") -> str:
    from .compiler import kernel_compiler
    cc = parse_arch(arch)
    compiler = kernel_compiler()
    parts = []
    for kernel, what in graph_kernels(graph):
        parts.append(f"// ---- kernel {kernel.name} ({kernel.kind}): {what}\n"
                     f"// launch: grid {kernel.launch.grid}, block {kernel.launch.block}\n"
                     + compiler.ptx(kernel, cc).rstrip("\n") + "\n")
    return "".join(parts)
