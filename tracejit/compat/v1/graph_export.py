"""A TF1 graph as a ``GraphDef``: for TensorBoard's graph tab, ``Graph.as_graph_def``,
``tf.train.write_graph`` and the ``.meta`` files ``tf.train.Saver`` writes, which
``tf.train.import_meta_graph`` reads back (graph_import.py).

One ``NodeDef`` per Operation (those inside a ``tf.cond`` branch or loop body live in
their control-flow op): its name, TensorFlow's op type (graph_def_ops.py's table turns
the type a ``tf.*`` constructor recorded, ``Matmul``, into ``MatMul``), the tensors it
reads (``op`` for an op's first output, ``op:i`` for the others), ``^op`` for each control
input, its device, ``_output_shapes`` (TensorBoard draws them on the edges; unknown
dimensions are -1) and what importing needs:

- placeholders, constants and variables as TensorFlow writes them (``dtype``, ``shape``,
  ``value``); a variable's assignments and reads take the variable node as their first
  input, as TF1's ``Assign`` does;
- an op recorded as a call of a tracejit function: that call (graph_def_calls.py); an
  op import_graph_def made from a node: that node's attributes;
- a ``tf.gradients`` op: how many of its inputs are ys, xs and grad_ys;
- any other op (an optimizer's update, a random op, a branch or loop, a
  queue): ``_tracejit_opaque`` and its output types. Importing makes an op that fails
  when run, naming it; the rest of the graph works.
"""

from __future__ import annotations

import numpy as np
from tensorboard.compat.proto import attr_value_pb2, graph_pb2

from ...summary.graph_def import graph_def, node_def, tensor_ref
from .graph import Graph, Operation, Tensor, get_default_graph
from .graph_def_calls import CALL_ATTR, NotEncodable, encode_call
from .graph_def_nodes import GRADIENT_COUNTS_ATTR, OPAQUE_ATTR, OUTPUT_TYPES_ATTR
from .graph_def_ops import TF_TYPE_OF_RECORDED
from .graph_def_values import attr_value, dtype_enum, shape_attr, tensor_proto

_VARIABLE_TYPES = ("VariableV2", "Variable", "VarHandleOp")
_ASSIGN_TYPES = ("Assign", "AssignAdd", "AssignSub")


def export_graph_def(graph: Graph | None = None) -> graph_pb2.GraphDef:
    """The GraphDef of ``graph`` (the default graph when None), in creation order (a
    topological order, as TensorFlow lists nodes)."""
    graph = graph if graph is not None else get_default_graph()
    if not isinstance(graph, Graph):
        raise TypeError(f"expected a tf.Graph, got {type(graph).__name__}")
    operations = sorted((op for op in graph.get_operations() if op.region is None),
                        key=lambda op: op.order)
    return graph_def([operation_node(op) for op in operations])


def _variable_of(op: Operation):
    return getattr(op, "initializes", None) or getattr(op, "reads", None)


def operation_node(op: Operation):
    """One Operation as an importable NodeDef."""
    inputs = list(op.inputs)
    attrs: dict = {}
    first = [] if op.type not in _ASSIGN_TYPES + ("ReadVariableOp",) or \
        _variable_of(op) is None else [_variable_of(op).op.name]
    if op.type in ("Placeholder", "PlaceholderWithDefault") or \
            (op.type in _VARIABLE_TYPES and _variable_of(op) is not None):
        attrs["shape"] = shape_attr(op.outputs[0].shape.dims)
    elif op.type == "Const" and op.outputs:
        host = getattr(op, "host_value", None)
        value = host(None) if host is not None else np.asarray(op.replay({}))
        attrs["value"] = attr_value_pb2.AttrValue(
            tensor=tensor_proto(value, op.outputs[0].dtype))
    elif first or op.type == "NoOp" and not op.outputs:
        pass
    elif op.type == "Gradients" and _gradient_inputs(op) is not None:
        inputs[:], counts = _gradient_inputs(op)
        attrs[GRADIENT_COUNTS_ATTR] = attr_value(counts)
    else:
        _call_or_opaque(op, inputs, attrs)
    node = node_def(op.name, TF_TYPE_OF_RECORDED.get(op.type, op.type),
                    first + [tensor_ref(t.op.name, t.value_index) for t in inputs]
                    + [f"^{c.name}" for c in op.control_inputs],
                    op.device,
                    [t.shape.dims for t in op.outputs] if op.outputs else None,
                    op.outputs[0].dtype.name if op.outputs else None)
    for key, value in attrs.items():
        node.attr[key].CopyFrom(value)
    return node


def _gradient_inputs(op: Operation):
    """A ``tf.gradients`` op's inputs as ys, xs, grad_ys, with their numbers (-1 for no
    grad_ys); None when its arguments are not lists of tensors."""
    _, (ys, xs, grad_ys), _ = op.recorded_call()
    lists = [ys, xs] + ([] if grad_ys is None else [grad_ys])
    if not all(isinstance(part, (list, tuple)) and all(isinstance(t, Tensor) for t in part)
               for part in lists):
        return None
    flat = [t for part in lists for t in part]
    if len(flat) != len(op.inputs):
        return None
    return flat, [len(ys), len(xs), -1 if grad_ys is None else len(grad_ys)]


def _call_or_opaque(op: Operation, inputs: list, attrs: dict) -> None:
    imported = getattr(op, "node_attrs", None)
    if imported is not None:       # an op import_graph_def made: the node it came from
        attrs.update((key, value) for key, value in imported.items()
                     if key != "_output_shapes")
        return
    recorded = op.recorded_call()
    if recorded is not None and getattr(op, "host_value", None) is None:
        try:
            attrs[CALL_ATTR] = attr_value(encode_call(*recorded, inputs))
            return
        except NotEncodable:
            pass
    attrs[OPAQUE_ATTR] = attr_value(True)
    attrs[OUTPUT_TYPES_ATTR] = attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(
        type=[dtype_enum(t.dtype) for t in op.outputs]))


def _as_graph_def(self, from_version=None, add_shapes=False):
    """``Graph.as_graph_def()``: this graph as a GraphDef (graph_export.py)."""
    return export_graph_def(self)


Graph.as_graph_def = _as_graph_def
