"""Summary values encoded on the host: scalars, text, and the messages around them.

TensorBoard reads ``Summary`` protocol buffers (a list of tagged values) inside
``Event`` records. A serialized ``Summary`` concatenated with another is still a valid
``Summary`` holding both lists, which is how TensorFlow's ``merge`` works.
"""

from __future__ import annotations

import re

import numpy as np
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

#: TensorFlow's DataType enum by tracejit's dtype names (and "string").
DATA_TYPES = {
    "float32": types_pb2.DT_FLOAT, "float64": types_pb2.DT_DOUBLE,
    "int32": types_pb2.DT_INT32, "uint8": types_pb2.DT_UINT8, "int8": types_pb2.DT_INT8,
    "int64": types_pb2.DT_INT64, "bool": types_pb2.DT_BOOL,
    "bfloat16": types_pb2.DT_BFLOAT16, "float16": types_pb2.DT_HALF,
    "string": types_pb2.DT_STRING,
}

_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w\.]")


def clean_tag(name: str) -> str:
    """A tag TensorBoard accepts, as TensorFlow cleans one: characters other than
    letters, digits, ``_ - . /`` become ``_`` and a leading ``/`` goes."""
    if not isinstance(name, str):
        raise TypeError(f"a summary name must be a string, got {type(name).__name__}")
    return _INVALID_TAG_CHARACTERS.sub("_", name).lstrip("/")


def shape_proto(dims) -> tensor_shape_pb2.TensorShapeProto:
    """A TensorShapeProto: ``None`` dims are -1; ``dims=None`` is an unknown rank."""
    if dims is None:
        return tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=-1 if d is None else int(d))
             for d in dims])


def scalar_value(tag: str, value) -> summary_pb2.Summary.Value:
    """A scalar as TensorFlow 1 writes it (``simple_value``, a float32)."""
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        raise ValueError(f"scalar summary {tag!r} takes one real number, got "
                         f"{array.dtype} of shape {array.shape}")
    return summary_pb2.Summary.Value(tag=tag, simple_value=float(array.reshape(())))


def _as_bytes(item) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, np.bytes_):
        return bytes(item)
    raise TypeError(f"text summaries take strings, got {type(item).__name__}")


def text_value(tag: str, strings) -> summary_pb2.Summary.Value:
    """A tensor of strings with the ``text`` plugin's metadata, which TensorBoard's text
    tab shows (each string rendered as Markdown)."""
    array = np.asarray(strings, dtype=object)
    flat = [_as_bytes(s) for s in array.reshape(-1)]
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING,
                                    tensor_shape=shape_proto(array.shape), string_val=flat)
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
    return summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)


def tensor_value(tag: str, value, metadata: summary_pb2.SummaryMetadata | None = None
                 ) -> summary_pb2.Summary.Value:
    """A whole tensor (``tf.summary.tensor_summary``): its dtype, shape and bytes."""
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "SU":
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING,
                                        tensor_shape=shape_proto(array.shape),
                                        string_val=[_as_bytes(s) for s in array.reshape(-1)])
    else:
        name = "bool" if array.dtype == np.bool_ else str(array.dtype)
        if name not in DATA_TYPES:
            raise TypeError(f"tensor summary {tag!r}: no TensorFlow dtype for {array.dtype}")
        # NOTE: tensor_content is the little-endian row-major bytes, as TensorFlow's
        tensor = tensor_pb2.TensorProto(
            dtype=DATA_TYPES[name], tensor_shape=shape_proto(array.shape),
            tensor_content=np.ascontiguousarray(array).astype(
                array.dtype.newbyteorder("<")).tobytes())
    out = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if metadata is not None:
        out.metadata.CopyFrom(metadata)
    return out


def histogram_value(tag: str, histo) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, histo=histo)


def summary_bytes(values) -> bytes:
    """A serialized ``Summary`` of ``values`` (what fetching a summary op gives)."""
    return summary_pb2.Summary(value=list(values)).SerializeToString()
