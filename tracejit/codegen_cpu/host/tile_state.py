"""AMX on the compile target and on this host: which tile features code may use, and
Linux's permission to use them.

Two things make AMX unlike the vector features (cpu_features.py):

* LLVM does not use AMX unasked, so no probe of plain IR shows it; and an AMX intrinsic
  compiled for a CPU without it is not an error llvmlite can catch: LLVM prints "Cannot
  select" and aborts the process. :func:`tile_features` therefore compiles its probes
  in a child process (once per CPU and feature string) and reads which ones got through.
* Linux gives a process the (8 KB) tile data state only on request
  (``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``, Linux 5.16 and later);
  without it the first tile instruction stops the process with SIGILL.
  :func:`tile_state_permitted` asks once per process, when a kernel is first chosen.
  Linux refuses (ENOSPC) while any thread has a signal stack too small for the larger
  signal frame (an 8 KB ``sigaltstack``; Python's faulthandler sizes its own from
  ``AT_MINSIGSTKSZ``, which is enough), and after granting it refuses such a stack
  (ENOMEM). Refused, the AMX kernels are not offered; the others serve. (Checked on an
  emulated Sapphire Rapids under Linux 6.1: docs/quantization.md.)
"""

from __future__ import annotations

import ctypes
import functools
import platform
import subprocess
import sys

__all__ = ["TILE_PROBES", "tile_features", "tile_state_permitted"]

_SYS_ARCH_PRCTL = 158               # x86-64
_ARCH_GET_XCOMP_PERM = 0x1022
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18

# feature -> the instruction compiled to show it; the tile instructions themselves
# first, since without them neither product exists
TILE_PROBES = {"amx-tile": "tilezero(i8 0)", "amx-int8": "tdpbssd(i8 4, i8 0, i8 2)",
               "amx-bf16": "tdpbf16ps(i8 4, i8 0, i8 2)"}

_CHILD = r"""
import sys
import llvmlite.binding as llvm
llvm.initialize_native_target(); llvm.initialize_native_asmprinter()
cpu, features = sys.argv[1], sys.argv[2]
machine = llvm.Target.from_triple("x86_64-unknown-linux-gnu").create_target_machine(
    cpu=cpu, features=features, opt=2)
for line in sys.stdin.read().splitlines():
    name, call = line.split(" ", 1)
    callee = call.split("(")[0]
    text = (f"declare void @llvm.x86.{callee}({', '.join(['i8'] * call.count('i8'))})\n"
            f"define void @probe() {{\n  call void @llvm.x86.{call}\n  ret void\n}}")
    machine.emit_assembly(llvm.parse_assembly(text))      # aborts without the feature
    print(name, flush=True)
"""


@functools.cache
def tile_features(cpu: str, features: str) -> frozenset[str]:
    """The AMX features (``amx-tile``, ``amx-int8``, ``amx-bf16``) code for ``cpu`` with
    ``features`` may use: where the feature string names them (the host's does), read
    there; else compiled in a child process, which LLVM stops at the first missing one."""
    named = {f[1:]: f[0] == "+" for f in features.split(",") if f[1:] in TILE_PROBES}
    if len(named) == len(TILE_PROBES):
        found = {name for name, on in named.items() if on}
        return frozenset(found if "amx-tile" in found else ())
    probes = "\n".join(f"{name} {call}" for name, call in TILE_PROBES.items())
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, cpu, features], input=probes,
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    found = set(done.stdout.split())
    return frozenset(found if "amx-tile" in found else ())


@functools.cache
def tile_state_permitted() -> bool:
    """Whether this process may use AMX tile data: asked of Linux once (x86-64 only)."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) != 0:
        return False
    granted = ctypes.c_uint64(0)
    if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_PERM, ctypes.byref(granted)) != 0:
        return False
    return bool(granted.value >> _XFEATURE_XTILEDATA & 1)
