"""The CPU device's own passes, run after the target-independent cleanups.

Fusion is a target decision: the CPU backend's kernels are loop nests over one output
(elementwise, reductions) and gemms with an elementwise epilogue (one BLAS call, then one
loop), so ``fuse_kernels`` groups equations into exactly those kinds. A GPU backend
brings its own policy through its device's ``passes``.
"""

from __future__ import annotations

from ..passes.fuse import fuse_kernels

__all__ = ["CPU_PASSES"]

CPU_PASSES = (("fuse_kernels", fuse_kernels),)
