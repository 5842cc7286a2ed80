"""Creation ops: tensors made from parameters alone (no tensor inputs).

``constant`` holds an array; ``iota`` counts along one axis; ``fill`` repeats one
scalar. Constant folding turns any foldable subgraph into a ``constant``.
"""

from __future__ import annotations

import math

import numpy as np

from . import dtypes as dt
from .const_value import ConstValue
from .core import TensorType
from .errors import DTypeError, ParamError
from .opdef import ParamSpec, Tag, declare, dtype_param, int_param, scalar_param
from .ops_movement import canonical_axis, shape_param

__all__ = ["CONSTANT", "IOTA", "FILL"]

CREATE = {Tag.CREATION}


def const_param(value) -> ConstValue:
    """A ConstValue, or anything np.asarray turns into an array of an IR dtype."""
    if not isinstance(value, ConstValue):
        value = ConstValue(np.asarray(value))
    dt.as_dtype(value.array.dtype)      # TypeError (a ParamError to the user) if foreign
    return value


def _constant_infer(types, params):
    array = params["value"].array
    return (TensorType(tuple(array.shape), dt.as_dtype(array.dtype)),)


def _constant_impl(value):
    # NOTE: a copy, because the held array is read-only and callers may write outputs.
    return value.array.copy()


CONSTANT = declare("constant", arity=0, infer=_constant_infer, impl=_constant_impl,
                   params={"value": ParamSpec(const_param)}, tags=CREATE,
                   doc="constant[value](): the held array")


def _iota_infer(types, params):
    shape, dtype = params["shape"], params["dtype"]
    if dtype.is_bool:
        raise DTypeError(f"expects a numeric dtype, got bool (shape {list(shape)})", op="iota")
    canonical_axis("iota", params["dimension"], len(shape), "dimension")
    return (TensorType(shape, dtype),)


def _iota_impl(shape, dimension, dtype):
    """out[..., i, ...] = i (i at position ``dimension``), converted like a cast from
    int64: integers wrap (iota of length 300 in int8 wraps), floats round to nearest."""
    ramp = np.arange(shape[dimension], dtype=np.int64)
    ramp = ramp.reshape((-1,) + (1,) * (len(shape) - dimension - 1))
    return np.ascontiguousarray(np.broadcast_to(ramp, shape)).astype(dtype.np_dtype)


IOTA = declare("iota", arity=0, infer=_iota_infer, impl=_iota_impl,
               params={"shape": ParamSpec(shape_param), "dimension": ParamSpec(int_param),
                       "dtype": ParamSpec(dtype_param)},
               tags=CREATE, doc="iota[shape, dimension, dtype](): the index along dimension")


def _check_fill_value(value, dtype: dt.DType, shape) -> None:
    """Bool and integer fills must be exactly representable; float fills round once."""
    def bad(why):
        return ParamError(f"value {value!r} {why} (shape {list(shape)})", op="fill")

    if dtype.is_bool:
        if value not in (0, 1):     # False, True, 0, 1 (and 0.0, 1.0)
            raise bad("is not a bool")
    elif dtype.is_integer:
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise bad(f"is not an integer, so does not fit {dtype.name}")
        info = np.iinfo(dtype.np_dtype)
        if not info.min <= value <= info.max:
            raise bad(f"is out of range for {dtype.name}")


def _fill_infer(types, params):
    _check_fill_value(params["value"], params["dtype"], params["shape"])
    return (TensorType(params["shape"], params["dtype"]),)


def _fill_impl(shape, value, dtype):
    if dtype.is_integer:
        value = int(value)      # 2.0 -> 2 exactly; int64 values beyond 2**53 stay exact
    with np.errstate(over="ignore"):    # 1e300 in float32 is inf, as a cast would give
        return np.full(shape, value, dtype=dtype.np_dtype)


FILL = declare("fill", arity=0, infer=_fill_infer, impl=_fill_impl,
               params={"shape": ParamSpec(shape_param), "value": ParamSpec(scalar_param),
                       "dtype": ParamSpec(dtype_param)},
               tags=CREATE, doc="fill[shape, value, dtype](): every element is value")
