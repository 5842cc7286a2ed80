"""sin, cos and erf as straight-line IR (see docs/cpu_math.md).

sin/cos: ``x = k*pi/2 + r``, ``|r| <= pi/4``, then a polynomial and the quadrant
``k mod 4``. float32 reduces in double with pi/2 cut into four pieces (three of 27 bits,
so ``k*piece`` is exact for ``|k| < 2^26``), rounds ``r`` to a float pair
``r_hi + r_lo`` and evaluates short float32 polynomials (``r_lo`` enters as a
first-order correction); float32 inputs with ``|x| >= 2^26`` take a Payne-Hanek
reduction instead: with ``x = M 2^E``, ``x 2/pi mod 4 = M (2^E 2/pi mod 4) mod 4``, and
the bits of ``2/pi`` that matter for this ``E`` are cut out of a 256-bit constant with
funnel shifts. float64 takes an integer Payne-Hanek reduction for every ``|x| > pi/4``:
192 bits of ``2/pi`` picked per lane from a 1280-bit table and multiplied by the 53-bit
mantissa in 32-bit limbs, so ``r`` is right to about 2^-137 for every double.
"""

from __future__ import annotations

from llvmlite import ir

from . import coeffs as C
from .base import Emit, intrinsic
from .exp import exp_core

_PIO4 = 0.7853981633974483  # float64 |x| up to here need no reduction
_MAGIC = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer kept in the low bits
PAYNE_HANEK_FROM = 2.0**26  # float32 |x| from here on use the Payne-Hanek reduction


def _round_to_quadrant(e: Emit, y):
    """``(k, k mod 4)`` for ``|y| < 2^51``: ``k`` the nearest integer (float), ``k mod 4``
    read from the low bits of ``y + 1.5*2^52`` (no fptosi, so NaN is harmless)."""
    t = e.add(y, _MAGIC)
    return e.sub(t, _MAGIC), e.b.and_(e.as_int(t), e.ci(3))


def _reduce_pio2(e: Emit, x):
    """``(q, r)``: ``x = k*pi/2 + r`` in double, ``q = k mod 4`` as an integer vector, ``r``
    good to about 2^-54 absolute (float32 results; from 2^26 on garbage)."""
    t = e.fma(x, C.TWO_OVER_PI, _MAGIC)
    nk = e.sub(_MAGIC, t)
    q = e.b.and_(e.as_int(t), e.ci(3))
    c1, c2, c3, c4 = C.PIO2_F64
    r1 = e.fma(nk, c1, x)  # exact: k*c1 fits in 53 bits and x ~ k*c1 (Sterbenz)
    return q, e.fma(nk, c4, e.fma(nk, c3, e.fma(nk, c2, r1)))


def _payne_hanek_f32(e32: Emit, e64: Emit, x, xd):
    """``(q, r)`` for a float32 ``x`` with ``|x| >= 2^26`` (other lanes: garbage)."""
    b = e64.b
    i32 = e32.as_int(x)
    expo = b.lshr(b.and_(i32, e32.ci(0x7FFFFFFF)), e32.ci(23))
    mant = b.or_(b.and_(i32, e32.ci(0x7FFFFF)), e32.ci(0x800000))
    # x = M 2^E, E = expo - 150; bit o = E - 2 of 2/pi (0-based) is the 2^1 bit of
    # 2^E 2/pi mod 4. Lanes below 2^26 get o clamped to stay inside the constant.
    o = b.sub(expo, e32.ci(152))
    o = b.select(b.icmp_signed("<", o, e32.ci(0)), e32.ci(0), o)
    o = b.zext(o, e64.ity)
    words = [e64.ci(w) for w in C.TWO_OVER_PI_BITS]
    second = b.icmp_unsigned(">=", o, e64.ci(64))
    w0, w1, w2 = (b.select(second, words[i + 1], words[i]) for i in range(3))
    sh = b.and_(o, e64.ci(63))
    fshl = intrinsic(b.module, "llvm.fshl", e64.ity, [e64.ity] * 3)
    hi = b.call(fshl, [w0, w1, sh])  # bits o .. o+63
    lo = b.call(fshl, [w1, w2, sh])  # bits o+64 .. o+127
    chunks = [  # 29-bit pieces (bits 0-28, 29-57, 58-86): M * piece is exact in double
        b.lshr(hi, e64.ci(35)),
        b.lshr(b.and_(hi, e64.ci((1 << 35) - 1)), e64.ci(6)),
        b.or_(b.shl(b.and_(hi, e64.ci(63)), e64.ci(23)), b.lshr(lo, e64.ci(41))),
    ]
    # signed M: the reduction of -x is the negation of that of x
    m = e64.copysign(e64.to_float(b.zext(mant, e64.ity)), xd)
    p0, p1, p2 = (e64.mul(e64.mul(m, e64.to_float(c)), 2.0 ** (-27 - 29 * i))
                  for i, c in enumerate(chunks))
    p0 = e64.sub(p0, e64.mul(e64.floor(e64.mul(p0, 0.25)), 4.0))  # mod 4, exact
    kf, q = _round_to_quadrant(e64, e64.add(p0, p1))
    # (p0 - k) is exact; adding p1 rounds only where the result is not small
    frac = e64.add(e64.add(e64.sub(p0, kf), p1), p2)
    return q, e64.mul(frac, 1.5707963267948966)


# ---- float64 Payne-Hanek ------------------------------------------------------------------

TABLE_PAD = 55  # zero bits before 2/pi's first fraction bit: the window of the smallest
#                  exponent that takes this path (|x| = 1/2, E = -53) then starts at bit 0
_TABLE_WORDS = 20  # up to the window of the largest exponent (inf/NaN lanes, E = 972)
_LOW32 = 0xFFFFFFFF
_PIO2_HI = 1.5707963267948966
_PIO2_LO = 6.123233995736766e-17


def two_over_pi_words(words: int = _TABLE_WORDS, pad: int = TABLE_PAD) -> list[int]:
    """``words`` unsigned 64-bit words, most significant first, of the binary fraction of
    2/pi after ``pad`` zero bits. pi comes from Machin's formula in integer fixed point
    (64 guard bits), so no digits are stored; tests check it against mpmath."""
    bits = 64 * words - pad
    scale = bits + 64

    def arctan_inverse(n: int) -> int:  # arctan(1/n) * 2^scale, truncated per term
        total, power, k = 0, (1 << scale) // n, 1
        while power:
            total += (power // k) if k % 4 == 1 else -(power // k)
            power //= n * n
            k += 2
        return total

    pi = 16 * arctan_inverse(5) - 4 * arctan_inverse(239)
    fraction = (1 << (bits + 1 + scale)) // pi  # floor(2^bits * 2/pi)
    return [(fraction >> (64 * (words - 1 - i))) & (2**64 - 1) for i in range(words)]


def _table(module: ir.Module) -> ir.GlobalVariable:
    """The 2/pi table as a private constant of ``module`` (one per module)."""
    table = module.globals.get("tracejit_two_over_pi")
    if table is None:
        i64 = ir.IntType(64)
        ty = ir.ArrayType(i64, _TABLE_WORDS)
        signed = [w - 2**64 if w >= 2**63 else w for w in _TWO_OVER_PI_WORDS]
        table = ir.GlobalVariable(module, ty, "tracejit_two_over_pi")
        table.global_constant = True
        table.linkage = "private"
        table.initializer = ir.Constant(ty, [ir.Constant(i64, w) for w in signed])
    return table


def _table_word(e: Emit, index):
    """Word ``index`` (an ``i64`` per lane, inside the table) of the 2/pi table."""
    b = e.b
    table = _table(b.module)
    zero = ir.Constant(ir.IntType(64), 0)
    if not e.lanes:
        return b.load(b.gep(table, [zero, index], inbounds=True))
    word = ir.Constant(e.ity, ir.Undefined)
    for lane in range(e.lanes):  # scalar loads; LLVM forms a gather where it pays
        at = ir.Constant(ir.IntType(32), lane)
        value = b.load(b.gep(table, [zero, b.extract_element(index, at)], inbounds=True))
        word = b.insert_element(word, value, at)
    return word


def _two_sum(e: Emit, a, b):
    """``a + b = s + err`` exactly (Knuth's TwoSum, no ordering needed)."""
    s = e.add(a, b)
    bb = e.sub(s, a)
    return s, e.add(e.sub(a, e.sub(s, bb)), e.sub(b, bb))


def _payne_hanek_f64(e: Emit, x):
    """``(q, r, r_lo)`` for a float64 ``x`` with ``1/2 <= |x| < inf`` (other lanes:
    garbage, no undefined behaviour). With ``x = M 2^E`` (``M`` the 53-bit integer
    mantissa) only the bits of 2/pi worth ``2^1`` and less after scaling by ``2^E``
    matter mod 4; 192 of them (``W``) give ``x 2/pi mod 4 = M W 2^-190 mod 4`` to
    ``2^-137``. ``M W`` is formed in 32-bit limbs, columns of at most six ``pmuludq``
    halves, and only its limbs below ``2^192`` (the rest are multiples of 4) are kept."""
    b = e.b
    low32 = e.ci(_LOW32)
    bits = e.as_int(x)
    expo = b.lshr(b.and_(bits, e.ci(2**63 - 1)), e.ci(52))
    mant = b.or_(b.and_(bits, e.ci(2**52 - 1)), e.ci(2**52))
    start = b.sub(expo, e.ci(1022))  # table bit of 2/pi's 2^(1-E) place (see TABLE_PAD)
    start = b.select(b.icmp_signed("<", start, e.ci(0)), e.ci(0), start)
    first, shift = b.lshr(start, e.ci(6)), b.and_(start, e.ci(63))
    words = [_table_word(e, b.add(first, e.ci(i))) for i in range(4)]
    fshl = intrinsic(b.module, "llvm.fshl", e.ity, [e.ity] * 3)
    window = [b.call(fshl, [words[i], words[i + 1], shift]) for i in range(3)]
    w = []  # 32-bit limbs of W, least significant first
    for part in reversed(window):
        w += [b.and_(part, low32), b.lshr(part, e.ci(32))]
    m = [b.and_(mant, low32), b.lshr(mant, e.ci(32))]
    cols = [e.ci(0)] * 6
    for i, mi in enumerate(m):
        for j in range(6 - i):
            p = b.mul(mi, w[j])  # 32 x 32 -> 64 bits: exact
            cols[i + j] = b.add(cols[i + j], b.and_(p, low32))
            if i + j < 5:
                cols[i + j + 1] = b.add(cols[i + j + 1], b.lshr(p, e.ci(32)))
    for c in range(5):
        cols[c + 1] = b.add(cols[c + 1], b.lshr(cols[c], e.ci(32)))
    # limb 5 holds k mod 4 (its top two bits) and 30 fraction bits; adding half a
    # quadrant first rounds k to nearest and leaves the fraction signed, in [-1/2, 1/2)
    top = b.and_(b.add(cols[5], e.ci(1 << 29)), low32)
    q = b.lshr(top, e.ci(30))
    terms = [e.to_float(b.sub(b.and_(top, e.ci((1 << 30) - 1)), e.ci(1 << 29)))]
    terms += [e.mul(e.to_float(b.and_(cols[c], low32)), 2.0 ** (-32 * (5 - c)))
              for c in (4, 3, 2)]
    # the four exact terms summed without loss (the top ones cancel for x near k pi/2)
    s, err1 = _two_sum(e, terms[2], terms[3])
    s, err2 = _two_sum(e, terms[1], s)
    hi, err3 = _two_sum(e, terms[0], s)
    lo = e.add(err3, e.add(err2, err1))
    frac = e.add(hi, lo)
    frac_lo = e.sub(lo, e.sub(frac, hi))
    # r = frac 2^-30 pi/2 in double-double
    frac, frac_lo = e.mul(frac, 2.0**-30), e.mul(frac_lo, 2.0**-30)
    p = e.mul(frac, _PIO2_HI)
    p_lo = e.add(e.fma_exact(frac, _PIO2_HI, e.neg(p)),
                 e.fma(frac, _PIO2_LO, e.mul(frac_lo, _PIO2_HI)))
    r = e.add(p, p_lo)
    r_lo = e.sub(p_lo, e.sub(r, p))
    # the reduction of -x is the negation of that of x
    negative = e.signbit(x)
    q = b.select(negative, b.and_(b.sub(e.ci(0), q), e.ci(3)), q)
    return q, e.select(negative, e.neg(r), r), e.select(negative, e.neg(r_lo), r_lo)


_TWO_OVER_PI_WORDS = two_over_pi_words()


def _sin_cos_poly(e: Emit, r, r_lo, sin_coeffs, cos_coeffs):
    """``(sin, cos)`` of ``r + r_lo`` (``|r| <= pi/4``, ``r_lo`` below half an ulp of r);
    ``r_lo`` enters to first order."""
    z = e.mul(r, r)
    z_lo = e.fma_exact(r, r, e.neg(z))
    s = e.add(r, e.fma(e.mul(r, z), e.poly(z, sin_coeffs), r_lo))
    # cos(r + r_lo) = 1 - (z + z_lo)/2 + z^2 C(z) - r r_lo; the rounding of w = 1 - z/2
    # is added back
    hz = e.mul(z, 0.5)
    w = e.sub(1.0, hz)
    small = e.fma(e.mul(z, z), e.poly(z, cos_coeffs), e.neg(e.fma(z_lo, 0.5, e.mul(r, r_lo))))
    return s, e.add(w, e.add(e.sub(e.sub(1.0, w), hz), small))


def _sin_or_cos(e: Emit, x, cos: bool):
    if e.f64:
        # one reduction for every float64: exact Payne-Hanek above pi/4, none below
        q_ph, r_ph, r_lo_ph = _payne_hanek_f64(e, x)
        small = e.b.not_(e.cmp(">", e.fabs(x), _PIO4))  # NaN lanes too: they stay NaN
        q = e.b.select(small, e.ci(0), q_ph)
        r, r_lo = e.select(small, x, r_ph), e.select(small, 0.0, r_lo_ph)
        r = e.select(e.cmp("==", e.fabs(x), float("inf")), float("nan"), r)
        s, c = _sin_cos_poly(e, r, r_lo, C.SIN_F64, C.COS_F64)
    else:
        e64, xd = e.to_double(x)
        q, r = _reduce_pio2(e64, xd)
        q_ph, r_ph = _payne_hanek_f32(e, e64, x, xd)
        ax = e64.fabs(xd)
        large = e64.and_(e64.cmp(">=", ax, PAYNE_HANEK_FROM), e64.cmp("<", ax, float("inf")))
        q = e.b.trunc(e64.b.select(large, q_ph, q), e.ity)
        r = e64.select(large, r_ph, r)
        # float32 polynomials on r = r_hi + r_lo
        r_hi = e.from_double(e64, r)
        r_lo = e.from_double(e64, e64.sub(r, e.b.fpext(r_hi, e64.ty)))
        s, c = _sin_cos_poly(e, r_hi, r_lo, C.SIN_F32, C.COS_F32)
    em = e
    if cos:
        q = em.b.add(q, em.ci(1))  # cos x = sin(x + pi/2)
    b = em.b
    odd = b.icmp_signed("!=", b.and_(q, em.ci(1)), em.ci(0))
    neg = b.icmp_signed("!=", b.and_(q, em.ci(2)), em.ci(0))
    y = em.select(odd, c, s)
    y = em.select(neg, em.neg(y), y)
    if not cos:
        y = em.select(em.cmp("==", x, 0.0), x, y)  # sin(-0.0) = -0.0
    return y


def emit_sin(e: Emit, x):
    return _sin_or_cos(e, x, cos=False)


def emit_cos(e: Emit, x):
    return _sin_or_cos(e, x, cos=True)


def emit_erf(e: Emit, x):
    ax = e.fabs(x)
    # |x| < ERF_SMALL: x * P(x^2), P(0) = 2/sqrt(pi) kept as hi + lo; x is scaled up by
    # 2^p first so x*lo does not underflow and subnormal results round once
    p, lo = (C.ERF_P_F64, C.ERF_P_F64_C0_LO) if e.f64 else (C.ERF_P_F32, C.ERF_P_F32_C0_LO)
    up = 2.0 ** (e.mant + 1)
    xs = e.mul(x, up)
    z = e.mul(x, x)
    tail = e.fma(z, e.poly(z, p[1:]), lo)
    small = e.mul(e.fma(xs, p[0], e.mul(xs, tail)), 1.0 / up)
    # above: 1 - exp(Q(|x| - ERF_SMALL)), Q ~ log(erfc), with Q's last step c0 + t*rest
    # kept as hi + lo (its rounding would be ~1/4 ulp of erf near ERF_SMALL)
    q_coeffs = C.ERF_Q_F64 if e.f64 else C.ERF_Q_F32
    top = C.ERF_ONE_F64 if e.f64 else C.ERF_ONE_F32
    t = e.sub(e.clamp(ax, 0.0, top), C.ERF_SMALL)
    rest = e.poly(t, q_coeffs[1:])
    prod = e.mul(t, rest)
    prod_err = e.fma_exact(t, rest, e.neg(prod))
    q = e.add(prod, q_coeffs[0])
    qq = e.sub(q, prod)
    q_lo = e.add(e.add(e.sub(prod, e.sub(q, qq)), e.sub(q_coeffs[0], qq)), prod_err)
    one_minus = e.sub(1.0, exp_core(e, q, q_lo))
    saturate = C.ERF_SATURATE_F64 if e.f64 else C.ERF_SATURATE_F32
    big = e.select(e.cmp(">=", ax, saturate), 1.0, one_minus)
    return e.copysign(e.select(e.cmp("<", ax, C.ERF_SMALL), small, big), x)  # odd
