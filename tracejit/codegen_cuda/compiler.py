"""Generated kernels to launchable functions (GPU, simulator) and to PTX text.

One :class:`KernelCompiler` per process mode. On a GPU a kernel is compiled eagerly
for its exact signature (flat C-contiguous arrays and int64 scalars, the only shapes of
argument the generators use), so a launch never pays numba's type dispatch; in the
simulator the function runs as Python. Compiled kernels are cached by name, and the
name is a hash of the source (source.kernel_source): two graphs that need the same
kernel compile it once.

PTX for any compute capability comes from ``numba.cuda.compile_ptx`` (NVVM), whose
output the toolkit's ``ptxas`` accepts when the CUDA wheels are of its series
(pyproject's ``gpu`` extra pins 13.0, RECIPES.md section 7).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from .mode import CudaUnavailable, can_compile_ptx, cuda_module, gpu_mode
from .scalars import kernel_namespace
from .source import GeneratedKernel

__all__ = ["KernelCompiler", "kernel_compiler", "ptxas_check", "PtxasResult"]


class KernelCompiler:
    def __init__(self):
        self.mode = gpu_mode()
        self.simulating = self.mode == "sim"
        self._cuda = None
        self._namespace = None
        self._kernels: dict[str, object] = {}
        self._ptx: dict[tuple[str, tuple[int, int]], str] = {}
        self._lock = threading.Lock()

    @property
    def cuda(self):
        if self._cuda is None:
            # NOTE: with no GPU (mode off) numba.cuda still compiles PTX
            self._cuda = cuda_module(compile_only=True)
        return self._cuda

    @property
    def namespace(self) -> dict:
        if self._namespace is None:
            self._namespace = kernel_namespace(self.cuda, self.simulating)
        return self._namespace

    def launchable(self, kernel: GeneratedKernel):
        """``kernel`` compiled for this process's GPU (or the simulator)."""
        found = self._kernels.get(kernel.name)
        if found is not None:
            return found
        with self._lock:
            found = self._kernels.get(kernel.name)
            if found is None:
                fn = kernel.function(self.namespace)
                if self.simulating:
                    found = self.cuda.jit(fn)
                else:
                    import numba
                    found = self.cuda.jit(kernel.signature(numba))(fn)
                self._kernels[kernel.name] = found
        return found

    def ptx(self, kernel: GeneratedKernel, cc: tuple[int, int] = (9, 0)) -> str:
        """The PTX module of ``kernel`` for compute capability ``cc``."""
        if not can_compile_ptx():
            raise CudaUnavailable("PTX needs numba-cuda's compiler, which the CUDA "
                                  "simulator replaces: run with TRACEJIT_GPU=null (or on "
                                  "a GPU) to see PTX")
        key = (kernel.name, tuple(cc))
        if key not in self._ptx:
            import numba
            from numba.cuda import compile_ptx
            fn = kernel.function(self.namespace)
            text, _ = compile_ptx(fn, kernel.signature(numba), cc=tuple(cc))
            self._ptx[key] = text
        return self._ptx[key]


_COMPILER: list[KernelCompiler] = []
_LOCK = threading.Lock()


def kernel_compiler() -> KernelCompiler:
    with _LOCK:
        if not _COMPILER:
            _COMPILER.append(KernelCompiler())
        return _COMPILER[0]


class PtxasResult:
    def __init__(self, returncode: int, output: str):
        self.returncode, self.output = returncode, output

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def ptxas_check(ptx: str, arch: str = "sm_90") -> PtxasResult:
    """Assemble ``ptx`` with the toolkit's ``ptxas`` for ``arch``."""
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        raise CudaUnavailable("ptxas is not on PATH (the CUDA toolkit's bin directory)")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "kernel.ptx")
        source.write_text(ptx)
        done = subprocess.run([ptxas, f"-arch={arch}", str(source), "-o",
                               str(Path(tmp, "kernel.cubin"))],
                              capture_output=True, text=True, timeout=120, check=False)
    return PtxasResult(done.returncode, done.stdout + done.stderr)


