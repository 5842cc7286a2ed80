"""The values inside a GraphDef, both ways: ``AttrValue`` (an op's attributes),
``TensorProto`` (a ``Const``'s value), ``TensorShapeProto`` and TensorFlow's ``DataType``
enum, as NumPy arrays, Python values and tracejit dtypes.

The messages are the ones the ``tensorboard`` package generates from TensorFlow's
``.proto`` files, so a GraphDef TensorFlow wrote parses here byte for byte.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from tensorboard.compat.proto import attr_value_pb2, tensor_pb2, types_pb2

from ...ir import dtypes as dt
from ...summary.values import DATA_TYPES, shape_proto
from .strings import string

#: tracejit's dtype (or tf.string) by TensorFlow's DataType enum; the ``_REF`` variants
#: (a TF1 reference variable's output) are the same dtypes.
DTYPE_OF_ENUM = {code: (string if name == "string" else dt.as_dtype(name))
                 for name, code in DATA_TYPES.items()}
DTYPE_OF_ENUM.update({code + 100: dtype for code, dtype in list(DTYPE_OF_ENUM.items())})

# Which repeated field of a TensorProto holds each dtype's values when there is no
# ``tensor_content`` (half and bfloat16 store their bit patterns in ``half_val``).
_VALUE_FIELD = {"float32": "float_val", "float64": "double_val", "int32": "int_val",
                "int8": "int_val", "uint8": "int_val", "int64": "int64_val",
                "bool": "bool_val", "float16": "half_val", "bfloat16": "half_val",
                "string": "string_val"}


def dtype_from_enum(code: int, where: str):
    """tracejit's dtype for TensorFlow's enum ``code``; ``where`` names the node for the
    error about a dtype tracejit lacks."""
    try:
        return DTYPE_OF_ENUM[code]
    except KeyError:
        name = types_pb2.DataType.Name(code) if code in types_pb2.DataType.values() \
            else str(code)
        raise TypeError(f"{where}: dtype {name} is not supported by tracejit (it has "
                        f"{', '.join(sorted(DATA_TYPES))})") from None


def dtype_enum(dtype) -> int:
    """TensorFlow's enum for a tracejit dtype (or tf.string)."""
    return DATA_TYPES[dtype.name]


def shape_from_proto(proto) -> list | None:
    """A TensorShapeProto as a list of dims (``None`` unknown); ``None`` for an unknown
    rank."""
    if proto.unknown_rank:
        return None
    return [None if d.size < 0 else int(d.size) for d in proto.dim]


def array_from_tensor_proto(proto: tensor_pb2.TensorProto, where: str) -> np.ndarray:
    """A TensorProto's value: ``tensor_content`` (little-endian bytes in row-major
    order) or the typed repeated field, whose last value fills the rest of the shape
    (``tf.constant(1.5, shape=[2, 3])`` stores one float)."""
    dtype = dtype_from_enum(proto.dtype, where)
    shape = tuple(shape_from_proto(proto.tensor_shape) or ())
    if dtype is string:
        values = [bytes(v) for v in proto.string_val]
        return _filled(np.array(values or [b""], dtype=object), shape, object)
    np_type = dtype.np_dtype
    if proto.tensor_content:
        raw = np.frombuffer(proto.tensor_content, dtype=np_type.newbyteorder("<"))
        return raw.astype(np_type).reshape(shape)
    field = _VALUE_FIELD[dtype.name]
    values = list(getattr(proto, field))
    if field == "half_val":
        bits = np.array(values, dtype=np.uint16)
        found = bits.view(np.float16 if dtype.name == "float16" else ml_dtypes.bfloat16)
    else:
        found = np.array(values, dtype=np_type)
    return _filled(found, shape, np_type)


def _filled(values: np.ndarray, shape: tuple, np_type) -> np.ndarray:
    size = int(np.prod(shape, dtype=np.int64))
    if values.size == size:
        return values.astype(np_type).reshape(shape)
    if values.size > size:
        raise ValueError(f"a TensorProto holds {values.size} values for shape {list(shape)}")
    out = np.empty(size, dtype=np_type)
    if values.size == 0:
        out[...] = b"" if np_type is object else 0
    else:
        out[:values.size] = values
        out[values.size:] = values[-1]
    return out.reshape(shape)


def tensor_proto(value, dtype=None) -> tensor_pb2.TensorProto:
    """A NumPy array (or anything ``np.asarray`` takes) as a TensorProto, numbers in
    ``tensor_content`` as TensorFlow writes them, strings in ``string_val``."""
    if dtype is string or (dtype is None and np.asarray(value).dtype.kind in "OSU"):
        array = np.asarray(value, dtype=object)
        items = [v.encode() if isinstance(v, str) else bytes(v) for v in array.reshape(-1)]
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING,
                                      tensor_shape=shape_proto(array.shape), string_val=items)
    array = np.asarray(value)
    if dtype is not None:
        array = array.astype(dtype.np_dtype)
    found = dt.as_dtype(array.dtype)
    return tensor_pb2.TensorProto(
        dtype=dtype_enum(found), tensor_shape=shape_proto(array.shape),
        tensor_content=np.ascontiguousarray(array).astype(
            array.dtype.newbyteorder("<")).tobytes())


def attr_python(value: attr_value_pb2.AttrValue, where: str):
    """An AttrValue as a Python value: str for ``s``, int, float, bool, a dtype, a shape
    (list of dims or None), an array for ``tensor``, a list for ``list``, the function's
    name for ``func``."""
    kind = value.WhichOneof("value")
    if kind == "s":
        return value.s.decode("utf-8", errors="replace")
    if kind in ("i", "f", "b"):
        return getattr(value, kind)
    if kind == "type":
        return dtype_from_enum(value.type, where)
    if kind == "shape":
        return shape_from_proto(value.shape)
    if kind == "tensor":
        return array_from_tensor_proto(value.tensor, where)
    if kind == "func":
        return value.func.name
    if kind == "list":
        items = value.list
        for field in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
            found = list(getattr(items, field))
            if found:
                return [attr_python(_single(field, item), where) for item in found]
        return []
    if kind == "placeholder":
        raise ValueError(f"{where}: attribute placeholder ${value.placeholder} is for "
                         "function bodies, not a graph's nodes")
    return None


def _single(field: str, item) -> attr_value_pb2.AttrValue:
    single = attr_value_pb2.AttrValue()
    if field in ("shape", "tensor", "func"):
        getattr(single, field).CopyFrom(item)
    else:
        setattr(single, field, item)
    return single


def attr_value(value) -> attr_value_pb2.AttrValue:
    """A Python value as an AttrValue (the reverse of ``attr_python``): bool, int,
    float, str, a tracejit dtype, an array (a tensor), a list of ints, floats or
    strings."""
    if isinstance(value, attr_value_pb2.AttrValue):
        return value
    if isinstance(value, (bool, np.bool_)):
        return attr_value_pb2.AttrValue(b=bool(value))
    if isinstance(value, (int, np.integer)):
        return attr_value_pb2.AttrValue(i=int(value))
    if isinstance(value, (float, np.floating)):
        return attr_value_pb2.AttrValue(f=float(value))
    if isinstance(value, str):
        return attr_value_pb2.AttrValue(s=value.encode("utf-8"))
    if isinstance(value, dt.DType) or value is string:
        return attr_value_pb2.AttrValue(type=dtype_enum(value))
    if isinstance(value, np.ndarray):
        return attr_value_pb2.AttrValue(tensor=tensor_proto(value))
    if isinstance(value, (list, tuple)):
        items = list(value)
        if all(isinstance(v, (bool, np.bool_)) for v in items) and items:
            return attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(b=items))
        if all(isinstance(v, (int, np.integer)) for v in items):
            return attr_value_pb2.AttrValue(
                list=attr_value_pb2.AttrValue.ListValue(i=[int(v) for v in items]))
        if all(isinstance(v, (float, int, np.number)) for v in items):
            return attr_value_pb2.AttrValue(
                list=attr_value_pb2.AttrValue.ListValue(f=[float(v) for v in items]))
        if all(isinstance(v, str) for v in items):
            return attr_value_pb2.AttrValue(
                list=attr_value_pb2.AttrValue.ListValue(s=[v.encode() for v in items]))
    raise TypeError(f"cannot write {value!r} as a GraphDef attribute")


def shape_attr(dims) -> attr_value_pb2.AttrValue:
    """A ``shape`` attribute (``None`` dims unknown, ``dims=None`` an unknown rank)."""
    return attr_value_pb2.AttrValue(shape=shape_proto(dims))
