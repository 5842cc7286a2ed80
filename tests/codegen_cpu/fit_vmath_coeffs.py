"""Fit the polynomial coefficients of tracejit.codegen_cpu.vmath and write vmath/coeffs.py.

Not a test (pytest does not collect it): run it to regenerate the coefficient module::

    .venv/bin/python tests/codegen_cpu/fit_vmath_coeffs.py            # writes the module
    .venv/bin/python tests/codegen_cpu/fit_vmath_coeffs.py --check    # compares, writes nothing

Method. Every approximation is a polynomial ``p(t) = sum c_j t**j`` (Horner) in a reduced
variable, fitted to a function computed with mpmath at 50 digits. The fit minimizes the
*weighted* maximum error ``max |w(t) * (p(t) - g(t))|``, where ``w`` turns an error in ``p``
into the relative error of the final result (see each entry below), using Lawson's
iteratively reweighted least squares on Chebyshev nodes, which converges to the minimax
(Remez) solution. float32 coefficients are rounded one at a time, lowest degree first,
refitting the remaining ones after each rounding, so the rounding of one coefficient is
absorbed by the others. float64 coefficients are rounded to nearest once.

The split constants (ln 2, pi/2 in Cody-Waite pieces) are cut from 60-digit mpmath values:
each "hi" piece keeps few enough significant bits that ``k * piece`` is exact for every
integer ``k`` the reduction can produce.

Needs mpmath (a dependency of the optional peers; only this script uses it).
"""

from __future__ import annotations

import argparse
import difflib
import pathlib
import struct
import sys

import mpmath as mp

mp.mp.dps = 50
OUT = (pathlib.Path(__file__).resolve().parents[2] / "tracejit" / "codegen_cpu" / "vmath"
       / "coeffs.py")


def to_f32(x) -> float:
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def to_f64(x) -> float:
    return float(x)


def _nodes(a, b, n):
    return [(a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (2 * i + 1) / (2 * n)) for i in range(n)]


def lawson(g, w, a, b, deg, fixed=(), center=0, iters=30):
    """Coefficients c_m..c_deg of sum c_j (t-center)^j (c_0..c_{m-1} = fixed) minimizing
    max |w (p - g)| over [a, b]; returns (all coefficients, achieved weighted error)."""
    a, b, center = mp.mpf(a), mp.mpf(b), mp.mpf(center)
    ts = [t for t in _nodes(a, b, 30 * (deg + 1)) + [a, b] if t != 0]
    h = max(abs(a - center), abs(b - center))
    us = [(t - center) / h for t in ts]
    ws = [w(t) for t in ts]
    rhs = [g(t) - sum(mp.mpf(c) * (t - center) ** j for j, c in enumerate(fixed)) for t in ts]
    cols = range(len(fixed), deg + 1)
    lw = [mp.mpf(1)] * len(ts)
    for _ in range(iters):
        A = mp.matrix(len(ts), len(cols))
        B = mp.matrix(len(ts), 1)
        for i, u in enumerate(us):
            s = mp.sqrt(lw[i]) * ws[i]
            for jj, j in enumerate(cols):
                A[i, jj] = s * u**j
            B[i] = s * rhs[i]
        sol = mp.lu_solve(A.T * A, A.T * B)
        errs = [abs(ws[i] * (rhs[i] - sum(sol[jj] * us[i] ** j for jj, j in enumerate(cols))))
                for i in range(len(ts))]
        total = sum(lw[i] * errs[i] for i in range(len(ts)))
        lw = [lw[i] * errs[i] / total for i in range(len(ts))]
    return list(fixed) + [sol[jj] / h**j for jj, j in enumerate(cols)], max(errs)


def fit(g, w, a, b, deg, rounding, center=0, c0=None):
    """Fit, then round coefficients (float32: one at a time with refits).

    ``c0``: the exact constant term, kept exact in the fit; the caller stores it as a
    hi + lo pair (the hi part is the first coefficient returned)."""
    if rounding is to_f64:
        coeffs, err = lawson(g, w, a, b, deg, fixed=() if c0 is None else (c0,), center=center)
        return [to_f64(c) for c in coeffs], err
    fixed: list = [] if c0 is None else [c0]
    while len(fixed) <= deg:
        coeffs, err = lawson(g, w, a, b, deg, fixed=fixed, center=center, iters=12)
        fixed.append(rounding(coeffs[len(fixed)]))
    return [rounding(c) for c in fixed], err


# ---- the functions ----------------------------------------------------------------------
# Each entry: name, g(t), weight w(t), interval, degree, rounding, center, and what
# the polynomial is used for (documented in docs/cpu_math.md).

LN2 = mp.log(2)
R_EXP = LN2 / 2 * (1 + mp.mpf("1e-4"))  # |r| after exp's reduction, with slack
S_LOG = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)  # |s| = |f / (2 + f)| for m in [sqrt(1/2), sqrt 2)
Z_LOG = S_LOG**2 * (1 + mp.mpf("1e-5"))
Z_TRIG = (mp.pi / 4) ** 2 * (1 + mp.mpf("1e-5"))
TANH_SMALL_F32 = mp.mpf("0.875")  # tanh: polynomial below, exp formula above
TANH_SMALL_F64 = mp.mpf("0.625")
ERF_SMALL = mp.mpf("0.875")  # erf: x * P(x^2) below, 1 - exp(Q(x)) above
ERF_ONE_F32 = mp.mpf("3.925")  # end of the fitted range (float32)
ERF_ONE_F64 = mp.mpf("5.95")  # (float64)


def _erf_saturates(bits: int, rounding) -> float:
    """The smallest float at which erf rounds to 1: erfc(x) <= 2^-(bits+1)."""
    x = mp.findroot(lambda t: mp.log(mp.erfc(t)) + (bits + 1) * mp.log(2), 4)
    v = rounding(x)
    return v if mp.erfc(v) <= mp.mpf(2) ** -(bits + 1) else rounding(x * (1 + mp.mpf(2) ** -bits))


def _expm1_q(r):  # expm1(r) = r + r^2 q(r)
    return (mp.expm1(r) - r) / r**2


def _log_t(z):  # log1p(f) = 2 atanh(s) = 2s + s z T(z), z = s^2
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) / s - 2) / z


def _tanh_p(z):  # tanh(x) = x + x^3 P(x^2)
    x = mp.sqrt(z)
    return (mp.tanh(x) / x - 1) / z


def _erf_p(z):  # erf(x) = x P(x^2)
    x = mp.sqrt(z)
    return mp.erf(x) / x


def _erf_q(x):  # erf(x) = 1 - exp(Q(x - ERF_SMALL))
    return mp.log(mp.erfc(x))


def _sin_s(z):  # sin(r) = r + r^3 S(r^2)
    r = mp.sqrt(z)
    return (mp.sin(r) - r) / r**3


def _cos_c(z):  # cos(r) = 1 - r^2/2 + r^4 C(r^2)
    r = mp.sqrt(z)
    return (mp.cos(r) - 1 + z / 2) / z**2


TWO_OVER_SQRT_PI = 2 / mp.sqrt(mp.pi)

TABLE = [
    # expm1(r) relative error = r^2 dq / expm1(r)
    ("EXPM1_F32", _expm1_q, lambda r: r * r / mp.expm1(r), -R_EXP, R_EXP, 5, to_f32, 0),
    ("EXPM1_F64", _expm1_q, lambda r: r * r / mp.expm1(r), -R_EXP, R_EXP, 10, to_f64, 0),
    # log1p(f) relative error ~ z dT / 2
    ("LOG_F32", _log_t, lambda z: z / 2, 0, Z_LOG, 2, to_f32, 0),
    ("LOG_F64", _log_t, lambda z: z / 2, 0, Z_LOG, 7, to_f64, 0),
    # tanh relative error = z dP
    ("TANH_F32", _tanh_p, lambda z: z, 0, TANH_SMALL_F32**2, 7, to_f32, 0),
    ("TANH_F64", _tanh_p, lambda z: z, 0, TANH_SMALL_F64**2, 11, to_f64, 0),
    # erf relative error = dP / P; P(0) = 2/sqrt(pi) is kept exact as hi + lo
    ("ERF_P_F32", _erf_p, lambda z: 1 / _erf_p(z), 0, ERF_SMALL**2, 6, to_f32, 0),
    ("ERF_P_F64", _erf_p, lambda z: 1 / _erf_p(z), 0, ERF_SMALL**2, 12, to_f64, 0),
    # erf relative error = erfc/erf dQ; expanded around ERF_SMALL (x - ERF_SMALL is exact
    # by Sterbenz up to 2 ERF_SMALL, where the weight is largest)
    ("ERF_Q_F32", _erf_q, lambda x: mp.erfc(x) / mp.erf(x), ERF_SMALL, ERF_ONE_F32, 8,
     to_f32, ERF_SMALL),
    ("ERF_Q_F64", _erf_q, lambda x: mp.erfc(x) / mp.erf(x), ERF_SMALL, ERF_ONE_F64, 20,
     to_f64, ERF_SMALL),
    # sin relative error = z dS; cos error = z^2 dC (cos >= 0.7 on the interval)
    ("SIN_F32", _sin_s, lambda z: z, 0, Z_TRIG, 3, to_f32, 0),
    ("COS_F32", _cos_c, lambda z: z * z, 0, Z_TRIG, 3, to_f32, 0),
    ("SIN_F64", _sin_s, lambda z: z, 0, Z_TRIG, 6, to_f64, 0),
    ("COS_F64", _cos_c, lambda z: z * z, 0, Z_TRIG, 6, to_f64, 0),
]


def split(value, hi_bits: int, total_bits: int = 53, pieces: int = 2) -> list[float]:
    """Cut ``value`` into ``pieces`` doubles: all but the last keep ``hi_bits`` significant
    bits (so k * piece is exact for |k| < 2**(total_bits - hi_bits)), the last is rounded
    to nearest."""
    out = []
    rest = mp.mpf(value)
    for _ in range(pieces - 1):
        e = mp.floor(mp.log(abs(rest), 2))
        q = mp.mpf(2) ** (e - hi_bits + 1)
        piece = mp.nint(rest / q) * q
        out.append(float(piece))
        rest -= piece
    out.append(float(rest) if total_bits == 53 else to_f32(rest))
    return out


def _words(value, n: int) -> tuple[int, ...]:
    """The first 64*n fraction bits of ``value()`` in [0, 1), as signed 64-bit words."""
    with mp.workdps(40 + 20 * n):
        bits = int(mp.floor(value() * mp.mpf(2) ** (64 * n)))
    words = [(bits >> (64 * (n - 1 - i))) & (2**64 - 1) for i in range(n)]
    return tuple(w - 2**64 if w >= 2**63 else w for w in words)


def constants() -> dict[str, object]:
    pio2 = mp.pi / 2
    return {
        # exp/log: |k| < 2**8 (float32) / 2**11 (float64)
        "LN2_F32": split(LN2, 24 - 9, total_bits=24),
        "LN2_F64": split(LN2, 53 - 12),
        "INV_LN2": float(1 / LN2),
        # sin/cos reduction in float64: |k| < 2**26, four pieces carry 134 bits of pi/2
        "PIO2_F64": split(pio2, 27, pieces=4),
        "TWO_OVER_PI": float(2 / mp.pi),
        # the first 256 bits of 2/pi as four 64-bit words (two's complement), most
        # significant first: float32 Payne-Hanek reduction for |x| >= 2^26
        "TWO_OVER_PI_BITS": _words(lambda: 2 / mp.pi, 4),
        "TANH_SMALL_F32": float(TANH_SMALL_F32),
        "TANH_SMALL_F64": float(TANH_SMALL_F64),
        "ERF_SMALL": float(ERF_SMALL),
        "ERF_ONE_F32": float(ERF_ONE_F32),
        "ERF_ONE_F64": float(ERF_ONE_F64),
        "ERF_SATURATE_F32": _erf_saturates(24, to_f32),
        "ERF_SATURATE_F64": _erf_saturates(53, to_f64),
    }


def render() -> str:
    lines = [
        '"""Polynomial coefficients and split constants for vmath (generated; do not edit).',
        "",
        "Written by tests/codegen_cpu/fit_vmath_coeffs.py; docs/cpu_math.md explains each.",
        "Polynomials are lowest degree first, evaluated by Horner's rule.",
        "The comment after each polynomial is the weighted minimax error of the fit",
        "(before the arithmetic's own rounding), as log2.",
        '"""',
        "",
    ]
    for name, value in constants().items():
        line = f"{name} = {value!r}"
        if len(line) > 99:  # one element a line
            items = [f"    {v!r}," for v in value]
            line = "\n".join([f"{name} = {'(' if isinstance(value, tuple) else '['}", *items,
                              ")" if isinstance(value, tuple) else "]"])
        lines.append(line)
    lines.append("")
    for name, g, w, a, b, deg, rounding, center in TABLE:
        c0 = TWO_OVER_SQRT_PI if name.startswith("ERF_P") else None
        coeffs, err = fit(g, w, a, b, deg, rounding, center, c0)
        if c0 is not None:
            lines.append(f"{name}_C0_LO = {rounding(c0 - mp.mpf(coeffs[0]))!r}")
        print(f"{name}: degree {deg}, weighted error 2^{float(mp.log(err, 2)):.1f}",
              file=sys.stderr)
        lines.append(f"{name} = (  # 2^{float(mp.log(err, 2)):.1f}")
        lines.extend(f"    {c!r}," for c in coeffs)
        lines.append(")")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args()
    text = render()
    if args.check:
        old = OUT.read_text() if OUT.exists() else ""
        diff = list(difflib.unified_diff(old.splitlines(), text.splitlines(), lineterm=""))
        print("\n".join(diff) or "up to date")
        return 1 if diff else 0
    OUT.write_text(text)
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
