"""Lowering one equation of a fused graph to one native function.

Interface (what the graph-level program calls)::

    lower_equation(module: llvmlite.ir.Module, eqn: tracejit.ir.core.Eqn, name: str,
                   *, threads: int | None = None) -> llvmlite.ir.Function
    supports(eqn) -> bool
    unsupported_reason(eqn) -> str | None

``lower_equation`` adds ``void name(ptr %buffers)`` to ``module``. ``%buffers`` points
to an array of pointers, one per buffer, ordered ``[*eqn.outs, *eqn.ins]``; each
buffer is a dense, C-contiguous array of its Var's static shape and dtype (a 0-d value
is one element; bool is one byte, 0 or 1; float16 is IEEE half, bfloat16 the upper half
of a float32). The function writes every output completely and reads only inputs. It
is safe for an output to alias an input that an elementwise kernel reads only at the
index it writes (the memory plan's in-place rule): each iteration loads its operands
before storing. It may call ``aligned_alloc``/``free`` (scratch for half-precision
matmuls), BLAS (``scipy_cblas_[sd]gemm64_``, registered with ``llvm.add_symbol`` by
:mod:`.blas`) and the thread pool (``tj_parallel_for``, :mod:`.threadpool`); compile
the module with ``target.compile_module`` in this process.

``threads`` overrides ``TRACEJIT_THREADS`` for this function (``1``: no threading).
Threading is decided here, at lowering time (see :mod:`.parallel`), so compile caches
must key on :func:`thread_settings.parallel_config`.

Every op of the table that can appear after ``optimize()`` lowers:

* ``kernel`` of kind ``elementwise`` (one loop nest over the output, inputs read
  through broadcast strides), ``reduction`` (see :mod:`.lower_reduce`) and
  ``matmul_epilogue`` (BLAS, then the epilogue loop over the result);
* standalone ELEMENTWISE ops, ``cast``/``select``/``clip``, creation ops
  (``constant`` as a private global, ``fill``, ``iota``), ``random_bits``, the index-map
  movement ops (``reshape``, ``expand_dims``, ``squeeze``, ``broadcast_to``,
  ``transpose``, ``slice``, ``reverse``, ``tile``) and ``stop_gradient`` become a
  one-equation elementwise kernel; reductions (incl. ``argmax``/``argmin``) a
  one-equation reduction kernel; ``matmul`` a matmul kernel without epilogue;
* ``gather``, ``scatter_add``, ``one_hot``, ``pad``, ``concat``, ``stack`` and
  ``custom_vjp`` have their own loops (:mod:`.lower_movement`);
* ``conv2d`` and its two gradients (im2col blocks + BLAS), ``max_pool2d``,
  ``avg_pool2d``, ``max_pool2d_select`` and the pooling gradients (:mod:`.lower_nn`).

Example: lower one kernel, compile it, call it with NumPy buffers.

>>> import ctypes, numpy as np
>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> from tracejit.passes import optimize
>>> from tracejit.codegen_cpu.host import target
>>> from tracejit.codegen_cpu.pipeline import CPU_PASSES
>>> b = GraphBuilder("f")
>>> x = b.add_input(tensor_type([5], "f32"))
>>> g = optimize(b.build([b.emit1(ops.MUL, [x, x])]), device_passes=CPU_PASSES)
>>> module = target.new_module("demo")
>>> _ = lower_equation(module, g.eqns[0], "square")
>>> _, addresses = target.compile_module(module)
>>> xs, out = np.arange(5, dtype=np.float32), np.zeros(5, np.float32)
>>> buffers = (ctypes.c_void_p * 2)(out.ctypes.data, xs.ctypes.data)
>>> ctypes.CFUNCTYPE(None, ctypes.c_void_p)(addresses["square"])(ctypes.addressof(buffers))
>>> out
array([ 0.,  1.,  4.,  9., 16.], dtype=float32)
"""

from __future__ import annotations

import contextlib

from llvmlite import ir

from ...ir import GraphBuilder, ops
from ...ir.core import Eqn, Graph
from ...ir.opdef import OpDef, Tag
from ...ir.regions import regions_of
from ..gemm.blas import lower_matmul_body
from ..loops.body import INDEX_MAP_RULES, body_supported, is_generator
from ..loops.pointwise import FnContext
from ..parallel.settings import parallel_settings
from . import conv, host_callback, movement, pool, reduce, scan_sort
from .elementwise import lower_elementwise_body
from .elementwise_ops import supported_elementwise

__all__ = ["lower_equation", "supports", "unsupported_reason", "KERNEL_RULES", "rule_kind",
           "single_eqn_body"]


def _lower_kernel(ctx: FnContext, eqn: Eqn) -> None:
    body, kind = eqn.params["body"], eqn.params["kind"]
    if kind == "elementwise":
        lower_elementwise_body(ctx, body)
    elif kind == "reduction":
        reduce.lower_reduction_body(ctx, body)
    else:
        lower_matmul_body(ctx, body, lower_elementwise_body)


def _lower_matmul(ctx: FnContext, eqn: Eqn) -> None:
    lower_matmul_body(ctx, single_eqn_body(eqn), lower_elementwise_body)


# The ops with a loop nest of their own, keyed by op; every other op is a one-equation
# body of the elementwise or reduction kernel (rule_kind says which).
KERNEL_RULES = {ops.KERNEL: _lower_kernel, ops.MATMUL: _lower_matmul,
                ops.INT8_MATMUL: _lower_matmul, **conv.RULES,
                **pool.RULES, **movement.RULES, **scan_sort.RULES,
                **host_callback.RULES}


def rule_kind(op: OpDef) -> str | None:
    """How the CPU backend lowers ``op``: ``"rule"`` (KERNEL_RULES), ``"reduction"`` or
    ``"elementwise"`` (a one-equation body), or None when it cannot."""
    if op in KERNEL_RULES:
        return "rule"
    if op.has(Tag.CONTROL_FLOW):
        return "region"     # branches and loops around the regions: host/control_flow.py
    if op.has(Tag.REDUCE):
        return "reduction"
    if op in INDEX_MAP_RULES or is_generator(op) or supported_elementwise(op):
        return "elementwise"
    return None


def unsupported_reason(eqn: Eqn) -> str | None:
    """Why ``eqn`` cannot be lowered, or None."""
    name = eqn.op.name
    if name == "kernel":
        body, kind = eqn.params["body"], eqn.params["kind"]
        if kind == "rows":
            return ("a rows kernel is the GPU's (passes/fuse_rows.py); the CPU pipeline "
                    "keeps its reductions as separate kernels")
        why = body_supported(body)
        if why:
            return why
        if kind == "matmul_epilogue":
            mm = [e for e in body.eqns if e.op.has(Tag.LINALG)]
            inputs = {id(v) for v in body.inputs}
            if len(mm) != 1 or any(id(v) not in inputs for v in mm[0].ins):
                return "a matmul_epilogue kernel needs one matmul of kernel inputs"
        if kind == "elementwise" and any(e.op.has(Tag.REDUCE) or e.op.has(Tag.LINALG)
                                         for e in body.eqns):
            return "an elementwise kernel with a reduction or matmul inside"
        return None
    if eqn.op.has(Tag.CONTROL_FLOW):
        for region in regions_of(eqn):
            for inner in region.eqns:
                why = None if inner.op is ops.CONSTANT else unsupported_reason(inner)
                if why:
                    return f"in region {region.name!r}: {why}"
        return None
    if rule_kind(eqn.op) is not None:
        return None
    return f"no CPU lowering for op {name!r}"


def supports(eqn: Eqn) -> bool:
    return unsupported_reason(eqn) is None


def lower_equation(module: ir.Module, eqn: Eqn, name: str, *,
                   threads: int | None = None) -> ir.Function:
    """Emit ``void name(ptr %buffers)`` computing ``eqn`` (see the module docstring)."""
    why = unsupported_reason(eqn)
    if why:
        raise NotImplementedError(f"cannot lower {eqn.op.name}: {why}")
    ctx = FnContext(module, name)
    scope = parallel_settings(threads=threads) if threads else contextlib.nullcontext()
    with scope:
        _lower(ctx, eqn)
    return ctx.finish()


def _lower(ctx: FnContext, eqn: Eqn) -> None:
    kind = rule_kind(eqn.op)
    if kind == "rule":
        KERNEL_RULES[eqn.op](ctx, eqn)
    elif kind == "reduction":
        reduce.lower_reduction_body(ctx, single_eqn_body(eqn))
    else:
        lower_elementwise_body(ctx, single_eqn_body(eqn))


def single_eqn_body(eqn: Eqn) -> Graph:
    """``eqn`` as a one-equation body graph with fresh Vars."""
    b = GraphBuilder(eqn.op.name)
    ins = [b.add_input(v.type) for v in eqn.ins]
    outs = b.emit(eqn.op, ins, dict(eqn.params))
    return b.build(list(outs), stage="body")
