"""Fed values and fetched elements of a ``Session.run``: each fed value converted to its
tensor's dtype and checked against its static shape (the errors TensorFlow gives), and
the rule that a tensor made inside a ``tf.cond`` branch or loop body cannot be fed or
fetched."""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as dt
from ...ir.errors import DTypeError, ShapeError
from ...ir.source import user_location
from .graph import Operation, Tensor

__all__ = ["fed_array", "outside_regions", "short_repr"]


def outside_regions(element, what: str) -> None:
    """Tensors made inside a tf.cond branch or tf.while_loop body exist only there."""
    op = element if isinstance(element, Operation) else element.op
    if op.region is not None:
        raise ValueError(f"Cannot {what} '{element.name}': it was created inside "
                         f"{op.region.what} (at {op.region.location}) and exists only there;"
                         " fetch or feed the tf.cond / tf.while_loop results instead")


def fed_array(tensor: Tensor, value) -> np.ndarray:
    """Convert a fed value to the tensor's dtype; reject ones whose shape does not fit."""
    if isinstance(value, Tensor):
        raise TypeError(f"The value of a feed cannot be a tf.Tensor object ({value.name}). "
                        "Acceptable feed values include Python scalars, strings, lists, "
                        "NumPy ndarrays")
    target = tensor.dtype.np_dtype
    try:
        array = np.asarray(value)
        if array.dtype != target:
            if array.dtype.kind == "f" and tensor.dtype.is_integer and array.size \
                    and not np.all(np.mod(array, 1) == 0):
                raise ValueError("fractional values")
            array = array.astype(target)
    except (ValueError, TypeError) as exc:
        raise DTypeError(f"Cannot feed value {short_repr(value)} to tensor '{tensor.name}' of "
                         f"dtype {dt.as_dtype(target).name}: {exc}",
                         location=user_location()) from None
    static = tensor.shape.dims
    # NOTE: a value of exactly the static shape (every step's batch) needs no TensorShape
    if static != array.shape and not tensor.shape.is_compatible_with(array.shape):
        raise ShapeError(f"Cannot feed value of shape {array.shape} for Tensor "
                         f"'{tensor.name}', which has shape '{tensor.shape}'",
                         location=user_location())
    return array


def short_repr(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."
