"""Building blocks for vmath: an emitter bound to one IRBuilder and one float type.

:class:`Emit` wraps an ``ir.IRBuilder`` for a scalar ``float``/``double`` or a vector of
them, so one piece of code emits the same straight-line IR for both: constants are
splatted, comparisons give ``i1`` or ``<N x i1>``, integer views use ``i32``/``i64`` of
the same shape. Nothing it emits branches or calls anything but intrinsics that lower to
instructions (``llvm.fmuladd``, ``llvm.fma``, ``llvm.roundeven``, ...).

No instruction carries fast-math flags: the algorithms rely on IEEE order of operations.
"""

from __future__ import annotations

from llvmlite import ir

F32 = ir.FloatType()
F64 = ir.DoubleType()

NAN = float("nan")
INF = float("inf")


def _mangle(ty: ir.Type) -> str:
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{_mangle(ty.element)}"
    if isinstance(ty, ir.FloatType):
        return "f32"
    if isinstance(ty, ir.DoubleType):
        return "f64"
    if isinstance(ty, ir.IntType):
        return f"i{ty.width}"
    raise TypeError(f"vmath: no intrinsic name for type {ty}")


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """Declare (once per module) the overloaded intrinsic ``name.<type>`` with an explicit
    signature. ``Module.declare_intrinsic`` builds wrong types for binary/ternary intrinsics
    and cannot mangle vector types."""
    full = f"{name}.{_mangle(ret)}"
    fn = module.globals.get(full)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), full)
    return fn


def float_kind(ty: ir.Type) -> ir.Type:
    """The element type (``float`` or ``double``) of a vmath operand type, or raise."""
    el = ty.element if isinstance(ty, ir.VectorType) else ty
    if not isinstance(el, (ir.FloatType, ir.DoubleType)):
        raise TypeError(f"vmath works on float, double or vectors of them, not {ty}")
    return el


class Emit:
    """Emits IR for one float type ``ty`` (scalar or vector) into ``builder``."""

    def __init__(self, builder: ir.IRBuilder, ty: ir.Type):
        self.b = builder
        self.ty = ty
        self.el = float_kind(ty)
        self.lanes = ty.count if isinstance(ty, ir.VectorType) else 0
        self.f64 = isinstance(self.el, ir.DoubleType)
        self.bits = 64 if self.f64 else 32
        self.mant = 52 if self.f64 else 23
        self.bias = 1023 if self.f64 else 127
        self.ity = self._shape(ir.IntType(self.bits))

    # ---- types and constants ------------------------------------------------------------
    def _shape(self, el: ir.Type) -> ir.Type:
        return ir.VectorType(el, self.lanes) if self.lanes else el

    def like(self, el: ir.Type) -> Emit:
        """An emitter for the same shape with element type ``el`` (float <-> double)."""
        return Emit(self.b, self._shape(el))

    def c(self, value: float) -> ir.Constant:
        if self.lanes:
            return ir.Constant(self.ty, [ir.Constant(self.el, value)] * self.lanes)
        return ir.Constant(self.ty, value)

    def ci(self, value: int) -> ir.Constant:
        el = ir.IntType(self.bits)
        if self.lanes:
            return ir.Constant(self.ity, [ir.Constant(el, value)] * self.lanes)
        return ir.Constant(self.ity, value)

    def _v(self, x):
        return self.c(x) if isinstance(x, (int, float)) else x

    # ---- arithmetic (no fast-math flags) ------------------------------------------------
    def add(self, a, b):
        return self.b.fadd(self._v(a), self._v(b))

    def sub(self, a, b):
        return self.b.fsub(self._v(a), self._v(b))

    def mul(self, a, b):
        return self.b.fmul(self._v(a), self._v(b))

    def div(self, a, b):
        return self.b.fdiv(self._v(a), self._v(b))

    def neg(self, a):
        return self.b.fneg(a)

    def _call(self, name: str, *args, ret=None):
        args = [self._v(a) for a in args]
        ret = ret or args[0].type
        fn = intrinsic(self.b.module, name, ret, [a.type for a in args])
        return self.b.call(fn, args)

    def fma(self, a, b, c):
        """``a*b + c``, fused where the target has FMA (``llvm.fmuladd``)."""
        return self._call("llvm.fmuladd", a, b, c)

    def fma_exact(self, a, b, c):
        """``a*b + c`` with one rounding, always (``llvm.fma``; needs hardware FMA to stay
        inline, which every x86-64-v3 / AArch64 machine has)."""
        return self._call("llvm.fma", a, b, c)

    def poly(self, t, coeffs):
        """Horner: ``coeffs[0] + t*(coeffs[1] + t*(...))``."""
        acc = self.c(coeffs[-1])
        for coeff in reversed(coeffs[:-1]):
            acc = self.fma(acc, t, self.c(coeff))
        return acc

    def fabs(self, x):
        return self._call("llvm.fabs", x)

    def copysign(self, mag, sign):
        return self._call("llvm.copysign", mag, sign)

    def roundeven(self, x):
        return self._call("llvm.roundeven", x)

    def floor(self, x):
        return self._call("llvm.floor", x)

    # ---- comparisons and selects --------------------------------------------------------
    def cmp(self, op: str, a, b):
        """Ordered comparison (false when either side is NaN)."""
        return self.b.fcmp_ordered(op, self._v(a), self._v(b))

    def isnan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def select(self, cond, a, b):
        return self.b.select(cond, self._v(a), self._v(b))

    def or_(self, a, b):
        return self.b.or_(a, b)

    def and_(self, a, b):
        return self.b.and_(a, b)

    def not_(self, a):
        return self.b.not_(a)

    def clamp(self, x, lo: float, hi: float):
        """``x`` limited to ``[lo, hi]``; NaN stays NaN (ordered compares select x)."""
        x = self.select(self.cmp(">", x, hi), hi, x)
        return self.select(self.cmp("<", x, lo), lo, x)

    # ---- integer views ------------------------------------------------------------------
    def as_int(self, x):
        return self.b.bitcast(x, self.ity)

    def as_float(self, i):
        return self.b.bitcast(i, self.ty)

    def to_int(self, x):
        """fptosi of an integral float; NaN becomes 0 first (fptosi of NaN is poison).
        The caller keeps |x| inside the integer range."""
        x = self.select(self.isnan(x), 0.0, x)
        return self.b.fptosi(x, self.ity)

    def to_float(self, i):
        return self.b.sitofp(i, self.ty)

    def signbit(self, x):
        """i1: the sign bit of ``x`` is set (true for -0.0 and negative NaNs)."""
        return self.b.icmp_signed("<", self.as_int(x), self.ci(0))

    def pow2i(self, k):
        """``2**k`` for an integer vector ``k`` inside the normal exponent range."""
        return self.as_float(self.b.shl(self.b.add(k, self.ci(self.bias)), self.ci(self.mant)))

    # ---- precision changes --------------------------------------------------------------
    def to_double(self, x) -> tuple[Emit, ir.Value]:
        """``x`` extended to double (exact), with an emitter for the double shape."""
        if self.f64:
            return self, x
        e64 = self.like(F64)
        return e64, self.b.fpext(x, e64.ty)

    def from_double(self, e64: Emit, x):
        """Round a double result back to this emitter's type (one rounding)."""
        return x if self.f64 else self.b.fptrunc(x, self.ty)
