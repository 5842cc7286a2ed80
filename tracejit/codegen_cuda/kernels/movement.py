"""Movement ops with loops of their own: gather, scatter_add, one_hot, pad, concat,
stack, custom_vjp's forward.

``RULES[op](eqn, simulating) -> list[GeneratedKernel]`` (args relative to ``eqn``).

Every kernel is a grid-stride loop over the flat index of what it writes. Copies move
the storage element itself (``o[i] = a[k]``: bool's uint8, bfloat16's uint16 bits,
float16 as stored), never a compute value, so NaN payloads and -0.0 survive, as the
references require. Indices are normalized as the references do: a negative index
wraps once (``i + n``), then anything still out of range is clamped to ``[0, n-1]``
(gather, scatter_add); one_hot matches no position for an index outside
``[0, depth)``.

``scatter_add`` is deterministic: one thread per OUTPUT element starts from the
operand's value and walks the indices in order, adding each update whose index lands
on it, in the operand's compute type (halves in float32, rounded once at the end;
integers wrapped per add; bool as logical or) -- exactly ``np.add.at``'s order and
rounding, with no atomics. That is O(output size x index count) index reads (threads
of one row read the same index, so they are broadcast loads); fine for the sizes
tracejit trains with (an embedding gradient of a few thousand tokens), not for huge
vocabularies times long index lists -- a sort-based segmented sum would be the next
step there.

A rule returns at least one kernel even when every output is empty: the program
allocates an equation's outputs for its kernel steps (and skips launching them when
all are empty), so an equation without steps would have no outputs at all.

custom_vjp's forward is the identity on its last ``num_outputs`` inputs (its impl
copies them; the gradient rule only matters to autodiff), so its rule is one copy
kernel per output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ...ir.dtypes import DType
from ...ir.opdef import OpDef
from ..point import Index, PointEmitter
from ..scalars import convert_name, load_expr, store_expr
from ..source import Arg, GeneratedKernel, Param, SourceWriter
from .common import grid_stride_kernel

__all__ = ["RULES", "gather_kernels", "scatter_add_kernels", "one_hot_kernels",
           "pad_kernels", "concat_kernels", "stack_kernels", "custom_vjp_kernels"]


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(shape))


def _kernel(stem: str, params: list[Param], args: list[Arg], n: int,
            fill: Callable[[SourceWriter, PointEmitter], None],
            simulating: bool) -> GeneratedKernel:
    """A grid-stride loop over ``n`` items (``i``); ``fill`` writes the loop's body."""
    return grid_stride_kernel(stem, params, args, n, simulating,
                              lambda w: fill(w, PointEmitter(w, None, {})), kind="movement")


def _normalized(w: SourceWriter, target: str, expr: str, n: int) -> None:
    """``target = expr`` as an int64 index into an axis of ``n``: a negative index wraps
    once, then the result is clamped to ``[0, n-1]`` (gather's reference)."""
    w.line(f"{target} = I64({expr})")
    w.line(f"if {target} < 0:")
    with w.indent():
        w.line(f"{target} += {n}")
    w.line(f"if {target} < 0:")
    with w.indent():
        w.line(f"{target} = 0")
    w.line(f"if {target} > {max(n - 1, 0)}:")
    with w.indent():
        w.line(f"{target} = {max(n - 1, 0)}")


def _flat3(em: PointEmitter, a: str, b: str, c: str, shape: tuple[int, int, int]) -> str:
    """The flat index of ``(a, b, c)`` in ``shape``."""
    return em.flat(Index(shape, axes=(a, b, c)))


# ---- gather ----------------------------------------------------------------------------------

def gather_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    """``out[o, p, r] = x[o, norm(idx[p]), r]`` with x as (outer, n, inner)."""
    x, idx = eqn.ins
    axis = eqn.params["axis"] % len(x.shape)
    outer, n, inner = _prod(x.shape[:axis]), x.shape[axis], _prod(x.shape[axis + 1:])
    m = _prod(idx.shape)
    size = outer * m * inner
    dtype = x.type.dtype

    def fill(w, em):
        o, p, r = em.axes(Index((outer, m, inner), flat="i"))
        _normalized(w, "k", load_expr("a1", p, idx.type.dtype), n)
        w.line(f"o0[i] = a0[{_flat3(em, o, 'k', r, (outer, n, inner))}]")

    return [_kernel("gather", [Param("o0", dtype), Param("a0", dtype),
                               Param("a1", idx.type.dtype)],
                    [Arg("out", 0), Arg("in", 0), Arg("in", 1)], size, fill, simulating)]


# ---- scatter_add -----------------------------------------------------------------------------

def _accumulate(acc: str, value: str, dtype: DType) -> str:
    """``acc + value`` in ``dtype``'s compute type, as np.add.at computes it."""
    if dtype is dt.bool_:
        return f"({acc} or {value})"
    if dtype.is_float:
        return f"{convert_name(dtype)}({acc} + {value})"
    if dtype.bits < 64:
        # NOTE: widened first, so the simulator's NumPy scalars wrap without an
        # overflow warning; the GPU's truncating conversion gives the same bits
        return f"{convert_name(dtype)}(I64({acc}) + I64({value}))"
    return f"{convert_name(dtype)}({acc} + {value})"


def scatter_add_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    """One thread per output element ``(o, j, r)`` of operand (outer, n, inner):
    ``operand[o, j, r] + sum(updates[o, p, r] for p in order if norm(idx[p]) == j)``."""
    operand, idx, _ = eqn.ins
    axis = eqn.params["axis"] % len(operand.shape)
    shape = operand.shape
    outer, n, inner = _prod(shape[:axis]), shape[axis], _prod(shape[axis + 1:])
    m = _prod(idx.shape)
    size = outer * n * inner
    dtype = operand.type.dtype

    def fill(w, em):
        o, j, r = em.axes(Index((outer, n, inner), flat="i"))
        w.line(f"acc = {load_expr('a0', 'i', dtype)}")
        if m:
            w.line(f"for p in range({m}):")
            with w.indent():
                _normalized(w, "k", load_expr("a1", "p", idx.type.dtype), n)
                w.line(f"if k == {j}:")
                with w.indent():
                    at = _flat3(PointEmitter(w, None, {}), o, "p", r, (outer, m, inner))
                    value = load_expr("a2", at, dtype)
                    w.line(f"acc = {_accumulate('acc', value, dtype)}")
        w.line(f"o0[i] = {store_expr('acc', dtype)}")

    return [_kernel("scatter_add", [Param("o0", dtype), Param("a0", dtype),
                                    Param("a1", idx.type.dtype), Param("a2", dtype)],
                    [Arg("out", 0), Arg("in", 0), Arg("in", 1), Arg("in", 2)],
                    size, fill, simulating)]


# ---- one_hot ---------------------------------------------------------------------------------

def one_hot_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    """``out[o, d, r] = on if idx[o, r] == d else off`` (out-of-range: all off)."""
    idx, on, _ = eqn.ins
    depth, axis = eqn.params["depth"], eqn.params["axis"]
    at = len(idx.shape) if axis == -1 else axis
    outer, inner = _prod(idx.shape[:at]), _prod(idx.shape[at:])
    size = outer * depth * inner
    dtype = on.type.dtype

    def fill(w, em):
        o, d, r = em.axes(Index((outer, depth, inner), flat="i"))
        src = em.flat(Index((outer, inner), axes=(o, r)))
        w.line(f"k = I64({load_expr('a0', src, idx.type.dtype)})")
        w.line(f"o0[i] = a1[0] if k == {d} else a2[0]")

    return [_kernel("one_hot", [Param("o0", dtype), Param("a0", idx.type.dtype),
                                Param("a1", dtype), Param("a2", dtype)],
                    [Arg("out", 0), Arg("in", 0), Arg("in", 1), Arg("in", 2)],
                    size, fill, simulating)]


# ---- pad -------------------------------------------------------------------------------------

def pad_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    """``out[a] = x[a - low]`` inside the box, the 0-d value elsewhere."""
    x = eqn.ins[0]
    out = eqn.outs[0]
    low, high = eqn.params["low"], eqn.params["high"]
    dtype = x.type.dtype
    size = _prod(out.shape)

    def fill(w, em):
        if _prod(x.shape) == 0:
            w.line("o0[i] = a1[0]")
            return
        axes = em.axes(Index(tuple(out.shape), flat="i"))
        tests = []
        for a, lo, d, hi in zip(axes, low, x.shape, high, strict=True):
            if lo:
                tests.append(f"{a} >= {lo}")
            if hi:
                tests.append(f"{a} < {lo + d}")
        # NOTE: the source index is only arithmetic (out of the box it is out of range,
        # but the load happens only inside)
        src = em.flat(Index(tuple(x.shape), axes=tuple(
            a if not lo else f"({a} - {lo})" for a, lo in zip(axes, low, strict=True))))
        if not tests:
            w.line(f"o0[i] = a0[{src}]")
            return
        w.line(f"if {' and '.join(tests)}:")
        with w.indent():
            w.line(f"o0[i] = a0[{src}]")
        w.line("else:")
        with w.indent():
            w.line("o0[i] = a1[0]")

    return [_kernel("pad", [Param("o0", dtype), Param("a0", dtype), Param("a1", dtype)],
                    [Arg("out", 0), Arg("in", 0), Arg("in", 1)], size, fill, simulating)]


# ---- concat, stack, custom_vjp -----------------------------------------------------------

def _place_kernels(eqn: Eqn, simulating: bool, stem: str,
                   pieces: list[tuple[int, int, int, int, int]],
                   total: int) -> list[GeneratedKernel]:
    """One copy kernel per non-empty input k (at least one kernel, see above): input k
    viewed as (outer, d, inner) goes to rows ``offset .. offset+d`` of the output viewed
    as (outer, total, inner).
    ``pieces`` holds ``(k, outer, d, inner, offset)``."""
    dtype = eqn.outs[0].type.dtype
    kernels = []
    for n, (k, outer, d, inner, offset) in enumerate(pieces):
        size = outer * d * inner
        if size == 0 and (kernels or n < len(pieces) - 1):
            continue

        def fill(w, em, outer=outer, d=d, inner=inner, offset=offset):
            o, j, r = em.axes(Index((outer, d, inner), flat="i"))
            row = j if not offset else f"({j} + {offset})"
            w.line(f"o0[{_flat3(em, o, row, r, (outer, total, inner))}] = a0[i]")

        kernels.append(_kernel(stem, [Param("o0", dtype), Param("a0", dtype)],
                               [Arg("out", 0), Arg("in", k)], size, fill, simulating))
    return kernels


def concat_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    axis = eqn.params["axis"] % len(eqn.outs[0].shape)
    shape = eqn.outs[0].shape
    outer, inner, total = _prod(shape[:axis]), _prod(shape[axis + 1:]), shape[axis]
    pieces, offset = [], 0
    for k, v in enumerate(eqn.ins):
        pieces.append((k, outer, v.shape[axis], inner, offset))
        offset += v.shape[axis]
    return _place_kernels(eqn, simulating, "concat", pieces, total)


def stack_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    axis = eqn.params["axis"] % len(eqn.outs[0].shape)
    shape = eqn.outs[0].shape
    outer, inner, total = _prod(shape[:axis]), _prod(shape[axis + 1:]), shape[axis]
    pieces = [(k, outer, 1, inner, k) for k in range(len(eqn.ins))]
    return _place_kernels(eqn, simulating, "stack", pieces, total)


def custom_vjp_kernels(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    """The forward is the identity on the last ``num_outputs`` inputs: a copy each."""
    count = eqn.params["num_outputs"]
    first = len(eqn.ins) - count
    kernels = []
    for k, v in enumerate(eqn.outs):
        size = _prod(v.shape)
        if size == 0 and (kernels or k < len(eqn.outs) - 1):
            continue

        def fill(w, em):
            w.line("o0[i] = a0[i]")

        kernels.append(_kernel("copy", [Param("o0", v.type.dtype), Param("a0", v.type.dtype)],
                               [Arg("out", k), Arg("in", first + k)], size, fill, simulating))
    return kernels


RULES: dict[OpDef, Callable[[Eqn, bool], list[GeneratedKernel]]] = {
    ops.GATHER: gather_kernels,
    ops.SCATTER_ADD: scatter_add_kernels,
    ops.ONE_HOT: one_hot_kernels,
    ops.PAD: pad_kernels,
    ops.CONCAT: concat_kernels,
    ops.STACK: stack_kernels,
    ops.CUSTOM_VJP: custom_vjp_kernels,
}
