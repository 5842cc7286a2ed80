"""oneDNN's sgemm, a second float32 gemm beside OpenBLAS, where it measures faster.

On Intel Xeon hosts Intel's own kernels beat the OpenBLAS NumPy bundles: a 1024^3
float32 product on two cores took 6.3-6.8 ms through ``dnnl_sgemm`` (as fast as PyTorch,
which calls MKL) against 7.0-7.5 through OpenBLAS. Whether it wins is measured per
host and per class of product (choice.py), never assumed.

The library comes from the ``onednn-cpu-gomp`` wheel (``<prefix>/lib/libdnnl.so.3``,
C ABI, no headers needed): the build whose threads are GNU OpenMP's, which every Linux
has as ``libgomp.so.1``. (The newer ``onednn`` wheel needs Intel's SYCL, TBB and SVML
runtimes beside it.) Nothing here loads unless a decision asks for it, and an absent or
unloadable library is simply not a candidate. ``TRACEJIT_ONEDNN=off`` keeps it out.

Threads: oneDNN runs a large product on an OpenMP team of ``omp_get_max_threads()``,
whose workers are libgomp's, not tracejit's pool. Programs therefore call it only from
their own thread, never from inside a share of a parallel loop, and set the team size
to tracejit's thread count just before each call (a per-thread setting, cheap). Idle
OpenMP workers spin before sleeping and would steal the core from the next parallel
kernel -- and from an input pipeline's threads: ``GOMP_SPINCOUNT`` is set to 1000 (a few
microseconds) when libgomp has not been loaded yet and the user has not chosen a value.
(At 10000, the digits CNN fed by ``shuffle_batch`` on two cores ran at 0.84 of the step
alone; at 1000 with the pool's yielding spin, 0.87-0.93, and the step alone no slower.)
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from pathlib import Path

import llvmlite.binding as llvm
from llvmlite import ir

from ..loops.types import F32, I32, I64, PTR, VOID, declare

__all__ = ["ONEDNN_ENV", "SGEMM", "onednn_library", "onednn_available", "unavailable_reason",
           "ensure_onednn",
           "call_onednn_sgemm", "onednn_sgemm_callable"]

ONEDNN_ENV = "TRACEJIT_ONEDNN"          # "off": never a candidate
DISTRIBUTION = "onednn-cpu-gomp"
SGEMM, SET_TEAM = "dnnl_sgemm", "omp_set_num_threads"
GOMP_SPIN = "1000"                      # spins of idle OpenMP workers (default 300000)
_NO_TRANS, _TRANS = ord("N"), ord("T")
_LOCK = threading.Lock()
_STATE: dict[str, object] = {}          # "lib": the CDLL once loaded, "error": why not


def onednn_library() -> Path | None:
    """Where the wheel put ``libdnnl.so.3``, or None when it is not installed."""
    try:
        from importlib import metadata
        files = metadata.files(DISTRIBUTION) or []
        for entry in files:
            if entry.name == "libdnnl.so.3":
                return Path(entry.locate()).resolve()
    except Exception:       # noqa: BLE001 -- a broken install is "not installed"
        pass
    guess = Path(sys.prefix) / "lib" / "libdnnl.so.3"
    return guess if guess.exists() else None


def _gomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:
        return False


def _load() -> ctypes.CDLL | None:
    with _LOCK:
        if "lib" in _STATE or "error" in _STATE:
            return _STATE.get("lib")
        path = onednn_library()
        if path is None:
            _STATE["error"] = f"the {DISTRIBUTION} wheel is not installed"
            return None
        if not _gomp_loaded():
            os.environ.setdefault("GOMP_SPINCOUNT", GOMP_SPIN)
        try:
            lib = ctypes.CDLL(str(path))
            for name in (SGEMM, SET_TEAM):
                llvm.add_symbol(name, ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)
        except (OSError, AttributeError) as exc:
            _STATE["error"] = f"{path}: {exc}"
            return None
        _STATE["lib"] = lib
        return lib


def unavailable_reason() -> str | None:
    """Why oneDNN's sgemm cannot be a candidate in this process, or None when it can."""
    if os.environ.get(ONEDNN_ENV, "").strip().lower() in ("off", "0", "no", "false"):
        return f"{ONEDNN_ENV} is off"
    return None if _load() is not None else str(_STATE.get("error"))


def onednn_available() -> bool:
    return unavailable_reason() is None


def ensure_onednn() -> None:
    if _load() is None:
        raise RuntimeError(f"oneDNN is not available: {_STATE.get('error')}")


def call_onednn_sgemm(b: ir.IRBuilder, threads: int, m, n, k, a, lda, trans_a, bp, ldb,
                      trans_b, c, ldc, beta: float) -> None:
    """Emit ``C = op(A) @ op(B) + beta*C`` (float32, row-major) on a team of ``threads``."""
    ensure_onednn()
    module = b.module
    team = declare(module, SET_TEAM, ir.FunctionType(VOID, [I32]))
    # NOTE: the two `char` flags go as i32 holding the character: the callee reads the
    # low byte, and the register's upper bits are zero rather than undefined.
    gemm = declare(module, SGEMM, ir.FunctionType(
        I32, [I32, I32, I64, I64, I64, F32, PTR, I64, PTR, I64, F32, PTR, I64]))
    b.call(team, [ir.Constant(I32, threads)])
    b.call(gemm, [ir.Constant(I32, _TRANS if trans_a else _NO_TRANS),
                  ir.Constant(I32, _TRANS if trans_b else _NO_TRANS),
                  *(x if isinstance(x, ir.Value) else ir.Constant(I64, x) for x in (m, n, k)),
                  ir.Constant(F32, 1.0), a, ir.Constant(I64, lda), bp, ir.Constant(I64, ldb),
                  ir.Constant(F32, beta), c, ir.Constant(I64, ldc)])


def onednn_sgemm_callable(threads: int):
    """A Python callable ``(m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc)`` with
    addresses, for measuring; the team is ``threads`` wide, as in a program."""
    lib = _load()
    if lib is None:
        raise RuntimeError(f"oneDNN is not available: {_STATE.get('error')}")
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    gemm = lib[SGEMM]
    gemm.argtypes = [ctypes.c_char, ctypes.c_char, i64, i64, i64, ctypes.c_float, ptr, i64,
                     ptr, i64, ctypes.c_float, ptr, i64]
    gemm.restype = ctypes.c_int
    team = lib[SET_TEAM]
    team.argtypes, team.restype = [ctypes.c_int], None

    def run(m, n, k, a, lda, trans_a, bp, ldb, trans_b, c, ldc):
        team(threads)
        status = gemm(b"T" if trans_a else b"N", b"T" if trans_b else b"N", m, n, k, 1.0,
                      a, lda, bp, ldb, 0.0, c, ldc)
        if status != 0:
            raise RuntimeError(f"dnnl_sgemm returned status {status}")

    return run
