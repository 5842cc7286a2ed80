"""exp, expm1, tanh and sigmoid as straight-line IR (see docs/cpu_math.md).

All four share one reduction: ``x = k*ln2 + r_hi + r_lo``, ``|r| <= ln2/2``, ``k`` the
nearest integer to ``x/ln2``, ``r_hi`` exact thanks to a Cody-Waite split of ln 2 (the
high part has few enough bits that ``k*hi`` is exact), and one polynomial,
``expm1(r) = r + r^2 q(r)``. Results are assembled so that the last operation carries
the only large rounding: ``exp(r) = (1 + r_hi) + (r^2 q + r_lo)`` with ``1 + r_hi``
split exactly (Fast2Sum) and the scaling by ``2^k`` exact.
"""

from __future__ import annotations

from . import coeffs as C
from .base import Emit

# Inputs are clamped to these before reduction: beyond them the result is already 0 / inf
# (exp) or -1 (expm1), and 2^k stays a product of two normal numbers.
_EXP_RANGE = {False: (-110.0, 89.0), True: (-760.0, 710.0)}
_EXPM1_LOW = {False: -20.0, True: -40.0}
_TANH_2X_MAX = {False: 20.0, True: 44.0}  # tanh(x) rounds to +-1 for |x| beyond half this


def _ln2(e: Emit):
    return C.LN2_F64 if e.f64 else C.LN2_F32


def _q(e: Emit):
    return C.EXPM1_F64 if e.f64 else C.EXPM1_F32


_MAGIC = {False: 12582912.0, True: 6755399441055744.0}  # 1.5 * 2^p: rounds to integers


def reduce_ln2(e: Emit, x, x_lo=None):
    """``(k, r_hi, r_lo)`` with ``x (+ x_lo) = k*ln2 + r_hi + r_lo``, ``r_hi`` exact and
    ``|r_lo|`` tiny; x must be clamped (or NaN; k is then garbage but never poison)."""
    hi, lo = _ln2(e)
    magic = _MAGIC[e.f64]
    # NOTE: adding 1.5*2^p rounds x/ln2 to the nearest integer k (ties to even) and leaves
    # k in the low mantissa bits: no roundeven, no fptosi (which is poison for NaN).
    t = e.fma(x, C.INV_LN2, magic)
    nk = e.sub(magic, t)
    k = e.b.sub(e.as_int(t), e.as_int(e.c(magic)))
    r_hi = e.fma(nk, hi, x)  # exact: k*hi has few bits, and x ~ k*hi (Sterbenz)
    r_lo = e.mul(nk, lo)
    if x_lo is not None:
        r_lo = e.add(r_lo, x_lo)
    return k, r_hi, r_lo


def expm1_tail(e: Emit, r_hi, r_lo):
    """``expm1(r_hi + r_lo) - r_hi`` (the small part ``r^2 q(r) + r_lo``), ``|r| <= ln2/2``."""
    r = e.add(r_hi, r_lo)
    return e.fma(e.mul(r, r), e.poly(r, _q(e)), r_lo)


def exp_core(e: Emit, x, x_lo=None, split: bool = True):
    """``exp(x + x_lo)`` for x already clamped to the exp range (or NaN); correct into the
    subnormals and to inf. ``split=False``: only for k inside the normal exponent range."""
    k, r_hi, r_lo = reduce_ln2(e, x, x_lo)
    tail = expm1_tail(e, r_hi, r_lo)
    # 1 + r_hi = a + a_err exactly (Fast2Sum), so exp(r) = a + (a_err + tail) rounds once
    a = e.add(r_hi, 1.0)
    a_err = e.sub(r_hi, e.sub(a, 1.0))
    if not split:
        s = e.pow2i(k)
        return e.fma(a, s, e.mul(e.add(a_err, tail), s))
    k1 = e.b.ashr(k, e.ci(1))
    s1 = e.pow2i(k1)
    # NOTE: s1*exp(r) as one fma, then an exact (or the single, final) scaling.
    return e.mul(e.fma(a, s1, e.mul(e.add(a_err, tail), s1)), e.pow2i(e.b.sub(k, k1)))


def emit_exp(e: Emit, x):
    lo, hi = _EXP_RANGE[e.f64]
    return exp_core(e, e.clamp(x, lo, hi))


def _expm1_core(e: Emit, x, k_max: int):
    """``(y, big)``: ``y = 2^k (1 + expm1(r)) - 1`` for clamped ``x``; where ``k > k_max``
    the scale is ``2^(k-1)`` instead and the caller doubles ``y``."""
    k, r_hi, r_lo = reduce_ln2(e, x)
    tail = expm1_tail(e, r_hi, r_lo)
    big = e.b.icmp_signed(">", k, e.ci(k_max))
    k = e.b.select(big, e.b.sub(k, e.ci(1)), k)
    s = e.pow2i(k)
    # s - 1 + s r_hi + s tail: the first two as an exact Fast2Sum (|s - 1| >= |s r_hi|
    # unless k = 0, where s - 1 = 0), s - 1's own rounding (k > p) added back.
    big_part = e.sub(s, 1.0)
    big_err = e.sub(e.sub(s, big_part), 1.0)
    b = e.mul(s, r_hi)
    total = e.add(big_part, b)
    lo = e.add(e.sub(b, e.sub(total, big_part)), e.fma(s, tail, big_err))
    return e.add(total, lo), big


def emit_expm1(e: Emit, x):
    xc = e.clamp(x, _EXPM1_LOW[e.f64], _EXP_RANGE[e.f64][1])
    # NOTE: k reaches emax+1 only next to overflow; there 2**(k-1) and a final *2 keep the
    # scale factor finite (the -1 is far below an ulp at that size).
    y, big = _expm1_core(e, xc, k_max=e.bias)
    y = e.mul(y, e.select(big, 2.0, 1.0))
    # |x| below 2^-(p+1): expm1(x) rounds to x (keeps -0.0 and subnormals exact)
    tiny = e.cmp("<", e.fabs(x), 2.0 ** -(e.mant + 2))
    return e.select(tiny, x, y)


def emit_tanh(e: Emit, x):
    ax = e.fabs(x)
    small = e.cmp("<", ax, C.TANH_SMALL_F64 if e.f64 else C.TANH_SMALL_F32)
    z = e.mul(x, x)
    p = e.fma(e.mul(x, z), e.poly(z, C.TANH_F64 if e.f64 else C.TANH_F32), x)
    # tanh|x| = 1 - 2/(E + 1), E = exp(2|x|) >= e^1.75 where used (so w = 2/(E+1) < 0.3
    # and its roundings count little next to y); NaN passes the clamp
    big_e = exp_core(e, e.clamp(e.add(ax, ax), 0.0, _TANH_2X_MAX[e.f64]), split=False)
    y = e.sub(1.0, e.div(2.0, e.add(big_e, 1.0)))
    return e.copysign(e.select(small, p, y), x)  # odd; also tanh(-0.0) = -0.0


def emit_sigmoid(e: Emit, x):
    lo, _ = _EXP_RANGE[e.f64]
    t = exp_core(e, e.clamp(e.neg(e.fabs(x)), lo, 0.0))  # exp(-|x|) in (0, 1]
    pos = e.cmp(">=", x, 0.0)
    num = e.select(pos, 1.0, t)  # x < 0 (or NaN): exp(x) / (1 + exp(x))
    d = e.add(t, 1.0)
    y0 = e.div(num, d)
    d_lo = e.sub(t, e.sub(d, 1.0))  # 1 + t = d + d_lo
    # num / (d + d_lo) = y0 + (residual - y0 d_lo) / d, and 1/d is y0 (x >= 0) or
    # 1 - y0 (x < 0)
    resid = e.fma(e.neg(y0), d_lo, e.fma(e.neg(y0), d, num))
    return e.fma(resid, e.select(pos, y0, e.sub(1.0, y0)), y0)


__all__ = ["emit_exp", "emit_expm1", "emit_sigmoid", "emit_tanh", "exp_core", "expm1_tail",
           "reduce_ln2"]
