"""GraphDefs for TensorBoard's graph tab.

A ``GraphDef`` is a list of ``NodeDef``: a unique name, an op type, the inputs (the
tensors it reads, ``name`` for a node's first output and ``name:i`` for the others,
``^name`` for a control input), a device and attributes. ``node_def`` builds one with
the attributes TensorBoard shows: ``_output_shapes`` (drawn on the edges) and the
output ``dtype``. ``ir_graph_def`` turns a traced tracejit graph into one;
``compat/v1/graph_export.py`` a TF1 graph's operations.
"""

from __future__ import annotations

from collections.abc import Sequence

from tensorboard.compat.proto import (
    attr_value_pb2,
    graph_pb2,
    node_def_pb2,
    versions_pb2,
)

from .values import DATA_TYPES, shape_proto

_PARAM_TEXT_MAX = 200       # longer param values (big constants) are cut in the node info


def node_def(name: str, op: str, inputs: Sequence[str] = (), device: str = "",
             output_shapes: Sequence | None = None, dtype: str | None = None,
             attrs: dict | None = None) -> node_def_pb2.NodeDef:
    """One node. ``output_shapes``: one shape per output (a list of dims, ``None`` for an
    unknown dim, or ``None`` for an unknown rank); ``dtype``: a tracejit dtype name or
    ``"string"``; ``attrs``: more attributes as text."""
    node = node_def_pb2.NodeDef(name=name, op=op, input=list(inputs), device=device or "")
    if output_shapes is not None:
        shapes = [shape_proto(s) for s in output_shapes]
        node.attr["_output_shapes"].CopyFrom(attr_value_pb2.AttrValue(
            list=attr_value_pb2.AttrValue.ListValue(shape=shapes)))
    if dtype is not None and dtype in DATA_TYPES:
        node.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=DATA_TYPES[dtype]))
    for key, text in (attrs or {}).items():
        node.attr[key].CopyFrom(attr_value_pb2.AttrValue(s=str(text).encode("utf-8")))
    return node


def graph_def(nodes: Sequence[node_def_pb2.NodeDef]) -> graph_pb2.GraphDef:
    # NOTE: producer 27 is what TensorFlow 1.15 writes; TensorBoard only displays it
    return graph_pb2.GraphDef(node=list(nodes), versions=versions_pb2.VersionDef(producer=27))


def tensor_ref(node: str, index: int) -> str:
    """How a NodeDef names another node's output: ``node`` for the first, else
    ``node:index``."""
    return node if index == 0 else f"{node}:{index}"


def _param_text(value) -> str:
    if all(hasattr(value, f) for f in ("inputs", "eqns", "outputs")):
        return f"<region of {len(value.eqns)} equations>"
    text = str(value)
    return text if len(text) <= _PARAM_TEXT_MAX else text[:_PARAM_TEXT_MAX - 3] + "..."


def ir_graph_def(graph) -> graph_pb2.GraphDef:
    """A traced tracejit ``ir.Graph`` as a GraphDef: one node an input (``Placeholder``),
    one an equation (its op name as the type, its params as attributes), and one
    ``Identity`` an output. Control-flow bodies stay inside their equation's node."""
    names: dict[int, str] = {}      # id(Var) -> the tensor reference
    used: dict[str, int] = {}
    nodes = []

    def unique(base: str) -> str:
        count = used.get(base, 0)
        used[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def shapes_of(vars_) -> list:
        return [list(v.shape) for v in vars_]

    for i, var in enumerate(graph.inputs):
        name = unique(var.meta.name or f"input_{i}")
        names[id(var)] = name
        nodes.append(node_def(name, "Placeholder", device=var.meta.device or "",
                              output_shapes=shapes_of([var]), dtype=var.dtype.name))
    for eqn in graph.eqns:
        first = eqn.outs[0] if eqn.outs else None
        name = unique((first.meta.name if first is not None else None) or eqn.op.name)
        inputs = [names.get(id(v), "") for v in eqn.ins]
        device = (first.meta.device if first is not None else None) or ""
        attrs = {key: _param_text(value) for key, value in eqn.params.items()}
        nodes.append(node_def(name, eqn.op.name, [i for i in inputs if i], device,
                              shapes_of(eqn.outs), first.dtype.name if first else None,
                              attrs))
        for index, out in enumerate(eqn.outs):
            names[id(out)] = tensor_ref(name, index)
    for i, var in enumerate(graph.outputs):
        source = names.get(id(var))
        nodes.append(node_def(unique(f"output_{i}"), "Identity",
                              [source] if source else [], output_shapes=shapes_of([var]),
                              dtype=var.dtype.name))
    return graph_def(nodes)
