"""``x[index]`` with NumPy's rules: ints, slices (negative steps too), None, Ellipsis, and
integer arrays (advanced indexing, lowered to ``gather`` over flattened axes).

Bool masks need a shape known only at run time, so they are rejected with a clear
error. Out-of-range static ints raise IndexError; out-of-range *array* indices
follow gather's rule (negative wraps once, then clamps) because they may be traced.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..ir import ops
from ..ir.errors import TracejitError
from ..ir.source import user_location
from .array_ops import broadcast_to, expand_dims, reshape, reverse, transpose
from .math_ops import add, multiply, where
from .tracing import bind, static_ints, to_tensor
from .values import Tensor, Tracer


class IndexingError(TracejitError, IndexError):
    """An index that does not fit the tensor."""


def _fail(message: str):
    raise IndexingError(message, op="getitem", location=user_location())


def _is_array_index(item) -> bool:
    if isinstance(item, Tensor):
        return True
    return isinstance(item, (list, np.ndarray)) and not isinstance(item, bool)


def _expand_ellipsis(index: tuple, ndim: int) -> list:
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    if sum(1 for i in index if i is Ellipsis) > 1:
        _fail("an index can only have a single ellipsis ('...')")
    if consumed > ndim:
        _fail(f"too many indices: {consumed} for a tensor of rank {ndim}")
    out = []
    for item in index:
        if item is Ellipsis:
            out.extend([builtins.slice(None)] * (ndim - consumed))
        else:
            out.append(item)
    # NOTE: not ``Ellipsis in index``: that compares with ==, which is elementwise on arrays.
    if not any(i is Ellipsis for i in index):
        out.extend([builtins.slice(None)] * (ndim - consumed))
    return out


def getitem(x: Tensor, index) -> Tensor:
    if not isinstance(index, tuple):
        index = (index,)
    items = _expand_ellipsis(index, x.ndim)
    has_array = any(_is_array_index(i) for i in items)

    starts, limits, strides, flips = [], [], [], []
    advanced: list[tuple[int, Tensor]] = []     # (axis of x, index tensor)
    dropped: list[int] = []                     # axes indexed by a static int
    layout: list[str] = []                      # per item: slice, none, adv
    axis = 0
    for item in items:
        if item is None:
            layout.append("none")
            continue
        size = x.shape[axis]
        starts.append(0)
        limits.append(size)
        strides.append(1)
        if isinstance(item, builtins.slice):
            start, stop, step = item.indices(size)
            count = len(builtins.range(start, stop, step))
            if step < 0:
                flips.append(axis)
                start, step = size - 1 - start, -step
            starts[-1] = start
            limits[-1] = start + (count - 1) * step + 1 if count else start
            strides[-1] = step
            layout.append("slice")
        elif isinstance(item, (bool, np.bool_)):
            _fail("bool scalars are not valid indices")
        elif isinstance(item, (int, np.integer)) and not has_array:
            i = int(item)
            if not -size <= i < size:
                _fail(f"index {i} is out of bounds for axis {axis} with size {size}")
            starts[-1], limits[-1] = i % size, i % size + 1
            dropped.append(axis)
        elif isinstance(item, (int, np.integer)) or _is_array_index(item):
            idx = to_tensor(item)
            if idx.dtype.is_bool:
                _fail("boolean mask indexing gives a shape known only at run time; use "
                      "tracejit.where(mask, x, 0) or gather with explicit indices")
            if not idx.dtype.is_integer:
                _fail(f"array indices must be integers, got {idx.type}")
            advanced.append((axis, idx))
            layout.append("adv")
        else:
            _fail(f"unsupported index {item!r} of type {type(item).__name__}")
        axis += 1

    if flips:
        x = reverse(x, flips)
    if (tuple(starts), tuple(limits)) != ((0,) * x.ndim, x.shape) or any(s != 1 for s in strides):
        x = bind(ops.SLICE, [x], {"starts": tuple(starts), "limits": tuple(limits),
                                         "strides": tuple(strides)}, weak=x.weak)
    if dropped:
        x = bind(ops.SQUEEZE, [x], {"axes": tuple(dropped)}, weak=x.weak)
    batch_ndim = 0
    adjacent = True
    if advanced:
        # Axes of x after the static ints were dropped.
        axes = [a - sum(1 for d in dropped if d < a) for a, _ in advanced]
        # NOTE: positions in the index as written: an Ellipsis between index arrays separates
        # them even where it stands for no axes, as in NumPy.
        positions = [i for i, item in enumerate(index) if item is not Ellipsis and (
            _is_array_index(item) or isinstance(item, (int, np.integer)))]
        adjacent = positions == list(builtins.range(positions[0], positions[0] + len(positions)))
        x = _gather_advanced(x, axes, [idx for _, idx in advanced], adjacent, transpose, reshape)
        batch_ndim = x.ndim - (axis - len(dropped) - len(advanced))
    # Insert the None axes where NumPy puts them.
    position = 0 if adjacent else batch_ndim
    new_axes = []
    seen_adv = False
    for kind in layout:
        if kind == "none":
            new_axes.append(position)
            position += 1
        elif kind == "slice":
            position += 1
        elif kind == "adv" and not seen_adv:
            seen_adv = True
            if adjacent:
                position += batch_ndim
    if new_axes:
        x = expand_dims(x, tuple(new_axes))
    return x


def _gather_advanced(x, axes, indices, adjacent, transpose, reshape):
    """Gather at broadcast integer arrays over ``axes``: the indexed axes are moved to the
    front and merged, so one gather on a flat index does the work."""
    sizes = [x.shape[a] for a in axes]
    shapes = [idx.shape for idx in indices]
    try:
        batch = np.broadcast_shapes(*shapes)
    except ValueError:
        _fail("shape mismatch: index arrays of shapes "
              f"{', '.join(str(list(s)) for s in shapes)} cannot be broadcast together")
    flat = None
    for idx, size in zip(indices, sizes, strict=True):
        idx = where(idx < 0, idx + size, idx) if not _all_nonnegative(idx) else idx
        idx = _clamp(idx, size)
        flat = idx if flat is None else add(multiply(flat, size), idx)
    if len(axes) == 1:
        return bind(ops.GATHER, [x, flat], {"axis": axes[0]}, weak=x.weak)
    flat = _broadcast(flat, batch)
    rest = [a for a in builtins.range(x.ndim) if a not in axes]
    moved = transpose(x, tuple(axes) + tuple(rest))
    merged = reshape(moved, (math.prod(sizes),) + tuple(x.shape[a] for a in rest))
    out = bind(ops.GATHER, [merged, flat], {"axis": 0}, weak=x.weak)
    if adjacent and axes[0] > 0:
        # NumPy keeps adjacent advanced dims in place of the indexed axes.
        nb, first = len(batch), axes[0]
        order = list(builtins.range(nb, nb + first)) + list(builtins.range(nb)) + \
            list(builtins.range(nb + first, out.ndim))
        out = transpose(out, tuple(order))
    return out


def _all_nonnegative(idx) -> bool:
    return not isinstance(idx, Tracer) and bool(np.all(np.asarray(idx) >= 0))


def _clamp(idx, size):
    if isinstance(idx, Tracer):
        return idx     # gather clamps traced indices itself
    array = np.asarray(idx)
    if array.size and (array.min() < 0 or array.max() >= size):
        bad = array[(array < 0) | (array >= size)].reshape(-1)[0]
        _fail(f"index {int(bad) - size if bad < 0 else int(bad)} is out of bounds for an axis "
              f"of size {size}")
    return to_tensor(array.astype(np.int64 if size > 2**31 - 1 else np.int32))


def _broadcast(idx, batch):
    return broadcast_to(idx, batch) if idx.shape != tuple(batch) else idx


def strided_slice(input_, begin, end, strides=None, name=None) -> Tensor:
    begin = static_ints(begin, "begin", "strided_slice")
    end = static_ints(end, "end", "strided_slice")
    strides = (1,) * len(begin) if strides is None else static_ints(strides, "strides",
                                                                       "strided_slice")
    return getitem(to_tensor(input_), tuple(builtins.slice(b, e, s)
                                            for b, e, s in zip(begin, end, strides, strict=True)))
