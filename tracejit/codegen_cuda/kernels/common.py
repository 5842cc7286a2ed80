"""What every kernel generator shares: launch shapes, one-equation bodies, leaves."""

from __future__ import annotations

import math
from collections.abc import Callable

from ...ir import GraphBuilder, ops
from ...ir.core import Eqn, Graph
from ..point import Leaf, scalar_constant
from ..source import Arg, GeneratedKernel, Launch, Param, SourceWriter, kernel_source

__all__ = ["BLOCK", "SIM_BLOCK", "MAX_GRID", "launch_1d", "as_body", "constant_leaves",
           "block_size", "grid_stride_kernel", "split_flat"]

BLOCK = 256          # threads of a block: 8 warps, what occupancy calculators favour
SIM_BLOCK = 32       # the simulator runs each thread as a Python thread: keep them few
MAX_GRID = 8192      # grid-stride loops cover the rest; enough blocks for any GPU's SMs


def block_size(n: int, simulating: bool) -> int:
    """Threads per block for ``n`` work items: a whole number of warps."""
    limit = SIM_BLOCK if simulating else BLOCK
    return max(32, min(limit, 32 * math.ceil(max(n, 1) / 32)))


def launch_1d(n: int, simulating: bool) -> Launch:
    """A grid-stride launch over ``n`` items."""
    block = block_size(n, simulating)
    grid = 1 if simulating else max(1, min(MAX_GRID, math.ceil(n / block)))
    return Launch(grid, block)


def as_body(eqn: Eqn) -> Graph:
    """``eqn`` alone as a body graph (a standalone op lowered as a one-op kernel)."""
    b = GraphBuilder(eqn.op.name)
    ins = [b.add_input(v.type) for v in eqn.ins]
    outs = b.emit(eqn.op, ins, dict(eqn.params))
    return b.build(list(outs), stage="body")


def constant_leaves(body: Graph, leaves: dict, params: list[Param], args: list[Arg]) -> None:
    """Constants of more than one element in ``body`` become buffers the kernel reads
    (the program uploads each once); one-element ones are literals."""
    for eqn in body.eqns:
        if eqn.op is ops.CONSTANT and not scalar_constant(eqn):
            name = f"c{len([a for a in args if a.kind == 'const'])}"
            var = eqn.outs[0]
            leaves[id(var)] = Leaf(name, var.type.dtype)
            params.append(Param(name, var.type.dtype))
            args.append(Arg("const", eqn.params["value"]))


def grid_stride_kernel(stem: str, params: list[Param], args: list[Arg], size: int,
                       simulating: bool, body: Callable[[SourceWriter], None], *,
                       kind: str, index: str = "i") -> GeneratedKernel:
    """A kernel whose threads stride over ``size`` work items: ``index`` is the item,
    ``body(w)`` writes what one item does. ``params``/``args`` are the kernel's own;
    the item count is passed last, as ``n``."""
    params = [*params, Param("n")]
    args = [*args, Arg("int", size)]
    w = SourceWriter()
    w.depth = 1
    w.line(f"{index} = cuda.grid(1)")
    w.line("step = cuda.gridsize(1)")
    w.line(f"while {index} < n:")
    with w.indent():
        body(w)
        w.line(f"{index} += step")
    name, source = kernel_source(stem, params, w.body())
    return GeneratedKernel(name, source, params, args, launch_1d(size, simulating),
                           kind=kind)


def split_flat(w: SourceWriter, flat: str, names_sizes: list[tuple[str, int]]) -> None:
    """``names`` := the row-major coordinates of ``flat`` in a shape of ``sizes``
    (outermost first); the outermost takes what is left, unbounded."""
    rest = flat
    for k, (name, size) in enumerate(reversed(names_sizes)):
        if k == len(names_sizes) - 1:
            w.line(f"{name} = {rest}")
        else:
            w.line(f"{name} = {rest} % {size}")
            w.line(f"r_{name} = {rest} // {size}")
            rest = f"r_{name}"
