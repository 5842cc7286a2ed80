"""A TF1 graph as a ``GraphDef``, for TensorBoard's graph tab.

One ``NodeDef`` per Operation: its name, its type (``Placeholder``, ``MatMul``-style
names as the op constructors recorded them), the tensors it reads (``op`` for an op's
first output, ``op:i`` for the others), ``^op`` for each control input, its device,
and the ``_output_shapes`` and ``dtype`` of its outputs. The numbers TensorBoard shows
on the edges come from ``_output_shapes`` (unknown dimensions are -1).
"""

from __future__ import annotations

from tensorboard.compat.proto import graph_pb2

from ...summary.graph_def import operations_graph_def
from .graph import Graph, get_default_graph


def export_graph_def(graph: Graph | None = None) -> graph_pb2.GraphDef:
    """The GraphDef of ``graph`` (the default graph when None), in creation order (a
    topological order, as TensorFlow lists nodes)."""
    graph = graph if graph is not None else get_default_graph()
    if not isinstance(graph, Graph):
        raise TypeError(f"expected a tf.Graph, got {type(graph).__name__}")
    return operations_graph_def(sorted(graph.get_operations(), key=lambda op: op.order))
