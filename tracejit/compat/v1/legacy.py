"""TF 0.12-1.15 spellings that tutorials still use.

* Argument aliases, accepted by every op: ``reduction_indices`` and ``dim`` and
  ``squeeze_dims`` and ``concat_dim`` for ``axis``, ``keep_dims`` for ``keepdims``
  (:func:`canonical_kwargs`; giving both spellings is an error, as in TensorFlow).
* Names removed in TF 1.0: ``mul``, ``sub``, ``neg``, ``pack``, ``unpack``, ``select``,
  ``batch_matmul``, ``arg_max``, ``arg_min``, the ``to_float``/``to_double``/``to_int32``/
  ``to_int64``/``to_bfloat16`` casts, and ``concat(axis, values)`` / ``split(axis,
  num_split, value)`` in their pre-1.0 argument order (told apart by the arguments'
  types: an integer where the values should be).
"""

from __future__ import annotations

import inspect

import numpy as np

from ...ir import dtypes as dt
from .graph import Tensor

ALIASES = {"reduction_indices": "axis", "keep_dims": "keepdims", "dim": "axis",
           "squeeze_dims": "axis", "concat_dim": "axis"}


def canonical_kwargs(fn, kwargs: dict, op_name: str) -> dict:
    """``kwargs`` with TF1 aliases renamed to the names ``fn`` takes."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    out = dict(kwargs)
    for old, new in ALIASES.items():
        if old in out and old not in params and new in params:
            value = out.pop(old)
            if value is None:
                continue
            if out.get(new) is not None:
                raise ValueError(f"{op_name}: cannot specify both '{new}' and '{old}'")
            out[new] = value
    return out


def _is_axis(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, Tensor) and value.dtype.is_integer and value.shape.ndims == 0


def install(ops: dict) -> None:
    """Add the pre-1.0 names to the op table ``ops`` (name -> constructor)."""
    concat, split = ops["concat"], ops["split"]

    def concat_any_order(values, axis=None, name="concat"):
        if _is_axis(values) and isinstance(axis, (list, tuple)):    # concat(axis, values)
            values, axis = axis, values
        return concat(values, axis, name=name)

    def split_any_order(value=None, num_or_size_splits=None, axis=0, num=None,
                        name="split", split_dim=None, num_split=None):
        if split_dim is not None or num_split is not None:        # keyword pre-1.0 form
            axis = split_dim if split_dim is not None else axis
            num_or_size_splits = num_split if num_split is not None else num_or_size_splits
        elif _is_axis(value) and not _is_axis(axis) and axis is not None:
            value, num_or_size_splits, axis = axis, num_or_size_splits, value  # (axis, n, v)
        return split(value, num_or_size_splits, axis, name=name)

    def cast_to(dtype, default_name):
        def to(x, name=default_name):
            return ops["cast"](x, dtype, name=name)
        to.__name__ = default_name
        return to

    ops.update({
        "concat": concat_any_order,
        "split": split_any_order,
        "mul": ops["multiply"], "sub": ops["subtract"], "neg": ops["negative"],
        "select": ops["where"],
        "pack": ops["stack"], "unpack": ops["unstack"], "batch_matmul": ops["matmul"],
        "arg_max": ops["argmax"], "arg_min": ops["argmin"],
        "to_float": cast_to(dt.float32, "ToFloat"),
        "to_double": cast_to(dt.float64, "ToDouble"),
        "to_int32": cast_to(dt.int32, "ToInt32"),
        "to_int64": cast_to(dt.int64, "ToInt64"),
        "to_bfloat16": cast_to(dt.bfloat16, "ToBFloat16"),
    })
