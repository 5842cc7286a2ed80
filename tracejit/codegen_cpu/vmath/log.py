"""log, log1p and pow as straight-line IR (see docs/cpu_math.md).

Reduction: ``u = 2^e * m`` with ``m`` in ``[sqrt(1/2), sqrt(2))``, read from the bits;
``f = m - 1`` is exact. Then ``log1p(f) = 2 atanh(s)``, ``s = f / (2 + f)``, written as
``f - s*(f - R)`` with ``R = s^2 T(s^2)`` so that the rounding of ``s`` only touches a
term about ``f/2`` the size of the result.
"""

from __future__ import annotations

from . import coeffs as C
from .base import INF, NAN, Emit
from .exp import exp_core

_SQRT_HALF_BITS = {False: 0x3F3504F3, True: 0x3FE6A09E667F3BCD}  # just below sqrt(1/2)


def _t(e: Emit):
    return C.LOG_F64 if e.f64 else C.LOG_F32


def split_exponent(e: Emit, u):
    """``(e, f)``: ``u = 2^e (1 + f)`` with ``1 + f`` in ``[sqrt(1/2), sqrt(2))``, for a
    positive normal ``u``; ``e`` is an integer vector, ``f`` exact."""
    base = e.ci(_SQRT_HALF_BITS[e.f64])
    ix = e.b.sub(e.as_int(u), base)
    ex = e.b.ashr(ix, e.ci(e.mant))
    m = e.as_float(e.b.add(e.b.and_(ix, e.ci((1 << e.mant) - 1)), base))
    return ex, e.sub(m, 1.0)


def log1p_small(e: Emit, f):
    """``log1p(f) - f`` for ``f`` in ``[sqrt(1/2) - 1, sqrt(2) - 1]``."""
    s = e.div(f, e.add(f, 2.0))
    z = e.mul(s, s)
    r = e.mul(z, e.poly(z, _t(e)))
    return e.neg(e.mul(s, e.sub(f, r)))


def _combine(e: Emit, ex, f, corr):
    """``ex*ln2 + f + corr`` rounded once: ``ex*ln2_hi + f`` as an exact sum ``s + err``
    (Fast2Sum: ``|ex*ln2_hi| >= |f|`` unless ``ex = 0``), the small terms added to ``err``."""
    hi, lo = C.LN2_F64 if e.f64 else C.LN2_F32
    ef = e.to_float(ex)
    a = e.mul(ef, hi)  # exact
    s = e.add(a, f)
    err = e.sub(f, e.sub(s, a))
    return e.add(s, e.add(err, e.fma(ef, lo, corr)))


def _specials(e: Emit, x, y, at_zero):
    """``y`` for ``x`` in ``(at_zero, inf)``; ``-inf`` at ``at_zero``, ``inf`` at inf, NaN
    below and for NaN."""
    ok = e.and_(e.cmp(">", x, at_zero), e.cmp("<", x, INF))
    special = e.select(e.cmp("==", x, at_zero), -INF, e.select(e.cmp("==", x, INF), INF, NAN))
    return e.select(ok, y, special)


def emit_log(e: Emit, x):
    # subnormals: scale into the normal range first
    sub = e.cmp("<", x, 2.0 ** (1 - e.bias))
    xs = e.select(sub, e.mul(x, 2.0 ** e.mant), x)
    ex, f = split_exponent(e, xs)
    ex = e.b.sub(ex, e.b.select(sub, e.ci(e.mant), e.ci(0)))
    return _specials(e, x, _combine(e, ex, f, log1p_small(e, f)), 0.0)


def emit_log1p(e: Emit, x):
    u = e.add(x, 1.0)  # >= 2^-(p) for x > -1: always normal
    ex, f = split_exponent(e, u)
    # NOTE: u = 1 + x rounded; log1p(x) = log(u) + log(1 + c/u) with c = x - (u - 1) the
    # rounding error, exact; c/u is tiny, so log(1 + c/u) = c/u to working precision.
    c = e.div(e.sub(x, e.sub(u, 1.0)), u)
    y = _combine(e, ex, f, e.add(log1p_small(e, f), c))
    y = e.select(e.cmp("==", x, 0.0), x, y)  # keep -0.0
    return _specials(e, x, y, -1.0)


# ---- pow ------------------------------------------------------------------------------

def _two_sum(e: Emit, a, b):
    s = e.add(a, b)
    bb = e.sub(s, a)
    err = e.add(e.sub(a, e.sub(s, bb)), e.sub(b, bb))
    return s, err


def _log_dd(e: Emit, ax):
    """``log(ax)`` as a double-double ``(hi, lo)`` (relative error about 2^-61) for a
    positive finite double ``ax``."""
    sub = e.cmp("<", ax, 2.0**-1022)
    xs = e.select(sub, e.mul(ax, 2.0**54), ax)
    ex, f = split_exponent(e, xs)
    ex = e.b.sub(ex, e.b.select(sub, e.ci(54), e.ci(0)))
    # s = f / (2 + f) as s_hi + s_lo
    d_hi = e.add(f, 2.0)
    d_lo = e.sub(f, e.sub(d_hi, 2.0))
    s_hi = e.div(f, d_hi)
    rho = e.fma_exact(e.neg(s_hi), d_hi, f)
    s_lo = e.div(e.sub(rho, e.mul(s_hi, d_lo)), d_hi)
    # log m = 2s + c0 s^3 + s^3 z T2(z): the c0 s^3 term (up to 1% of the result) is
    # carried as a double-double too, or its rounding would cost ~|y log x| * 2^-60.
    z = e.mul(s_hi, s_hi)
    z_lo = e.fma_exact(s_hi, s_hi, e.neg(z))
    c3 = e.mul(s_hi, z)
    c3_lo = e.fma(s_hi, z_lo, e.fma_exact(s_hi, z, e.neg(c3)))
    c3_lo = e.fma(e.mul(z, 3.0), s_lo, c3_lo)  # (s_hi + s_lo)^3 - s_hi^3
    c0 = C.LOG_F64[0]
    p_hi = e.mul(c3, c0)
    p_lo = e.fma(c3_lo, c0, e.fma_exact(c3, c0, e.neg(p_hi)))
    rest = e.mul(e.mul(c3, z), e.poly(z, C.LOG_F64[1:]))
    ln2_hi, ln2_lo = C.LN2_F64
    ef = e.to_float(ex)
    big, err1 = _two_sum(e, e.mul(ef, ln2_hi), e.add(s_hi, s_hi))
    big, err2 = _two_sum(e, big, p_hi)
    small = e.add(e.add(err1, err2), e.add(e.add(s_lo, s_lo), p_lo))
    small = e.add(small, e.fma(ef, ln2_lo, rest))
    hi = e.add(big, small)
    return hi, e.sub(small, e.sub(hi, big))


def _pow_double(e: Emit, x, y):
    ax = e.fabs(x)
    l_hi, l_lo = _log_dd(e, ax)
    l_hi = e.select(e.cmp("==", ax, 0.0), -INF, e.select(e.cmp("==", ax, INF), INF, l_hi))
    t_hi = e.mul(y, l_hi)
    t_lo = e.fma(y, l_lo, e.fma_exact(y, l_hi, e.neg(t_hi)))
    # exp(t_hi + t_lo); outside the finite range the low part is meaningless (inf - inf)
    lo_t, hi_t = -760.0, 710.0  # beyond: 0 / inf whatever t_lo is
    inside = e.and_(e.cmp(">", t_hi, lo_t), e.cmp("<", t_hi, hi_t))
    t_lo = e.select(inside, t_lo, 0.0)
    mag = exp_core(e, e.clamp(t_hi, lo_t, hi_t), t_lo)
    # signs and C99 special cases (what NumPy's power does)
    y_int = e.cmp("==", e.floor(y), y)  # true for +-inf, false for NaN
    half = e.mul(y, 0.5)
    y_odd = e.and_(y_int, e.cmp("!=", e.floor(half), half))
    res = e.select(e.and_(e.signbit(x), y_odd), e.neg(mag), mag)
    neg_finite = e.and_(e.cmp("<", x, 0.0), e.cmp(">", x, -INF))
    y_frac = e.and_(e.not_(y_int), e.cmp("<", e.fabs(y), INF))
    res = e.select(e.and_(neg_finite, y_frac), NAN, res)
    res = e.select(e.or_(e.isnan(x), e.isnan(y)), e.add(x, y), res)
    one = e.or_(e.cmp("==", y, 0.0), e.cmp("==", x, 1.0))
    one = e.or_(one, e.and_(e.cmp("==", ax, 1.0), e.cmp("==", e.fabs(y), INF)))
    return e.select(one, 1.0, res)


def emit_pow(e: Emit, x, y):
    """``x ** y``; float32 is computed in double and rounded once."""
    e64, xd = e.to_double(x)
    _, yd = e.to_double(y)
    return e.from_double(e64, _pow_double(e64, xd, yd))
