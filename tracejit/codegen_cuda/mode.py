"""Which CUDA this process has, decided once: a real GPU, the simulator, compile-only, or none.

``TRACEJIT_GPU`` chooses (read on the first GPU question a process asks):

* ``auto`` (default): ``cuda`` when the NVIDIA driver (``libcuda.so.1``) loads and
  numba-cuda is installed, else ``off``. Probing the driver is one ``dlopen``: a machine
  without a GPU never imports numba.cuda to learn that it has none.
* ``cuda``: the real GPUs; an error when there is none.
* ``sim``: numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set here before numba.cuda
  loads): one ``/gpu:0`` whose kernels run as Python threads on the CPU. Slow, exact
  semantics, for tests on machines without a GPU.
* ``null``: one compile-only ``/gpu:0``: graphs placed on it trace, partition, and
  compile to kernel sources and PTX (with numba-cuda installed); programs refuse to run.
* ``off``: no GPU devices.

The simulator replaces ``numba.cuda`` for the whole process (it is a different module
behind the same name), so a process is either simulating or compiling real PTX, never
both: PTX tests and ``tracejit ir --stage ptx`` run in processes not in ``sim`` mode.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys

from ..ir.errors import TracejitError

__all__ = ["GPU_ENV", "MODES", "gpu_mode", "cuda_module", "gpu_count", "can_compile_ptx",
           "CudaUnavailable", "numba_cuda_installed", "driver_present"]

GPU_ENV = "TRACEJIT_GPU"
MODES = ("auto", "cuda", "sim", "null", "off")
SIM_ENV = "NUMBA_ENABLE_CUDASIM"


class CudaUnavailable(TracejitError, RuntimeError):
    """What a GPU operation needs is not on this machine (numba-cuda, a GPU, ptxas)."""


def numba_cuda_installed() -> bool:
    return importlib.util.find_spec("numba_cuda") is not None or \
        importlib.util.find_spec("numba.cuda") is not None


def driver_present() -> bool:
    """Whether the NVIDIA driver library loads (one dlopen; no numba import)."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def gpu_mode() -> str:
    """The resolved mode: ``cuda``, ``sim``, ``null`` or ``off`` (never ``auto``)."""
    raw = os.environ.get(GPU_ENV, "auto").strip().lower() or "auto"
    if raw not in MODES:
        raise CudaUnavailable(f"{GPU_ENV}={raw!r}: expected one of {', '.join(MODES)}")
    if raw == "auto":
        raw = "cuda" if driver_present() and numba_cuda_installed() else "off"
    if raw in ("cuda", "sim") and not numba_cuda_installed():
        raise CudaUnavailable(f"{GPU_ENV}={raw} needs numba-cuda: pip install "
                              "'tracejit[gpu]'")
    simulating = os.environ.get(SIM_ENV, "0") not in ("", "0")
    if raw == "sim":
        if "numba.cuda" in sys.modules and not simulating:
            raise CudaUnavailable(f"{GPU_ENV}=sim: numba.cuda was already imported without "
                                  f"the simulator; set {GPU_ENV}=sim before the process "
                                  "imports numba.cuda")
        os.environ[SIM_ENV] = "1"
    elif simulating:
        # NOTE: the user's own NUMBA_ENABLE_CUDASIM=1 means the simulator whatever we
        # were asked; say so rather than fail later inside numba.
        if raw in ("cuda", "null"):
            raise CudaUnavailable(f"{GPU_ENV}={raw} but {SIM_ENV}=1 is set: numba.cuda is "
                                  "the simulator in this process")
    return raw


def cuda_module(*, compile_only: bool = False):
    """``numba.cuda`` as the mode wants it (the simulator in ``sim`` mode).
    ``compile_only``: for PTX, which needs no GPU, in any mode but ``sim``."""
    mode = gpu_mode()
    if mode == "off" and not compile_only:
        raise CudaUnavailable("no GPU in this process (TRACEJIT_GPU=off, or no NVIDIA "
                              "driver or numba-cuda); set TRACEJIT_GPU=sim for the "
                              "simulator or null to compile only")
    if not numba_cuda_installed():
        raise CudaUnavailable("numba-cuda is not installed: pip install 'tracejit[gpu]'")
    from numba import cuda
    return cuda


@functools.lru_cache(maxsize=1)
def gpu_count() -> int:
    """How many ``/gpu:N`` devices this process has."""
    mode = gpu_mode()
    if mode == "off":
        return 0
    if mode in ("sim", "null"):
        return 1
    cuda = cuda_module()
    try:
        return len(cuda.gpus)
    except Exception as exc:     # noqa: BLE001 (the driver's many ways to say "no")
        raise CudaUnavailable(f"{GPU_ENV}=cuda but the CUDA driver reports no GPU: "
                              f"{exc}") from None


def can_compile_ptx() -> bool:
    """Whether numba-cuda's compiler (NVVM) is usable here: not in the simulator."""
    return numba_cuda_installed() and os.environ.get(SIM_ENV, "0") in ("", "0") \
        and gpu_mode() != "sim"
