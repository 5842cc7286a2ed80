"""LLVM on this host, below any choice of compile target: one initialization and one
lock per process, the host's CPU, target machines for a named CPU, the probed features
of a CPU's code, and compiling a module for a named machine (what the measurements of
vector_choice.py and tuning.py need; target.py builds the process's target on it)."""

from __future__ import annotations

import functools
import threading

import llvmlite.binding as llvm
from llvmlite import ir

from . import compile_worker, cpu_features

__all__ = ["CPU_ENV", "LLVM_LOCK", "initialize_llvm", "host_cpu", "check_cpu_name",
           "known_cpus", "machine_for", "code_features", "vector_isa",
           "compile_with_machine", "parse", "run_pipeline"]

CPU_ENV = "TRACEJIT_CPU"
# NOTE: LLVM's context, the pass builder and MCJIT are not safe to drive from two threads at
# once; every entry point that touches LLVM state holds this lock.
LLVM_LOCK = threading.RLock()
_INITIALIZED = False
def initialize_llvm() -> None:
    global _INITIALIZED
    with LLVM_LOCK:
        if not _INITIALIZED:
            # NOTE: llvm.initialize() raises RuntimeError in llvmlite 0.50; registration of
            # the native target and its assembly printer is still explicit.
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _INITIALIZED = True


@functools.cache
def host_cpu() -> tuple[str, str]:
    """``(cpu name, feature string)`` of the machine this process runs on."""
    initialize_llvm()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def check_cpu_name(name: str) -> None:
    """A clear error for a name LLVM does not know (it would only print a warning and
    compile for a generic CPU)."""
    known = known_cpus()
    if known and name not in known:
        raise ValueError(f"{CPU_ENV}={name!r} is not a CPU LLVM knows; for example "
                         f"host, haswell, skylake-avx512, icelake-server, sapphirerapids, "
                         f"znver3, znver4, znver5")


@functools.cache
def known_cpus() -> frozenset[str]:
    # NOTE: llvmlite has no list of processors; LLVM's "not a recognized processor"
    # warning goes to stderr. Names known to exist in LLVM 15+ for x86-64 suffice for a
    # check that catches typos; an empty set turns the check off on other triples.
    if not llvm.get_process_triple().startswith("x86_64"):
        return frozenset()
    return frozenset("""x86-64 x86-64-v2 x86-64-v3 x86-64-v4 nehalem westmere sandybridge
        ivybridge haswell broadwell skylake skylake-avx512 skx cascadelake cooperlake
        cannonlake icelake-client icelake-server rocketlake tigerlake alderlake raptorlake
        meteorlake arrowlake lunarlake sapphirerapids emeraldrapids graniterapids
        graniterapids-d diamondrapids znver1 znver2 znver3 znver4 znver5 btver2 bdver4
        goldmont tremont sierraforest grandridge clearwaterforest""".split())


def machine_for(cpu: str, features: str) -> llvm.TargetMachine:
    initialize_llvm()
    return compile_worker.machine(cpu, features)


@functools.cache
def code_features(cpu: str, features: str) -> frozenset[str]:
    """The probed features (cpu_features.py: POPCNT, LZCNT, BMI1/2, AMD's SSE4A and
    XOP, AVX, AVX2, FMA, F16C and the AVX-512 families LLVM uses unasked) that code for
    ``cpu``/``features`` may contain."""
    # NOTE: -prefer-256-bit, so that a CPU with AVX-512 shows it whatever its tuning.
    tm = machine_for(cpu, features + ",-prefer-256-bit" if features else "-prefer-256-bit")

    def emit(text: str) -> str:
        with LLVM_LOCK:
            return tm.emit_assembly(llvm.parse_assembly(text))
    return cpu_features.features_in(emit)


def vector_isa(cpu: str, features: str) -> str:
    """``"avx512"``, ``"avx2"``, ``"avx"`` (256-bit float vectors only) or ``"sse"``: the
    widest vectors code for ``cpu`` and ``features`` may use."""
    found = code_features(cpu, features)
    return next((isa for isa, feature in (("avx512", "avx512f"), ("avx2", "avx2"),
                                          ("avx", "avx")) if feature in found), "sse")


def compile_with_machine(module: ir.Module, cpu: str, features: str, name: str):
    """Compile ``module`` at O3 for ``cpu``/``features`` (not the process's target):
    ``(engine, address of function name)``. For measuring alternatives; the caller
    keeps the engine alive as long as it calls the address."""
    ref = run_pipeline(parse(module), machine_for(cpu, features), 3)
    with LLVM_LOCK:
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine_for(cpu, features))
        engine.add_module(ref)
        engine.finalize_object()
        return engine, engine.get_function_address(name)


def parse(module: ir.Module | str) -> llvm.ModuleRef:
    """Parse (and verify) an ``ir.Module`` or LLVM assembly text into a ``ModuleRef``."""
    initialize_llvm()
    with LLVM_LOCK:
        ref = llvm.parse_assembly(str(module))
        ref.verify()
        return ref


def run_pipeline(module: llvm.ModuleRef, tm: llvm.TargetMachine, level: int) -> llvm.ModuleRef:
    # NOTE: in this process each run leaks llvmlite's pass-instrumentation callbacks
    # (compile_worker.py); programs are compiled in the worker instead, this serves
    # inspection (--stage llvm/asm), the tests and one-off runtime pieces.
    with LLVM_LOCK:
        return compile_worker.run_pipeline(module, tm, level)
