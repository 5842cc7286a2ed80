"""Shape and movement functions, and tensor creation, under TensorFlow's names."""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.errors import ParamError, ShapeError, TracejitError
from ..ir.opdef import normalize_axes
from ..ir.source import user_location
from .tracing import bind, cast, promote, static_ints, to_tensor
from .values import Tensor, Tracer


def _op(name):
    return ops.OPS[name]


def _fail(error_type, message, op):
    raise error_type(message, op=op, location=user_location())


def _axes(axes, ndim: int, op: str) -> tuple[int, ...]:
    """Static axes made non-negative and sorted (the IR's spelling), checked against ndim."""
    try:
        return normalize_axes(op, static_ints(axes, "axis", op), ndim)
    except TracejitError as err:
        raise err.at(user_location()) from None


# ---- shapes -------------------------------------------------------------------------------------

def reshape(tensor, shape, name=None) -> Tensor:
    """Reshape; one dimension may be -1 and is inferred."""
    x = to_tensor(tensor)
    shape = list(static_ints(shape, "shape", "reshape"))
    if shape.count(-1) > 1:
        _fail(ShapeError, f"at most one -1 in a shape, got {shape}", "reshape")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or x.size % known:
            _fail(ShapeError, f"cannot reshape {x.type} into {shape}", "reshape")
        shape[shape.index(-1)] = x.size // known
    if tuple(shape) == x.shape:
        return x
    return bind(_op("reshape"), [x], {"shape": tuple(shape)}, weak=x.weak)


def transpose(a, perm=None, name=None) -> Tensor:
    x = to_tensor(a)
    perm = tuple(reversed(builtins.range(x.ndim))) if perm is None else static_ints(perm, "perm",
                                                                            "transpose")
    if perm == tuple(builtins.range(x.ndim)):
        return x
    return bind(_op("transpose"), [x], {"perm": perm}, weak=x.weak)


def matrix_transpose(a, name=None) -> Tensor:
    x = to_tensor(a)
    perm = list(builtins.range(x.ndim))
    perm[-2:] = perm[-1], perm[-2]
    return transpose(x, perm)


def broadcast_to(input, shape, name=None) -> Tensor:
    x = to_tensor(input)
    shape = static_ints(shape, "shape", "broadcast_to")
    if shape == x.shape:
        return x
    return bind(_op("broadcast_to"), [x], {"shape": shape}, weak=x.weak)


def expand_dims(input, axis, name=None) -> Tensor:
    x = to_tensor(input)
    count = len(static_ints(axis, "axis", "expand_dims"))
    return bind(_op("expand_dims"), [x], {"axes": _axes(axis, x.ndim + count, "expand_dims")},
                weak=x.weak)


def squeeze(input, axis=None, name=None) -> Tensor:
    x = to_tensor(input)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = _axes(axis, x.ndim, "squeeze")
    if not axes:
        return x
    return bind(_op("squeeze"), [x], {"axes": axes}, weak=x.weak)


def _nonempty(values, op: str) -> list:
    values = list(values)
    if not values:
        _fail(ParamError, "needs at least one tensor, got an empty list", op)
    return values


def concat(values, axis, name=None) -> Tensor:
    tensors, weak = promote(*_nonempty(values, "concat"))
    if len(tensors) == 1:
        return tensors[0]
    (axis,) = _axes(axis, tensors[0].ndim, "concat")
    return bind(_op("concat"), tensors, {"axis": axis}, weak=weak)


def concatenate(arrays, axis=0) -> Tensor:
    return concat(arrays, axis)


def stack(values, axis=0, name=None) -> Tensor:
    tensors, weak = promote(*_nonempty(values, "stack"))
    (axis,) = _axes(axis, tensors[0].ndim + 1, "stack")
    return bind(_op("stack"), tensors, {"axis": axis}, weak=weak)


def unstack(value, num=None, axis=0, name=None) -> list[Tensor]:
    """Split along ``axis`` into a list of tensors (the loop-friendly form of iteration)."""
    x = to_tensor(value)
    (axis,) = _axes(axis, x.ndim, "unstack")
    if num is not None and num != x.shape[axis]:
        _fail(ShapeError, f"num={num} does not match dimension {axis} of {x.type}", "unstack")
    pieces = []
    for i in builtins.range(x.shape[axis]):
        starts = [0] * x.ndim
        limits = list(x.shape)
        starts[axis], limits[axis] = i, i + 1
        piece = bind(_op("slice"), [x], {"starts": tuple(starts), "limits": tuple(limits),
                                         "strides": (1,) * x.ndim}, weak=x.weak)
        pieces.append(squeeze(piece, axis))
    return pieces


def split(value, num_or_size_splits, axis=0, name=None) -> list[Tensor]:
    x = to_tensor(value)
    (axis,) = _axes(axis, x.ndim, "split")
    if isinstance(num_or_size_splits, int):
        if num_or_size_splits <= 0 or x.shape[axis] % num_or_size_splits:
            _fail(ShapeError, f"dimension {axis} of {x.type} is not divisible into "
                  f"{num_or_size_splits} parts", "split")
        sizes = [x.shape[axis] // num_or_size_splits] * num_or_size_splits
    else:
        sizes = list(static_ints(num_or_size_splits, "size_splits", "split"))
        if sizes.count(-1) == 1:   # TensorFlow infers one -1 from the rest
            sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
        if sum(sizes) != x.shape[axis] or any(size < 0 for size in sizes):
            _fail(ShapeError, f"size_splits {list(num_or_size_splits)} do not add up to "
                  f"dimension {axis} of {x.type}", "split")
    out, start = [], 0
    for size in sizes:
        starts = [0] * x.ndim
        limits = list(x.shape)
        starts[axis], limits[axis] = start, start + size
        out.append(bind(_op("slice"), [x], {"starts": tuple(starts), "limits": tuple(limits),
                                            "strides": (1,) * x.ndim}, weak=x.weak))
        start += size
    return out


def pad(tensor, paddings, mode="CONSTANT", constant_values=0, name=None) -> Tensor:
    """TensorFlow's pad: ``paddings`` is ``[[before, after], ...]`` per dimension."""
    mode = str(mode).upper()
    if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        _fail(ParamError, f"mode must be CONSTANT, REFLECT or SYMMETRIC, got {mode!r}", "pad")
    x = to_tensor(tensor)
    pairs = np.asarray(static_ints(paddings, "paddings", "pad")).reshape(-1, 2)
    if mode != "CONSTANT":
        return _mirror_pad(x, pairs, mode == "REFLECT")
    value = cast(to_tensor(constant_values), x.dtype)
    return bind(_op("pad"), [x, value], {"low": tuple(int(p) for p in pairs[:, 0]),
                                         "high": tuple(int(p) for p in pairs[:, 1])},
                weak=x.weak)


def _mirror_pad(x: Tensor, pairs, reflect: bool) -> Tensor:
    """Mirror padding as slices, reversals and a concat per axis: REFLECT mirrors
    around the edge element (``[1, 2, 3]`` by 2: ``3 2 | 1 2 3 | 2 1``), SYMMETRIC
    repeats it (``2 1 | 1 2 3 | 3 2``)."""
    skip = 1 if reflect else 0
    for axis, (low, high) in enumerate(pairs.tolist()):
        size = x.shape[axis]
        if min(low, high) < 0 or max(low, high) > size - skip:
            _fail(ShapeError, f"paddings {pairs.tolist()} must be at most {size - skip} on "
                  f"axis {axis} of {x.type} for mode {'REFLECT' if reflect else 'SYMMETRIC'}",
                  "pad")
        if not low and not high:
            continue
        before = [_reversed_band(x, axis, skip, skip + low)] if low else []
        after = [_reversed_band(x, axis, size - high - skip, size - skip)] if high else []
        x = concat(before + [x] + after, axis)
    return x


def _reversed_band(x: Tensor, axis: int, start: int, stop: int) -> Tensor:
    """``x[start:stop]`` along ``axis``, reversed along it."""
    begin = [0] * x.ndim
    size = list(x.shape)
    begin[axis], size[axis] = start, stop - start
    return reverse(slice(x, begin, size), [axis])


def tile(input, multiples, name=None) -> Tensor:
    x = to_tensor(input)
    return bind(_op("tile"), [x], {"reps": static_ints(multiples, "multiples", "tile")},
                weak=x.weak)


def reverse(tensor, axis, name=None) -> Tensor:
    x = to_tensor(tensor)
    return bind(_op("reverse"), [x], {"axes": _axes(axis, x.ndim, "reverse")}, weak=x.weak)


def gather(params, indices, axis=0, name=None) -> Tensor:
    """Take slices of ``params`` along ``axis`` at integer ``indices`` (of any shape)."""
    x = to_tensor(params)
    idx = to_tensor(indices)
    if not idx.dtype.is_integer:
        _fail(ParamError, f"indices must be integers, got {idx.type}", "gather")
    (axis,) = _axes(axis, x.ndim, "gather")
    return bind(_op("gather"), [x, idx], {"axis": axis}, weak=x.weak)


def take(a, indices, axis=None) -> Tensor:
    x = to_tensor(a)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return gather(x, indices, axis)


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None,
            name=None) -> Tensor:
    idx = to_tensor(indices)
    dtype = dt.as_dtype(dtype) if dtype is not None else dt.float32
    on = cast(to_tensor(1 if on_value is None else on_value), dtype)
    off = cast(to_tensor(0 if off_value is None else off_value), dtype)
    return bind(_op("one_hot"), [idx, on, off],
                {"depth": int(depth),
                 "axis": _axes(-1 if axis is None else axis, idx.ndim + 1, "one_hot")[0],
                 "dtype": dtype})


def slice(input_, begin, size, name=None) -> Tensor:   # noqa: A001 - TensorFlow's name
    """TensorFlow's slice: ``size[i] == -1`` takes everything from ``begin[i]`` on."""
    x = to_tensor(input_)
    begin = static_ints(begin, "begin", "slice")
    size = static_ints(size, "size", "slice")
    limits = tuple(d if s == -1 else b + s for b, s, d in zip(begin, size, x.shape, strict=True))
    return bind(_op("slice"), [x], {"starts": begin, "limits": limits,
                                    "strides": (1,) * x.ndim}, weak=x.weak)


def identity(input, name=None) -> Tensor:
    return to_tensor(input)


def stop_gradient(input, name=None) -> Tensor:
    """The value of ``input``, treated as a constant by automatic differentiation."""
    x = to_tensor(input)
    return bind(ops.STOP_GRADIENT, [x], weak=x.weak)


# ---- creation -----------------------------------------------------------------------------------

def constant(value, dtype=None, shape=None, name=None) -> Tensor:
    """A tensor from a Python or NumPy value; ``shape`` broadcasts a scalar like TensorFlow."""
    if isinstance(value, Tensor) or _contains_tracer(value):
        # NOTE: a list holding traced values is stacked (tf.convert_to_tensor([a, b])).
        x = to_tensor(value) if dtype is None else cast(to_tensor(value), dtype)
    else:
        array = np.asarray(value)
        if dtype is not None:
            array = array.astype(dt.as_dtype(dtype).np_dtype)
        elif array.dtype == np.float64 and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)   # Python floats default to float32
        elif array.dtype == np.int64 and not isinstance(value, np.ndarray):
            array = array.astype(np.int32)
        x = to_tensor(array)
    if shape is not None:
        shape = static_ints(shape, "shape", "constant")
        x = broadcast_to(x, shape) if x.size == 1 and x.ndim == 0 else reshape(x, shape)
    return x


def _contains_tracer(value) -> bool:
    if isinstance(value, (list, tuple)):
        return builtins.any(_contains_tracer(v) for v in value)
    return isinstance(value, Tracer)


convert_to_tensor = constant
asarray = constant


def fill(dims, value, name=None) -> Tensor:
    value = to_tensor(value)
    if isinstance(value, Tracer):
        return broadcast_to(value, dims)
    return bind(_op("fill"), [], {"shape": static_ints(dims, "dims", "fill"),
                                  "value": value.value.item(), "dtype": value.dtype},
                weak=value.weak)


def zeros(shape, dtype=dt.float32, name=None) -> Tensor:
    return bind(_op("fill"), [], {"shape": static_ints(shape, "shape", "zeros"), "value": 0,
                                  "dtype": dt.as_dtype(dtype)})


def ones(shape, dtype=dt.float32, name=None) -> Tensor:
    return bind(_op("fill"), [], {"shape": static_ints(shape, "shape", "ones"), "value": 1,
                                  "dtype": dt.as_dtype(dtype)})


def zeros_like(input, dtype=None, name=None) -> Tensor:
    x = to_tensor(input)
    return zeros(x.shape, dtype or x.dtype)


def ones_like(input, dtype=None, name=None) -> Tensor:
    x = to_tensor(input)
    return ones(x.shape, dtype or x.dtype)


def range(start, limit=None, delta=1, dtype=None, name=None) -> Tensor:   # noqa: A001
    """Like Python's range and tf.range: static bounds, float steps allowed."""
    if limit is None:
        start, limit = 0, start
    if dtype is None:
        dtype = dt.float32 if any(isinstance(v, float) for v in (start, limit, delta)) \
            else dt.int32
    dtype = dt.as_dtype(dtype)
    count = max(0, math.ceil((limit - start) / delta))
    steps = bind(_op("iota"), [], {"shape": (count,), "dimension": 0, "dtype": dtype})
    if delta != 1:
        steps = steps * delta
    if start != 0:
        steps = steps + start
    return cast(steps, dtype)


arange = range


def linspace(start, stop, num, name=None) -> Tensor:
    steps = cast(range(int(num)), dt.float32)  # this module's range
    width = (stop - start) / max(int(num) - 1, 1)
    return steps * width + start


def shape(input, out_type=dt.int32, name=None) -> Tensor:
    """The static shape as an int tensor (every shape is known while tracing)."""
    return constant(np.asarray(to_tensor(input).shape, dtype=dt.as_dtype(out_type).np_dtype))


def size(input, out_type=dt.int32, name=None) -> Tensor:
    return constant(np.asarray(to_tensor(input).size, dtype=dt.as_dtype(out_type).np_dtype))


def rank(input, name=None) -> Tensor:
    return constant(np.asarray(to_tensor(input).ndim, dtype=np.int32))


# NOTE: ``tracejit/__init__.py`` star-imports this module; only the functions defined here
# belong in the namespace (not ``np``, ``math``, ``builtins`` or the helpers imported above).
__all__ = [name for name, value in list(globals().items())
           if not name.startswith("_") and callable(value) and not isinstance(value, type)
           and getattr(value, "__module__", None) == __name__ and name != "promote"]
