"""What each reduction computes, one element at a time: its state (one accumulator, plus a
position for argmax/argmin), the identity it starts from, how an element is combined
in, the same element combined ``n`` times at once, and the result. reduce.py builds the
loop structures around these; the rows ask the op object (``ops.SUM``), not its name."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llvmlite import ir

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ...ir.opdef import OpDef
from ..loops.loops import c64
from ..loops.types import I64, compute_type, convert, is_signed, round_to
from .elementwise_ops import emit_max, emit_min, fm

__all__ = ["Reducer"]


@dataclass
class Reducer:
    eqn: Eqn

    @property
    def op(self) -> OpDef:
        return self.eqn.op

    @property
    def is_arg(self) -> bool:
        """argmax/argmin: the state carries the position too."""
        return self.eqn.op in (ops.ARGMAX, ops.ARGMIN)

    @property
    def in_dtype(self) -> dt.DType:
        return self.eqn.ins[0].dtype

    @property
    def types(self) -> list[ir.Type]:
        ty = compute_type(self.in_dtype)
        return [ty, I64] if self.is_arg else [ty]

    def init(self) -> list[ir.Constant]:
        d = self.in_dtype
        ty = compute_type(d)
        kind = self.op
        if kind in (ops.SUM, ops.MEAN, ops.ANY):
            return [ir.Constant(ty, 0.0 if d.is_float else 0)]
        if kind in (ops.PROD, ops.ALL):
            return [ir.Constant(ty, 1.0 if d.is_float else 1)]
        low = kind in (ops.MAX, ops.ARGMAX)
        if d.is_float:
            value = ir.Constant(ty, float("-inf") if low else float("inf"))
        elif d.is_bool:
            value = ir.Constant(ty, 0 if low else 1)
        else:
            bits = ty.width
            if is_signed(d):
                value = ir.Constant(ty, -(1 << (bits - 1)) if low else (1 << (bits - 1)) - 1)
            else:
                value = ir.Constant(ty, 0 if low else (1 << bits) - 1)
        return [value] + ([c64(0)] if self.is_arg else [])

    def combine(self, b: ir.IRBuilder, state: list, x: ir.Value, pos) -> list:
        """The state after element ``x`` (at position ``pos`` along the axis)."""
        d, kind = self.in_dtype, self.op
        acc = state[0]
        if kind in (ops.SUM, ops.MEAN):
            return [b.fadd(acc, x, flags=fm()) if d.is_float else b.add(acc, x)]
        if kind is ops.PROD:
            return [b.fmul(acc, x, flags=fm()) if d.is_float else b.mul(acc, x)]
        if kind is ops.MAX:
            return [emit_max(b, acc, x, d)]
        if kind is ops.MIN:
            return [emit_min(b, acc, x, d)]
        if kind is ops.ANY:
            return [b.or_(acc, x)]
        if kind is ops.ALL:
            return [b.and_(acc, x)]
        op = ">" if kind is ops.ARGMAX else "<"
        if d.is_float:
            better = b.or_(b.fcmp_ordered(op, x, acc),
                           b.and_(b.fcmp_unordered("uno", x, x), b.fcmp_ordered("ord", acc, acc)))
        elif is_signed(d):
            better = b.icmp_signed(op, x, acc)
        else:
            better = b.icmp_unsigned(op, x, acc)
        return [b.select(better, x, acc), b.select(better, pos, state[1])]

    def repeat(self, b: ir.IRBuilder, x: ir.Value, n: int) -> list:
        """The state after combining the same element ``x`` ``n`` (>= 1) times, without a
        loop: ``n*x`` for sums, ``x**n`` (by squaring) for products, ``x`` itself for the
        idempotent reductions, and position 0 (the first of equals) for arg-reductions.
        Integers wrap exactly as the running sum or product would."""
        d, kind = self.in_dtype, self.op
        if kind in (ops.SUM, ops.MEAN):
            count = ir.Constant(x.type, float(n) if d.is_float else n)
            return [b.fmul(x, count) if d.is_float else b.mul(x, count)]
        if kind is ops.PROD:
            mul = b.fmul if d.is_float else b.mul
            result, power, k = None, x, n
            while k:
                if k & 1:
                    result = power if result is None else mul(result, power)
                k >>= 1
                if k:
                    power = mul(power, power)
            return [result]
        if self.is_arg:
            return [x, c64(0)]
        return [x]

    def finalize(self, b: ir.IRBuilder, state: list) -> ir.Value:
        out = self.eqn.outs[0].dtype
        kind = self.op
        if self.is_arg:
            return convert(b, state[1], dt.int64, out)
        value = state[0]
        if kind is ops.MEAN:
            count = math.prod(self.eqn.ins[0].shape[a] for a in self.eqn.params["axes"])
            value = b.fdiv(value, ir.Constant(value.type, float(count)))
        return round_to(b, value, out)
