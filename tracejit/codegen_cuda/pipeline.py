"""The GPU device's own passes, after the target-independent cleanups.

The GPU lowers the same fused-kernel IR as the CPU: elementwise kernels become one
grid-stride loop, reductions a block tree, matmul epilogues a cuBLAS call then one
elementwise kernel. The CPU's fusion policy is also the right one here -- each kernel
reads its inputs once and writes only what leaves it -- so the pipeline is the same
``fuse_kernels``; a GPU-specific policy (fusing a transpose into a kernel, which costs
little on a GPU) would go here.
"""

from __future__ import annotations

from ..passes.fuse import fuse_kernels

__all__ = ["GPU_PASSES"]

GPU_PASSES = (("fuse_kernels", fuse_kernels),)
