"""The 8-bit integer products of quantized models (int8_matmul, int8_conv2d) on the GPU.

``int8_matmul`` is a :class:`~..steps.GemmStep` like matmul's (kernels/matmul.py): cuBLAS
serves only float types, so it runs the generated product kernel, which sums integers in
int64 and wraps once to the int32 result -- the reference's exact sum. ``int8_conv2d``
is direct, as nn.py's conv2d: a thread per output element sums ``x * w`` over the window
(row-major) and the input channels in int64, a padding position reading ``pad_value``,
and stores the sum wrapped to int32. Correct first; neither uses the GPU's integer dot
product instructions (dp4a) yet.
"""

from __future__ import annotations

import math

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ..scalars import load_expr
from ..source import Arg, GeneratedKernel, Param, SourceWriter
from .common import grid_stride_kernel
from .matmul import matmul_steps
from .nn import conv_window_terms, geometry

__all__ = ["STEP_RULES", "RULES"]


def _int8_conv2d(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    x, f = eqn.ins
    out = eqn.outs[0]
    dtype = x.type.dtype
    kh, kw, ci, co = f.shape
    g = geometry(x.shape, (kh, kw), out.shape, eqn.params)
    pad = int(eqn.params["pad_value"])

    def body(w: SourceWriter) -> None:
        w.line("acc = I64(0)")

        def term(w: SourceWriter) -> None:
            w.line("if ok:")
            w.line(f"    xv = I64({load_expr('a0', 'xb + c', dtype)})")
            w.line("else:")
            w.line(f"    xv = I64({pad})")
            w.line(f"acc = I64(acc + xv * I64({load_expr('a1', f'fb + c * {co}', dtype)}))")

        conv_window_terms(w, g, ci, co, term)
        w.line("o0[i] = I32(acc)")

    params = [Param("o0", dt.int32), Param("a0", dtype), Param("a1", dtype)]
    args = [Arg("out", 0), Arg("in", 0), Arg("in", 1)]
    return [grid_stride_kernel("int8_conv2d", params, args, math.prod(out.shape), simulating,
                               body, kind="nn")]


# table.py joins these: kernel rules (op -> kernels) and step rules (op -> steps)
RULES = {ops.INT8_CONV2D: _int8_conv2d}
STEP_RULES = {ops.INT8_MATMUL: matmul_steps}
