"""String ops for input pipelines: ``tf.string_split``, ``tf.strings.split``,
``tf.substr``, ``tf.string_join``, ``tf.strings.length``, ``tf.as_string``,
``tf.string_to_hash_bucket_fast`` (and their ``tf.strings.*`` names).

Strings are host values in tracejit (strings.py): each op is a host op (host_ops.py)
computing NumPy object arrays of ``bytes`` in Python, before the compiled step that uses
its numeric results. The semantics and error texts are TensorFlow 1's (recorded in
tests/compat/test_string_ops.py).

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     words = tf.string_split(tf.constant(["hello world", "a  b"]))
...     with tf.Session() as sess:
...         sess.run(words.values).tolist()
[b'hello', b'world', b'a', b'b']
"""

from __future__ import annotations

import builtins

import numpy as np

from ...ir import dtypes as dt
from ...ir.source import user_location
from .fingerprint import fingerprint64
from .graph import Tensor
from .host_ops import host_op
from .ops import convert_to_tensor, graph_arg
from .parsing import byte_strings, fail, string_input
from .sparse import SparseTensor
from .strings import string

__all__ = ["string_split", "split", "substr", "string_join", "length", "as_string",
           "string_to_hash_bucket_fast"]


def _text(value) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _sparse_of_rows(rows: list[list[bytes]]) -> list[np.ndarray]:
    """A SparseTensor's parts (indices, values, dense_shape) holding ``rows``."""
    indices = [[i, j] for i, row in enumerate(rows) for j in range(len(row))]
    values = np.empty(len(indices), dtype=object)
    values[:] = [token for row in rows for token in row]
    width = max((len(r) for r in rows), default=0)
    return [np.array(indices, np.int64).reshape(len(indices), 2), values,
            np.array([len(rows), width], np.int64)]


def _split_op(op_type: str, source, cut, name) -> SparseTensor:
    tensor = string_input(source, op_type)
    location = user_location()

    def compute(session, values):
        texts = byte_strings(values[0])
        if texts.ndim != 1:
            fail(f"input must be a vector, got shape: {list(texts.shape)}", op, location)
        return _sparse_of_rows([cut(t) for t in texts])

    op = host_op(op_type, compute, [tensor],
                 [(dt.int64, [None, 2]), (string, [None]), (dt.int64, [2])],
                 name=name or op_type)
    return SparseTensor(*op.outputs)


def string_split(source, delimiter=" ", skip_empty=True, name=None, sep=None,
                 result_type="SparseTensor"):
    """TensorFlow 1's ``tf.string_split``: each string of the vector ``source`` cut at
    every character of ``delimiter`` (an empty delimiter: into single bytes), empty
    tokens dropped when ``skip_empty``; a SparseTensor [rows, most tokens]."""
    chars = set(_text(delimiter if sep is None else sep))

    def cut(text: bytes) -> list[bytes]:
        if not text:
            return []               # TensorFlow: no token, even with skip_empty=False
        if not chars:
            return [bytes([c]) for c in text]
        tokens, start = [], 0
        for at, c in enumerate(text):
            if c in chars:
                tokens.append(text[start:at])
                start = at + 1
        tokens.append(text[start:])
        return [t for t in tokens if t] if skip_empty else tokens

    return _split_op("StringSplit", source, cut, name)


def split(input=None, sep=None, maxsplit=-1, result_type="SparseTensor", source=None,  # noqa: A002
          name=None):
    """``tf.strings.split`` (TensorFlow 1): Python's ``bytes.split(sep, maxsplit)`` of each
    string (``sep=None``: runs of whitespace, no empty tokens); a SparseTensor."""
    if result_type != "SparseTensor":
        raise ValueError("tf.strings.split: only result_type='SparseTensor' is supported "
                         "(tracejit has no RaggedTensor)")
    separator = None if sep is None else _text(sep)
    if separator == b"":
        raise ValueError("tf.strings.split: sep must not be empty (use "
                         "tf.strings.bytes_split)")
    return _split_op("StringSplitV2", input if input is not None else source,
                     lambda text: text.split(separator, maxsplit), name)


def _elementwise(op_type: str, inputs, fn, out_dtype, name, what: str) -> Tensor:
    """A host op applying ``fn(*elements)`` over broadcast inputs."""
    tensors = [convert_to_tensor(graph_arg(v)) for v in inputs]
    location = user_location()
    # NOTE: the static shape when the inputs agree on one (scalars aside); else unknown
    shaped = {tuple(t.shape.dims) if t.shape.dims is not None else None
              for t in tensors if t.shape.dims != []}
    dims = list(shaped.pop()) if len(shaped) == 1 and None not in shaped else \
        ([] if not shaped else None)

    def compute(session, values):
        arrays = [byte_strings(v) if t.dtype is string else np.asarray(v)
                  for t, v in zip(tensors, values, strict=True)]
        try:
            arrays = np.broadcast_arrays(*arrays)
        except ValueError:
            fail(f"{what}: the inputs' shapes {[list(a.shape) for a in arrays]} do not "
                 "broadcast", op, location)
        out = np.empty(arrays[0].shape, dtype=object if out_dtype is string
                       else out_dtype.np_dtype)
        for index in np.ndindex(out.shape):
            out[index] = fn(op, location, *[a[index] for a in arrays])
        return [out]

    op = host_op(op_type, compute, tensors, [(out_dtype, dims)], name=name or op_type)
    return op.outputs[0]


def substr(input, pos, len, name=None, unit="BYTE"):  # noqa: A002 - TensorFlow's names
    """``len`` bytes of each string from ``pos`` (negative: from the end); a ``pos``
    outside the string is an InvalidArgumentError, a ``len`` past its end stops there."""
    if unit not in ("BYTE", "UTF8_CHAR"):
        raise ValueError(f"substr: unit must be BYTE or UTF8_CHAR, got {unit!r}")

    def one(op, location, text, start, count):
        chars = text.decode("utf-8") if unit == "UTF8_CHAR" else text
        size = builtins.len(chars)
        start, count = int(start), int(count)
        if not -size <= start <= size:
            fail(f"pos {start} out of range for string b'{text.decode(errors='replace')}' "
                 f"at index 0", op, location)
        start = start + size if start < 0 else start
        piece = chars[start:start + max(count, 0)]
        return piece.encode("utf-8") if unit == "UTF8_CHAR" else piece

    return _elementwise("Substr", [string_input(input, "substr"), pos, len], one, string,
                        name, "substr")


def string_join(inputs, separator="", name=None):
    """The strings of ``inputs`` (tensors or Python strings, broadcast) joined by
    ``separator``."""
    parts = [string_input(v, "string_join") for v in inputs]
    glue = _text(separator)
    return _elementwise("StringJoin", parts, lambda op, loc, *texts: glue.join(texts),
                        string, name, "string_join")


def length(input, name=None, unit="BYTE"):  # noqa: A002
    """Each string's length in bytes (``unit="UTF8_CHAR"``: in characters), int32."""
    if unit not in ("BYTE", "UTF8_CHAR"):
        raise ValueError(f"length: unit must be BYTE or UTF8_CHAR, got {unit!r}")
    count = (lambda op, loc, text: builtins.len(text.decode("utf-8"))) if unit == "UTF8_CHAR" \
        else (lambda op, loc, text: builtins.len(text))
    return _elementwise("StringLength", [string_input(input, "length")], count, dt.int32, name,
                        "length")


def as_string(input, precision=-1, scientific=False, shortest=False, width=-1,  # noqa: A002
              fill="", name=None):
    """Each number as text, as TensorFlow's ``AsString`` formats it (``%f`` by default,
    ``precision`` digits, ``scientific`` ``%e``, ``shortest`` ``%g``, padded to ``width``
    with ``fill``); bools as ``true``/``false``."""
    tensor = convert_to_tensor(graph_arg(input))
    if tensor.dtype is string:
        raise TypeError("as_string takes numbers, not strings")
    if scientific and shortest:
        raise ValueError("Cannot select both scientific and shortest notation")
    if fill and builtins.len(fill) > 1:
        raise ValueError(f"Fill string must be one or fewer characters: {fill!r}")
    pad = f"{fill if fill in ('0', '-', ' ', '+', '#') else ''}{width if width > -1 else ''}"
    if tensor.dtype.is_float:
        kind = "e" if scientific else "g" if shortest else "f"
        spec = f"%{pad}{f'.{precision}' if precision > -1 else ''}{kind}"
    else:
        spec = f"%{pad}d"

    def one(op, location, value):
        if tensor.dtype.is_bool:
            return b"true" if value else b"false"
        return (spec % (float(value) if tensor.dtype.is_float else int(value))).encode()

    return _elementwise("AsString", [tensor], one, string, name, "as_string")


def string_to_hash_bucket_fast(input, num_buckets, name=None):  # noqa: A002
    """Each string's ``Fingerprint64`` modulo ``num_buckets`` (int64), as TensorFlow's."""
    buckets = int(num_buckets)
    if buckets < 1:
        raise ValueError(f"num_buckets must be at least 1, got {buckets}")
    return _elementwise("StringToHashBucketFast",
                        [string_input(input, "string_to_hash_bucket_fast")],
                        lambda op, loc, text: fingerprint64(text) % buckets, dt.int64, name,
                        "string_to_hash_bucket_fast")
