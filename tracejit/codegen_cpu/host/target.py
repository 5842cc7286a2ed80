"""The host target for the CPU backend: one llvmlite setup per process.

Everything that turns an ``llvmlite.ir.Module`` into machine code goes through here:

* :func:`target_cpu` -- the CPU and features code is compiled for: the host's (with
  a vector width measured on this host), or the one ``TRACEJIT_CPU`` names;
* :func:`target_machine` -- the cached ``TargetMachine`` for it (``opt=3``, ``jit=True``);
* :func:`new_module` -- an ``ir.Module`` with the host triple and data layout set;
* :func:`parse` / :func:`optimize` -- verify, then the new pass manager at O3 with loop
  and SLP vectorization;
* :func:`compile_module` -- MCJIT code for a module and the addresses of its functions;
* :func:`assembly` -- the host assembly of a module (``--stage asm``, tests);
* :func:`fast_math_flags` -- the fast-math flags generated arithmetic may carry;
* :func:`target_id` -- a string naming the target, for compile-cache keys.

>>> from llvmlite import ir
>>> mod = new_module("demo")
>>> fn = ir.Function(mod, ir.FunctionType(ir.IntType(64), [ir.IntType(64)]), "twice")
>>> b = ir.IRBuilder(fn.append_basic_block())
>>> _ = b.ret(b.add(fn.args[0], fn.args[0]))
>>> import ctypes
>>> engine, addresses = compile_module(mod)
>>> ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(addresses["twice"])(21)
42

Pointers are opaque (``ir.PointerType()``): address elements with
``builder.gep(p, [i], source_etype=ty)`` and ``builder.load(p, typ=ty)``.
"""

from __future__ import annotations

import contextlib
import functools
import os

import llvmlite.binding as llvm
from llvmlite import ir

from . import compile_worker
from .machine import (
    CPU_ENV,
    LLVM_LOCK,
    check_cpu_name,
    code_features,
    host_cpu,
    initialize_llvm,
    machine_for,
    parse,
    run_pipeline,
    vector_isa,
)
from .tile_state import tile_features, tile_state_permitted
from .vector_choice import prefer_256_feature

__all__ = [
    "DEFAULT_FAST_MATH",
    "PTR",
    "CPU_ENV",
    "FEATURES_ENV",
    "assembly",
    "check_runnable",
    "code_features",
    "compile_module",
    "compiling_for",
    "emit_object",
    "engine_machine",
    "fast_math_flags",
    "host_cpu",
    "missing_features",
    "new_module",
    "optimize",
    "parse",
    "target_cpu",
    "target_tile_features",
    "target_vector_isa",
    "target_id",
    "target_machine",
]

PTR = ir.PointerType()
# NOTE: machine code lives as long as its ExecutionEngine. Function pointers handed out by
# compile_module may be cached anywhere (executables, ctypes objects), so engines are
# kept for the life of the process unless the caller asks otherwise.
_ENGINES: list[llvm.ExecutionEngine] = []

FEATURES_ENV = "TRACEJIT_CPU_FEATURES"


@functools.cache
def target_cpu() -> tuple[str, str]:
    """``(cpu name, feature string)`` that generated code is compiled for.

    By default the host's, with the vector width measured on this host on AVX-512 CPUs
    (vector_choice.py). ``TRACEJIT_CPU=<LLVM cpu name>`` (``haswell``,
    ``skylake-avx512``, ``znver4``, ``sapphirerapids``, ...) compiles for that CPU
    instead, with LLVM's features and tuning for it (tests use it to exercise the AVX2
    and AVX-512 paths on any host); ``TRACEJIT_CPU_FEATURES`` appends features to
    either (``+prefer-256-bit``). Code for a CPU the host cannot run is compiled and
    can be inspected (:func:`assembly`) but is refused at load (:func:`check_runnable`).
    """
    name = os.environ.get(CPU_ENV, "").strip() or "host"
    extra = os.environ.get(FEATURES_ENV, "").strip().strip(",")
    if name == "host":
        cpu, features = host_cpu()
        if "prefer-256-bit" not in extra:
            extra = ",".join(f for f in (_measured_width(), extra) if f)
    else:
        check_cpu_name(name)
        cpu, features = name, ""
    return cpu, ",".join(f for f in (features, extra) if f)


@functools.cache
def _measured_width() -> str:
    # NOTE: once per process, kept when compiling_for() switches targets and back: the
    # decision is the host's, and measuring again would write the tuning record again.
    return prefer_256_feature(*host_cpu())


@contextlib.contextmanager
def compiling_for(cpu: str, features: str = ""):
    """Within the block, compile for ``cpu`` with ``features`` appended, as
    ``TRACEJIT_CPU``/``TRACEJIT_CPU_FEATURES`` would (tests, inspecting another CPU's
    code). It sets those variables for the whole process: not for use while other
    threads compile.

    >>> with compiling_for("haswell"):
    ...     target_vector_isa()
    'avx2'
    """
    saved = {name: os.environ.get(name) for name in (CPU_ENV, FEATURES_ENV)}
    os.environ[CPU_ENV], os.environ[FEATURES_ENV] = cpu, features
    _forget_target()
    try:
        target_cpu()                # an unknown name raises here, not at first use
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _forget_target()


def _forget_target() -> None:
    # NOTE: everything cached from target_cpu(); code_features is keyed by its arguments.
    for cached in (target_cpu, target_machine, _layout):
        cached.cache_clear()


def _create_target_machine() -> llvm.TargetMachine:
    return machine_for(*target_cpu())


def engine_machine() -> llvm.TargetMachine:
    """A fresh target machine for one MCJIT engine (an engine owns the one it gets)."""
    return _create_target_machine()


def target_vector_isa() -> str:
    """The widest vector ISA of the compile target (``avx512``, ``avx2``, ``avx``,
    ``sse``)."""
    return vector_isa(*target_cpu())


def target_tile_features() -> frozenset[str]:
    """The AMX features (host/tile_state.py) kernels for the compile target may use. Where
    this host has AMX its code may run here, so they count only once Linux has granted
    the process its tile state (without it the first tile instruction stops the
    process); code for a CPU this host cannot run keeps them (compiled, inspected)."""
    found = tile_features(*target_cpu())
    host = tile_features(*host_cpu())
    if found and host and not tile_state_permitted():
        return frozenset()
    return found


def missing_features() -> list[str]:
    """Probed features the compile target's code may use and this host lacks (empty
    when its code can run here)."""
    host = {f[1:] for f in host_cpu()[1].split(",") if f.startswith("+")}
    used = code_features(*target_cpu()) | tile_features(*target_cpu())
    return sorted(used - host)


def check_runnable() -> None:
    """Raise when code for the compile target may use instructions this host lacks
    (``TRACEJIT_CPU`` naming a bigger CPU): it would stop the process with an illegal
    instruction. Compiling and printing such code (:func:`assembly`) stays allowed."""
    missing = missing_features()
    if missing:
        raise RuntimeError(
            f"{CPU_ENV}={target_cpu()[0]}: its code may use {', '.join(missing)}, which "
            f"this host ({host_cpu()[0]}) lacks; it can be compiled and inspected "
            f"(tracejit ir --stage asm) but not run here")


@functools.cache
def target_machine() -> llvm.TargetMachine:
    """The process-wide host ``TargetMachine`` used to optimize and print assembly.

    MCJIT engines take ownership of the machine they are given, so
    :func:`compile_module` gives each engine a fresh one; this cached one is never handed
    to an engine.
    """
    return _create_target_machine()


@functools.cache
def _layout() -> tuple[str, str]:
    tm = target_machine()
    return tm.triple, str(tm.target_data)


def target_id() -> str:
    """``triple/cpu/features``: what compiled code depends on, for cache keys."""
    triple, _ = _layout()
    cpu, features = target_cpu()
    return f"{triple}/{cpu}/{features}"


def new_module(name: str) -> ir.Module:
    """An empty ``ir.Module`` whose triple and data layout are the host's."""
    triple, layout = _layout()
    mod = ir.Module(name=name)
    mod.triple = triple
    mod.data_layout = layout
    return mod


def optimize(module: llvm.ModuleRef, level: int = 3) -> llvm.ModuleRef:
    """Run the new pass manager's O``level`` pipeline, loop and SLP vectorizers on, in place."""
    return run_pipeline(module, target_machine(), level)


def emit_object(module: ir.Module) -> bytes:
    """Object code of ``module`` optimized at O3 for the compile target, made in the
    compile worker: bounded in time (``TRACEJIT_COMPILE_TIMEOUT``, raising
    ``compile_worker.CompileTimeout``) and leaving no native memory behind."""
    initialize_llvm()
    cpu, features = target_cpu()
    return compile_worker.emit_object(str(module), cpu, features, 3)


def _as_ref(module: ir.Module | llvm.ModuleRef, opt: bool) -> llvm.ModuleRef:
    if isinstance(module, llvm.ModuleRef):
        return module
    ref = parse(module)
    return optimize(ref) if opt else ref


def compile_module(
    module: ir.Module | llvm.ModuleRef, *, opt: bool = True, keep_alive: bool = True
) -> tuple[llvm.ExecutionEngine, dict[str, int]]:
    """JIT-compile ``module`` with MCJIT: ``(engine, {function name: address})``.

    An ``ir.Module`` is parsed, verified and (``opt=True``) optimized at O3 first; a
    ``ModuleRef`` is compiled as it is. Addresses cover every function *defined* in the
    module. The engine owns the code: with ``keep_alive=True`` (the default) it is also
    kept in a process-wide list so the addresses stay valid for the life of the process.
    """
    check_runnable()
    ref = _as_ref(module, opt)
    with LLVM_LOCK:
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _create_target_machine())
        engine.add_module(ref)
        engine.finalize_object()
        engine.run_static_constructors()
        addresses = {
            f.name: engine.get_function_address(f.name)
            for f in ref.functions
            if not f.is_declaration
        }
        if keep_alive:
            _ENGINES.append(engine)
    return engine, addresses


def assembly(module: ir.Module | llvm.ModuleRef, *, opt: bool = True) -> str:
    """Host assembly text of ``module`` (optimized at O3 first when it is an ``ir.Module``)."""
    ref = _as_ref(module, opt)
    with LLVM_LOCK:
        return target_machine().emit_assembly(ref)


# ---- fast-math ---------------------------------------------------------------------------

# NOTE: "reassoc" lets LLVM vectorize float reductions and reorder sums; nothing else is on
# by default. "contract" (a*b+c as one FMA) is off because it rounds once where the
# program rounds twice, so a fused kernel would differ from the same ops run one by one
# (eager vs jit) in the last bit; TRACEJIT_FASTMATH=reassoc,contract turns it on. The
# flags that change special-value semantics are never on by default: nnan, ninf (NaN/inf
# assumed absent), nsz (-0.0 == +0.0), arcp (x/y -> x*(1/y)), afn (approximate libm).
DEFAULT_FAST_MATH: tuple[str, ...] = ("reassoc",)
_ALL_FLAGS = ("reassoc", "contract", "nnan", "ninf", "nsz", "arcp", "afn", "fast")
_OFF = {"0", "off", "false", "no", "none", ""}
_ON = {"1", "on", "true", "yes"}


def fast_math_flags() -> tuple[str, ...]:
    """Fast-math flags for the float arithmetic a kernel emits (``builder.fadd(..., flags=)``).

    Read from ``TRACEJIT_FASTMATH`` on every call:

    * unset, ``1``/``on``: :data:`DEFAULT_FAST_MATH` = ``("reassoc",)``;
    * ``0``/``off``/empty: ``()`` -- strict IEEE, no reassociation, no FMA contraction;
    * a comma-separated list, e.g. ``reassoc,contract,nsz``: exactly those flags.

    The code emitted by :mod:`tracejit.codegen_cpu.vmath` never carries these flags: its
    range reductions depend on the exact order of operations.

    >>> from llvmlite import ir
    >>> b = ir.IRBuilder(ir.Function(new_module("m"), ir.FunctionType(ir.FloatType(), []),
    ...                              "f").append_basic_block())
    >>> one = ir.Constant(ir.FloatType(), 1.0)
    >>> _ = b.fadd(one, one, flags=fast_math_flags())  # 'fadd reassoc' by default
    """
    raw = os.environ.get("TRACEJIT_FASTMATH")
    if raw is None:
        return DEFAULT_FAST_MATH
    value = raw.strip().lower()
    if value in _ON:
        return DEFAULT_FAST_MATH
    if value in _OFF:
        return ()
    flags = tuple(f.strip() for f in value.split(",") if f.strip())
    unknown = [f for f in flags if f not in _ALL_FLAGS]
    if unknown:
        raise ValueError(
            f"TRACEJIT_FASTMATH={raw!r}: unknown fast-math flag(s) {unknown}; "
            f"use 0, 1 or a comma-separated subset of {', '.join(_ALL_FLAGS)}"
        )
    return flags
