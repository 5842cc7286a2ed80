"""sin, cos and erf as straight-line IR (see docs/cpu_math.md).

sin/cos reduce in double for both float types: ``x = k*pi/2 + r``, ``|r| <= pi/4``, with
pi/2 cut into four pieces (three of 27 bits, so ``k*piece`` is exact for ``|k| < 2^26``);
float32 rounds ``r`` to a float pair ``r_hi + r_lo`` and evaluates short float32
polynomials (``r_lo`` enters as a first-order correction). float32 inputs with
``|x| >= 2^26`` take a Payne-Hanek reduction instead (exact for every float32): with
``x = M 2^E``, ``x 2/pi mod 4 = M (2^E 2/pi mod 4) mod 4``, and the bits of ``2/pi``
that matter for this ``E`` are cut out of a 256-bit constant with funnel shifts.
"""

from __future__ import annotations

from . import vmath_coeffs as C
from .vmath_base import Emit, intrinsic
from .vmath_exp import exp_core

# float64 sin/cos return NaN from here on (see docs/cpu_math.md).
F64_REDUCTION_LIMIT = 2.0**51
_MAGIC = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer kept in the low bits
PAYNE_HANEK_FROM = 2.0**26  # float32 |x| from here on use the Payne-Hanek reduction


def _round_to_quadrant(e: Emit, y):
    """``(k, k mod 4)`` for ``|y| < 2^51``: ``k`` the nearest integer (float), ``k mod 4``
    read from the low bits of ``y + 1.5*2^52`` (no fptosi, so NaN is harmless)."""
    t = e.add(y, _MAGIC)
    return e.sub(t, _MAGIC), e.b.and_(e.as_int(t), e.ci(3))


def _reduce_pio2(e: Emit, x, compensated: bool):
    """``(q, r, r_lo)``: ``x = k*pi/2 + r (+ r_lo)`` in double, ``q = k mod 4`` as an
    integer vector. ``compensated``: ``r + r_lo`` carries about 2^-100 absolute accuracy
    (float64 results); otherwise ``r_lo`` is None and ``r`` is good to ~2^-54."""
    t = e.fma(x, C.TWO_OVER_PI, _MAGIC)
    nk = e.sub(_MAGIC, t)
    q = e.b.and_(e.as_int(t), e.ci(3))
    c1, c2, c3, c4 = C.PIO2_F64
    r1 = e.fma(nk, c1, x)  # exact: k*c1 fits in 53 bits and x ~ k*c1 (Sterbenz)
    if not compensated:
        return q, e.fma(nk, c4, e.fma(nk, c3, e.fma(nk, c2, r1))), None
    b = e.mul(nk, c2)
    b_err = e.fma_exact(nk, c2, e.neg(b))  # zero while |k| < 2^26
    s = e.add(r1, b)
    bb = e.sub(s, r1)
    err = e.add(e.sub(r1, e.sub(s, bb)), e.sub(b, bb))  # TwoSum: r1 + b = s + err
    lo = e.fma(nk, c4, e.fma(nk, c3, e.add(err, b_err)))
    hi = e.add(s, lo)
    return q, hi, e.sub(lo, e.sub(hi, s))


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
    e64, xd = e.to_double(x)
    q, r, r_lo = _reduce_pio2(e64, xd, compensated=e.f64)
    if e.f64:
        s, c = _sin_cos_poly(e, r, r_lo, C.SIN_F64, C.COS_F64)
    else:
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
    if e.f64:
        # NOTE: from 2^51 on, k no longer fits the rounding trick and r is lost: say so
        # with NaN rather than return a plausible wrong value (docs/cpu_math.md).
        y = em.select(em.cmp(">=", em.fabs(x), F64_REDUCTION_LIMIT), float("nan"), y)
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
