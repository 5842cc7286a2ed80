"""Gradient (VJP) rules of the reduction, movement and linear-algebra ops.

Each op names its rule in its declaration (``vjp=vjp_rules.sum_vjp``); the rules live
here to keep the op files readable. A rule gets ``(g, ins, outs, cts, params)`` with
Syms (see symbolic.py) and returns one cotangent or None per input.
"""

from __future__ import annotations

import math

from .symbolic import Sym, SymBuilder  # noqa: F401

# ---- reductions ----------------------------------------------------------------------------------

def sum_vjp(g, ins, outs, cts, params):
    (x,) = ins
    return (g.expand_reduced(cts[0], params["axes"], params["keepdims"], x.shape),)


def mean_vjp(g, ins, outs, cts, params):
    (x,) = ins
    count = math.prod(x.shape[a] for a in params["axes"])
    spread = g.expand_reduced(cts[0], params["axes"], params["keepdims"], x.shape)
    return (spread * (1.0 / max(count, 1)),)


def extremum_vjp(g, ins, outs, cts, params):
    """The gradient goes to the elements equal to the extreme, split evenly among ties
    (as TensorFlow does)."""
    (x,), (y,) = ins, outs
    axes, keepdims = params["axes"], params["keepdims"]
    hit = g.cast(x.eq(g.expand_reduced(y, axes, keepdims, x.shape)), x.dtype)
    ties = g.op("sum", hit, axes=axes, keepdims=True)
    spread = g.expand_reduced(cts[0], axes, keepdims, x.shape)
    return (spread * hit / g.broadcast_to(ties, x.shape),)


def prod_vjp(g, ins, outs, cts, params):
    """d prod / d x_i = product of the other elements, computed without dividing by zero:
    with no zero it is prod / x_i; with one zero only that element gets the product of
    the rest; with two or more every element gets 0."""
    (x,) = ins
    axes, keepdims = params["axes"], params["keepdims"]
    is_zero = x.eq(0)
    nonzero = g.select(is_zero, 1, x)
    rest = g.broadcast_to(g.op("prod", nonzero, axes=axes, keepdims=True), x.shape)
    zeros = g.broadcast_to(g.op("sum", g.cast(is_zero, x.dtype), axes=axes, keepdims=True),
                           x.shape)
    one_zero = g.select(is_zero, rest, 0)
    others = g.select(zeros.eq(1), one_zero, 0)
    partial = g.select(zeros.eq(0), rest / nonzero, others)
    return (g.expand_reduced(cts[0], axes, keepdims, x.shape) * partial,)


# ---- movement ------------------------------------------------------------------------------------

def reshape_like_input_vjp(g, ins, outs, cts, params):
    """reshape, expand_dims and squeeze only relabel the elements."""
    return (g.reshape(cts[0], ins[0].shape),)


def transpose_vjp(g, ins, outs, cts, params):
    perm = params["perm"]
    inverse = tuple(sorted(range(len(perm)), key=lambda i: perm[i]))
    return (g.op("transpose", cts[0], perm=inverse),)


def broadcast_to_vjp(g, ins, outs, cts, params):
    return (g.sum_to_shape(cts[0], ins[0].shape),)


def reverse_vjp(g, ins, outs, cts, params):
    return (g.op("reverse", cts[0], axes=params["axes"]),)


def _dilate(g: SymBuilder, ct: Sym, axis: int, stride: int) -> Sym:
    """Insert stride-1 zeros between elements along ``axis``: [a, b] -> [a, 0, 0, b]."""
    n = ct.shape[axis]
    grown = g.reshape(ct, ct.shape[:axis + 1] + (1,) + ct.shape[axis + 1:])
    low = [0] * grown.ndim
    high = [0] * grown.ndim
    high[axis + 1] = stride - 1
    padded = g.op("pad", grown, g.lift(0, ct.dtype), low=tuple(low), high=tuple(high))
    flat = g.reshape(padded, ct.shape[:axis] + (n * stride,) + ct.shape[axis + 1:])
    limits = list(flat.shape)
    limits[axis] = (n - 1) * stride + 1
    return g.op("slice", flat, starts=(0,) * flat.ndim, limits=tuple(limits),
                strides=(1,) * flat.ndim)


def slice_vjp(g, ins, outs, cts, params):
    (x,), ct = ins, cts[0]
    if ct.var.type.size == 0:
        return (g.zeros(x.shape, x.dtype),)
    for axis, stride in enumerate(params["strides"]):
        if stride > 1 and ct.shape[axis] > 1:
            ct = _dilate(g, ct, axis, stride)
    low = params["starts"]
    high = tuple(d - s - c for d, s, c in zip(x.shape, low, ct.shape, strict=True))
    return (g.op("pad", ct, g.lift(0, ct.dtype), low=tuple(low), high=high),)


def _slice_along(g, ct: Sym, axis: int, start: int, stop: int) -> Sym:
    starts = [0] * ct.ndim
    limits = list(ct.shape)
    starts[axis], limits[axis] = start, stop
    return g.op("slice", ct, starts=tuple(starts), limits=tuple(limits),
                strides=(1,) * ct.ndim)


def concat_vjp(g, ins, outs, cts, params):
    axis, start, grads = params["axis"], 0, []
    for x in ins:
        grads.append(_slice_along(g, cts[0], axis, start, start + x.shape[axis]))
        start += x.shape[axis]
    return tuple(grads)


def stack_vjp(g, ins, outs, cts, params):
    axis = params["axis"]
    return tuple(g.reshape(_slice_along(g, cts[0], axis, i, i + 1), x.shape)
                 for i, x in enumerate(ins))


def pad_vjp(g, ins, outs, cts, params):
    (x, _), ct = ins, cts[0]
    low = params["low"]
    inner = g.op("slice", ct, starts=tuple(low),
                 limits=tuple(lo + d for lo, d in zip(low, x.shape, strict=True)),
                 strides=(1,) * ct.ndim)
    everything = g.op("sum", ct, axes=tuple(range(ct.ndim)), keepdims=False)
    kept = g.op("sum", inner, axes=tuple(range(inner.ndim)), keepdims=False)
    return inner, everything - kept


def tile_vjp(g, ins, outs, cts, params):
    """out[k*d + j] = x[j] along each axis: view the gradient as [r0, d0, r1, d1, ...]
    and sum over the repeat axes."""
    (x,), ct = ins, cts[0]
    pairs = []
    for reps, size in zip(params["reps"], x.shape, strict=True):
        pairs += [reps, size]
    grouped = g.reshape(ct, pairs)
    summed = g.op("sum", grouped, axes=tuple(range(0, len(pairs), 2)), keepdims=False)
    return (g.reshape(summed, x.shape),)


def gather_vjp(g, ins, outs, cts, params):
    (x, indices), ct = ins, cts[0]
    zeros = g.zeros(x.shape, x.dtype)
    return g.op("scatter_add", zeros, indices, ct, axis=params["axis"]), None


def gather_rows_vjp(g, ins, outs, cts, params):
    """Gather along axis 0 as rows: the cotangent rows, one per index (flattened), and the
    indices themselves. Other axes have no row form (None: dense)."""
    if params["axis"] != 0:
        return None
    (x, indices), ct = ins, cts[0]
    count = math.prod(indices.shape)
    return g.reshape(ct, (count,) + x.shape[1:]), g.reshape(indices, (count,))


def scatter_add_vjp(g, ins, outs, cts, params):
    (_, indices, _), ct = ins, cts[0]
    return ct, None, g.op("gather", ct, indices, axis=params["axis"])


def one_hot_vjp(g, ins, outs, cts, params):
    (indices, on, _), ct = ins, cts[0]
    hot = g.op("one_hot", indices, g.lift(1, on.dtype), g.lift(0, on.dtype),
               depth=params["depth"], axis=params["axis"], dtype=params["dtype"])
    every = tuple(range(ct.ndim))
    on_grad = g.op("sum", ct * hot, axes=every, keepdims=False)
    off_grad = g.op("sum", ct * (1 - hot), axes=every, keepdims=False)
    return None, on_grad, off_grad


# ---- linear algebra ------------------------------------------------------------------------------

def matmul_vjp(g, ins, outs, cts, params):
    """For c = op_a(a) @ op_b(b): d op_a(a) = ct @ op_b(b)^T and d op_b(b) = op_a(a)^T @ ct,
    each one matmul with transpose flags (no transposed copies)."""
    (a, b), ct = ins, cts[0]
    ta, tb = params["transpose_a"], params["transpose_b"]
    # da = ct @ op_b(b)^T, or its transpose when a itself is stored transposed.
    if ta:
        da = g.op("matmul", b, ct, transpose_a=tb, transpose_b=True)
    else:
        da = g.op("matmul", ct, b, transpose_a=False, transpose_b=not tb)
    if tb:
        db = g.op("matmul", ct, a, transpose_a=True, transpose_b=ta)
    else:
        db = g.op("matmul", a, ct, transpose_a=not ta, transpose_b=False)
    return g.sum_to_shape(da, a.shape), g.sum_to_shape(db, b.shape)
