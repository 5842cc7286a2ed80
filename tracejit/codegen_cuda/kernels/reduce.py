"""Reduction kernels: a block per output element, a deterministic tree inside the block.

A reduction body (docs/passes.md) reduces one input shape over one set of axes, with a
prologue at input points and an epilogue at output points. The kernel:

* **block per output** (rows and general reductions): the block's threads stride over
  the reduced elements, evaluating the prologue and accumulating; the partial
  accumulators meet in shared memory and are combined in a fixed tree (halving
  strides), so the sum order depends on the shapes only and results are the same bits
  from run to run; thread 0 finishes (mean divides) and runs the epilogue;
* **thread per output** (short reductions, and reductions over leading axes with many
  outputs, e.g. a bias gradient): each thread walks its elements serially; over
  leading axes neighbouring threads read neighbouring addresses, so the loads coalesce;
* **two passes** (few outputs, long reductions: a full sum): pass one gives each
  output ``chunks`` blocks, each reducing a fixed slice into a partial in scratch
  memory (side outputs of the prologue are written here); pass two combines each
  output's partials in the same fixed tree and runs the epilogue.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ...ir import dtypes as dt
from ...ir.core import Graph, Var
from ...ir.opdef import Tag
from ..point import Index, Leaf, PointEmitter
from ..scalars import round_op_result, store_expr, type_name
from ..source import Arg, GeneratedKernel, Launch, Param, SourceWriter, kernel_source
from .common import BLOCK, MAX_GRID, SIM_BLOCK, constant_leaves, grid_stride_kernel
from .reducers import NO_INDEX, reducer_of

__all__ = ["reduction_kernels", "ReductionPlan", "fold_reductions", "tree_combine",
           "reduction_results", "init_accumulators", "declare_shared", "body_leaves",
           "output_params", "TWO_PASS_MIN", "CHUNK", "SERIAL_MAX", "SIM_SERIAL_MAX"]

SERIAL_MAX = 64             # reduced length up to which a thread per output wins
COLUMNS_MIN = 1024          # outputs from which leading-axis reductions walk columns
TWO_PASS_MIN = 1 << 16      # reduced length from which few outputs split into chunks
CHUNK = 1 << 13             # elements per block in pass one
# The simulator's thresholds: small, so that tests reach every loop nest with shapes
# the simulator runs in milliseconds
SIM_SERIAL_MAX, SIM_COLUMNS_MIN, SIM_TWO_PASS_MIN, SIM_CHUNK = 16, 64, 256, 64


def _reduced_axes(eqn) -> tuple[int, ...]:
    return (eqn.params["axis"],) if "axis" in eqn.params else tuple(eqn.params["axes"])


class ReductionPlan:
    def __init__(self, body: Graph):
        self.body = body
        self.reduces = [e for e in body.eqns if e.op.has(Tag.REDUCE)]
        first = self.reduces[0]
        self.in_shape = tuple(first.ins[0].shape)
        self.axes = _reduced_axes(first)
        self.kept = [a for a in range(len(self.in_shape)) if a not in self.axes]
        self.n_out = math.prod(self.in_shape[a] for a in self.kept)
        self.n_red = math.prod(self.in_shape[a] for a in self.axes)
        self.reducers = [reducer_of(e) for e in self.reduces]
        depends = {id(v) for e in self.reduces for v in e.outs}
        for e in body.eqns:
            if any(id(v) in depends for v in e.ins):
                depends.update(id(v) for v in e.outs)
        self.epilogue_ids = depends
        self.side = [k for k, v in enumerate(body.outputs) if id(v) not in depends]
        self.main = [k for k, v in enumerate(body.outputs) if id(v) in depends]

    def input_index(self, em: PointEmitter, o: str, r: str) -> Index:
        """The input point of output ``o`` and reduced position ``r``."""
        shape, kept, axes = self.in_shape, self.kept, self.axes
        if tuple(axes) == tuple(range(len(shape) - len(axes), len(shape))):
            return Index(shape, flat=em.bind(f"({o} * {self.n_red} + {r})", "f"))
        if tuple(kept) == tuple(range(len(shape) - len(kept), len(shape))):
            return Index(shape, flat=em.bind(f"({r} * {self.n_out} + {o})", "f"))
        ko = em.axes(Index(tuple(shape[a] for a in kept), flat=o))
        kr = em.axes(Index(tuple(shape[a] for a in axes), flat=r))
        by_axis = dict(zip(kept, ko, strict=True)) | dict(zip(axes, kr, strict=True))
        return Index(shape, axes=tuple(by_axis[a] for a in range(len(shape))))

    def serial(self, serial_max: int, columns_min: int) -> bool:
        """Thread per output: short reductions (a block of threads per output would idle
        nearly all of them; in the simulator every barrier costs a thread switch per
        thread), or the reduced axes lead and there are many outputs (each thread walks
        a column; neighbours read neighbouring addresses)."""
        if self.n_red <= serial_max and self.n_out > 1:
            return True
        return tuple(self.axes) == tuple(range(len(self.axes))) and \
            self.n_out >= columns_min and len(self.kept) > 0


def body_leaves(body: Graph, params, args) -> dict:
    leaves = {}
    for k, v in enumerate(body.inputs):
        leaves[id(v)] = Leaf(f"a{k}", v.type.dtype)
        params.append(Param(f"a{k}", v.type.dtype))
        args.append(Arg("in", k))
    constant_leaves(body, leaves, params, args)
    return leaves


def fold_reductions(w: SourceWriter, reducers, reduces, em: PointEmitter, index: Index,
                    r: str, accs: list[tuple[str, str | None]]) -> None:
    """Evaluate each reduction's operand at ``index`` (reduced position ``r``) and fold
    it into its accumulator."""
    for red, eqn, (acc, acc_index) in zip(reducers, reduces, accs, strict=True):
        value = em.value(eqn.ins[0], index)
        if red.indexed:
            w.line(f"if {red.better(value, r, acc, acc_index)}:")
            with w.indent():
                w.line(f"{acc} = {value}")
                w.line(f"{acc_index} = {r}")
        else:
            w.line(f"{acc} = {red.combine(acc, value)}")


def _accumulate(w: SourceWriter, plan: ReductionPlan, em: PointEmitter, index: Index,
                r: str, accs: list[tuple[str, str | None]], side_store: str | None) -> None:
    """Evaluate the prologue at ``index`` and fold each reduction's operand in."""
    fold_reductions(w, plan.reducers, plan.reduces, em, index, r, accs)
    if side_store is not None:
        for k in plan.side:
            v = plan.body.outputs[k]
            # NOTE: a side output has the input's size, not always its shape (a reshape
            # apart): evaluate it at its own shape's index of the same flat position
            at = Index(tuple(v.shape), flat=side_store)
            w.line(f"o{k}[{side_store}] = {store_expr(em.value(v, at), v.type.dtype)}")


def tree_combine(w: SourceWriter, reducers, shared: list[tuple[str, str | None]],
                 accs: list[tuple[str, str | None]], block: int, simulating: bool) -> None:
    """Combine the block's accumulators in shared memory, halving strides: block-wide
    steps (a barrier each) down to one warp, then warp-level steps, where the lanes of
    warp 0 need only ``__syncwarp`` between them (the simulator has no ``syncwarp``;
    its blocks are one warp, so its block barrier is the same thing). The combining
    order is fixed by the block size alone."""
    for (sh, sh_i), (acc, acc_i) in zip(shared, accs, strict=True):
        w.line(f"{sh}[tid] = {acc}")
        if sh_i:
            w.line(f"{sh_i}[tid] = {acc_i}")
    w.line("cuda.syncthreads()")

    def halving(first: int, sync: str) -> None:
        w.line(f"s = {first}")
        w.line(f"while s >= {1 if first <= 16 else 32}:")
        with w.indent():
            w.line("if tid < s:")
            with w.indent():
                for red, (sh, sh_i) in zip(reducers, shared, strict=True):
                    if red.indexed:
                        w.line(f"if {red.better(f'{sh}[tid + s]', f'{sh_i}[tid + s]', f'{sh}[tid]', f'{sh_i}[tid]')}:")  # noqa: E501
                        with w.indent():
                            w.line(f"{sh}[tid] = {sh}[tid + s]")
                            w.line(f"{sh_i}[tid] = {sh_i}[tid + s]")
                    else:
                        w.line(f"{sh}[tid] = {red.combine(f'{sh}[tid]', f'{sh}[tid + s]')}")
            w.line(sync)
            w.line("s //= 2")

    if block > 32:
        halving(block // 2, "cuda.syncthreads()")
    w.line("if tid < 32:")
    with w.indent():
        halving(16, "cuda.syncthreads()" if simulating else "cuda.syncwarp()")


def reduction_results(w: SourceWriter, reducers, reduces, results, n_red: int) -> dict:
    """Bind each reduction's final value (a mean divided, an arg index converted, the
    op's dtype rounded) to a temporary: ``{id(reduction output): temporary}``."""
    known = {}
    for red, eqn, (acc, acc_i) in zip(reducers, reduces, results, strict=True):
        out = eqn.outs[0]
        if red.indexed:
            value = f"{'I32' if out.type.dtype is dt.int32 else 'I64'}({acc_i})"
        elif red.op_name == "mean":
            value = f"{'F64' if red.acc is dt.float64 else 'F32'}({acc} / {n_red})"
        else:
            value = acc
        name = w.temp("r")
        w.line(f"{name} = {value}")
        known[id(out)] = _rounded(w, name, out)
    return known


def _finish(w: SourceWriter, plan: ReductionPlan, results: list[tuple[str, str | None]],
            leaves: dict, o: str) -> None:
    """Epilogue at output ``o`` from the reductions' final accumulators."""
    known = reduction_results(w, plan.reducers, plan.reduces, results, plan.n_red)
    em = PointEmitter(w, plan.body, leaves, known)
    for k in plan.main:
        v = plan.body.outputs[k]
        w.line(f"o{k}[{o}] = {store_expr(em.value(v, Index(v.shape, flat=o)), v.type.dtype)}")


def _rounded(w: SourceWriter, name: str, out: Var) -> str:
    if out.type.dtype.is_integer and out.type.dtype is not dt.int64:
        w.line(f"{name} = {round_op_result(name, out.type.dtype)}")
    elif out.type.dtype.is_half:
        w.line(f"{name} = {round_op_result(name, out.type.dtype)}")
    return name


def init_accumulators(w: SourceWriter, reducers, prefix: str = ""
                      ) -> list[tuple[str, str | None]]:
    """Each reducer's accumulator (and index) set to its identity; ``prefix`` keeps the
    names of different phases apart (a name has one type in a kernel)."""
    accs = []
    for k, red in enumerate(reducers):
        w.line(f"{prefix}acc{k} = {red.identity}")
        if red.indexed:
            w.line(f"{prefix}acci{k} = I64({NO_INDEX})")
        accs.append((f"{prefix}acc{k}", f"{prefix}acci{k}" if red.indexed else None))
    return accs


def declare_shared(w: SourceWriter, reducers, block: int, prefix: str = ""
                   ) -> list[tuple[str, str | None]]:
    """A shared array per reducer (and one of indices for argmax/argmin)."""
    shared = []
    for k, red in enumerate(reducers):
        w.line(f"{prefix}sh{k} = cuda.shared.array({block}, {type_name(red.acc)})")
        if red.indexed:
            w.line(f"{prefix}shi{k} = cuda.shared.array({block}, TI64)")
        shared.append((f"{prefix}sh{k}", f"{prefix}shi{k}" if red.indexed else None))
    return shared


def output_params(body: Graph):
    params = [Param(f"o{k}", v.type.dtype) for k, v in enumerate(body.outputs)]
    args = [Arg("out", k) for k in range(len(body.outputs))]
    return params, args


def _block_tree(plan: ReductionPlan, block: int, simulating: bool, stem: str, count: int,
                fold: Callable[[SourceWriter, list, dict], None],
                finish: Callable[[SourceWriter, list, dict], None],
                scratch: list | None = None) -> GeneratedKernel:
    """A block per work item ``b`` in ``[0, count)``: ``fold(w, accs, leaves)`` folds the
    block's share into each thread's accumulators, a fixed tree combines them, and
    thread 0 runs ``finish(w, shared, leaves)`` on the block's result. ``scratch``: the
    partials' buffers, passed as ``p<k>`` (and ``pi<k>`` for indices)."""
    params, args = output_params(plan.body)
    leaves = body_leaves(plan.body, params, args)
    for k, (part, part_i) in enumerate(scratch or ()):
        params.append(Param(f"p{k}", part.key[2]))
        args.append(part)
        if part_i:
            params.append(Param(f"pi{k}", dt.int64))
            args.append(part_i)
    w = SourceWriter()
    w.depth = 1
    w.line("tid = cuda.threadIdx.x")
    shared = declare_shared(w, plan.reducers, block)
    w.line("b = cuda.blockIdx.x")
    w.line(f"while b < {count}:")
    with w.indent():
        accs = init_accumulators(w, plan.reducers)
        fold(w, accs, leaves)
        tree_combine(w, plan.reducers, shared, accs, block, simulating)
        w.line("if tid == 0:")
        with w.indent():
            finish(w, [(sh + "[0]", (shi + "[0]") if shi else None) for sh, shi in shared],
                   leaves)
        w.line("cuda.syncthreads()")
        w.line("b += cuda.gridDim.x")
    name, source = kernel_source(stem, params, w.body())
    grid = 1 if simulating else max(1, min(MAX_GRID, count))
    return GeneratedKernel(name, source, params, args, Launch(grid, block), kind="reduction")


def _strided_fold(plan: ReductionPlan, first: str, stop: str, step: int | str, output: str = "b"):
    """Fold the prologue's values at reduced positions ``first, first + step, ...`` below
    ``stop`` of output ``output``."""
    def fold(w: SourceWriter, accs: list, leaves: dict) -> None:
        w.line(f"r = {first}")
        w.line(f"while r < {stop}:")
        with w.indent():
            em = PointEmitter(w, plan.body, leaves)
            index = plan.input_index(em, output, "r")
            _accumulate(w, plan, em, index, "r", accs, em.flat(index) if plan.side else None)
            w.line(f"r += {step}")
    return fold


def _block_kernel(plan: ReductionPlan, block: int, simulating: bool) -> GeneratedKernel:
    return _block_tree(plan, block, simulating, "reduce_rows", plan.n_out,
                       _strided_fold(plan, "tid", str(plan.n_red), block),
                       lambda w, results, leaves: _finish(w, plan, results, leaves, "b"))


def _column_kernel(plan: ReductionPlan, simulating: bool) -> GeneratedKernel:
    params, args = output_params(plan.body)
    leaves = body_leaves(plan.body, params, args)

    def item(w: SourceWriter) -> None:
        accs = init_accumulators(w, plan.reducers)
        _strided_fold(plan, "0", str(plan.n_red), 1, output="o")(w, accs, leaves)
        _finish(w, plan, accs, leaves, "o")
    return grid_stride_kernel("reduce_columns", params, args, plan.n_out, simulating, item,
                              kind="reduction", index="o")


def _two_pass(plan: ReductionPlan, block: int, chunk: int,
              simulating: bool) -> list[GeneratedKernel]:
    chunks = math.ceil(plan.n_red / chunk)
    scratch = [(Arg("scratch", (f"part{k}", plan.n_out * chunks, red.acc)),
                Arg("scratch", (f"parti{k}", plan.n_out * chunks, dt.int64))
                if red.indexed else None)
               for k, red in enumerate(plan.reducers)]

    # pass one: block b reduces chunk (b % chunks) of output (b // chunks) to a partial
    def slice_fold(w: SourceWriter, accs: list, leaves: dict) -> None:
        w.line(f"o = b // {chunks}")
        w.line(f"lo = (b % {chunks}) * {chunk}")
        w.line(f"hi = min(lo + {chunk}, {plan.n_red})")
        _strided_fold(plan, "lo + tid", "hi", block, output="o")(w, accs, leaves)

    def store_partials(w: SourceWriter, results: list, leaves: dict) -> None:
        for k, (value, index) in enumerate(results):
            w.line(f"p{k}[b] = {value}")
            if index:
                w.line(f"pi{k}[b] = {index}")

    # pass two: a block per output folds its partials in the same tree, then finishes
    def partials_fold(w: SourceWriter, accs: list, leaves: dict) -> None:
        w.line("c = tid")
        w.line(f"while c < {chunks}:")
        with w.indent():
            for k, (red, (acc, acc_i)) in enumerate(zip(plan.reducers, accs, strict=True)):
                value = f"p{k}[b * {chunks} + c]"
                if red.indexed:
                    vi = f"pi{k}[b * {chunks} + c]"
                    w.line(f"if {red.better(value, vi, acc, acc_i)}:")
                    with w.indent():
                        w.line(f"{acc} = {value}")
                        w.line(f"{acc_i} = {vi}")
                else:
                    w.line(f"{acc} = {red.combine(acc, value)}")
            w.line(f"c += {block}")

    return [_block_tree(plan, block, simulating, "reduce_partials", plan.n_out * chunks,
                        slice_fold, store_partials, scratch),
            _block_tree(plan, block, simulating, "reduce_combine", plan.n_out,
                        partials_fold,
                        lambda w, results, leaves: _finish(w, plan, results, leaves, "b"),
                        scratch)]


def reduction_kernels(body: Graph, simulating: bool) -> list[GeneratedKernel]:
    """The kernels computing a reduction body, launched in order."""
    plan = ReductionPlan(body)
    block = SIM_BLOCK if simulating else BLOCK
    serial_max, columns_min, two_pass_min, chunk = (
        (SIM_SERIAL_MAX, SIM_COLUMNS_MIN, SIM_TWO_PASS_MIN, SIM_CHUNK) if simulating else
        (SERIAL_MAX, COLUMNS_MIN, TWO_PASS_MIN, CHUNK))
    if plan.serial(serial_max, columns_min):
        return [_column_kernel(plan, simulating)]
    if plan.n_red >= two_pass_min and plan.n_out < 64:
        return _two_pass(plan, block, chunk, simulating)
    return [_block_kernel(plan, block, simulating)]


