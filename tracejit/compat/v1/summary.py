"""``tf.summary``: summary ops of a TF1 graph, and ``FileWriter``.

A summary op's value is a serialized ``Summary`` protocol buffer (``tf.string``), as in
TensorFlow. Here it is made in two halves: an ordinary op (``HistogramStats``,
``ImageToUint8``, ...) computes the numbers with tracejit ops inside the compiled step,
and the summary op itself (``HistogramSummary``, ...) has those numbers as its inputs and
an ``host_encode`` function that builds the protocol buffer from their values on the
host. ``Session.run`` fetches the parts in the same step and encodes after it (see
session.py). ``merge`` is encoded by concatenating its inputs' bytes, which is a valid
Summary holding all their values.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None])
...     loss = tf.summary.scalar("loss", tf.reduce_mean(x))
...     merged = tf.summary.merge_all()
...     with tf.Session() as sess:
...         data = sess.run(merged, {x: [1.0, 2.0]})
>>> tf.summary.Summary.FromString(data).value[0].simple_value
1.5
"""

from __future__ import annotations

import contextlib

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2

from ...ir import dtypes as dt
from ...summary.audio import audio_to_pcm16, audio_values
from ...summary.histogram import HistogramStats, NonFiniteHistogram, histogram_proto
from ...summary.histogram import histogram_stats as stats_ops
from ...summary.image import image_to_uint8, image_values
from ...summary.values import (
    clean_tag,
    histogram_value,
    scalar_value,
    summary_bytes,
    tensor_value,
    text_value,
)
from ...trace.array_ops import identity
from ...trace.tracing import cast
from .errors import InvalidArgumentError
from .graph import Tensor, get_default_graph
from .ops import constant, convert_to_tensor
from .shapes import TensorShape
from .strings import string
from .summary_writer import FileWriter, FileWriterCache  # noqa: F401
from .variables import GraphKeys

Summary = summary_pb2.Summary
SummaryDescription = summary_pb2.SummaryDescription
SummaryMetadata = summary_pb2.SummaryMetadata
Event = event_pb2.Event
SessionLog = event_pb2.SessionLog
TaggedRunMetadata = event_pb2.TaggedRunMetadata


@contextlib.contextmanager
def _summary_scope(name, family=None):
    """TensorFlow's summary scope: a name scope for the (cleaned) name, whose full name
    is the tag (prefixed once more by the family, as TensorFlow does)."""
    name = clean_tag(name)
    family = clean_tag(family) if family is not None else None
    base = name if family is None else f"{family}/{name}"
    with get_default_graph().name_scope(base) as scope:
        op_name = scope.rstrip("/")
        yield (op_name if family is None else f"{family}/{op_name}"), op_name


def _add(tensor: Tensor, collections) -> Tensor:
    graph = get_default_graph()
    for key in (collections if collections is not None else [GraphKeys.SUMMARIES]):
        graph.add_to_collection(key, tensor)
    return tensor


def _summary_op(op_type: str, op_name: str, parts: list[Tensor], encode) -> Tensor:
    """The summary op: a ``tf.string`` whose value ``encode(part values)`` makes."""
    graph = get_default_graph()
    op = graph.create_op(op_type, None, tuple(parts), name=op_name, absolute=True)
    op.outputs = [Tensor(op, 0, TensorShape([]), string)]

    def host_encode(values):
        try:
            return encode(values)
        except (NonFiniteHistogram, ValueError, TypeError) as exc:
            # NOTE: TensorFlow reports a bad value met at run time this way
            raise InvalidArgumentError(f"{exc}\n\t [[node {op.name} (defined at "
                                       f"{op.location})]]", op=op,
                                       location=op.location) from None

    op.host_encode = host_encode
    return op.outputs[0]


def _parts(op_type: str, fn, tensor: Tensor) -> list[Tensor]:
    created = get_default_graph().create_op(op_type, fn, (tensor,))
    return list(created.outputs)


def _numeric(tensor, tag: str, what: str) -> Tensor:
    tensor = convert_to_tensor(tensor)
    if tensor.dtype is string or tensor.dtype is dt.bool_:
        raise TypeError(f"{what} summary {tag!r} takes a numeric tensor, got "
                        f"'{tensor.name}' of dtype {tensor.dtype.name}")
    return tensor


def _scalar_value(tag: str, value):
    array = np.asarray(value)
    if array.shape != ():
        shape = ",".join(str(d) for d in array.shape)
        raise ValueError(f"tags and values are not the same shape: [] != [{shape}] "
                         f"(tag '{tag}')")
    return scalar_value(tag, array)


def scalar(name, tensor, collections=None, family=None):
    """A scalar summary: the value as a float (``simple_value``)."""
    with _summary_scope(name, family) as (tag, op_name):
        tensor = _numeric(tensor, tag, "scalar")
        # NOTE: TensorFlow finds a non-scalar only when it runs; a known shape is
        # refused here, at the user's line
        if tensor.shape.dims is not None and tensor.shape.dims != ():
            raise ValueError(f"scalar summary {tag!r} takes a scalar, got '{tensor.name}' of "
                             f"shape {tensor.shape}")
        parts = _parts("ToFloat", lambda v: cast(v, dt.float32), tensor)
        out = _summary_op("ScalarSummary", op_name, parts,
                          lambda values: summary_bytes([_scalar_value(tag, values[0])]))
    return _add(out, collections)


def histogram(name, values, collections=None, family=None):
    """A histogram summary with TensorFlow's buckets (computed in the step)."""
    with _summary_scope(name, family) as (tag, op_name):
        values = _numeric(values, tag, "histogram")
        parts = _parts("HistogramStats", stats_ops, values)

        def encode(found):
            proto = histogram_proto(HistogramStats(*found), op_name)
            return summary_bytes([histogram_value(tag, proto)])
        out = _summary_op("HistogramSummary", op_name, parts, encode)
    return _add(out, collections)


def _count(value, what: str, tag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"summary {tag!r}: {what} must be a positive integer, got {value!r}")
    return int(value)


def image(name, tensor, max_outputs=3, collections=None, family=None):
    """Image summaries of the first ``max_outputs`` images (``[batch, height, width,
    channels]``, 1, 3 or 4 channels): tags ``name/image/i`` (``name/image`` when
    ``max_outputs`` is 1); floats are scaled to uint8 as TensorFlow does."""
    with _summary_scope(name, family) as (tag, op_name):
        tensor = _numeric(tensor, tag, "image")
        max_outputs = _count(max_outputs, "max_outputs", tag)
        parts = _parts("ImageToUint8", lambda v: image_to_uint8(v, max_outputs, tag), tensor)
        out = _summary_op("ImageSummary", op_name, parts,
                          lambda found: summary_bytes(image_values(tag, found[0],
                                                                   max_outputs)))
    return _add(out, collections)


def audio(name, tensor, sample_rate, max_outputs=3, collections=None, family=None):
    """Audio summaries (16-bit WAV) of the first ``max_outputs`` clips of ``tensor``
    (``[batch, frames, channels]`` or ``[batch, frames]``, floats in [-1, 1])."""
    with _summary_scope(name, family) as (tag, op_name):
        tensor = _numeric(tensor, tag, "audio")
        max_outputs = _count(max_outputs, "max_outputs", tag)
        parts = _parts("AudioToPcm16", lambda v: audio_to_pcm16(v, max_outputs, tag), tensor)
        rate = convert_to_tensor(sample_rate, dtype=dt.float32)
        out = _summary_op("AudioSummaryV2", op_name, parts + [rate],
                          lambda found: summary_bytes(audio_values(tag, found[0], found[1],
                                                                   max_outputs)))
    return _add(out, collections)


def text(name, tensor, collections=None):
    """A text summary: a string tensor (or a Python string) that TensorBoard's text tab
    shows as Markdown."""
    with _summary_scope(name) as (tag, op_name):
        if not isinstance(tensor, Tensor):
            tensor = constant(tensor, dtype=string)
        if tensor.dtype is not string:
            raise TypeError(f"text summary {tag!r} takes a string tensor, got "
                            f"'{tensor.name}' of dtype {tensor.dtype.name}")
        out = _summary_op("TensorSummaryV2", op_name, [tensor],
                          lambda found: summary_bytes([text_value(tag, found[0])]))
    return _add(out, collections)


def tensor_summary(name, tensor, summary_description=None, collections=None,
                   summary_metadata=None, family=None, display_name=None):
    """A summary holding the whole tensor (dtype, shape and values), with optional
    ``SummaryMetadata`` (a plugin's data, a description, a display name)."""
    metadata = summary_pb2.SummaryMetadata()
    if summary_metadata is not None:
        metadata.CopyFrom(summary_metadata)
    if summary_description is not None:
        metadata.summary_description = summary_description
    if display_name is not None:
        metadata.display_name = display_name
    with _summary_scope(name, family) as (tag, op_name):
        tensor = convert_to_tensor(tensor)
        parts = [tensor] if tensor.dtype is string else _parts("Identity", identity, tensor)
        out = _summary_op("TensorSummaryV2", op_name, parts,
                          lambda found: summary_bytes([tensor_value(tag, found[0], metadata)]))
    return _add(out, collections)


def get_summary_description(node_def):
    """The ``SummaryDescription`` of a summary node: tracejit's nodes carry none."""
    return summary_pb2.SummaryDescription()


def all_v2_summary_ops():
    """TF2 summary ops of the graph: tracejit's TF1 graphs make none."""
    return []


def initialize(graph=None, session=None):
    """Initializes TF2 summary writers in a TF1 session: there are none to initialize."""


def _joined(values) -> bytes:
    pieces = []
    for value in values:
        item = value.item() if isinstance(value, np.ndarray) else value
        if not isinstance(item, bytes):
            raise TypeError(f"merge takes serialized Summary strings, got "
                            f"{type(item).__name__}")
        pieces.append(item)
    # NOTE: concatenated serialized messages parse as one with the repeated fields joined
    return b"".join(pieces)


def merge(inputs, collections=None, name=None):
    """One Summary holding the values of every summary in ``inputs``."""
    inputs = [convert_to_tensor(t) if not isinstance(t, Tensor) else t for t in inputs]
    for tensor in inputs:
        if tensor.dtype is not string:
            raise TypeError(f"merge takes summary tensors (tf.string), got '{tensor.name}' "
                            f"of dtype {tensor.dtype.name}")
    graph = get_default_graph()
    # NOTE: as TensorFlow names it: "Merge/MergeSummary", or "<name>/<name>"
    with graph.name_scope(name or "Merge") as scope:
        out = _summary_op("MergeSummary", f"{scope}{name or 'MergeSummary'}", inputs, _joined)
    return _add(out, collections if collections is not None else [])


def merge_all(key=GraphKeys.SUMMARIES, scope=None, name=None):
    """``merge`` of every summary in the collection ``key`` (``None`` when empty)."""
    summaries = get_default_graph().get_collection(key, scope)
    if not summaries:
        return None
    return merge(summaries, name=name)
