"""Parsers of strings into numbers, run as host ops (host_ops.py): ``tf.decode_csv``,
``tf.decode_raw``, ``tf.string_to_number``. Their numeric outputs feed the compiled step
like fed values; their errors are TensorFlow's ``InvalidArgumentError`` texts, with the
file and line of the record where a reader read it.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     a, b = tf.decode_csv(["1,2.5", "3,"], record_defaults=[[0], [1.0]])
...     with tf.Session() as sess:
...         [v.tolist() for v in sess.run([a * 2, b])]
[[2, 6], [2.5, 1.0]]
"""

from __future__ import annotations

import zlib

import numpy as np

from ...io.csv import CsvError, parse_number, split_record
from ...io.records import compression_name
from ...ir import dtypes as dt
from ...ir.source import user_location
from .errors import InvalidArgumentError
from .graph import Tensor
from .host_ops import host_op
from .ops import convert_to_tensor
from .readers import record_keys
from .strings import string

_CSV_TYPES = {"float32": "float", "float64": "double", "int32": "int32", "int64": "int64"}
_RAW_NAMES = {"float32": "float", "float64": "double", "float16": "half", "int32": "int32",
              "int64": "int64", "int8": "int8", "uint8": "uint8"}


def byte_strings(value) -> np.ndarray:
    """A host op's string input as an object array of bytes (a fed value may hold str)."""
    array = np.asarray(value, dtype=object)
    out = np.empty(array.shape, dtype=object)
    for index, item in np.ndenumerate(array):
        out[index] = item.encode() if isinstance(item, str) else bytes(item)
    return out


def fail(message: str, op, location, keys=None, index: int | None = None):
    """Raise TensorFlow's InvalidArgumentError for ``op``, naming the record's source
    (a reader's ``file:line`` key) where it is known."""
    if keys is not None and index is not None and index < len(keys):
        message += f" (the record read from {keys[index].decode(errors='replace')})"
    raise InvalidArgumentError(f"{message}\n  [[node {op.name}]]", op=op, location=location)


def string_input(value, what: str) -> Tensor:
    tensor = convert_to_tensor(value)
    if tensor.dtype is not string:
        raise TypeError(f"{what} takes a tf.string tensor, not {tensor.dtype.name} "
                        f"({tensor.name})")
    return tensor


def _csv_default(default, column: int):
    """(dtype, value or None) of one record default given as a Python value or array."""
    array = np.asarray(default)
    if array.size > 1:
        raise ValueError(f"decode_csv: record_defaults[{column}] has {array.size} values: "
                         "Shape of a default must be a length-0 or length-1 vector, or a "
                         "scalar.")
    items = array.reshape(-1).tolist()
    if array.dtype.kind in "USO" and items:
        value = items[0]
        return string, value.encode() if isinstance(value, str) else bytes(value)
    if array.dtype.kind == "b":
        raise TypeError("Value passed to parameter 'record_defaults' has DataType bool not "
                        "in list of allowed values: float32, float64, int32, int64, string")
    if isinstance(default, np.ndarray) and array.dtype.name in _CSV_TYPES:
        dtype = dt.as_dtype(array.dtype.name)
    elif array.dtype.kind in "iu":
        dtype = dt.int32 if all(-(1 << 31) <= v < (1 << 31) for v in items) else dt.int64
    else:
        dtype = dt.float32      # NOTE: [] and Python floats are float32, as tf.constant's
    return dtype, (items[0] if items else None)


def decode_csv(records, record_defaults, field_delim=",", use_quote_delim=True, name=None,
               na_value="", select_cols=None):
    """Split CSV ``records`` (a string tensor) into one tensor per column, each of the
    records' shape. ``record_defaults[i]`` is a one-value list (or tensor) that gives the
    column's type and the value of an empty field, or an empty one for a column that must
    be present. ``select_cols`` keeps only those columns (increasing indices)."""
    records = string_input(records, "decode_csv")
    delim = field_delim.encode() if isinstance(field_delim, str) else bytes(field_delim)
    na = na_value.encode() if isinstance(na_value, str) else bytes(na_value)
    location = user_location()
    if len(delim) != 1:
        raise InvalidArgumentError("decode_csv: field_delim should be only 1 char, not "
                                   f"{field_delim!r}", location=location)
    if select_cols is not None:
        select_cols = [int(c) for c in select_cols]
        if any(c < 0 for c in select_cols):
            raise ValueError("select_cols contains negative values.")
        if any(b <= a for a, b in zip(select_cols, select_cols[1:], strict=False)):
            raise ValueError("select_cols is not strictly increasing.")
        if len(select_cols) != len(record_defaults):
            raise ValueError("Length of select_cols and record_defaults do not match.")
    inputs, columns = [records], []
    for column, default in enumerate(record_defaults):
        if isinstance(default, Tensor):
            if default.dtype is not string and default.dtype.name not in _CSV_TYPES:
                raise TypeError(f"decode_csv: record_defaults[{column}] has DataType "
                                f"{default.dtype.name} not in list of allowed values: "
                                "float32, float64, int32, int64, string")
            inputs.append(default)
            columns.append((default.dtype, None, len(inputs) - 1))
        else:
            dtype, value = _csv_default(default, column)
            columns.append((dtype, value, None))

    def compute(session, values):
        texts = byte_strings(values[0])
        flat = texts.reshape(-1)
        defaults = []
        for dtype, value, position in columns:
            if position is not None:
                given = np.asarray(values[position]).reshape(-1)
                value = given[0] if given.size else None
                if value is not None and dtype is string:
                    value = value.encode() if isinstance(value, str) else bytes(value)
            defaults.append(value)
        outs = [np.empty(len(flat), dtype=object if d is string else d.np_dtype)
                for d, _, _ in columns]
        keys = None
        for row, text in enumerate(flat):
            try:
                fields = split_record(text, delim, use_quote_delim)
            except CsvError as exc:
                keys = keys or record_keys(records, session, values[0])
                fail(str(exc), op, location, keys, row)
            if select_cols is not None:
                fields = [fields[c] for c in select_cols if c < len(fields)]
            if len(fields) != len(columns):
                keys = keys or record_keys(records, session, values[0])
                fail(f"Expect {len(columns)} fields but have {len(fields)} in record {row}",
                     op, location, keys, row)
            for col, (field, (dtype, _, _)) in enumerate(zip(fields, columns, strict=True)):
                if not field or field == na:
                    if defaults[col] is None:
                        keys = keys or record_keys(records, session, values[0])
                        fail(f"Field {col} is required but missing in record {row}!", op,
                             location, keys, row)
                    outs[col][row] = defaults[col]
                elif dtype is string:
                    outs[col][row] = field
                else:
                    number = parse_number(field, dtype.name)
                    if number is None:
                        keys = keys or record_keys(records, session, values[0])
                        fail(f"Field {col} in record {row} is not a valid "
                             f"{_CSV_TYPES[dtype.name]}: {field.decode(errors='replace')}",
                             op, location, keys, row)
                    outs[col][row] = number
        return [out.reshape(texts.shape) for out in outs]

    # NOTE: compute parses records of any shape, so a batch of scalar records (a queue
    # runner's batched run) is one call
    op = host_op("DecodeCSV", compute, inputs,
                 [(dtype, records.shape.dims) for dtype, _, _ in columns],
                 name=name or "DecodeCSV",
                 batched=lambda session, batches, limit: compute(session, batches))
    return list(op.outputs)


def decode_raw(input_bytes=None, out_type=None, little_endian=True, name=None, bytes=None,  # noqa: A002
               fixed_length=None):
    """The bytes of each string as a vector of ``out_type`` numbers: the output's shape
    is the input's plus one dimension. All strings must have the same length, a multiple
    of the type's size (or give ``fixed_length``: each is cut or zero-padded to it)."""
    given = input_bytes if input_bytes is not None else bytes
    if given is None or out_type is None:
        raise TypeError("decode_raw takes input_bytes and out_type")
    tensor = string_input(given, "decode_raw")
    out = dt.as_dtype(out_type)
    if out.name not in _RAW_NAMES:
        raise TypeError(f"decode_raw: out_type {out.name} is not one of "
                        f"{', '.join(sorted(_RAW_NAMES))}")
    width = np.dtype(out.np_dtype).itemsize
    layout = np.dtype(out.np_dtype).newbyteorder("<" if little_endian else ">")
    location = user_location()
    if fixed_length is not None and int(fixed_length) % width:
        raise ValueError(f"decode_raw: fixed_length {fixed_length} is not a multiple of "
                         f"{width}, the size of {_RAW_NAMES[out.name]}")

    def compute(session, values):
        texts = byte_strings(values[0])
        flat = list(texts.reshape(-1))
        if fixed_length is not None:
            size = int(fixed_length)
            flat = [t[:size].ljust(size, b"\0") for t in flat]
        if not flat:
            return [np.zeros(texts.shape + (0,), out.np_dtype)]
        size = len(flat[0])
        if size % width:
            fail(f"Input to DecodeRaw has length {size} that is not a multiple of {width}, "
                 f"the size of {_RAW_NAMES[out.name]}", op, location)
        for index, text in enumerate(flat):
            if len(text) != size:
                fail("DecodeRaw requires input strings to all be the same size, but "
                     f"element {index} has size {size} != {len(text)}", op, location)
        data = np.frombuffer(b"".join(flat), dtype=layout).astype(out.np_dtype)
        return [data.reshape(texts.shape + (size // width,))]

    dims = tensor.shape.dims
    last = int(fixed_length) // width if fixed_length is not None else None
    op = host_op("DecodeRaw", compute, [tensor],
                 [(out, None if dims is None else list(dims) + [last])],
                 name=name or "DecodeRaw")
    return op.outputs[0]


def string_to_number(string_tensor, out_type=dt.float32, name=None):
    """Each string as a number of ``out_type`` (float32, float64, int32 or int64)."""
    tensor = string_input(string_tensor, "string_to_number")
    out = dt.as_dtype(out_type)
    if out.name not in _CSV_TYPES:
        raise TypeError(f"string_to_number: out_type {out.name} is not one of float32, "
                        "float64, int32, int64")
    location = user_location()

    def compute(session, values):
        texts = byte_strings(values[0])
        result = np.empty(texts.shape, dtype=out.np_dtype)
        for index, text in np.ndenumerate(texts):
            number = parse_number(text, out.name)
            if number is None:
                fail("StringToNumberOp could not correctly convert string: "
                     f"{text.decode(errors='replace')}", op, location,
                     record_keys(tensor, session, values[0]), int(np.ravel_multi_index(
                         index, texts.shape)) if texts.ndim else 0)
            result[index] = number
        return [result]

    op = host_op("StringToNumber", compute, [tensor], [(out, tensor.shape.dims)],
                 name=name or "StringToNumber")
    return op.outputs[0]


def decode_compressed(bytes, compression_type="", name=None):  # noqa: A002 -- TF's name
    """Each string decompressed: ``compression_type`` "" (as it is), "ZLIB" or "GZIP"."""
    tensor = string_input(bytes, "decode_compressed")
    kind = compression_name(compression_type)
    location = user_location()

    def compute(session, values):
        texts = byte_strings(values[0])
        out = np.empty(texts.shape, dtype=object)
        for index, text in np.ndenumerate(texts):
            try:
                out[index] = zlib.decompress(text, 31 if kind == "GZIP" else 15) if kind \
                    else text
            except zlib.error as exc:
                fail(f"DecodeCompressed: the {kind} data is corrupt ({exc})", op, location)
        return [out]

    op = host_op("DecodeCompressed", compute, [tensor], [(string, tensor.shape.dims)],
                 name=name or "DecodeCompressed")
    return op.outputs[0]
