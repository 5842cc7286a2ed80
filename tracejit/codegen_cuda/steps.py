"""What a GPU program is made of: one list of steps per graph, each a kernel launch,
a library call or a host-side decision, over the graph's values.

Every step names its buffers by :class:`~.source.Arg` relative to its equation (``in``
k, ``out`` k) plus scratch and constants; the program (program.py) maps those to
device arrays. A lowering rule (table.py) turns one equation into steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.core import Eqn, Graph
from .source import GeneratedKernel

__all__ = ["KernelStep", "AliasStep", "ConstStep", "GemmStep", "RegionStep", "HostStep",
           "Step"]


@dataclass
class KernelStep:
    eqn: Eqn
    kernel: GeneratedKernel


@dataclass
class AliasStep:
    """The output is the input's buffer, read as another shape (row-major reshapes)."""

    eqn: Eqn


@dataclass
class ConstStep:
    """The output is a constant, uploaded once per program."""

    eqn: Eqn


@dataclass
class GemmStep:
    """``out[b] = op(a[b]) @ op(b[b])`` for each batch: cuBLAS where it serves the dtype
    on a GPU, else ``fallback`` (a generated tiled kernel; the simulator's only way).
    ``a``/``b``/``out`` are Args; strides are in elements (0: one matrix for all)."""

    eqn: Eqn
    a: object
    b: object
    out: object
    m: int
    n: int
    k: int
    batch: int
    stride_a: int
    stride_b: int
    stride_c: int
    transpose_a: bool
    transpose_b: bool
    fallback: GeneratedKernel
    dtype: object = None          # the operands' IR dtype
    out_dtype: object = None      # the product's (cuBLAS: the same)


@dataclass
class RegionStep:
    """Control flow run from the host: ``kind`` is cond, while_loop or scan; the regions'
    programs come from compiling ``regions`` on the same device."""

    eqn: Eqn
    regions: dict[str, Graph] = field(default_factory=dict)
    # id(region) -> (region, its GpuProgram), compiled on the first run
    programs: dict = field(default_factory=dict)


@dataclass
class HostStep:
    """A Python function called between kernels with the arguments' values
    (host_callback; kernels/host_callback.py)."""

    eqn: Eqn


Step = KernelStep | AliasStep | ConstStep | GemmStep | RegionStep | HostStep
