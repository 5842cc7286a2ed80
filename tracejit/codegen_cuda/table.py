"""The GPU's lowering table: one rule per op, keyed by the op object.

A rule turns one equation of an optimized graph into steps (steps.py). Most ops need
no rule of their own: an op a body can compute at a point (elementwise, index maps,
creation, random bits) is a one-equation elementwise kernel, a REDUCE op a
one-equation reduction kernel; row-major reshapes at the top level are aliases (no
copy) and constants are uploaded once. Ops with loop nests of their own -- gather,
scatter, pooling, convolution, matmul -- have rules in kernels/.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir import ops
from ..ir.core import Eqn
from ..ir.opdef import OpDef, Tag
from .kernels import conv_gemm, host_callback, int8, matmul, movement, nn, scan_sort
from .kernels.common import as_body
from .kernels.elementwise import elementwise_kernel
from .kernels.reduce import reduction_kernels
from .kernels.rows import rows_kernels
from .point import point_supported
from .steps import AliasStep, ConstStep, KernelStep, RegionStep, Step

__all__ = ["LOWERING", "lower_eqn", "rule_kind"]

Rule = Callable[[Eqn, bool], list[Step]]

_ALIASES = (ops.RESHAPE, ops.EXPAND_DIMS, ops.SQUEEZE, ops.STOP_GRADIENT)


def _kernels(eqn: Eqn, kernels) -> list[Step]:
    return [KernelStep(eqn, k) for k in kernels]


def _elementwise(eqn: Eqn, simulating: bool) -> list[Step]:
    return _kernels(eqn, [elementwise_kernel(as_body(eqn), simulating, stem=eqn.op.name)])


def _reduction(eqn: Eqn, simulating: bool) -> list[Step]:
    return _kernels(eqn, reduction_kernels(as_body(eqn), simulating))


def _fused(eqn: Eqn, simulating: bool) -> list[Step]:
    body, kind = eqn.params["body"], eqn.params["kind"]
    if kind == "elementwise":
        return _kernels(eqn, [elementwise_kernel(body, simulating)])
    if kind == "reduction":
        return _kernels(eqn, reduction_kernels(body, simulating))
    if kind == "rows":
        return _kernels(eqn, rows_kernels(body, simulating))
    return matmul.matmul_epilogue_steps(eqn, body, simulating)


def _region(eqn: Eqn, simulating: bool) -> list[Step]:
    from ..ir.regions import regions_of
    return [RegionStep(eqn, {g.name: g for g in regions_of(eqn)})]


def _kernel_rule(make) -> Rule:
    return lambda eqn, simulating: _kernels(eqn, make(eqn, simulating))


def _rules_of_kernels(table: dict) -> dict[OpDef, Rule]:
    return {op: _kernel_rule(make) for op, make in table.items()}


def _build() -> dict[OpDef, Rule]:
    table: dict[OpDef, Rule] = {}
    for op in ops.OPS.values():
        if op in _ALIASES:
            table[op] = lambda eqn, sim: [AliasStep(eqn)]
        elif op is ops.CONSTANT:
            table[op] = lambda eqn, sim: [ConstStep(eqn)]
        elif op.has(Tag.CONTROL_FLOW):
            table[op] = _region
        elif op.has(Tag.REDUCE):
            table[op] = _reduction
        elif point_supported(op):
            table[op] = _elementwise
    table[ops.KERNEL] = _fused
    table[ops.MATMUL] = matmul.matmul_steps
    table.update(_rules_of_kernels(movement.RULES))
    table.update(_rules_of_kernels(nn.RULES))
    table.update(_rules_of_kernels(scan_sort.RULES))
    table.update(host_callback.RULES)
    table.update(conv_gemm.STEP_RULES)      # convolutions: im2col + GEMM where it pays
    table.update(_rules_of_kernels(int8.RULES))     # quantized models' 8-bit products
    table.update(int8.STEP_RULES)
    return table


LOWERING: dict[OpDef, Rule] = _build()


def rule_kind(op: OpDef) -> str | None:
    return "rule" if op in LOWERING else None


def lower_eqn(eqn: Eqn, simulating: bool) -> list[Step]:
    rule = LOWERING.get(eqn.op)
    if rule is None:
        raise NotImplementedError(f"no GPU lowering for op {eqn.op.name!r}")
    return rule(eqn, simulating)
