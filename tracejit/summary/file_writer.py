"""``tracejit.summary.create_file_writer``: TensorBoard logs from ``@jit`` programs.

>>> import tempfile, numpy as np, tracejit as tj
>>> with tj.summary.create_file_writer(tempfile.mkdtemp()) as writer:
...     writer.scalar("loss", 0.25, step=1)
...     writer.histogram("w", np.arange(10.0), step=1)

The numeric part of every summary runs as tracejit ops (a histogram's counts and
statistics, an image's conversion to uint8, audio's 16-bit samples): on the values
given here, in one small compiled program per shape; or inside the user's own jitted
step, whose results (``histogram_stats(x)``, ``image_to_uint8(x)``) these methods
accept as they are. Only the encoding (protocol buffers, PNG, WAV) happens here.
"""

from __future__ import annotations

import functools

import numpy as np
from tensorboard.compat.proto import graph_pb2, summary_pb2

from ..trace.jit import JitFunction, jit, make_ir
from ..trace.values import Tracer
from .audio import audio_to_pcm16, audio_values
from .graph_def import ir_graph_def
from .histogram import HistogramStats, histogram_proto, histogram_stats
from .image import image_to_uint8, image_values
from .values import clean_tag, histogram_value, scalar_value, text_value
from .writer import EventWriter


def _concrete(value, what: str, tag: str):
    if isinstance(value, Tracer):
        raise TypeError(f"{what} {tag!r}: the writer needs concrete values, got a traced "
                        "value inside a jitted function; return it (or "
                        "tracejit.summary.histogram_stats(x)) from the function and write "
                        "the result")
    return value


@functools.cache
def _compiled(kind: str, max_outputs: int = 0) -> JitFunction:
    """One jitted helper per kind (and max_outputs), compiled once per input shape."""
    if kind == "histogram":
        return jit(histogram_stats)
    if kind == "image":
        return jit(lambda images: image_to_uint8(images, max_outputs))
    return jit(lambda audio: audio_to_pcm16(audio, max_outputs))


class SummaryWriter:
    """Writes summaries of ``@jit`` programs to an event file in ``logdir``."""

    def __init__(self, logdir, max_queue: int = 10, flush_secs: float = 120,
                 filename_suffix: str | None = None):
        self._events = EventWriter(logdir, max_queue, flush_secs, filename_suffix)

    @property
    def logdir(self) -> str:
        return self._events.get_logdir()

    @property
    def event_file(self) -> str:
        return self._events.event_file

    def _write(self, values, step) -> None:
        self._events.add_summary(_summary(values), step)

    def scalar(self, name: str, value, step: int | None = None) -> None:
        tag = clean_tag(name)
        self._write([scalar_value(tag, np.asarray(_concrete(value, "scalar", tag)))], step)

    def histogram(self, name: str, values, step: int | None = None) -> None:
        """``values``: an array of any shape, or the ``HistogramStats`` a jitted step
        computed with ``histogram_stats``."""
        tag = clean_tag(name)
        if not isinstance(values, HistogramStats):
            values = _compiled("histogram")(np.asarray(_concrete(values, "histogram", tag)))
        stats = HistogramStats(*(np.asarray(_concrete(v, "histogram", tag)) for v in values))
        self._write([histogram_value(tag, histogram_proto(stats, tag))], step)

    def image(self, name: str, images, step: int | None = None, max_outputs: int = 3) -> None:
        """``images``: ``[batch, height, width, channels]`` (1, 3 or 4 channels), uint8
        as they are or floats scaled as TensorFlow does; one image per tag
        ``name/image/i`` (``name/image`` when ``max_outputs`` is 1)."""
        tag = clean_tag(name)
        max_outputs = _positive(max_outputs, "max_outputs", tag)
        pixels = _compiled("image", max_outputs)(np.asarray(_concrete(images, "image", tag)))
        self._write(image_values(tag, np.asarray(pixels), max_outputs), step)

    def audio(self, name: str, data, sample_rate: int, step: int | None = None,
              max_outputs: int = 3) -> None:
        """``data``: ``[batch, frames, channels]`` or ``[batch, frames]`` floats in
        [-1, 1]; one 16-bit WAV clip per tag ``name/audio/i``."""
        tag = clean_tag(name)
        max_outputs = _positive(max_outputs, "max_outputs", tag)
        pcm = _compiled("audio", max_outputs)(np.asarray(_concrete(data, "audio", tag)))
        self._write(audio_values(tag, np.asarray(pcm), sample_rate, max_outputs), step)

    def text(self, name: str, data, step: int | None = None) -> None:
        """A string, or an array of strings (TensorBoard shows each as Markdown)."""
        tag = clean_tag(name)
        self._write([text_value(tag, data)], step)

    def add_graph(self, fn_or_graph, *example_args, **example_kwargs) -> None:
        """Show a function's traced IR in the graph tab: ``add_graph(step, w, x)`` traces
        ``step`` (a function or a ``@jit`` one) with example arguments; a traced
        ``ir.Graph`` or a ``GraphDef`` is written as it is."""
        if isinstance(fn_or_graph, graph_pb2.GraphDef):
            definition = fn_or_graph
        elif all(hasattr(fn_or_graph, f) for f in ("inputs", "eqns", "outputs")):
            definition = ir_graph_def(fn_or_graph)
        elif callable(fn_or_graph):
            definition = ir_graph_def(make_ir(fn_or_graph)(*example_args, **example_kwargs))
        else:
            raise TypeError(f"add_graph takes a function, a tracejit IR graph or a GraphDef, "
                            f"got {type(fn_or_graph).__name__}")
        self._events.add_graph_def(definition)

    def add_summary(self, summary, step: int | None = None) -> None:
        """A ``Summary`` message or its bytes, as it is."""
        self._events.add_summary(summary, step)

    def flush(self) -> None:
        self._events.flush()

    def close(self) -> None:
        self._events.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _summary(values) -> summary_pb2.Summary:
    return summary_pb2.Summary(value=list(values))


def _positive(value, what: str, tag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{tag!r}: {what} must be a positive integer, got {value!r}")
    return int(value)


def create_file_writer(logdir, max_queue: int = 10, flush_secs: float = 120,
                       filename_suffix: str | None = None) -> SummaryWriter:
    """A ``SummaryWriter`` writing a new event file in ``logdir`` (created if needed)."""
    return SummaryWriter(logdir, max_queue, flush_secs, filename_suffix)
