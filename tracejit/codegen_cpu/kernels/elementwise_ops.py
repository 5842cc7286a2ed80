"""One lowering row per elementwise op: compute-type LLVM values in, one value out.

``emit_elementwise(builder, eqn, args)`` computes ``eqn``'s result for one element from
its operands (compute-type values, see lower_types). Semantics follow the op table's
reference implementations:

* integers wrap; ``div`` truncates, ``floordiv`` floors, ``mod`` takes the divisor's
  sign; any of them by zero gives 0, and ``INT_MIN / -1`` wraps to ``INT_MIN``;
* integer ``pow`` by squaring (wrapping); a negative exponent gives 0 except for bases
  1 and -1;
* float ``maximum``/``minimum``/``relu``/``clip`` propagate NaN (``llvm.maximum``);
* ``floordiv``/``mod`` on floats follow NumPy's ``npy_divmod`` exactly;
* transcendentals (exp, expm1, log, log1p, tanh, sigmoid, sin, cos, erf, pow) come from
  :mod:`tracejit.codegen_cpu.vmath`: branch-free polynomial code that vectorizes.
  No libm call is ever emitted for them;
* float16/bfloat16 results are rounded to their type after every op.

Float arithmetic carries :func:`target.fast_math_flags` (``reassoc``, ``contract`` by
default: no assumption about NaN, infinities or signed zeros).
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from ...ir import ops
from ...ir.core import Eqn
from ...ir.dtypes import DType
from ...ir.opdef import OpDef
from ..loops.types import F64, I1, compute_type, convert, intrinsic, is_signed, round_to

__all__ = ["emit_elementwise", "ELEMENTWISE_LOWERINGS", "fm", "emit_max", "emit_min"]


def _vmath():
    from .. import vmath
    return vmath


def fm(dtype: DType | None = None) -> tuple[str, ...]:
    """The fast-math flags for float arithmetic on ``dtype``. Half-precision ops get no
    ``reassoc``: their f32 compute plus rounding after every op becomes native half
    arithmetic (AVX512-FP16), and reassociating that moves overflow past 65504: with it
    LLVM turned ``(x * 2) * w`` into ``(w + w) * x``, infinite where the program is not."""
    from ..host.target import fast_math_flags
    flags = fast_math_flags()
    if dtype is not None and dtype.is_half:
        return tuple(f for f in flags if f != "reassoc")
    return flags


def _fty(ty) -> str:
    return "f64" if ty == F64 else "f32"


def _f(ty, value) -> ir.Constant:
    return ir.Constant(ty, value)


def _i(ty, value) -> ir.Constant:
    return ir.Constant(ty, value)


def _fabs(b, x):
    return intrinsic(b, f"llvm.fabs.{_fty(x.type)}", x.type, [x])


def _isnan(b, x):
    return b.fcmp_unordered("uno", x, x)


def _extremum(b, x, y, dtype: DType, which: str, of_bools):
    if dtype.is_float:
        return intrinsic(b, f"llvm.{which}imum.{_fty(x.type)}", x.type, [x, y])
    if dtype.is_bool:
        return of_bools(x, y)
    kind = ("s" if is_signed(dtype) else "u") + which
    return intrinsic(b, f"llvm.{kind}.i{x.type.width}", x.type, [x, y])


def emit_max(b, x, y, dtype: DType):
    """NaN-propagating maximum (floats), signed/unsigned max (ints), or (bools)."""
    return _extremum(b, x, y, dtype, "max", b.or_)


def emit_min(b, x, y, dtype: DType):
    """NaN-propagating minimum (floats), signed/unsigned min (ints), and (bools)."""
    return _extremum(b, x, y, dtype, "min", b.and_)


# ---- integer division family ---------------------------------------------------------------

def _int_divmod(b, x, y, dtype: DType):
    """(truncated quotient, remainder, zero divisor) with 0 and -1 divisors made safe."""
    ty = x.type
    is_zero = b.icmp_signed("==", y, _i(ty, 0))
    if not is_signed(dtype):
        safe = b.select(is_zero, _i(ty, 1), y)
        return b.udiv(x, safe), b.urem(x, safe), is_zero, None
    minus_one = b.icmp_signed("==", y, _i(ty, -1))
    # NOTE: sdiv INT_MIN / -1 is undefined behaviour in LLVM: divide by 1 instead and
    # negate (wrapping), which is what the reference's floor arithmetic gives.
    safe = b.select(b.or_(is_zero, minus_one), _i(ty, 1), y)
    q = b.sdiv(x, safe)
    q = b.select(minus_one, b.neg(x), q)
    r = b.select(minus_one, _i(ty, 0), b.srem(x, safe))
    return q, r, is_zero, safe


def _int_div(b, x, y, dtype):
    q, _, is_zero, _ = _int_divmod(b, x, y, dtype)
    return b.select(is_zero, _i(x.type, 0), q)


def _signs_differ(b, r, y):
    zero = _i(r.type, 0)
    return b.and_(b.icmp_signed("!=", r, zero),
                  b.xor(b.icmp_signed("<", r, zero), b.icmp_signed("<", y, zero)))


def _int_floordiv(b, x, y, dtype):
    q, r, is_zero, _ = _int_divmod(b, x, y, dtype)
    if is_signed(dtype):
        q = b.select(_signs_differ(b, r, y), b.sub(q, _i(q.type, 1)), q)
    return b.select(is_zero, _i(x.type, 0), q)


def _int_mod(b, x, y, dtype):
    _, r, is_zero, _ = _int_divmod(b, x, y, dtype)
    if is_signed(dtype):
        r = b.select(_signs_differ(b, r, y), b.add(r, y), r)
    return b.select(is_zero, _i(x.type, 0), r)


def _int_pow(b, x, y, dtype):
    """Square-and-multiply over the exponent's bits, wrapping.

    NOTE: a real loop (``while e != 0``), not an unrolled one: unrolled over all 31 or
    63 bits inside a small loop nest, LLVM's unroller and SLP vectorizer took minutes."""
    ty = x.type
    one, zero = _i(ty, 1), _i(ty, 0)
    pre = b.block
    fn = b.function
    head = fn.append_basic_block("pow.head")
    body = fn.append_basic_block("pow.body")
    done = fn.append_basic_block("pow.done")
    b.branch(head)
    b.position_at_end(head)
    result = b.phi(ty)
    base = b.phi(ty)
    e = b.phi(ty)
    result.add_incoming(one, pre)
    base.add_incoming(x, pre)
    e.add_incoming(y, pre)
    b.cbranch(b.icmp_unsigned("!=", e, zero), body, done)
    b.position_at_end(body)
    bit = b.trunc(e, I1)
    result_next = b.select(bit, b.mul(result, base), result)
    base_next = b.mul(base, base)
    e_next = b.lshr(e, one)
    result.add_incoming(result_next, body)
    base.add_incoming(base_next, body)
    e.add_incoming(e_next, body)
    b.branch(head)
    b.position_at_end(done)
    if not is_signed(dtype):
        return result
    negative = b.icmp_signed("<", y, zero)
    odd = b.trunc(y, I1)
    minus_one = _i(ty, -1)
    special = b.select(b.icmp_signed("==", x, one), one,
                       b.select(b.icmp_signed("==", x, minus_one),
                                b.select(odd, minus_one, one), zero))
    return b.select(negative, special, result)


# ---- float division family (NumPy's npy_divmod) ------------------------------------------

def _fmod(b, x, y):
    vm = _vmath()
    return vm.emit_fmod(b, x, y) if hasattr(vm, "emit_fmod") else b.frem(x, y)


def _copysign(b, x, y):
    return intrinsic(b, f"llvm.copysign.{_fty(x.type)}", x.type, [x, y])


def _float_divmod(b, x, y, dtype):
    """(floor quotient, remainder) exactly as NumPy computes them."""
    ty, flags = x.type, fm(dtype)
    zero = _f(ty, 0.0)
    m = _fmod(b, x, y)
    div = b.fdiv(b.fsub(x, m), y)
    adjust = b.and_(b.fcmp_unordered("une", m, zero),
                    b.xor(b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", m, zero)))
    m_adj = b.select(adjust, b.fadd(m, y), m)
    div = b.select(adjust, b.fsub(div, _f(ty, 1.0)), div)
    m_out = b.select(b.fcmp_ordered("==", m, zero), _copysign(b, zero, y), m_adj)
    fl = intrinsic(b, f"llvm.floor.{_fty(ty)}", ty, [div])
    fl = b.select(b.fcmp_ordered(">", b.fsub(div, fl), _f(ty, 0.5)), b.fadd(fl, _f(ty, 1.0)),
                  fl)
    quotient = b.fdiv(x, y, flags=flags)
    q_out = b.select(b.fcmp_ordered("==", div, zero), _copysign(b, zero, quotient), fl)
    y_zero = b.fcmp_ordered("==", y, zero)
    # NOTE: by zero, NumPy's floor_divide returns a / b and its remainder fmod's NaN.
    return b.select(y_zero, quotient, q_out), b.select(y_zero, m, m_out)


# ---- the table -----------------------------------------------------------------------------

Emitter = Callable[..., ir.Value]


def _float_or_int(float_fn, int_fn):
    def emit(b, args, dtype, eqn):
        fn = float_fn if dtype.is_float else int_fn
        return fn(b, *args, dtype)
    return emit


def _unary_math(name):
    def emit(b, args, dtype, eqn):
        return getattr(_vmath(), f"emit_{name}")(b, args[0])
    return emit


def _intr(name):
    def emit(b, args, dtype, eqn):
        x = args[0]
        return intrinsic(b, f"llvm.{name}.{_fty(x.type)}", x.type, [x])
    return emit


def _neg(b, args, dtype, eqn):
    return b.fneg(args[0]) if dtype.is_float else b.neg(args[0])


def _abs(b, args, dtype, eqn):
    x = args[0]
    if dtype.is_float:
        return _fabs(b, x)
    if not is_signed(dtype):
        return x
    return b.select(b.icmp_signed("<", x, _i(x.type, 0)), b.neg(x), x)


def _sign(b, args, dtype, eqn):
    x = args[0]
    ty = x.type
    if dtype.is_float:
        one, zero = _f(ty, 1.0), _f(ty, 0.0)
        # NOTE: np.sign gives +0 for both zeros (its result is 0, never -0) and NaN for
        # NaN; select on "unordered" keeps the NaN's payload.
        rest = b.select(b.fcmp_unordered("uno", x, x), x, zero)
        return b.select(b.fcmp_ordered(">", x, zero), one,
                        b.select(b.fcmp_ordered("<", x, zero), _f(ty, -1.0), rest))
    zero = _i(ty, 0)
    if not is_signed(dtype):
        return b.zext(b.icmp_unsigned("!=", x, zero), ty)
    pos = b.zext(b.icmp_signed(">", x, zero), ty)
    neg = b.zext(b.icmp_signed("<", x, zero), ty)
    return b.sub(pos, neg)


def _square(b, args, dtype, eqn):
    x = args[0]
    return b.fmul(x, x, flags=fm(dtype)) if dtype.is_float else b.mul(x, x)


def _relu(b, args, dtype, eqn):
    x = args[0]
    if dtype.is_float:
        return emit_max(b, x, _f(x.type, 0.0), dtype)
    return emit_max(b, x, _i(x.type, 0), dtype)


def _reciprocal(b, args, dtype, eqn):
    return b.fdiv(_f(args[0].type, 1.0), args[0])


def _rsqrt(b, args, dtype, eqn):
    x = args[0]
    return b.fdiv(_f(x.type, 1.0), intrinsic(b, f"llvm.sqrt.{_fty(x.type)}", x.type, [x]))


def _sigmoid(b, args, dtype, eqn):
    vm = _vmath()
    if hasattr(vm, "emit_sigmoid"):
        return vm.emit_sigmoid(b, args[0])
    # NOTE: exp(-|x|) never overflows; sigmoid(x) = 1/(1+e) for x >= 0, e/(1+e) below.
    x = args[0]
    ty = x.type
    e = vm.emit_exp(b, b.fneg(_fabs(b, x)))
    r = b.fdiv(_f(ty, 1.0), b.fadd(_f(ty, 1.0), e))
    return b.select(b.fcmp_ordered("<", x, _f(ty, 0.0)), b.fmul(e, r), r)


def _binary_float(op):
    def emit(b, x, y, dtype):
        return getattr(b, op)(x, y, flags=fm(dtype))
    return emit


def _binary_int(op):
    def emit(b, x, y, dtype):
        return getattr(b, op)(x, y)
    return emit


def _cmp(op):
    def emit(b, args, dtype, eqn):
        x, y = args
        if dtype.is_float:
            if op == "!=":
                return b.fcmp_unordered("!=", x, y)
            return b.fcmp_ordered(op, x, y)
        if is_signed(dtype):
            return b.icmp_signed(op, x, y)
        return b.icmp_unsigned(op, x, y)
    return emit


def _float_floordiv(b, x, y, dtype):
    return _float_divmod(b, x, y, dtype)[0]


def _float_mod(b, x, y, dtype):
    return _float_divmod(b, x, y, dtype)[1]


def _float_pow(b, x, y, dtype):
    return _vmath().emit_pow(b, x, y)


def _cast(b, args, dtype, eqn):
    return convert(b, args[0], dtype, eqn.params["dtype"])


def _select(b, args, dtype, eqn):
    return b.select(*args)


def _clip(b, args, dtype, eqn):
    x, lo, hi = args
    return emit_min(b, emit_max(b, x, lo, dtype), hi, dtype)


def _identity(b, args, dtype, eqn):
    return args[0]


# One row per elementwise op, keyed by the op object (a test checks every ELEMENTWISE op
# of the table has one).
ELEMENTWISE_LOWERINGS: dict[OpDef, Emitter] = {
    ops.NEG: _neg, ops.ABS: _abs, ops.SIGN: _sign, ops.SQUARE: _square, ops.RELU: _relu,
    ops.EXP: _unary_math("exp"), ops.EXPM1: _unary_math("expm1"), ops.LOG: _unary_math("log"),
    ops.LOG1P: _unary_math("log1p"), ops.TANH: _unary_math("tanh"), ops.SIN: _unary_math("sin"),
    ops.COS: _unary_math("cos"), ops.ERF: _unary_math("erf"), ops.SIGMOID: _sigmoid,
    ops.SQRT: _intr("sqrt"), ops.FLOOR: _intr("floor"), ops.CEIL: _intr("ceil"),
    ops.ROUND: _intr("roundeven"), ops.RSQRT: _rsqrt, ops.RECIPROCAL: _reciprocal,
    ops.ISNAN: lambda b, a, d, e: _isnan(b, a[0]),
    ops.ISFINITE: lambda b, a, d, e: b.fcmp_ordered("<", _fabs(b, a[0]),
                                                  _f(a[0].type, float("inf"))),
    ops.LOGICAL_NOT: lambda b, a, d, e: b.xor(a[0], _i(I1, 1)),
    ops.STOP_GRADIENT: _identity,
    ops.ADD: _float_or_int(_binary_float("fadd"), _binary_int("add")),
    ops.SUB: _float_or_int(_binary_float("fsub"), _binary_int("sub")),
    ops.MUL: _float_or_int(_binary_float("fmul"), _binary_int("mul")),
    ops.DIV: _float_or_int(lambda b, x, y, d: b.fdiv(x, y), _int_div),
    ops.FLOORDIV: _float_or_int(_float_floordiv, _int_floordiv),
    ops.MOD: _float_or_int(_float_mod, _int_mod),
    ops.POW: _float_or_int(_float_pow, _int_pow),
    ops.MAXIMUM: lambda b, a, d, e: emit_max(b, a[0], a[1], d),
    ops.MINIMUM: lambda b, a, d, e: emit_min(b, a[0], a[1], d),
    ops.EQUAL: _cmp("=="), ops.NOT_EQUAL: _cmp("!="), ops.LESS: _cmp("<"),
    ops.LESS_EQUAL: _cmp("<="), ops.GREATER: _cmp(">"), ops.GREATER_EQUAL: _cmp(">="),
    ops.LOGICAL_AND: lambda b, a, d, e: b.and_(a[0], a[1]),
    ops.LOGICAL_OR: lambda b, a, d, e: b.or_(a[0], a[1]),
    ops.LOGICAL_XOR: lambda b, a, d, e: b.xor(a[0], a[1]),
    ops.SELECT: _select, ops.CAST: _cast, ops.CLIP: _clip,
}


def operand_dtype(eqn: Eqn) -> DType:
    """The dtype an elementwise op computes in (select: its value operands')."""
    return eqn.ins[1].dtype if eqn.op is ops.SELECT else eqn.ins[0].dtype


def emit_elementwise(builder: ir.IRBuilder, eqn: Eqn, args: list[ir.Value]) -> ir.Value:
    """One element of ``eqn`` (an ELEMENTWISE op) from compute-type operand values."""
    dtype = operand_dtype(eqn)
    out = eqn.outs[0].dtype
    result = ELEMENTWISE_LOWERINGS[eqn.op](builder, args, dtype, eqn)
    if out.is_half and eqn.op is not ops.CAST:
        result = round_to(builder, result, out)
    assert result.type == compute_type(out), (eqn.op.name, result.type, out)
    return result


def emits_blocks(eqn: Eqn) -> bool:
    """Whether ``eqn``'s lowering adds basic blocks (integer ``pow`` is a loop): such code
    cannot be inserted before a block's terminator."""
    return eqn.op is ops.POW and not operand_dtype(eqn).is_float


def supported_elementwise(op: OpDef) -> bool:
    return op in ELEMENTWISE_LOWERINGS

