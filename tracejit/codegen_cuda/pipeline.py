"""The GPU device's own passes, after the target-independent cleanups.

The GPU lowers the same fused-kernel IR as the CPU: elementwise kernels become one
grid-stride loop, reductions a block tree, matmul epilogues a cuBLAS call then one
elementwise kernel. The CPU's fusion policy is the start (each kernel reads its inputs
once and writes only what leaves it); then ``fuse_rows`` merges chains of reductions
over the same rows and the elementwise kernels after them (softmax, layer norm) into
one ``rows`` kernel, since a GPU block can own a row and share each phase's result
through shared memory (passes/fuse_rows.py).
"""

from __future__ import annotations

from ..passes.fuse import fuse_kernels
from ..passes.fuse_rows import fuse_rows

__all__ = ["GPU_PASSES"]

GPU_PASSES = (("fuse_kernels", fuse_kernels), ("fuse_rows", fuse_rows))
