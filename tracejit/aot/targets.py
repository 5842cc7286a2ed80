"""What an ahead-of-time build is compiled for: a triple, a CPU, its features.

``--target`` names one of:

* ``host`` (the default): this machine's CPU and every feature it has -- the fastest
  code, which may not run on an older CPU;
* an x86-64 level: ``x86-64`` (SSE2), ``x86-64-v2`` (SSE4.2, POPCNT), ``x86-64-v3``
  (AVX2, FMA), ``x86-64-v4`` (AVX-512);
* a 64-bit ARM triple: ``aarch64-linux-gnu`` (also ``aarch64``, ``arm64``,
  ``aarch64-unknown-linux-gnu``: Raspberry Pi 4/5 and other Linux boards) or
  ``aarch64-linux-android`` (Android's ABI). ``cpu=`` picks a core (``cortex-a72`` for
  a Pi 4, ``cortex-a76`` for a Pi 5); the default, ``generic``, runs on any ARMv8-A.

>>> parse_target("x86-64-v3").vector_isa
'avx2'
>>> parse_target("arm64").triple
'aarch64-unknown-linux-gnu'
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass

import llvmlite.binding as llvm

from ..codegen_cpu.host.machine import LLVM_LOCK, host_cpu, initialize_llvm, vector_isa

__all__ = ["AotTarget", "TARGET_NAMES", "parse_target", "EM_X86_64", "EM_AARCH64"]

EM_X86_64, EM_AARCH64 = 62, 183         # ELF e_machine values

_X86_LEVELS = {"x86-64": "sse", "x86-64-v2": "sse", "x86-64-v3": "avx2",
               "x86-64-v4": "avx512"}
_AARCH64 = {"aarch64": "aarch64-unknown-linux-gnu", "arm64": "aarch64-unknown-linux-gnu",
            "aarch64-linux-gnu": "aarch64-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu": "aarch64-unknown-linux-gnu",
            "aarch64-linux-android": "aarch64-unknown-linux-android",
            "aarch64-unknown-linux-android": "aarch64-unknown-linux-android"}
TARGET_NAMES = ("host", *_X86_LEVELS, *_AARCH64)


@dataclass(frozen=True)
class AotTarget:
    """A compile target: ``name`` as the user gave it, the LLVM triple, CPU and features,
    the widest vectors its code may use, and the ELF machine of its objects."""

    name: str
    triple: str
    cpu: str
    features: str
    vector_isa: str
    elf_machine: int

    @property
    def arch(self) -> str:
        return self.triple.split("-")[0]

    @property
    def runs_here(self) -> bool:
        """Whether this machine can run the target's code (same architecture; a CPU
        level above the host's is not checked here)."""
        return self.arch == llvm.get_process_triple().split("-")[0]

    def c_compilers(self) -> list[str]:
        """C compilers (found on PATH) that link objects of this target."""
        if self.runs_here:
            names = ["cc", "gcc", "clang"]
        elif "android" in self.triple:
            names = []      # the NDK's clang wrappers carry an API level in their names
        else:
            names = [f"{self.arch}-linux-gnu-gcc"]
        return [found for name in names if (found := shutil.which(name))]

    def machine(self) -> llvm.TargetMachine:
        """A fresh target machine: position-independent code (it goes into a shared
        library), no JIT, O3."""
        _initialize_all_targets()
        with LLVM_LOCK:
            target = llvm.Target.from_triple(self.triple)
            return target.create_target_machine(cpu=self.cpu, features=self.features,
                                                opt=3, reloc="pic", codemodel="default")

    def describe(self) -> str:
        cpu = "" if self.name == "host" else f", CPU {self.cpu}"
        return f"{self.name} ({self.triple}{cpu})"


@functools.cache
def _initialize_all_targets() -> None:
    initialize_llvm()
    with LLVM_LOCK:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()


def parse_target(name: str = "host", cpu: str | None = None) -> AotTarget:
    """The :class:`AotTarget` ``name`` means (see the module's doc); a clear ValueError
    for a name it does not know, or a ``cpu`` given with an x86-64 level."""
    key = (name or "host").strip().lower()
    if key == "host":
        host_name, features = host_cpu()
        if cpu:
            raise ValueError("--cpu goes with a --target triple, not with host")
        return AotTarget("host", llvm.get_process_triple(), host_name, features,
                         _host_vector_isa(host_name, features),
                         EM_AARCH64 if llvm.get_process_triple().startswith("aarch64")
                         else EM_X86_64)
    if key in _X86_LEVELS:
        if cpu:
            raise ValueError(f"--target {name} is a CPU level already; --cpu goes with a "
                             "triple")
        return AotTarget(key, "x86_64-unknown-linux-gnu", key, "", _X86_LEVELS[key],
                         EM_X86_64)
    if key in _AARCH64:
        return AotTarget(key, _AARCH64[key], cpu or "generic", "+neon", "neon", EM_AARCH64)
    raise ValueError(f"unknown target {name!r}: expected one of {', '.join(TARGET_NAMES)}")


def _host_vector_isa(cpu: str, features: str) -> str:
    if llvm.get_process_triple().startswith("aarch64"):
        return "neon"
    return vector_isa(cpu, features)
