"""``tf.summary.FileWriter`` and ``tf.summary.FileWriterCache``.

>>> import tempfile, tracejit.compat.v1 as tf
>>> with tf.Graph().as_default() as graph:
...     x = tf.constant(1.0, name="x")
...     with tf.summary.FileWriter(tempfile.mkdtemp(), graph) as writer:
...         writer.add_summary(tf.summary.Summary(value=[
...             tf.summary.Summary.Value(tag="loss", simple_value=0.5)]), global_step=3)
"""

from __future__ import annotations

import os
import threading

from tensorboard.compat.proto import graph_pb2

from ...summary.writer import EventWriter
from .graph import Graph, get_default_graph
from .graph_export import export_graph_def


class FileWriter(EventWriter):
    """``FileWriter(logdir, graph=None, max_queue=10, flush_secs=120, graph_def=None,
    filename_suffix=None, session=None)``: writes Events to a new event file in
    ``logdir``, starting with ``graph`` when given; a context manager."""

    def __init__(self, logdir, graph=None, max_queue=10, flush_secs=120, graph_def=None,
                 filename_suffix=None, session=None):
        if session is not None:
            raise NotImplementedError("FileWriter(session=...) writes through the session's "
                                      "summary ops, which tracejit does not have; give a "
                                      "logdir")
        super().__init__(logdir, max_queue, flush_secs, filename_suffix)
        if graph is not None or graph_def is not None:
            self.add_graph(graph, graph_def=graph_def)

    def add_graph(self, graph=None, global_step=None, graph_def=None) -> None:
        """Write a graph for the graph tab: a ``tf.Graph`` or a ``GraphDef``."""
        if isinstance(graph, graph_pb2.GraphDef):
            graph, graph_def = None, graph
        if graph is not None:
            if not isinstance(graph, Graph):
                raise TypeError(f"add_graph takes a tf.Graph or a GraphDef, got "
                                f"{type(graph).__name__}")
            graph_def = export_graph_def(graph)
        if graph_def is None:
            raise ValueError("add_graph needs a graph or a graph_def")
        self.add_graph_def(graph_def, global_step)

    def add_run_metadata(self, run_metadata, tag, global_step=None) -> None:
        """Accepted and ignored: tracejit's RunMetadata records no step statistics."""


class FileWriterCache:
    """One FileWriter per log directory, shared by everyone who asks for it."""

    _writers: dict[str, FileWriter] = {}
    _lock = threading.Lock()

    @staticmethod
    def get(logdir) -> FileWriter:
        """The FileWriter of ``logdir`` (made, with the default graph, on first use)."""
        key = os.fspath(logdir)
        with FileWriterCache._lock:
            writer = FileWriterCache._writers.get(key)
            if writer is None:
                writer = FileWriter(key, graph=get_default_graph())
                FileWriterCache._writers[key] = writer
            return writer

    @staticmethod
    def clear() -> None:
        """Close and forget every cached FileWriter."""
        with FileWriterCache._lock:
            writers = list(FileWriterCache._writers.values())
            FileWriterCache._writers.clear()
        for writer in writers:
            writer.close()
