"""What the CUDA backend's simulator tests share: the module-level guard and the device.

They run only in a process that already simulates (``TRACEJIT_GPU=sim``, which
tests/conftest.py sets): turning the simulator on inside a test would change numba.cuda
for every later test of the run. The mode is asked before numba.cuda is imported,
because in sim mode asking is what turns the simulator on.
"""

from __future__ import annotations

import pytest

from tracejit.codegen_cuda.mode import CudaUnavailable, gpu_mode, numba_cuda_installed


def require_simulator() -> None:
    """Skip the calling test module unless this process simulates CUDA."""
    if not numba_cuda_installed():
        pytest.skip("numba-cuda is not installed", allow_module_level=True)
    try:
        mode = gpu_mode()
    except CudaUnavailable as exc:
        pytest.skip(str(exc), allow_module_level=True)
    if mode != "sim":
        pytest.skip("runs on the CUDA simulator (TRACEJIT_GPU=sim)", allow_module_level=True)


def simulated_gpu():
    """The simulated ``/gpu:0``."""
    from tracejit.runtime.registry import get_device
    return get_device("gpu")


def run_on(device, graph, args):
    """``graph`` compiled for ``device`` and run on NumPy ``args``."""
    return device.host_program(device.compile(graph), graph)(args)
