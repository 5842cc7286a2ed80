"""vmath: accuracy against NumPy, special values, vectorization (docs/cpu_math.md).

Every function is JIT-compiled as a one-op loop kernel (``void f(T* in, T* out, i64 n)``)
at O3 through tracejit.codegen_cpu.host.target and run on NumPy arrays.
"""

from __future__ import annotations

import functools
import itertools
import time

import numpy as np
import pytest
from llvmlite import ir

from tracejit.codegen_cpu import vmath
from tracejit.codegen_cpu.host import target

from . import vmath_harness as H

TRANSCENDENTAL = ["exp", "expm1", "log", "log1p", "tanh", "sigmoid", "sin", "cos", "erf"]
# Max error in ulp against the exact value (documented in docs/cpu_math.md; measured over
# all 2^32 float32 inputs, the bounds here leave a little room).
F32_ULP = {"exp": 1.0, "expm1": 1.0, "log": 1.0, "log1p": 1.0, "tanh": 1.0, "sigmoid": 1.5,
           "sin": 1.0, "cos": 1.0, "erf": 1.0, "pow": 1.0}
# float64 against NumPy in long double (erf: math.erf, within about 1 ulp itself).
F64_ULP = 2.0

SPECIAL_F32 = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1.1754942e-38,
     -1.1754942e-38, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 1.0, -1.0, 0.5, -0.5, 2.0,
     88.72283, 88.72284, 88.7, 89.0, -87.33655, -87.3366, -103.97207, -103.97208, -104.0,
     -17.4, -17.3, 9.0, -9.1, 3.9192, 3.9193, -3.9193, 1e4, 1e5, -1e5, 1e8, 1e20, -1e30,
     0.6931472, -0.34657359, 0.875, 0.87500006, 0.8749999, 2.0**-24, 2.0**-25, -(2.0**-26),
     -0.9999999, -0.99999994],
    dtype=np.float32)


@pytest.fixture(scope="module")
def sweep():
    return H.float32_sweep(n_per_binade=7000)


def _check_special(got: np.ndarray, want: np.ndarray, x: np.ndarray, op: str) -> None:
    for g, w, xi in zip(got, want, x, strict=True):
        if np.isnan(w) or np.isinf(w) or w == 0:
            ok = (np.isnan(g) and np.isnan(w)) or (g == w and np.signbit(g) == np.signbit(w))
            assert ok, f"{op}({xi!r}) = {g!r}, NumPy gives {w!r}"


@pytest.mark.parametrize("op", TRANSCENDENTAL)
def test_float32_accuracy_over_all_magnitudes(op, sweep):
    """Random values from every binade (2^-149 .. 2^127, both signs) plus specials."""
    got = H.kernel(op, np.float32)(sweep)
    exact = H.reference(op, sweep)
    err = H.ulp_error(got, exact, np.float32)
    worst = int(np.argmax(err))
    assert err[worst] <= F32_ULP[op], (
        f"{op}({sweep[worst]!r}) = {got[worst]!r}, exact {exact[worst]!r}: "
        f"{err[worst]:.3f} ulp > {F32_ULP[op]}")


@pytest.mark.parametrize("op", TRANSCENDENTAL)
def test_float32_special_values(op):
    got = H.kernel(op, np.float32)(SPECIAL_F32)
    with np.errstate(all="ignore"):
        want = H.reference(op, SPECIAL_F32).astype(np.float32)
    _check_special(got, want, SPECIAL_F32, op)
    err = H.ulp_error(got, H.reference(op, SPECIAL_F32), np.float32)
    assert err.max() <= F32_ULP[op], SPECIAL_F32[np.argmax(err)]


@pytest.mark.parametrize("op", TRANSCENDENTAL)
def test_float64_against_numpy(op):
    rng = np.random.default_rng(3)
    n = 40000
    x = np.ldexp(rng.uniform(1, 2, n), rng.integers(-1074, 1024, n)) * rng.choice([-1, 1], n)
    edges = [5e-324, -5e-324, 709.782712893384, 709.7827128933841, -745.1332191019411,
             -745.1332191019412, 1.7976931348623157e308]
    x = np.concatenate([x, rng.uniform(-50, 50, n), rng.uniform(-1, 1, n) * 1e-3,
                        SPECIAL_F32.astype(np.float64), edges])
    got = H.kernel(op, np.float64)(x)
    want = H.reference(op, x, precise=True)
    with np.errstate(over="ignore"):
        _check_special(got, want.astype(np.float64), x, op)
    err = H.ulp_error(got, want, np.float64)
    worst = int(np.argmax(err))
    assert err[worst] <= F64_ULP + (op == "erf"), (
        f"{op}({x[worst]!r}) = {got[worst]!r}, reference {want[worst]!r}: {err[worst]:.2f} ulp")


def test_sin_cos_float32_huge_arguments():
    """Payne-Hanek: every float32 reduces exactly, up to 3.4e38."""
    rng = np.random.default_rng(4)
    x = np.ldexp(rng.uniform(1, 2, 200000), rng.integers(20, 128, 200000)).astype(np.float32)
    x = np.concatenate([x, -x, np.float32([16367173.0, 1.6e38, 8.6e19, 2.0**127])])
    for op in ("sin", "cos"):
        got = H.kernel(op, np.float32)(x)
        assert H.ulp_error(got, H.reference(op, x), np.float32).max() <= F32_ULP[op]


def test_two_over_pi_table_matches_mpmath_digits():
    """The float64 table (pi by Machin's formula in integers) agrees with the float32
    constant, which came from mpmath, on all of that constant's 256 bits."""
    from tracejit.codegen_cpu.vmath import coeffs as vmath_coeffs
    from tracejit.codegen_cpu.vmath import trig as vmath_trig

    words = vmath_trig.two_over_pi_words()
    table = int("".join(f"{w:064b}" for w in words), 2)
    pad = vmath_trig.TABLE_PAD
    assert table >> (64 * len(words) - pad) == 0  # the padding is zeros
    mpmath_bits = int("".join(f"{w % 2**64:064b}" for w in vmath_coeffs.TWO_OVER_PI_BITS), 2)
    assert table >> (64 * len(words) - pad - 256) == mpmath_bits


# Doubles whose distance to the nearest multiple of pi/2 is smallest (the hardest to
# reduce: 6381956970095103 * 2^797 is 4.7e-19 from one) and other edges.
HARD_F64 = np.array([6381956970095103.0 * 2.0**797, 5.319372648931431e255, 2.0**51,
                     2.0**52 + 1, 2.0**60, 9.223372036854776e18, 1.7976931348623157e308,
                     1e22, 2.0**1023, 0.7853981633974483, 0.7853981633974484,
                     1.5707963267948966, 3.141592653589793, 1e15, 2.0**26, 105414350.0])


@pytest.mark.parametrize("op", ["sin", "cos"])
def test_sin_cos_float64_every_magnitude(op):
    """Payne-Hanek: every double reduces exactly, up to 1.8e308 (within 1 ulp)."""
    rng = np.random.default_rng(6)
    n = 100000
    x = np.ldexp(rng.uniform(1, 2, n), rng.integers(-3, 1024, n))
    x = np.concatenate([x, HARD_F64, np.nextafter(HARD_F64, 0.0)])
    x = np.concatenate([x, -x])
    got = H.kernel(op, np.float64)(x)
    err = H.ulp_error(got, H.reference(op, x, precise=True), np.float64)
    worst = int(np.argmax(err))
    assert err[worst] <= 1.0, f"{op}({x[worst]!r}) = {got[worst]!r}: {err[worst]:.2f} ulp"
    # the hardest case's result is tiny: its relative accuracy is the reduction's
    hard = H.kernel(op, np.float64)(HARD_F64[:1])[0]
    want = -4.6871659242546276e-19 if op == "cos" else 1.0
    assert hard == pytest.approx(want, rel=2e-16)


# ---- pow -------------------------------------------------------------------------------

POW_SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, np.inf, -np.inf,
                        np.nan, 1e-45, -1e-45, 3e38, -3e38, 0.25, 1.5, -1.5, 1e10, 2.0**24 + 2],
                       dtype=np.float32)


def _pow_inputs(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    x = rng.choice(H.float32_sweep(400), n)
    m = n - 3 * (n // 4)
    y = np.concatenate([rng.uniform(-3, 3, n // 4), rng.integers(-40, 40, n // 4),
                        rng.uniform(-200, 200, n // 4),
                        np.exp(rng.uniform(-30, 30, m)) * rng.choice([-1, 1], m)])
    x2 = 1 + rng.uniform(-1e-3, 1e-3, n)  # large |y log x| near overflow and underflow
    y2 = rng.uniform(-1e5, 1e5, n)
    return (np.concatenate([x, x2]).astype(np.float32),
            np.concatenate([rng.permutation(y), y2]).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow(dtype):
    rng = np.random.default_rng(5)
    x, y = _pow_inputs(300000, rng)
    xs, ys = np.array(list(itertools.product(POW_SPECIAL, POW_SPECIAL)), np.float32).T
    x, y = np.concatenate([x, xs]).astype(dtype), np.concatenate([y, ys]).astype(dtype)
    got = H.kernel("pow", dtype)(x, y)
    exact = H.reference("pow", x, y, precise=dtype == np.float64)
    with np.errstate(all="ignore"):
        want = np.power(x, y)  # NumPy's own (C99) special cases, in this dtype
    _check_special(got, want, x, "pow")
    bound = F32_ULP["pow"] if dtype == np.float32 else F64_ULP
    err = H.ulp_error(got, exact, dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= bound, f"pow({x[worst]!r}, {y[worst]!r}) = {got[worst]!r}"


# ---- intrinsics: bit-exact against NumPy --------------------------------------------------

EXACT_UNARY = {"sqrt": np.sqrt, "floor": np.floor, "ceil": np.ceil, "round": np.round,
               "trunc": np.trunc, "abs": np.abs, "rsqrt": lambda v: 1 / np.sqrt(v),
               "reciprocal": np.reciprocal}
EXACT_BINARY = {"copysign": np.copysign, "fmin": np.fmin, "fmax": np.fmax,
                "minimum": np.minimum, "maximum": np.maximum, "fmod": np.fmod}


def _same_bits(got, want, zero_sign=True):
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    if zero_sign:
        same &= (np.signbit(got) == np.signbit(want)) | np.isnan(want)
    return same.all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", sorted(EXACT_UNARY))
def test_exact_unary(op, dtype):
    x = np.concatenate([SPECIAL_F32, H.float32_sweep(200), np.arange(-5, 5, 0.25)]).astype(dtype)
    with np.errstate(all="ignore"):
        assert _same_bits(H.kernel(op, dtype)(x), EXACT_UNARY[op](x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", sorted(EXACT_BINARY))
def test_exact_binary(op, dtype):
    rng = np.random.default_rng(6)
    pool = np.concatenate([SPECIAL_F32, rng.standard_normal(64).astype(np.float32)])
    x, y = (a.astype(dtype) for a in np.array(list(itertools.product(pool, pool))).T)
    got = H.kernel(op, dtype)(x, y)
    with np.errstate(all="ignore"):
        want = EXACT_BINARY[op](x, y)
    # NOTE: min/max of +0.0 and -0.0 may return either zero in NumPy
    assert _same_bits(got, want, zero_sign=op in ("copysign", "fmod"))


def test_fmod_float32_is_exact_over_all_magnitudes():
    """Exponent gaps up to 277 bits, subnormals, both signs: bit-exact with np.fmod."""
    rng = np.random.default_rng(9)
    pool = H.float32_sweep(300)
    x, y = rng.choice(pool, 1_000_000), rng.choice(pool, 1_000_000)
    x = np.concatenate([x, rng.uniform(-100, 100, 100000).astype(np.float32)])
    y = np.concatenate([y, rng.uniform(-7, 7, 100000).astype(np.float32)])
    with np.errstate(all="ignore"):
        assert _same_bits(H.kernel("fmod", np.float32)(x, y), np.fmod(x, y))


# ---- code shape ---------------------------------------------------------------------------

ALL_OPS = TRANSCENDENTAL + ["pow"] + sorted(EXACT_UNARY) + sorted(EXACT_BINARY)


@functools.cache
def _vector_register(target_id: str) -> str | None:
    """The register class LLVM vectorizes a plain float loop with for the compile target
    (zmm, or ymm where its tuning prefers 256-bit vectors or AVX-512 is absent): every
    kernel of the vector math must reach the same width. None without AVX2 (``target_id``
    keys the cache: tests switch targets)."""
    if target.target_vector_isa() not in ("avx2", "avx512"):
        return None
    mod = target.new_module("reference_loop")
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [target.PTR, ir.IntType(64)]), "f")
    entry, loop, done = (fn.append_basic_block(n) for n in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(ir.IntType(64))
    i.add_incoming(ir.Constant(ir.IntType(64), 0), entry)
    p = b.gep(fn.args[0], [i], source_etype=ir.FloatType())
    b.store(b.fmul(b.load(p, typ=ir.FloatType()), ir.Constant(ir.FloatType(), 3.0)), p)
    nxt = b.add(i, ir.Constant(ir.IntType(64), 1))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, fn.args[1]), loop, done)
    b.position_at_end(done)
    b.ret_void()
    asm = target.assembly(mod)
    return "zmm" if "zmm" in asm else "ymm"


def _assert_vectorized_without_calls(op: str, asm: str) -> None:
    instructions = [line.split()[0] for line in asm.splitlines()
                    if line.startswith("\t") and not line.strip().startswith((".", "#"))]
    assert not [i for i in instructions if i.startswith("call") or i == "jmpq"], asm
    for libm in ("expf", "tanhf", "logf", "sinf", "cosf", "erff", "powf", "@PLT"):
        assert libm not in asm
    reg = _vector_register(target.target_id())
    if reg is None:
        pytest.skip("the compile target has no AVX2")
    assert reg in asm, f"{op}: no {reg} code, the loop did not vectorize"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ALL_OPS)
def test_kernel_vectorizes_without_calls(op, dtype):
    if op == "fmod" and dtype == np.float64:
        pytest.skip("float64 fmod is LLVM frem: one libm fmod call per element")
    _assert_vectorized_without_calls(op, H.kernel(op, dtype).asm)


# The AVX2 path, AVX-512 with 512- and 256-bit vectors, and Zen 4's tuning, on any host:
# the code is only compiled and inspected, never run.
NAMED_TARGETS = [("haswell", "", "ymm"), ("skylake-avx512", "-prefer-256-bit", "zmm"),
                 ("skylake-avx512", "+prefer-256-bit", "ymm"), ("sapphirerapids", "", None),
                 ("znver4", "", None)]


@pytest.mark.parametrize("cpu,features,register", NAMED_TARGETS)
def test_named_targets_vectorize_without_calls(cpu, features, register):
    with target.compiling_for(cpu, features):
        reference = _vector_register(target.target_id())
        # NOTE: where the feature forces a width it must show; otherwise the width is
        # LLVM's tuning for the CPU, whatever it is.
        assert register in (None, reference)
        for op, dtype in [("exp", np.float32), ("tanh", np.float32), ("log1p", np.float64),
                          ("sin", np.float32), ("pow", np.float32), ("erf", np.float64),
                          ("floor", np.float32)]:
            asm = target.assembly(H.build_module(op, dtype))
            _assert_vectorized_without_calls(f"{op} for {cpu}{features}", asm)


@pytest.mark.parametrize("lanes,elem", [(8, ir.FloatType()), (16, ir.FloatType()),
                                        (4, ir.DoubleType())])
def test_explicit_vectors_match_scalar_code(lanes, elem):
    """The emitters take <N x T> values directly; results equal the scalar loop's."""
    vec = ir.VectorType(elem, lanes)
    mod = target.new_module("vec")
    fns = {}
    for op in TRANSCENDENTAL + ["pow"]:
        arity = 2 if op == "pow" else 1
        fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [target.PTR] * (arity + 1)), op)
        b = ir.IRBuilder(fn.append_basic_block())
        args = [b.load(p, typ=vec, align=4) for p in fn.args[:arity]]
        emit = vmath.BINARY[op] if op == "pow" else vmath.UNARY[op]
        b.store(emit(b, *args), fn.args[arity], align=4)
        b.ret_void()
        fns[op] = arity
    _, addrs = target.compile_module(mod)
    import ctypes

    dtype = np.float32 if isinstance(elem, ir.FloatType) else np.float64
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(lanes) * 4).astype(dtype)
    x[0], x[-1] = 0.0, 100.0
    y = rng.uniform(-3, 3, lanes).astype(dtype)
    for op, arity in fns.items():
        out = np.empty(lanes, dtype)
        ins = [np.abs(x) if op.startswith("log") else x, y][:arity]
        proto = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * (arity + 1))
        proto(addrs[op])(*(a.ctypes.data for a in ins), out.ctypes.data)
        assert _same_bits(out, H.kernel(op, dtype)(*ins)), op


def test_type_errors():
    mod = target.new_module("bad")
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [ir.IntType(32), ir.FloatType(),
                                                          ir.DoubleType()]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    with pytest.raises(TypeError, match="float, double or vectors"):
        vmath.emit_exp(b, fn.args[0])
    with pytest.raises(TypeError, match="one type"):
        vmath.emit_pow(b, fn.args[1], fn.args[2])


def test_tanh_throughput_vs_numpy(capsys):
    """Printed, not asserted (benchmarks/ owns performance claims)."""
    n = 16 << 20
    x = np.random.default_rng(8).standard_normal(n).astype(np.float32) * 3
    out = np.empty_like(x)
    k = H.kernel("tanh", np.float32)
    ours = theirs = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        k.fn(x.ctypes.data, out.ctypes.data, n)
        ours = min(ours, time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.tanh(x, out=out)
        theirs = min(theirs, time.perf_counter() - t0)
    with capsys.disabled():
        print(f"\n[vmath] tanh on 16M float32, one thread: {ours * 1e3:.1f} ms "
              f"({n / ours / 1e9:.2f} Gelem/s); NumPy {theirs * 1e3:.1f} ms")
