"""Measure vmath: exhaustive float32 ulp errors and throughput (the figures in
docs/cpu_math.md). Not a test; run by hand::

    .venv/bin/python tests/codegen_cpu/measure_vmath.py ulp [exp tanh ...]   # all 2^32 inputs
    .venv/bin/python tests/codegen_cpu/measure_vmath.py ulp64 [exp ...]      # float64 sample
    .venv/bin/python tests/codegen_cpu/measure_vmath.py speed [exp ...]      # ns/element

``ulp`` runs every float32 bit pattern through the compiled kernel and compares with the
float64 NumPy value (erf: math.erf), reporting the maximum error per magnitude range.
``ulp64`` compares float64 results with mpmath (40 digits) on random inputs of every
binade. ``speed`` times in-cache (64K elements, repeated) and 16M-element runs against
NumPy's float32 function where NumPy has one.
"""

from __future__ import annotations

import math
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import vmath_harness as H  # noqa: E402

UNARY = ["exp", "expm1", "log", "log1p", "tanh", "sigmoid", "sin", "cos", "erf"]
# magnitude buckets for the report
BUCKETS = [(0, 2.0**-126), (2.0**-126, 2.0**-10), (2.0**-10, 1.0), (1.0, 16.0), (16.0, 1e5),
           (1e5, 1e8), (1e8, np.inf), (np.inf, np.inf)]


def _erf_reference(x: np.ndarray) -> np.ndarray:
    try:  # NOTE: this measurement script only; the library never imports SciPy
        from scipy.special import erf
    except ImportError:
        return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)
    return erf(x)


def _ulp32(ref: np.ndarray) -> np.ndarray:
    """float32 ulp at each float64 value (subnormal ulp below 2^-126), from the bits."""
    e = (ref.astype(np.float32).view(np.uint32) >> 23) & 0xFF
    return ((np.maximum(e, 1) + (1023 - 150)).astype(np.uint64) << 52).view(np.float64)


def exhaustive(op: str, chunk_bits: int = 24) -> None:
    k = H.kernel(op, np.float32)
    worst = {b: (0.0, 0.0) for b in BUCKETS}
    t0 = time.perf_counter()
    step = 1 << chunk_bits
    base = np.arange(step, dtype=np.uint32)
    for start in range(0, 1 << 32, step):
        x = (base + np.uint32(start)).view(np.float32)
        got = k(x)
        with np.errstate(all="ignore"):
            ref = _erf_reference(x.astype(np.float64)) if op == "erf" else H.reference(op, x)
            err = np.abs(got - ref) / _ulp32(ref)
        # special results (NaN, inf, overflow) must match exactly; ulp_error checks those
        odd = ~np.isfinite(err) | (err > 0.4)
        if not odd.any():
            continue
        idx = np.nonzero(odd)[0]
        err_odd = H.ulp_error(got[idx], ref[idx], np.float32)
        ax = np.abs(x[idx].astype(np.float64))
        for lo, hi in BUCKETS:
            sel = ~np.isfinite(ax) if lo == np.inf else (ax >= lo) & (ax < hi)
            if sel.any():
                e = err_odd[sel]
                i = int(np.argmax(e))
                if e[i] > worst[(lo, hi)][0]:
                    worst[(lo, hi)] = (float(e[i]), float(x[idx][sel][i]))
    total = max(w for w, _ in worst.values())
    print(f"{op}: max {total:.3f} ulp over all 2^32 inputs ({time.perf_counter() - t0:.0f} s)")
    for (lo, hi), (w, at) in worst.items():
        name = "inf/nan" if lo == np.inf else f"[{lo:.3g}, {hi:.3g})"
        if w == 0:  # nothing above the 0.4 ulp screen (specials: exact)
            print(f"    |x| in {name:24s} max < 0.4 ulp")
        else:
            print(f"    |x| in {name:24s} max {w:.3f} ulp  at x = {at!r}")
    sys.stdout.flush()


def sample64(op: str, n: int = 20000) -> None:
    import mpmath as mp

    mp.mp.dps = 40
    fns = {"exp": mp.exp, "expm1": mp.expm1, "log": mp.log, "log1p": mp.log1p,
           "tanh": mp.tanh, "sigmoid": lambda v: 1 / (1 + mp.exp(-v)), "sin": mp.sin,
           "cos": mp.cos, "erf": mp.erf}
    rng = np.random.default_rng(7)
    x = np.ldexp(rng.uniform(1, 2, n), rng.integers(-1074, 1024, n)) * rng.choice([-1, 1], n)
    x = np.concatenate([x, rng.uniform(-40, 40, n)])
    got = H.kernel(op, np.float64)(x)
    worst, at = 0.0, 0.0
    for xi, gi in zip(x, got, strict=True):
        try:
            exact = fns[op](mp.mpf(float(xi)))
        except (ValueError, ZeroDivisionError):
            continue
        if mp.im(exact) != 0 or not math.isfinite(gi) or abs(exact) > 1.7e308:
            continue
        mag = max(abs(exact), mp.mpf(2) ** -1022)
        ulp = mp.mpf(2) ** (mp.floor(mp.log(mag, 2)) - 52)
        e = float(abs(mp.mpf(float(gi)) - exact) / ulp)
        if e > worst:
            worst, at = e, xi
    print(f"{op} float64: max {worst:.3f} ulp on {len(x)} inputs, at x = {at!r}")


def speed(op: str) -> None:
    small = np.random.default_rng(0).standard_normal(65536).astype(np.float32) * 3
    big = np.random.default_rng(0).standard_normal(16 << 20).astype(np.float32) * 3
    if op.startswith("log"):
        small, big = np.abs(small) + 0.1, np.abs(big) + 0.1
    k = H.kernel(op, np.float32)
    ref = getattr(np, op, None) if op not in ("sigmoid", "erf") else None
    out_s, out_b = np.empty_like(small), np.empty_like(big)
    best = {"ours": 1e9, "ours16M": 1e9, "np": 1e9, "np16M": 1e9}
    ptrs = (small.ctypes.data, out_s.ctypes.data, small.size)
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(100):
            k.fn(*ptrs)
        best["ours"] = min(best["ours"], (time.perf_counter() - t0) / 100 / small.size)
        t0 = time.perf_counter()
        k.fn(big.ctypes.data, out_b.ctypes.data, big.size)
        best["ours16M"] = min(best["ours16M"], time.perf_counter() - t0)
        if ref is not None:
            t0 = time.perf_counter()
            for _ in range(100):
                ref(small, out=out_s)
            best["np"] = min(best["np"], (time.perf_counter() - t0) / 100 / small.size)
            t0 = time.perf_counter()
            ref(big, out=out_b)
            best["np16M"] = min(best["np16M"], time.perf_counter() - t0)
    line = f"{op:8s} vmath {best['ours'] * 1e9:.3f} ns/elem, 16M {best['ours16M'] * 1e3:.1f} ms"
    if ref is not None:
        line += (f" | numpy {best['np'] * 1e9:.3f} ns/elem, 16M {best['np16M'] * 1e3:.1f} ms")
    print(line)


def main() -> None:
    mode, *ops = sys.argv[1:] or ["speed"]
    fn = {"ulp": exhaustive, "ulp64": sample64, "speed": speed}[mode]
    for op in ops or UNARY:
        fn(op)


if __name__ == "__main__":
    main()
