"""A whole optimized graph as one LLVM module with one native entry.

``build_program(graph)`` takes a fused graph (``tracejit.passes.optimize``), plans its
memory (``plan_memory``) and emits:

* one function per equation, from the kernel lowering (``lower_equation(module, eqn,
  name)`` -> ``void name(ptr buffers)``, buffers ordered ``[outs..., ins...]``);
* ``void <prefix>_run(ptr io)``: ``io`` holds the data pointers of the arguments, then
  of the results. It computes every buffer's address -- an argument, a result, an
  offset in the arena of temporaries, an offset in the constants segment -- and calls
  the equations' functions in order. Python is nowhere between kernels;
* ``<prefix>_rt``: the arena's and the constants' addresses, filled at load time.

Python calls ``_run`` through the generic trampoline of entry.py.

Buffers follow the memory plan: temporaries share arena buffers once dead, outputs get
result arrays, and a donated argument's memory holds values (in place where the plan
says so) and may *be* a result. ``constant`` equations emit nothing: their values sit
in the constants segment (one block, 64-byte aligned, filled at load time) and are read
there. A result that is an argument, a constant or a repeat of another result is
copied at the end of ``run``, so a result never aliases the caller's array unless that
argument was donated.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from ...ir import ops
from ...ir.core import Eqn, Graph, Var
from ...ir.opdef import Tag
from ...ir.regions import regions_of
from ...passes.memory import MemoryPlan, plan_memory
from ..gemm import blas
from . import target
from .control_flow import CONTROL_RULES
from .entry import PTR, RT_ARENA, RT_CONSTS, RT_SIZE, ArgSpec, Layout, ResultSpec
from .vector_choice import SHORT_LOOP_ELEMENTS, prefer_short_vectors, short_loops

__all__ = ["Built", "LoweringError", "Unsupported", "build_program", "default_lowering"]

ALIGN = 64
I8, I32, I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
VOID = ir.VoidType()


class Unsupported(Exception):
    """An equation the kernel lowering cannot compile (``supports(eqn)`` is false)."""

    def __init__(self, eqn: Eqn, reason: str | None = None):
        default = f"no CPU lowering for op '{eqn.op.name}'"
        super().__init__(default if not reason or reason.startswith("no CPU lowering")
                         else f"{default}: {reason}")
        self.eqn = eqn


class LoweringError(Exception):
    """The kernel lowering failed on an equation it claims to support."""


@dataclass
class Built:
    module: ir.Module
    layout: Layout
    consts: bytes               # the constants segment's initial contents
    plan: MemoryPlan


def default_lowering():
    """The kernel lowering module (``supports``, ``lower_equation``)."""
    return importlib.import_module("tracejit.codegen_cpu.kernels.table")


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _nbytes(var: Var) -> int:
    return var.type.size * var.dtype.itemsize


class _Shared:
    """What the entry function and the functions of its regions share: one module, one
    arena (each region's temporaries and loop buffers get a slice of their own after
    the entry's), one constants segment and the runtime table that locates both."""

    def __init__(self, prefix: str, lowering):
        self.prefix, self.lowering = prefix, lowering
        self.module = target.new_module(prefix)
        self.blob = bytearray()
        self.arena_bytes = 0
        self.regions = 0
        ty = ir.ArrayType(PTR, RT_SIZE)
        self.table = ir.GlobalVariable(self.module, ty, f"{prefix}_rt")
        self.table.initializer, self.table.align = ir.Constant(ty, None), ALIGN
        zty = ir.ArrayType(I8, ALIGN)
        self.zero = ir.GlobalVariable(self.module, zty, f"{prefix}_zero")
        self.zero.initializer, self.zero.align = ir.Constant(zty, None), ALIGN
        self.zero.linkage = "private"

    def reserve(self, nbytes: int) -> int:
        """A slice of the arena of its own (loop buffers, a region's temporaries)."""
        offset = self.arena_bytes
        self.arena_bytes += _align(nbytes)
        return offset


class _Builder:
    def __init__(self, graph: Graph, donated: frozenset[int], shared: _Shared,
                 label: str | None = None):
        self.graph, self.donated, self.shared = graph, donated, shared
        self.prefix, self.lowering, self.module = shared.prefix, shared.lowering, shared.module
        self.label = label or self.prefix       # what this function's kernels are named by
        self.plan = plan_memory(graph, donated)
        self.inputs = {id(v): i for i, v in enumerate(graph.inputs)}
        self.consts: dict[int, int] = {}            # id(var) -> offset in the segment
        self.blob = shared.blob
        self.arena_offsets: dict[int, int] = {}     # buffer index -> arena offset
        # NOTE: constants are read where they sit; an arena buffer only constants were
        # planned into needs no memory.
        constant = {id(e.outs[0]) for e in graph.eqns if e.op is ops.CONSTANT}
        used = {vp.buffer for vp in self.plan.values if id(vp.var) not in constant}
        for buf in self.plan.buffers:
            if buf.kind == "arena" and buf.index in used:
                self.arena_offsets[buf.index] = shared.reserve(buf.nbytes)
        self.results = self._results()

    def _results(self) -> list[ResultSpec]:
        """One spec per graph output: a donated argument it is, or a fresh array."""
        specs, seen = [], set()
        for k, var in enumerate(self.graph.outputs):
            alias = self.plan.output_aliases.get(k)
            # NOTE: a value returned twice is one array and one copy, so that two
            # variables updated to it never share memory.
            if id(var) in seen:
                alias = None
            seen.add(id(var))
            specs.append(ResultSpec(var.shape, var.dtype.name, alias))
        self.output_of_buffer: dict[int, int] = {}
        for k, var in enumerate(self.graph.outputs):
            b = self.plan.buffer_of(var)
            if b is not None and self.plan.buffers[b].kind == "output":
                self.output_of_buffer.setdefault(b, k)
        return specs

    def layout(self) -> Layout:
        args = []
        for i, var in enumerate(self.graph.inputs):
            # NOTE: a donated argument the plan never writes is declared as not donated:
            # the caller need not give it up (a variable whose new value is a fresh
            # result then needs no private copy before the call).
            args.append(ArgSpec(var.shape, var.dtype.name, var.meta.name or "",
                                i in self.plan.written_inputs))
        return Layout(self.graph.name, self.prefix, tuple(args), tuple(self.results),
                      self.shared.arena_bytes, len(self.blob),
                      release_gil=runs_long(self.graph))

    # ---- addresses ---------------------------------------------------------------------------

    def io(self, k: int):
        b = self.b
        p = b.gep(self.io_arg, [I64(k)], inbounds=True, source_etype=PTR)
        return b.load(p, typ=PTR)

    def byte_offset(self, base, offset: int):
        return self.b.gep(base, [I64(offset)], inbounds=True, source_etype=I8)

    def address(self, var: Var):
        """Where ``var`` lives during the call."""
        if id(var) in self.consts:
            return self.byte_offset(self.const_base, self.consts[id(var)])
        b = self.plan.buffer_of(var)
        if b is None:
            if id(var) in self.inputs:
                return self.io(self.inputs[id(var)])
            return self.b.bitcast(self.zero, PTR)       # zero bytes: any valid pointer
        buf = self.plan.buffers[b]
        if buf.kind == "arena":
            return self.byte_offset(self.arena_base, self.arena_offsets[b])
        if buf.kind == "donated":
            return self.io(buf.input_index)
        return self.io(len(self.graph.inputs) + self.output_of_buffer[b])

    def copy(self, dst, src, nbytes: int) -> None:
        if nbytes:
            memcpy = self.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
            self.b.call(memcpy, [dst, src, I64(nbytes), ir.Constant(ir.IntType(1), 0)])

    # ---- the run function ----------------------------------------------------------------

    def emit_run(self, name: str | None = None) -> ir.Function:
        """The function running the graph: ``<prefix>_run``, or (``name``) a region's,
        which has the same signature (``io``: the inputs' addresses, then the
        outputs') and is internal to the module, so LLVM may inline it into its loop."""
        graph = self.graph
        fn = ir.Function(self.module, ir.FunctionType(VOID, [PTR]),
                         name or f"{self.prefix}_run")
        if name is not None:
            fn.linkage = "internal"
        fn.args[0].add_attribute("noalias")
        self.io_arg = fn.args[0]
        self.zero = self.shared.zero
        entry = fn.append_basic_block("entry")
        body = fn.append_basic_block("body")
        self.b = ir.IRBuilder(entry)
        self.entry_block = entry
        table = self.shared.table
        # NOTE: a gep on a global without source_etype yields an opaque `ptr` (llvmlite
        # keeps the array pointer type when given one, and then refuses `ptr` loads).
        self.arena_base = self.b.load(self.b.gep(table, [I32(0), I32(RT_ARENA)]), typ=PTR)
        self.const_base = self.b.load(self.b.gep(table, [I32(0), I32(RT_CONSTS)]), typ=PTR)
        # NOTE: every kernel's pointer array is an alloca of the entry block, so LLVM
        # keeps them in one stack frame and can promote stores of constant addresses.
        pending = []
        for i, eqn in enumerate(graph.eqns):
            if eqn.op is ops.CONSTANT:
                continue
            pending.append((i, eqn, self.b.alloca(ir.ArrayType(PTR, len(eqn.outs) +
                                                               len(eqn.ins)))))
        self.b.branch(body)
        self.b.position_at_end(body)
        slots = {i: s for i, _, s in pending}
        outputs = {id(v) for v in graph.outputs}
        for i, eqn in enumerate(graph.eqns):
            if eqn.op is ops.CONSTANT:
                var = eqn.outs[0]
                if id(var) in outputs and self.plan.buffer_of(var) is not None:
                    self._place_constant_output(var)
                continue
            self.call_equation(i, eqn, slots[i])
        n = len(graph.inputs)
        for k, (var, spec) in enumerate(zip(graph.outputs, self.results, strict=True)):
            if spec.alias is not None:
                continue
            b = self.plan.buffer_of(var)
            mine = (b is not None and self.plan.buffers[b].kind == "output"
                    and self.output_of_buffer[b] == k)
            if not mine:
                self.copy(self.io(n + k), self.address(var), _nbytes(var))
        if name is None and blas.uses_blas(self.module):
            at_entry = ir.IRBuilder(entry)
            at_entry.position_before(entry.terminator)
            blas.pin_blas_threads(at_entry, self.b)
        self.b.ret_void()
        return fn

    def _place_constant_output(self, var: Var) -> None:
        """A returned constant: copy it into the result the plan gave it (only the first
        result holding it; repeats are copied at the end like any repeat)."""
        buf = self.plan.buffers[self.plan.buffer_of(var)]
        if buf.kind == "donated":
            dst = self.io(buf.input_index)
        else:
            dst = self.io(len(self.graph.inputs) + self.output_of_buffer[buf.index])
        self.copy(dst, self.address(var), _nbytes(var))

    def entry_alloca(self, ty: ir.Type, name: str = "") -> ir.Value:
        """Stack memory of the function's entry block, so that a loop reuses it."""
        at_entry = ir.IRBuilder(self.entry_block)
        at_entry.position_before(self.entry_block.terminator)
        return at_entry.alloca(ty, name=name)

    def call_with(self, fn: ir.Function, addresses) -> None:
        """Call a ``void f(ptr io)`` function with ``io`` holding ``addresses``."""
        b = self.b
        slots = self.entry_alloca(ir.ArrayType(PTR, max(len(addresses), 1)))
        for k, address in enumerate(addresses):
            b.store(address, b.gep(slots, [I32(0), I32(k)], inbounds=True))
        b.call(fn, [b.bitcast(slots, PTR)])

    def region_function(self, region: Graph) -> ir.Function:
        """A region compiled into this module as ``void f(ptr io)``."""
        shared = self.shared
        shared.regions += 1
        label = f"{self.prefix}_r{shared.regions}"
        child = _Builder(region, frozenset(), shared, label)
        child.collect_constants()
        return child.emit_run(label)

    def call_equation(self, i: int, eqn: Eqn, slots) -> None:
        b = self.b
        if eqn.op.has(Tag.CONTROL_FLOW):
            self.lower_region_op(i, eqn)
            return
        name = f"{self.label}_e{i}_{eqn.op.name}"
        try:
            fn = self.lowering.lower_equation(self.module, eqn, name)
            if self.label != self.prefix:
                # NOTE: a kernel of a loop body: internal, so LLVM may inline it into the
                # loop (it is called once per iteration with addresses that hardly change)
                fn.linkage = "internal"
        except Exception as exc:
            raise LoweringError(f"lowering equation {i} ({eqn.op.name}) of graph "
                                f"'{self.graph.name}' failed: {exc!r}") from exc
        for k, var in enumerate(eqn.outs + eqn.ins):
            p = b.gep(slots, [I32(0), I32(k)], inbounds=True)
            b.store(self.address(var), p)
        b.call(fn, [b.bitcast(slots, PTR)])

    def collect_constants(self) -> None:
        for eqn in self.graph.eqns:
            if eqn.op is not ops.CONSTANT:
                continue
            var = eqn.outs[0]
            array = np.ascontiguousarray(eqn.params["value"].array,
                                         dtype=var.dtype.np_dtype)
            self.consts[id(var)] = len(self.blob)
            self.blob += array.tobytes()
            self.blob += bytes(_align(len(self.blob)) - len(self.blob))


    def lower_region_op(self, i: int, eqn: Eqn) -> None:
        rule = CONTROL_RULES.get(eqn.op)
        if rule is None:
            raise Unsupported(eqn, f"no CPU lowering for control-flow op {eqn.op.name!r}")
        try:
            rule(self, eqn)
        except Unsupported:
            raise
        except Exception as exc:
            raise LoweringError(f"lowering equation {i} ({eqn.op.name}) of graph "
                                f"'{self.graph.name}' failed: {exc!r}") from exc


def _only_short_loops(graph: Graph) -> bool:
    """The program loops, and every kernel in it, inside loops or not, works on at most
    vector_choice.SHORT_LOOP_ELEMENTS elements (control-flow ops themselves may carry
    large operands: a scan's stacked inputs are sliced, not looped over whole)."""
    def small(g: Graph) -> bool:
        for eqn in g.eqns:
            if eqn.op.has(Tag.CONTROL_FLOW):
                if not all(small(r) for r in regions_of(eqn)):
                    return False
            elif any(v.type.size > SHORT_LOOP_ELEMENTS for v in eqn.ins + eqn.outs):
                return False
        return True
    loops = any(e.op.has(Tag.LOOP) for e in graph.eqns)
    return loops and small(graph)


def _check_supported(graph: Graph, lowering) -> None:
    for eqn in graph.eqns:
        if eqn.op is ops.CONSTANT:
            continue
        if eqn.op.has(Tag.CONTROL_FLOW):
            if eqn.op not in CONTROL_RULES:
                raise Unsupported(eqn)
            for region in regions_of(eqn):
                _check_supported(region, lowering)
        elif not lowering.supports(eqn):
            reason = getattr(lowering, "unsupported_reason", lambda e: None)(eqn)
            raise Unsupported(eqn, reason)


# Elements read and written by a program's equations from which it runs with the GIL
# released: ~30 us of work and up, where releasing and retaking it (~0.2 us alone, but
# up to a switch interval when another thread has taken it meanwhile) is worth it.
RELEASE_GIL_ELEMENTS = 1 << 15


def runs_long(graph: Graph) -> bool:
    """Whether ``graph`` is worth running with the GIL released: it loops, or its
    equations touch at least ``RELEASE_GIL_ELEMENTS`` elements."""
    touched = 0
    for eqn in graph.eqns:
        if eqn.op.has(Tag.LOOP):
            return True
        touched += sum(v.type.size for v in (*eqn.ins, *eqn.outs))
    return touched >= RELEASE_GIL_ELEMENTS


def build_program(graph: Graph, *, donated=(), prefix: str = "tj", lowering=None) -> Built:
    """Emit the LLVM module of ``graph`` (an optimized graph): its kernels, a function
    per region of its control flow, and ``<prefix>_run``. Raises :class:`Unsupported`
    for an equation the lowering cannot compile."""
    lowering = lowering or default_lowering()
    _check_supported(graph, lowering)
    builder = _Builder(graph, frozenset(int(d) for d in donated), _Shared(prefix, lowering))
    builder.collect_constants()
    short = _only_short_loops(graph)
    with short_loops(short):
        builder.emit_run()
    if short:
        # NOTE: on the whole module: LLVM vectorizes a loop body after inlining it into
        # its caller, under the caller's attributes
        for fn in builder.module.functions:
            if not fn.is_declaration:
                prefer_short_vectors(fn)
    return Built(builder.module, builder.layout(), bytes(builder.blob), builder.plan)
