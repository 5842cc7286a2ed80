"""Row kernels (kind ``"rows"``, made by passes/fuse_rows.py): softmax, layer norm and
their kin as one kernel, a row per block.

The body's reductions all reduce the same rows; a later one may read an earlier one's
result. They run in *phases*: a reduction's phase is one more than the latest phase of
the reductions its operand depends on, and the reductions of one phase fold together.
After a phase the block's tree leaves each result in shared memory, a barrier makes it
every thread's, and it is bound as a known value for the phases after -- so ``x - m``
in softmax's second phase reads ``m`` from a register. Then the threads write the row's
outputs of the rows' shape at each element, and thread 0 those of the reduced shape.
Rows short enough (``SERIAL_MAX``) run a thread per row instead, with no barriers.
"""

from __future__ import annotations

import math

from ...ir.core import Graph
from ...ir.opdef import Tag
from ..point import Index, PointEmitter
from ..scalars import store_expr
from ..source import GeneratedKernel, Launch, SourceWriter, kernel_source
from .common import BLOCK, MAX_GRID, SIM_BLOCK, grid_stride_kernel
from .reduce import (
    SERIAL_MAX,
    SIM_SERIAL_MAX,
    ReductionPlan,
    body_leaves,
    declare_shared,
    fold_reductions,
    init_accumulators,
    output_params,
    reduction_results,
    tree_combine,
)

__all__ = ["rows_kernels"]


def _phases(plan: ReductionPlan) -> list[list[int]]:
    """Indices into ``plan.reduces`` by phase."""
    body = plan.body
    position = {id(e.outs[0]): k for k, e in enumerate(plan.reduces)}
    needs: dict[int, set[int]] = {}          # id(var) -> reductions it depends on
    phase: dict[int, int] = {}
    for eqn in body.eqns:
        deps = set().union(*(needs.get(id(v), set()) for v in eqn.ins)) if eqn.ins else set()
        if eqn.op.has(Tag.REDUCE):
            k = position[id(eqn.outs[0])]
            phase[k] = 1 + max((phase[d] for d in deps), default=-1)
            deps = deps | {k}
        for v in eqn.outs:
            needs[id(v)] = deps
    count = 1 + max(phase.values())
    return [[k for k in range(len(plan.reduces)) if phase[k] == p] for p in range(count)]


def _split_outputs(plan: ReductionPlan) -> tuple[list[int], list[int]]:
    """Outputs of the rows' shape (written at every element) and of the reduced shape."""
    size = math.prod(plan.in_shape)
    along = [k for k, v in enumerate(plan.body.outputs) if math.prod(v.shape) == size]
    across = [k for k in range(len(plan.body.outputs)) if k not in along]
    return along, across


def _row(w: SourceWriter, plan: ReductionPlan, leaves: dict, row: str, first: str,
         step: int | str, shared_of, block: int, simulating: bool) -> None:
    """One row's phases, then its outputs. ``shared_of(phase)``: the phase's shared
    arrays (None: a thread per row, no tree)."""
    known: dict = {}
    for p, members in enumerate(_phases(plan)):
        reducers = [plan.reducers[k] for k in members]
        reduces = [plan.reduces[k] for k in members]
        accs = init_accumulators(w, reducers, prefix=f"p{p}")
        w.line(f"r = {first}")
        w.line(f"while r < {plan.n_red}:")
        with w.indent():
            em = PointEmitter(w, plan.body, leaves, known)
            fold_reductions(w, reducers, reduces, em, plan.input_index(em, row, "r"), "r",
                            accs)
            w.line(f"r += {step}")
        shared = shared_of(p, reducers)
        if shared is not None:
            tree_combine(w, reducers, shared, accs, block, simulating)
            w.line("cuda.syncthreads()")        # every thread reads the row's result
            accs = [(sh + "[0]", (shi + "[0]") if shi else None) for sh, shi in shared]
        known.update(reduction_results(w, reducers, reduces, accs, plan.n_red))
    along, across = _split_outputs(plan)
    outputs = plan.body.outputs
    if along:
        w.line(f"r = {first}")
        w.line(f"while r < {plan.n_red}:")
        with w.indent():
            em = PointEmitter(w, plan.body, leaves, known)
            index = plan.input_index(em, row, "r")
            for k in along:
                v = outputs[k]
                w.line(f"o{k}[{em.flat(index)}] = "
                       f"{store_expr(em.value(v, Index(v.shape, flat=em.flat(index))), v.type.dtype)}")  # noqa: E501
            w.line(f"r += {step}")
    if across:
        w.line("if tid == 0:" if shared_of(0, []) is not None else "if True:")
        with w.indent():
            em = PointEmitter(w, plan.body, leaves, known)
            for k in across:
                v = outputs[k]
                w.line(f"o{k}[{row}] = "
                       f"{store_expr(em.value(v, Index(v.shape, flat=row)), v.type.dtype)}")


def rows_kernels(body: Graph, simulating: bool) -> list[GeneratedKernel]:
    plan = ReductionPlan(body)
    params, args = output_params(body)
    leaves = body_leaves(body, params, args)
    serial_max = SIM_SERIAL_MAX if simulating else SERIAL_MAX
    if plan.n_red <= serial_max:
        def row(w: SourceWriter) -> None:
            _row(w, plan, leaves, "o", "0", 1, lambda p, reducers: None, 1, simulating)
        return [grid_stride_kernel("rows_serial", params, args, plan.n_out, simulating, row,
                                   kind="reduction", index="o")]
    block = SIM_BLOCK if simulating else BLOCK
    w = SourceWriter()
    w.depth = 1
    w.line("tid = cuda.threadIdx.x")
    arrays = {p: declare_shared(w, [plan.reducers[k] for k in members], block,
                                prefix=f"p{p}")
              for p, members in enumerate(_phases(plan))}
    w.line("b = cuda.blockIdx.x")
    w.line(f"while b < {plan.n_out}:")
    with w.indent():
        _row(w, plan, leaves, "b", "tid", block, lambda p, reducers: arrays[p], block,
             simulating)
        w.line("cuda.syncthreads()")            # the next row reuses the shared arrays
        w.line("b += cuda.gridDim.x")
    name, source = kernel_source("rows", params, w.body())
    grid = 1 if simulating else max(1, min(MAX_GRID, plan.n_out))
    return [GeneratedKernel(name, source, params, args, Launch(grid, block),
                            kind="reduction")]
