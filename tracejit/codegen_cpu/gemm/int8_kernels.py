"""The packed kernels (int8_tiles.py) as one runtime library, and which one runs: the
8-bit products', and bfloat16 products with float32 sums.

For each kernel variant the compile target can run and each operand dtype, the library
holds ``tj_i8_pack_<variant>_<dtype>`` and ``tj_i8_gemm_<variant>_<dtype>`` (compiled
once per host and process, kept in the compile cache, their symbols made visible to
programs as the tiled f32 gemm's are). Programs call them like BLAS.

Variants, by what the target has (read off LLVM's code for it, host/cpu_features.py):

* ``pairs<lanes>`` -- every x86 target: int16 pairs through ``pmaddwd`` (``vpdpwssd``
  with VNNI), 16 lanes where the target has AVX-512BW, 8 with AVX2, 4 otherwise (SSE2);
  ``generic<lanes>`` elsewhere (plain IR, 4 lanes);
* ``vnni<lanes>`` -- int8 only, where the target has AVX-512 VNNI (16 lanes) or
  AVX-VNNI (8): byte quads through ``vpdpbusd``, twice the pairs' work per instruction;
* ``bf16dot16`` -- bfloat16, where the target has AVX512-BF16: ``vdpbf16ps``;
  ``bf16pairs<lanes>`` everywhere (the pairs widened by bit shifts, two multiply-adds);
* ``amx_i8`` (int8 and uint8) and ``amx_bf16`` -- where the target has AMX-INT8 /
  AMX-BF16 and Linux granted the tile state (host/tile_state.py): 32 x 32 tiles of sums
  in tile registers (amx_tiles.py).

A bfloat16 matmul runs one of the bfloat16 kernels or converts its operands to float32
and calls the float32 gemm (blas.py), whichever measured faster on the host
(:func:`choose_bf16_variant`; the float32 gemm is timed without the conversion).

Which of those a product uses is measured on the host for each class of problem (the
dtype and each of M, N, K rounded up to a power of two; host/tuning.py), never assumed
from a flag; ``TRACEJIT_INT8_GEMM=pairs``, ``=vnni`` or ``=amx`` forces it (an error
where the target lacks it), ``TRACEJIT_TUNE=off`` takes the widest one available.
Standalone code (ahead-of-time builds, host/standalone.py) gets the functions emitted
into its own module (internal linkage) instead, the variant decided by the target's
vector ISA alone (never measured: the build host may not run the target's code):
``pairs16`` for AVX-512, ``pairs8`` for AVX2, ``pairs4`` for other x86, ``generic4``
elsewhere (AArch64).
"""

from __future__ import annotations

import ctypes
import os
import threading

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from ...ir import dtypes as dt
from ..host import tuning
from ..host.cache import runtime_library
from ..host.standalone import standalone
from ..loops.loops import c64
from ..loops.types import I64, PTR, VOID, declare
from .amx_tiles import emit_amx_gemm
from .choice import openblas_gemm, size_class
from .int8_tiles import Variant, emit_gemm, emit_pack, packed_bytes

__all__ = ["INT8_GEMM_ENV", "INT8_SYMBOL_PREFIX", "VARIANTS", "available_variants",
           "choose_variant", "choose_bf16_variant", "int8_kernel_module",
           "ensure_int8_kernels", "kernel_callables", "emit_pack_call", "emit_gemm_call",
           "gemm_emitter",
           "pack_name", "gemm_name"]

INT8_GEMM_ENV = "TRACEJIT_INT8_GEMM"
INT8_SYMBOL_PREFIX = "tj_pk_"       # of every function of the library
VERSION = 2
DTYPES = (dt.int8, dt.uint8, dt.bfloat16)
MEASURE_ROWS = 256          # rows of the products timed for a decision, at most

# NOTE: tiles sized to the registers: pairs16/vnni16 (32 zmm) keep 6 x 4 sums, a vector
# of each of 4 column groups and a broadcast; with 16 ymm (or xmm) 6 x 2. Measured on
# AMD Zen 3 (pairs8, one thread): 6 x 2 ran 1024^3 in 14.8 ms, 4 x 2 in 15.4, 3 x 4 in
# 24.5, 2 x 4 in 20.9 (float32 through OpenBLAS: 23.4).
VARIANTS = {v.name: v for v in (
    Variant("generic4", group=2, lanes=4, rows=6, vectors=2),
    Variant("pairs4", group=2, lanes=4, rows=6, vectors=2, dot="x86"),
    Variant("pairs8", group=2, lanes=8, rows=6, vectors=2, dot="x86"),
    Variant("pairs16", group=2, lanes=16, rows=6, vectors=4, dot="x86"),
    Variant("vnni8", group=4, lanes=8, rows=6, vectors=2, dot="vnni"),
    Variant("vnni16", group=4, lanes=16, rows=6, vectors=4, dot="vnni"),
    Variant("bf16pairs4", group=2, lanes=4, rows=6, vectors=2, operands="bfloat16"),
    Variant("bf16pairs8", group=2, lanes=8, rows=6, vectors=2, operands="bfloat16"),
    Variant("bf16dot16", group=2, lanes=16, rows=6, vectors=4, dot="bf16",
            operands="bfloat16"),
    Variant("amx_i8", group=4, lanes=16, rows=32, vectors=2, dot="amx"),
    Variant("amx_bf16", group=2, lanes=16, rows=32, vectors=2, dot="amx",
            operands="bfloat16"),
)}
_PACK_SIGNATURE = ir.FunctionType(VOID, [I64, I64, PTR, I64, I64, PTR])
_GEMM_SIGNATURE = ir.FunctionType(VOID, [I64, I64, I64, PTR, I64, I64, PTR, PTR, I64])
_C_PACK = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                           ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
_C_GEMM = ctypes.CFUNCTYPE(None, *([ctypes.c_int64] * 3), ctypes.c_void_p, ctypes.c_int64,
                           ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def pack_name(v: Variant, dtype) -> str:
    return f"{INT8_SYMBOL_PREFIX}pack_{v.name}_{dtype.short}"


def gemm_name(v: Variant, dtype) -> str:
    return f"{INT8_SYMBOL_PREFIX}gemm_{v.name}_{dtype.short}"


def available_variants() -> list[Variant]:
    """The variants the compile target can run, narrowest first."""
    from ..host.target import code_features, target_cpu, target_machine, target_tile_features
    if not target_machine().triple.startswith("x86_64"):
        return [VARIANTS["generic4"], VARIANTS["bf16pairs4"]]
    features = code_features(*target_cpu())
    tiles = target_tile_features()
    found = [VARIANTS["pairs16" if "avx512bw" in features else "pairs8" if "avx2" in features
                      else "pairs4"]]
    if "avx512vnni" in features:
        found.append(VARIANTS["vnni16"])
    elif "avxvnni" in features:
        found.append(VARIANTS["vnni8"])
    if "amx-int8" in tiles:
        found.append(VARIANTS["amx_i8"])
    found.append(VARIANTS["bf16pairs8" if "avx" in features else "bf16pairs4"])
    if "avx512bf16" in features:
        found.append(VARIANTS["bf16dot16"])
    if "amx-bf16" in tiles:
        found.append(VARIANTS["amx_bf16"])
    return found


def gemm_emitter(v: Variant):
    """The function that emits ``v``'s gemm: the tile variants' own, else the vector
    kernels'."""
    return emit_amx_gemm if v.tiles else emit_gemm


def int8_kernel_module(module: ir.Module, variants) -> ir.Module:
    """``module`` with the pack and gemm functions of ``variants`` for each dtype they
    support."""
    for v in variants:
        for dtype in DTYPES:
            if v.supports(dtype):
                emit_pack(module, pack_name(v, dtype), v, dtype)
                gemm_emitter(v)(module, gemm_name(v, dtype), v, dtype)
    return module


_LOCK = threading.Lock()
_LOADED: dict[str, object] = {}     # description -> engine


def ensure_int8_kernels() -> None:
    """Compile (or load from the compile cache) the target's kernels once per process and
    make their symbols visible to programs."""
    variants = available_variants()
    description = f"tj_int8_gemm v{VERSION} {' '.join(v.name for v in variants)}"
    with _LOCK:
        if description in _LOADED:
            return
        engine, address = runtime_library(
            description, lambda module: int8_kernel_module(module, variants))
        for v in variants:
            for dtype in DTYPES:
                if v.supports(dtype):
                    for name in (pack_name(v, dtype), gemm_name(v, dtype)):
                        llvm.add_symbol(name, address(name))
        _LOADED[description] = engine


def kernel_callables(v: Variant, dtype):
    """``(pack, gemm)`` of a loaded variant as ctypes functions (measuring, tests)."""
    ensure_int8_kernels()
    return (_C_PACK(llvm.address_of_symbol(pack_name(v, dtype))),
            _C_GEMM(llvm.address_of_symbol(gemm_name(v, dtype))))


def _forced(candidates: dict) -> str | None:
    value = os.environ.get(INT8_GEMM_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in ("pairs", "vnni", "amx"):
        raise ValueError(f"{INT8_GEMM_ENV}={value!r}: expected pairs, vnni, amx or auto")
    found = [name for name in candidates if name.startswith(value)]
    if not found:
        raise RuntimeError(f"{INT8_GEMM_ENV}={value}, but the compile target has no such "
                           f"kernel for these operands (it has {', '.join(candidates)})")
    return found[0]


def choose_variant(dtype, m: int, n: int, k: int) -> Variant:
    """The variant a ``[m, k] @ [k, n]`` product of ``dtype`` operands uses (measured per
    problem class on this host)."""
    if standalone() is not None:
        isa = standalone().vector_isa
        return VARIANTS[{"avx512": "pairs16", "avx2": "pairs8", "avx": "pairs4",
                         "sse": "pairs4"}.get(isa, "generic4")]
    usable = {v.name: v for v in available_variants() if v.supports(dtype)}
    force = _forced(usable)
    if force is not None:
        return usable[force]
    default = list(usable)[-1]
    if len(usable) == 1 or not tuning.tuning_enabled():
        return usable[default]
    rows = min(m, MEASURE_ROWS)
    key = f"int8-gemm/{dtype.name}/{size_class(rows)}x{size_class(n)}x{size_class(k)}"
    candidates = {name: _timed(v, dtype, rows, n, k) for name, v in usable.items()}
    return usable[tuning.choose(key, candidates, default)]


def _operands(dtype, m: int, n: int, k: int):
    rng = np.random.default_rng(0)
    if dtype.is_float:
        return (rng.standard_normal((m, k)).astype(dtype.np_dtype),
                rng.standard_normal((k, n)).astype(dtype.np_dtype))
    info = np.iinfo(dtype.np_dtype)
    return tuple(rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype.np_dtype)
                 for shape in ((m, k), (k, n)))


def _timed(v: Variant, dtype, m: int, n: int, k: int):
    """One product (the packing included) of random operands, as a callable."""
    a, b = _operands(dtype, m, n, k)
    packed = np.zeros(packed_bytes(v, k, n), np.uint8)
    c = np.zeros((m, n), np.float32 if dtype.is_float else np.int32)
    pack, gemm = kernel_callables(v, dtype)

    def run():
        # NOTE: the closure holds the arrays: addresses alone would let NumPy free them
        pack(k, n, b.ctypes.data, n, 1, packed.ctypes.data)
        gemm(m, n, k, a.ctypes.data, k, 1, packed.ctypes.data, c.ctypes.data, n)
    return run


def choose_bf16_variant(m: int, n: int, k: int) -> Variant | None:
    """The bfloat16 kernel a ``[m, k] @ [k, n]`` bfloat16 product uses, or None for
    float32 copies of the operands and the float32 gemm: measured per problem class;
    without measuring (``TRACEJIT_TUNE=off``), the AMX-BF16 or else the AVX512-BF16 kernel
    where the target has one. Standalone code converts (its float32 gemm is its own)."""
    if standalone() is not None:
        return None
    usable = {v.name: v for v in available_variants() if v.supports(dt.bfloat16)}
    # the widest instruction the target has: AMX-BF16's tiles, else vdpbf16ps
    hardware = [name for name, v in usable.items() if v.dot in ("bf16", "amx")][::-1]
    if not tuning.tuning_enabled():
        return usable[hardware[0]] if hardware else None
    rows = min(m, MEASURE_ROWS)
    key = f"bf16-gemm/{size_class(rows)}x{size_class(n)}x{size_class(k)}"
    candidates = {name: _timed(v, dt.bfloat16, rows, n, k) for name, v in usable.items()}
    a, b = (x.astype(np.float32) for x in _operands(dt.bfloat16, rows, n, k))
    c = np.zeros((rows, n), np.float32)
    sgemm = openblas_gemm(dt.float32, 1)
    candidates["blas"] = lambda: sgemm(rows, n, k, a.ctypes.data, k, False, b.ctypes.data, n,
                                       False, c.ctypes.data, n)
    choice = tuning.choose(key, candidates, hardware[0] if hardware else "blas")
    return usable.get(choice)


def _i64(x):
    return x if isinstance(x, ir.Value) else c64(x)


def _kernel(module: ir.Module, name: str, signature, emit, v: Variant, dtype) -> ir.Function:
    """The library's function ``name``, or in standalone code the module's own copy."""
    if standalone() is None:
        ensure_int8_kernels()
        return declare(module, name, signature)
    found = module.globals.get(name)
    if found is None:
        found = emit(module, name, v, dtype)
        found.linkage = "internal"
    return found


def emit_pack_call(b: ir.IRBuilder, v: Variant, dtype, k, n, src, b_k, b_j, out) -> None:
    """Emit ``pack(k, n, src, b_k, b_j, out)``: B[kk, j] at ``src + kk*b_k + j*b_j``."""
    fn = _kernel(b.module, pack_name(v, dtype), _PACK_SIGNATURE, emit_pack, v, dtype)
    b.call(fn, [_i64(k), _i64(n), src, _i64(b_k), _i64(b_j), out])


def emit_gemm_call(b: ir.IRBuilder, v: Variant, dtype, m, n, k, a, a_row, a_k, packed, c,
                   ldc) -> None:
    """Emit ``C[i, j] = sum_kk A[i*a_row + kk*a_k] * B[kk, j]`` (int32 C at ``c + i*ldc
    + j``), B packed by :func:`emit_pack_call` for the same variant."""
    fn = _kernel(b.module, gemm_name(v, dtype), _GEMM_SIGNATURE, gemm_emitter(v), v, dtype)
    b.call(fn, [_i64(m), _i64(n), _i64(k), a, _i64(a_row), _i64(a_k), packed, c, _i64(ldc)])
