"""What the CUDA backend's kernel tests share: the module-level guard and the device.

They run where this process has a GPU that runs: numba's simulator (``TRACEJIT_GPU=sim``,
which tests/conftest.py sets) or a real one (``TRACEJIT_GPU=cuda``, benchmarks/
gpu_check.sh). Turning the simulator on inside a test would change numba.cuda for every
later test of the run, so the mode is the process's; it is asked before numba.cuda is
imported, because in sim mode asking is what turns the simulator on.
"""

from __future__ import annotations

import pytest

from tracejit.codegen_cuda.mode import CudaUnavailable, gpu_mode, numba_cuda_installed


def require_gpu() -> None:
    """Skip the calling test module unless this process runs kernels (the simulator or a
    real GPU)."""
    if not numba_cuda_installed():
        pytest.skip("numba-cuda is not installed", allow_module_level=True)
    try:
        mode = gpu_mode()
    except CudaUnavailable as exc:
        pytest.skip(str(exc), allow_module_level=True)
    if mode not in ("sim", "cuda"):
        pytest.skip(f"needs a GPU that runs: TRACEJIT_GPU=sim (the simulator) or cuda, not "
                    f"{mode}", allow_module_level=True)


def simulated_gpu():
    """``/gpu:0`` (the simulator's in CI)."""
    from tracejit.runtime.registry import get_device
    return get_device("gpu")


def run_on(device, graph, args):
    """``graph`` compiled for ``device`` and run on NumPy ``args``."""
    return device.host_program(device.compile(graph), graph)(args)
