"""Convolution and pooling kernels over NHWC images and HWIO filters (ops_nn.py).

``RULES[op](eqn, simulating) -> list[GeneratedKernel]`` (args relative to ``eqn``).

Every kernel here is *direct*: one thread per output element, a grid-stride loop over
the output's flat (row-major) index, the sum of each element in a fixed order (no
atomics, so the results are the same bits from run to run), accumulated in float32
(halves and float32) or float64, rounded once to the output's dtype:

* ``conv2d``: ``out[n, y, x, co]`` sums ``x * w`` over the window offsets (row-major)
  and the input channels. Padding positions count as zero *terms*, as the reference's
  im2col does, so ``0 * inf`` gives NaN there too;
* ``conv2d_backprop_input``: a thread per input element walks the window offsets in
  row-major order (the reference's col2im order); an offset contributes when the
  output pixel that reads the element there exists (stride divides, in range), its
  contribution being the dot product over output channels of ``ct`` and ``w``
  (the reference's ``ct @ w.T`` entry), added to the element's sum;
* ``conv2d_backprop_filter``: a thread per filter element sums ``x * ct`` over every
  output pixel (padding again a zero term);
* ``max_pool2d``: IEEE maximum (NaN wins, -0.0 < +0.0) over the window's image
  positions (padding is -inf: it never wins, and every window holds the image);
* ``max_pool2d_backprop`` and ``max_pool2d_select``: the window's *first* maximum in
  row-major order over the padded window (NaN counts as the maximum, the first NaN
  wins: ``np.argmax``; a padding position wins only as the window's first, when every
  image value is -inf). The backprop is two kernels: the winning offset of every
  window into an int32 scratch buffer, then a thread per input element adds, offset
  by offset in row-major order, the cotangents of the windows whose winner it is.
  ``select`` reads ``g`` at the winner (0 at padding);
* ``avg_pool2d``: the window's image elements summed in row-major order, divided by
  their count (padding is not counted); ``avg_pool2d_backprop`` adds each window's
  ``ct / count`` to its image elements, offset by offset as the reference does.

On a real GPU the direct convolutions are slow (each thread rereads its window; the
filter gradient sums a whole batch per thread). The plan: conv2d becomes im2col into
scratch plus one GEMM through :class:`~..steps.GemmStep` (cuBLAS, the tiled kernel as
its fallback), ``conv2d_backprop_input`` a GEMM ``ct @ w^T`` plus a col2im kernel,
``conv2d_backprop_filter`` im2col plus ``cols^T @ ct``. The generators here stay as
the simulator's path and the reference for those.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ...ir import dtypes as dt
from ...ir import ops
from ...ir.core import Eqn
from ...ir.dtypes import DType
from ..scalars import convert_name, literal, load_expr, store_expr
from ..source import Arg, GeneratedKernel, Param, SourceWriter
from .common import grid_stride_kernel, split_flat

__all__ = ["RULES", "Geometry", "geometry", "conv_window_terms"]


# ---- shared pieces ---------------------------------------------------------------------------

def _acc(dtype: DType) -> DType:
    """The accumulator's dtype: float64 for float64, float32 for every other float."""
    return dt.float64 if dtype is dt.float64 else dt.float32


@dataclass(frozen=True)
class Geometry:
    """One convolution or pooling: image ``n, h, w, c``, window ``kh, kw``, pooled/
    output pixels ``oh, ow``, strides, pads (top, bottom, left, right), dilations."""

    n: int
    h: int
    w: int
    c: int
    kh: int
    kw: int
    oh: int
    ow: int
    sh: int
    sw: int
    pt: int
    pl: int
    dh: int = 1
    dw: int = 1


def geometry(image, window, out, params) -> Geometry:
    n, h, w, c = image
    kh, kw = window
    sh, sw = params["strides"]
    pt, _, pl, _ = params["pads"]
    dh, dw = params.get("dilations", (1, 1))
    return Geometry(n, h, w, c, kh, kw, out[1], out[2], sh, sw, pt, pl, dh, dw)


def _kernel(stem: str, out_dtype: DType, inputs: list[DType | tuple[DType, Arg]],
            size: int, simulating: bool, body: Callable[[SourceWriter], None],
            out_arg: Arg | None = None) -> GeneratedKernel:
    """A grid-stride kernel over ``size`` outputs ``o0[i]`` (the equation's output, or
    ``out_arg``) reading ``a0, a1, ...``: the equation's inputs in order, or each
    ``(dtype, Arg)`` given; ``body(w)`` writes the loop's body (``i`` the flat output
    index)."""
    params = [Param("o0", out_dtype)]
    args = [out_arg or Arg("out", 0)]
    for k, item in enumerate(inputs):
        dtype, arg = item if isinstance(item, tuple) else (item, Arg("in", k))
        params.append(Param(f"a{k}", dtype))
        args.append(arg)
    return grid_stride_kernel(stem, params, args, size, simulating, body, kind="nn")


def _inside(coord: str, size: int) -> str:
    return f"{coord} >= 0 and {coord} < {size}"


def _load_or_zero(w: SourceWriter, name: str, array: str, at: str, ok: str,
                  dtype: DType, acc: DType) -> None:
    """``name`` := the element at ``at`` when ``ok``, else a zero of the accumulator's
    type (a padding position's term)."""
    w.line(f"if {ok}:")
    w.line(f"    {name} = {convert_name(acc)}({load_expr(array, at, dtype)})")
    w.line("else:")
    w.line(f"    {name} = {literal(0.0, acc)}")


# ---- convolutions ----------------------------------------------------------------------------

def conv_window_terms(w: SourceWriter, g: Geometry, ci: int, co: int,
                      term: Callable[[SourceWriter], None]) -> None:
    """The loops of a direct convolution's thread over output element ``i``: its
    coordinates ``b, oy, ox, co``, then for each window offset (row-major) and input
    channel ``c``: ``ok`` (the position is inside the image), ``xb + c`` (the image
    element's index, when ``ok``) and ``fb + c * co`` (the filter's), and ``term(w)``."""
    split_flat(w, "i", [("b", g.n), ("oy", g.oh), ("ox", g.ow), ("co", co)])
    w.line(f"for ki in range({g.kh}):")
    with w.indent():
        w.line(f"y = oy * {g.sh} + ki * {g.dh} - {g.pt}")
        w.line(f"for kj in range({g.kw}):")
        with w.indent():
            w.line(f"xx = ox * {g.sw} + kj * {g.dw} - {g.pl}")
            w.line(f"ok = {_inside('y', g.h)} and {_inside('xx', g.w)}")
            w.line(f"xb = ((b * {g.h} + y) * {g.w} + xx) * {g.c}")
            w.line(f"fb = (ki * {g.kw} + kj) * {ci * co} + co")
            w.line(f"for c in range({ci}):")
            with w.indent():
                term(w)


def _conv2d(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    x, f = eqn.ins
    out = eqn.outs[0]
    dtype = x.type.dtype
    acc = _acc(dtype)
    kh, kw, ci, co = f.shape
    g = geometry(x.shape, (kh, kw), out.shape, eqn.params)
    conv = convert_name(acc)

    def body(w: SourceWriter) -> None:
        w.line(f"acc = {literal(0.0, acc)}")

        def term(w: SourceWriter) -> None:
            _load_or_zero(w, "xv", "a0", "xb + c", "ok", dtype, acc)
            fv = load_expr("a1", f"fb + c * {co}", dtype)
            w.line(f"acc = {conv}(acc + xv * {conv}({fv}))")

        conv_window_terms(w, g, ci, co, term)
        w.line(f"o0[i] = {store_expr('acc', dtype)}")

    size = math.prod(out.shape)
    return [_kernel("conv2d", dtype, [dtype, dtype], size, simulating, body)]


def _conv2d_backprop_input(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    ct, f = eqn.ins
    dx = eqn.outs[0]
    dtype = ct.type.dtype
    acc = _acc(dtype)
    kh, kw, ci, co = f.shape
    g = geometry(dx.shape, (kh, kw), ct.shape, eqn.params)
    conv = convert_name(acc)

    def body(w: SourceWriter) -> None:
        split_flat(w, "i", [("b", g.n), ("y", g.h), ("xx", g.w), ("c", g.c)])
        w.line(f"acc = {literal(0.0, acc)}")
        w.line(f"for ki in range({g.kh}):")
        with w.indent():
            # the output row whose window reads row y at offset ki
            w.line(f"ty = y + {g.pt} - ki * {g.dh}")
            w.line(f"oy = ty // {g.sh}")
            w.line(f"if ty >= 0 and ty % {g.sh} == 0 and oy < {g.oh}:")
            with w.indent():
                w.line(f"for kj in range({g.kw}):")
                with w.indent():
                    w.line(f"tx = xx + {g.pl} - kj * {g.dw}")
                    w.line(f"ox = tx // {g.sw}")
                    w.line(f"if tx >= 0 and tx % {g.sw} == 0 and ox < {g.ow}:")
                    with w.indent():
                        w.line(f"cb = ((b * {g.oh} + oy) * {g.ow} + ox) * {co}")
                        w.line(f"fb = ((ki * {g.kw} + kj) * {ci} + c) * {co}")
                        w.line(f"dot = {literal(0.0, acc)}")
                        w.line(f"for o in range({co}):")
                        cv = load_expr("a0", "cb + o", dtype)
                        fv = load_expr("a1", "fb + o", dtype)
                        w.line(f"    dot = {conv}(dot + {conv}({cv}) * {conv}({fv}))")
                        w.line(f"acc = {conv}(acc + dot)")
        w.line(f"o0[i] = {store_expr('acc', dtype)}")

    size = math.prod(dx.shape)
    return [_kernel("conv2d_backprop_input", dtype, [dtype, dtype], size, simulating, body)]


def _conv2d_backprop_filter(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    x, ct = eqn.ins
    df = eqn.outs[0]
    dtype = x.type.dtype
    acc = _acc(dtype)
    kh, kw, ci, co = df.shape
    g = geometry(x.shape, (kh, kw), ct.shape, eqn.params)
    conv = convert_name(acc)

    def body(w: SourceWriter) -> None:
        split_flat(w, "i", [("ki", kh), ("kj", kw), ("c", ci), ("co", co)])
        w.line(f"acc = {literal(0.0, acc)}")
        w.line(f"for b in range({g.n}):")
        with w.indent():
            w.line(f"for oy in range({g.oh}):")
            with w.indent():
                w.line(f"y = oy * {g.sh} + ki * {g.dh} - {g.pt}")
                w.line(f"oky = {_inside('y', g.h)}")
                w.line(f"for ox in range({g.ow}):")
                with w.indent():
                    w.line(f"xx = ox * {g.sw} + kj * {g.dw} - {g.pl}")
                    w.line(f"ok = oky and {_inside('xx', g.w)}")
                    at = f"((b * {g.h} + y) * {g.w} + xx) * {g.c} + c"
                    _load_or_zero(w, "xv", "a0", at, "ok", dtype, acc)
                    cv = load_expr("a1", f"((b * {g.oh} + oy) * {g.ow} + ox) * {co} + co",
                                   dtype)
                    w.line(f"acc = {conv}(acc + xv * {conv}({cv}))")
        w.line(f"o0[i] = {store_expr('acc', dtype)}")

    size = math.prod(df.shape)
    return [_kernel("conv2d_backprop_filter", dtype, [dtype, dtype], size, simulating,
                    body)]


# ---- pooling ---------------------------------------------------------------------------------

def _poolgeometry(eqn: Eqn, image, pooled) -> Geometry:
    return geometry(image, eqn.params["ksize"], pooled, eqn.params)


def _window_rows(w: SourceWriter, g: Geometry, inner: Callable[[SourceWriter], None],
                 skip_padding: bool = True) -> None:
    """Loops over the window of pooled pixel (b, oy, ox), row-major; ``inner`` sees
    ``y``, ``xx`` (image coordinates), ``k`` (the offset, row-major), ``ok`` (inside
    the image) and, where ok, ``at`` (the flat index of channel ``c``)."""
    w.line(f"for ki in range({g.kh}):")
    with w.indent():
        w.line(f"y = oy * {g.sh} + ki - {g.pt}")
        w.line(f"for kj in range({g.kw}):")
        with w.indent():
            w.line(f"xx = ox * {g.sw} + kj - {g.pl}")
            w.line(f"ok = {_inside('y', g.h)} and {_inside('xx', g.w)}")
            if skip_padding:
                w.line("if ok:")
                w.depth += 1
            w.line(f"k = ki * {g.kw} + kj")
            w.line(f"at = ((b * {g.h} + y) * {g.w} + xx) * {g.c} + c")
            inner(w)
            if skip_padding:
                w.depth -= 1


def _first_max(w: SourceWriter, g: Geometry, dtype: DType) -> None:
    """``best_k`` := the offset of pooled pixel (b, oy, ox, c)'s first maximum over the
    padded window (padding -inf; NaN is the maximum, the first one wins)."""
    acc = _acc(dtype)
    conv = convert_name(acc)
    w.line(f"best = {literal(-math.inf, acc)}")
    w.line("best_k = 0")

    def inner(w: SourceWriter) -> None:
        w.line("if ok:")
        w.line(f"    v = {conv}({load_expr('a0', 'at', dtype)})")
        w.line("else:")
        w.line(f"    v = {literal(-math.inf, acc)}")
        # NOTE: offset 0 is the winner until a later offset is strictly greater, or
        # NaN while the winner is not (best starts at -inf: a tie there keeps 0)
        w.line("if not math.isnan(best) and (math.isnan(v) or v > best):")
        w.line("    best = v")
        w.line("    best_k = k")
    _window_rows(w, g, inner, skip_padding=False)


def _max_pool2d(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    (x,) = eqn.ins
    out = eqn.outs[0]
    dtype = x.type.dtype
    acc = _acc(dtype)
    conv = convert_name(acc)
    g = _poolgeometry(eqn, x.shape, out.shape)

    def body(w: SourceWriter) -> None:
        split_flat(w, "i", [("b", g.n), ("oy", g.oh), ("ox", g.ow), ("c", g.c)])
        w.line(f"m = {literal(-math.inf, acc)}")
        _window_rows(w, g, lambda w: w.line(
            f"m = tj_max_float(m, {conv}({load_expr('a0', 'at', dtype)}))"))
        w.line(f"o0[i] = {store_expr('m', dtype)}")

    return [_kernel("max_pool2d", dtype, [dtype], math.prod(out.shape), simulating, body)]


def _max_pool2d_select(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    x, _ = eqn.ins
    out = eqn.outs[0]
    dtype = x.type.dtype
    acc = _acc(dtype)
    g = _poolgeometry(eqn, x.shape, out.shape)

    def body(w: SourceWriter) -> None:
        split_flat(w, "i", [("b", g.n), ("oy", g.oh), ("ox", g.ow), ("c", g.c)])
        _first_max(w, g, dtype)
        w.line(f"y = oy * {g.sh} + best_k // {g.kw} - {g.pt}")
        w.line(f"xx = ox * {g.sw} + best_k % {g.kw} - {g.pl}")
        w.line(f"ok = {_inside('y', g.h)} and {_inside('xx', g.w)}")
        _load_or_zero(w, "v", "a1", f"((b * {g.h} + y) * {g.w} + xx) * {g.c} + c", "ok",
                      dtype, acc)
        w.line(f"o0[i] = {store_expr('v', dtype)}")

    return [_kernel("max_pool2d_select", dtype, [dtype, dtype], math.prod(out.shape),
                    simulating, body)]


def _max_pool2d_backprop(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    x, ct = eqn.ins
    dx = eqn.outs[0]
    dtype = x.type.dtype
    acc = _acc(dtype)
    conv = convert_name(acc)
    g = _poolgeometry(eqn, x.shape, ct.shape)
    pooled = math.prod(ct.shape)
    winners = ("pool_argmax", pooled, dt.int32)

    def argmax(w: SourceWriter) -> None:
        split_flat(w, "i", [("b", g.n), ("oy", g.oh), ("ox", g.ow), ("c", g.c)])
        _first_max(w, g, dtype)
        w.line("o0[i] = I32(best_k)")

    first = _kernel("max_pool2d_argmax", dt.int32, [dtype], pooled, simulating, argmax,
                    out_arg=Arg("scratch", winners))

    def scatter(w: SourceWriter) -> None:
        split_flat(w, "i", [("b", g.n), ("y", g.h), ("xx", g.w), ("c", g.c)])
        w.line(f"acc = {literal(0.0, acc)}")
        w.line(f"for ki in range({g.kh}):")
        with w.indent():
            w.line(f"ty = y + {g.pt} - ki")
            w.line(f"oy = ty // {g.sh}")
            w.line(f"if ty >= 0 and ty % {g.sh} == 0 and oy < {g.oh}:")
            with w.indent():
                w.line(f"for kj in range({g.kw}):")
                with w.indent():
                    w.line(f"tx = xx + {g.pl} - kj")
                    w.line(f"ox = tx // {g.sw}")
                    w.line(f"if tx >= 0 and tx % {g.sw} == 0 and ox < {g.ow}:")
                    with w.indent():
                        w.line(f"p = ((b * {g.oh} + oy) * {g.ow} + ox) * {g.c} + c")
                        w.line(f"if a1[p] == ki * {g.kw} + kj:")
                        cv = load_expr("a0", "p", dtype)
                        w.line(f"    acc = {conv}(acc + {conv}({cv}))")
        w.line(f"o0[i] = {store_expr('acc', dtype)}")

    second = _kernel("max_pool2d_backprop", dtype,
                     [(dtype, Arg("in", 1)), (dt.int32, Arg("scratch", winners))],
                     math.prod(dx.shape), simulating, scatter)
    return [first, second]


def _count(w: SourceWriter, g: Geometry, acc: DType) -> None:
    """``cnt`` := how many image positions the window of (oy, ox) holds (as ``acc``)."""
    w.line(f"y0 = oy * {g.sh} - {g.pt}")
    w.line(f"x0 = ox * {g.sw} - {g.pl}")
    w.line(f"ny = min(y0 + {g.kh}, {g.h}) - max(y0, 0)")
    w.line(f"nx = min(x0 + {g.kw}, {g.w}) - max(x0, 0)")
    w.line(f"cnt = {convert_name(acc)}(ny * nx)")


def _avg_pool2d(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    (x,) = eqn.ins
    out = eqn.outs[0]
    dtype = x.type.dtype
    acc = _acc(dtype)
    conv = convert_name(acc)
    g = _poolgeometry(eqn, x.shape, out.shape)

    def body(w: SourceWriter) -> None:
        split_flat(w, "i", [("b", g.n), ("oy", g.oh), ("ox", g.ow), ("c", g.c)])
        w.line(f"acc = {literal(0.0, acc)}")
        _window_rows(w, g, lambda w: w.line(
            f"acc = {conv}(acc + {conv}({load_expr('a0', 'at', dtype)}))"))
        _count(w, g, acc)
        w.line(f"acc = {conv}(acc / cnt)")
        w.line(f"o0[i] = {store_expr('acc', dtype)}")

    return [_kernel("avg_pool2d", dtype, [dtype], math.prod(out.shape), simulating, body)]


def _avg_pool2d_backprop(eqn: Eqn, simulating: bool) -> list[GeneratedKernel]:
    (ct,) = eqn.ins
    dx = eqn.outs[0]
    dtype = ct.type.dtype
    acc = _acc(dtype)
    conv = convert_name(acc)
    g = _poolgeometry(eqn, dx.shape, ct.shape)

    def body(w: SourceWriter) -> None:
        split_flat(w, "i", [("b", g.n), ("y", g.h), ("xx", g.w), ("c", g.c)])
        w.line(f"acc = {literal(0.0, acc)}")
        w.line(f"for ki in range({g.kh}):")
        with w.indent():
            w.line(f"ty = y + {g.pt} - ki")
            w.line(f"oy = ty // {g.sh}")
            w.line(f"if ty >= 0 and ty % {g.sh} == 0 and oy < {g.oh}:")
            with w.indent():
                w.line(f"for kj in range({g.kw}):")
                with w.indent():
                    w.line(f"tx = xx + {g.pl} - kj")
                    w.line(f"ox = tx // {g.sw}")
                    w.line(f"if tx >= 0 and tx % {g.sw} == 0 and ox < {g.ow}:")
                    with w.indent():
                        _count(w, g, acc)
                        cv = load_expr("a0", f"((b * {g.oh} + oy) * {g.ow} + ox) * {g.c} + c",
                                       dtype)
                        w.line(f"acc = {conv}(acc + {conv}({conv}({cv}) / cnt))")
        w.line(f"o0[i] = {store_expr('acc', dtype)}")

    return [_kernel("avg_pool2d_backprop", dtype, [dtype], math.prod(dx.shape), simulating,
                    body)]


RULES: dict[object, Callable[[Eqn, bool], list[GeneratedKernel]]] = {
    ops.CONV2D: _conv2d,
    ops.CONV2D_BACKPROP_INPUT: _conv2d_backprop_input,
    ops.CONV2D_BACKPROP_FILTER: _conv2d_backprop_filter,
    ops.MAX_POOL2D: _max_pool2d,
    ops.MAX_POOL2D_SELECT: _max_pool2d_select,
    ops.MAX_POOL2D_BACKPROP: _max_pool2d_backprop,
    ops.AVG_POOL2D: _avg_pool2d,
    ops.AVG_POOL2D_BACKPROP: _avg_pool2d_backprop,
}
