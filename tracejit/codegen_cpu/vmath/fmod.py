"""fmod (C ``fmod``, ``np.fmod``): exact, branch-free for float32 (see docs/cpu_math.md).

float32 works in double: ``r = |x| mod |y|`` is reduced in six fixed steps, each modulo
``Y = |y| * 2^s`` with ``s`` shrinking by 51 bits a step (the largest float32 exponent gap
is 277 bits). In a step ``r / Y < 2^52``, so ``q = trunc(r / Y)`` is off by at most one,
``r - q*Y`` is exact (an FMA; the result has at most 25 significant bits) and one
correction either way makes ``0 <= r < Y``. Every ``Y`` is ``|y|`` times a power of two,
so ``r`` stays congruent to ``|x|`` modulo ``|y|``.

float64 has gaps up to 2098 bits; it uses LLVM's ``frem``, which becomes one libm ``fmod``
call per element (correct, not vectorized).
"""

from __future__ import annotations

from .base import INF, NAN, Emit

_STEP_BITS = 51
_STEPS = 6  # 6 * 51 >= 277, the largest float32 exponent gap


def emit_fmod(e: Emit, x, y):
    if e.f64:
        return e.b.frem(x, y)
    e64, xd = e.to_double(x)
    _, yd = e.to_double(y)
    b = e64.b
    ax, ay = e64.fabs(xd), e64.fabs(yd)
    exponent = e64.ci(52)
    gap = b.sub(b.lshr(e64.as_int(ax), exponent), b.lshr(e64.as_int(ay), exponent))
    r = ax
    for step in range(1, _STEPS + 1):
        s = b.sub(gap, e64.ci(_STEP_BITS * step))
        s = b.select(b.icmp_signed("<", s, e64.ci(0)), e64.ci(0), s)
        # NOTE: x inf/NaN gives a huge gap; keep 2^s finite (those lanes are fixed below)
        s = b.select(b.icmp_signed(">", s, e64.ci(600)), e64.ci(600), s)
        big_y = e64.mul(ay, e64.pow2i(s))
        q = e64._call("llvm.trunc", e64.div(r, big_y))
        r = e64.fma_exact(e64.neg(q), big_y, r)
        r = e64.select(e64.cmp("<", r, 0.0), e64.add(r, big_y), r)
        r = e64.select(e64.cmp(">=", r, big_y), e64.sub(r, big_y), r)
    res = e.copysign(e.from_double(e64, r), x)  # exact: r < |y| on |y|'s grid
    res = e.select(e.cmp("==", e.fabs(y), INF), x, res)  # fmod(x, inf) = x
    bad = e.or_(e.or_(e.isnan(x), e.isnan(y)), e.or_(e.cmp("==", y, 0.0),
                                                     e.cmp("==", e.fabs(x), INF)))
    return e.select(bad, NAN, res)
