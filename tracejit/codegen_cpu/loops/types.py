"""IR dtypes in LLVM: storage types, compute types, loads and stores, rounding and casts.

Every IR dtype has a *storage* type (how an element sits in memory) and a *compute*
type (the LLVM value a kernel computes with):

=========  ============  ============  ================================================
dtype      storage       compute       notes
=========  ============  ============  ================================================
bool       i8 (0 or 1)   i1            loaded as ``x != 0``, stored zero-extended
int8/uint8 i8            i8            uint8 uses unsigned compares, divisions, casts
int32      i32           i32
int64      i64           i64
float16    half          float         ``fpext`` on load, ``fptrunc`` (RNE) on store
bfloat16   i16           float         upper 16 bits of the float; RNE on store,
                                       NaN -> sign | 0x7FC0 (what ml_dtypes gives)
float32    float         float
float64    double        double
=========  ============  ============  ================================================

Half-precision values live in float registers but always hold a value representable in
their dtype: every op that produces a half rounds its float32 result (:func:`round_to`),
which is what the reference does (each op computes in float32 and rounds once).
"""

from __future__ import annotations

from llvmlite import ir

from ...ir import dtypes as dt
from ...ir.dtypes import DType

I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()
VOID = ir.VoidType()

__all__ = ["declare", "I1", "I8", "I16", "I32", "I64", "F16", "F32", "F64", "PTR", "VOID",
           "storage_type", "raw_type", "compute_type", "const", "load", "store",
           "load_raw", "store_raw", "round_to", "convert", "zero", "intrinsic",
           "is_signed", "elem_ptr"]


def storage_type(dtype: DType) -> ir.Type:
    if dtype is dt.float16:
        return F16
    if dtype is dt.bfloat16:
        return I16
    if dtype is dt.float32:
        return F32
    if dtype is dt.float64:
        return F64
    return ir.IntType(dtype.itemsize * 8)


def raw_type(dtype: DType) -> ir.IntType:
    """An integer type of the element's size: copies through it keep every bit."""
    return ir.IntType(dtype.itemsize * 8)


def compute_type(dtype: DType) -> ir.Type:
    if dtype.is_bool:
        return I1
    if dtype.is_float:
        return F64 if dtype is dt.float64 else F32
    return ir.IntType(dtype.bits)


def is_signed(dtype: DType) -> bool:
    return dtype.kind == "int"


def const(dtype: DType, value) -> ir.Constant:
    """A compute-type constant holding ``value`` converted as NumPy would convert it."""
    import numpy as np

    ty = compute_type(dtype)
    if dtype.is_bool:
        return ir.Constant(I1, int(bool(value)))
    if dtype.is_integer:
        return ir.Constant(ty, int(np.asarray(value).astype(dtype.np_dtype)))
    with np.errstate(all="ignore"):
        exact = float(np.asarray(value).astype(dtype.np_dtype).astype(np.float64))
    return ir.Constant(ty, exact)


def zero(ty: ir.Type) -> ir.Constant:
    return ir.Constant(ty, 0.0 if isinstance(ty, (ir.FloatType, ir.DoubleType)) else 0)


def declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    """The module's function ``name``, declared with ``fnty`` if it is not there yet."""
    found = module.globals.get(name)
    return found if found is not None else ir.Function(module, fnty, name)


def intrinsic(builder: ir.IRBuilder, name: str, ret: ir.Type, args, arg_types=None):
    """Call ``llvm.<name>`` (declared once per module) with an explicit function type."""
    module = builder.module
    arg_types = arg_types or [a.type for a in args]
    fnty = ir.FunctionType(ret, arg_types)
    try:
        fn = module.get_global(name)
    except KeyError:
        fn = None
    if fn is None:
        fn = ir.Function(module, fnty, name)
    return builder.call(fn, args)


def elem_ptr(builder: ir.IRBuilder, base: ir.Value, offset: ir.Value, ty: ir.Type):
    return builder.gep(base, [offset], inbounds=True, source_etype=ty)


def _tag(instr, group):
    if group is not None:
        instr.set_metadata("llvm.access.group", group)
    return instr


def load_raw(builder, base, offset, dtype: DType, group=None) -> ir.Value:
    ty = raw_type(dtype)
    instr = builder.load(elem_ptr(builder, base, offset, ty), typ=ty, align=dtype.itemsize)
    return _tag(instr, group)


def store_raw(builder, value, base, offset, dtype: DType, group=None) -> None:
    ty = raw_type(dtype)
    _tag(builder.store(value, elem_ptr(builder, base, offset, ty), align=dtype.itemsize), group)


def load(builder, base, offset, dtype: DType, group=None) -> ir.Value:
    """Load element ``offset`` of a ``dtype`` buffer as a compute-type value."""
    sty = storage_type(dtype)
    raw = _tag(builder.load(elem_ptr(builder, base, offset, sty), typ=sty,
                            align=dtype.itemsize), group)
    if dtype.is_bool:
        return builder.icmp_unsigned("!=", raw, ir.Constant(I8, 0))
    if dtype is dt.float16:
        return builder.fpext(raw, F32)
    if dtype is dt.bfloat16:
        return builder.bitcast(builder.shl(builder.zext(raw, I32), ir.Constant(I32, 16)), F32)
    return raw


def _bf16_bits(builder, x) -> ir.Value:
    """float32 -> bfloat16 bits: round to nearest even; NaN -> sign | 0x7FC0."""
    bits = builder.bitcast(x, I32)
    upper = builder.lshr(bits, ir.Constant(I32, 16))
    lsb = builder.and_(upper, ir.Constant(I32, 1))
    rounded = builder.lshr(builder.add(bits, builder.add(lsb, ir.Constant(I32, 0x7FFF))),
                           ir.Constant(I32, 16))
    nan = builder.or_(builder.and_(upper, ir.Constant(I32, 0x8000)), ir.Constant(I32, 0x7FC0))
    isnan = builder.fcmp_unordered("uno", x, x)
    return builder.trunc(builder.select(isnan, nan, rounded), I16)


def store(builder, value, base, offset, dtype: DType, group=None) -> None:
    """Store a compute-type value as element ``offset`` of a ``dtype`` buffer."""
    if dtype.is_bool:
        value = builder.zext(value, I8)
    elif dtype is dt.float16:
        value = builder.fptrunc(value, F16)
    elif dtype is dt.bfloat16:
        value = _bf16_bits(builder, value)
    sty = storage_type(dtype)
    _tag(builder.store(value, elem_ptr(builder, base, offset, sty), align=dtype.itemsize), group)


def round_to(builder, value, dtype: DType) -> ir.Value:
    """A float32 value rounded to the nearest ``dtype`` value (halves only; else as is)."""
    if dtype is dt.float16:
        return builder.fpext(builder.fptrunc(value, F16), F32)
    if dtype is dt.bfloat16:
        bits = builder.zext(_bf16_bits(builder, value), I32)
        return builder.bitcast(builder.shl(bits, ir.Constant(I32, 16)), F32)
    return value


def _f64_to_f32_odd(builder, x) -> ir.Value:
    """float64 -> float32 rounded to odd, so that a second rounding (to a half type) gives
    the correctly rounded result of a direct float64 -> half conversion."""
    r = builder.fptrunc(x, F32)
    back = builder.fpext(r, F64)
    inexact = builder.fcmp_ordered("one", back, x)
    bits = builder.bitcast(r, I32)
    # NOTE: RNE rounded away from zero when |back| > |x|: step the magnitude down one ulp,
    # then set the sticky (lowest) bit. NaN compares unordered and stays as it is.
    away = builder.fcmp_ordered(">", intrinsic(builder, "llvm.fabs.f64", F64, [back]),
                                intrinsic(builder, "llvm.fabs.f64", F64, [x]))
    toward = builder.select(away, builder.sub(bits, ir.Constant(I32, 1)), bits)
    odd = builder.or_(toward, ir.Constant(I32, 1))
    return builder.bitcast(builder.select(inexact, odd, bits), F32)


def convert(builder, x, src: DType, dst: DType) -> ir.Value:
    """``cast[dst]`` of a compute-type value, with the reference's semantics: float -> int
    truncates toward zero and saturates (NaN -> 0); anything -> bool is ``x != 0``;
    bool -> number is 0 or 1; halves round once from the exact value."""
    if src is dst:
        return x
    sty, dty = compute_type(src), compute_type(dst)
    if dst.is_bool:
        if src.is_float:
            return builder.fcmp_unordered("une", x, zero(sty))
        return builder.icmp_unsigned("!=", x, zero(sty))
    if src.is_bool:
        if dst.is_float:
            return builder.uitofp(x, dty)
        return builder.zext(x, dty)
    if src.is_integer and dst.is_integer:
        if dty.width < sty.width:
            return builder.trunc(x, dty)
        if dty.width > sty.width:
            return builder.sext(x, dty) if is_signed(src) else builder.zext(x, dty)
        return x
    if src.is_integer:      # -> float
        if dst is dt.float64 or dst is dt.float32 or src.bits <= 16:
            # NOTE: int8/uint8 are exact in float32, so one rounding to a half suffices.
            out = builder.sitofp(x, dty) if is_signed(src) else builder.uitofp(x, dty)
            return round_to(builder, out, dst)
        wide = builder.sitofp(x, F64)     # int32/int64 -> half: round once from exact
        return round_to(builder, _f64_to_f32_odd(builder, wide), dst)
    if dst.is_integer:      # float -> int: saturating, NaN -> 0
        kind = "fptosi" if is_signed(dst) else "fptoui"
        name = f"llvm.{kind}.sat.i{dty.width}.{'f64' if sty == F64 else 'f32'}"
        return intrinsic(builder, name, dty, [x])
    # float -> float
    if sty == dty:          # f32 <-> halves, half <-> half
        return round_to(builder, x, dst)
    if dty == F64:
        return builder.fpext(x, F64)
    if dst is dt.float32:
        return builder.fptrunc(x, F32)
    return round_to(builder, _f64_to_f32_odd(builder, x), dst)
