"""What an ahead-of-time object may call, and linking it into a shared library.

A build's object code may refer only to the C library, libm and (for a thread pool)
pthreads, plus the few helpers of the C compiler's own runtime that LLVM calls for
half-precision conversions on CPUs without instructions for them (libgcc or
compiler-rt, linked in statically by ``cc -shared``). :func:`check_symbols` names
anything else, with what in the user's program needs it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

__all__ = ["ALLOWED_LIBRARIES", "allowed_symbol", "check_symbols", "link_shared", "LinkError"]

# The C library's functions generated code or the C API call.
_LIBC = {"memcpy", "memmove", "memset", "memcmp", "malloc", "calloc", "realloc", "free",
         "aligned_alloc", "posix_memalign", "abort", "fopen", "fread", "fwrite", "fclose",
         "bzero", "__memcpy_chk", "__memset_chk", "__memmove_chk"}
# C99 <math.h>: each in double, float (f) and long double (l) forms.
_MATH = """acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh erf erfc exp
    exp2 expm1 fabs fdim floor fma fmax fmin fmod frexp hypot ilogb ldexp lgamma llrint
    llround log log10 log1p log2 logb lrint lround modf nearbyint nextafter pow remainder
    remquo rint round scalbln scalbn sin sinh sqrt tan tanh tgamma trunc""".split()
_LIBM = {f"{name}{suffix}" for name in _MATH for suffix in ("", "f", "l")} | {
    "sincos", "sincosf", "exp10", "exp10f", "__exp_finite", "__expf_finite",
    "__log_finite", "__logf_finite", "__pow_finite", "__powf_finite"}
_RUNTIME_HELPERS = re.compile(r"^__(extend|trunc)[a-z]*(hf|bf)[a-z]*2$|^__(extend|trunc)"
                              r"(hf|bf)[a-z]*2$")
ALLOWED_LIBRARIES = {"libc.so.6", "libm.so.6", "libpthread.so.0", "ld-linux-x86-64.so.2",
                     "ld-linux-aarch64.so.1"}
# Symbols of tracejit's JIT runtime and what in a program needs them.
_WHY = {"tj_host_callback": "tf.Print / tf.print / a host callback, which calls back into "
                            "Python",
        "tj_parallel_for": "tracejit's thread pool (a bug: AOT builds are single-threaded)",
        "tj_tile_gemm_f32": "the JIT's shared tile kernel (a bug: AOT builds emit their own)",
        "tj_tile_gemm_f64": "the JIT's shared tile kernel (a bug: AOT builds emit their own)"}


class LinkError(RuntimeError):
    """The object cannot become a self-contained library."""


def allowed_symbol(name: str) -> bool:
    return (name in _LIBC or name in _LIBM or name.startswith("pthread_")
            or bool(_RUNTIME_HELPERS.match(name)))


def check_symbols(undefined: set[str], what: str) -> None:
    """Raise :class:`LinkError` naming each symbol outside the C library and libm."""
    foreign = sorted(s for s in undefined if not allowed_symbol(s))
    if foreign:
        reasons = "; ".join(f"{s} ({_WHY[s]})" if s in _WHY else
                            f"{s} (the BLAS or oneDNN: a bug, AOT builds use their own gemm)"
                            if s.startswith(("cblas_", "openblas_", "dnnl_")) else s
                            for s in foreign)
        raise LinkError(f"{what} cannot be built ahead of time: its code would call "
                        f"{reasons}, which the C library and libm do not provide")


def link_shared(compiler: str, obj: Path, out: Path) -> None:
    """``compiler -shared`` the object into ``out``, stripped, linked to libm."""
    command = [compiler, "-shared", "-Wl,--as-needed", "-o", str(out), str(obj), "-lm",
               "-s", "-Wl,-z,noexecstack"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise LinkError(f"linking {out.name} failed ({' '.join(command)}):\n"
                        f"{done.stderr.strip()}")
