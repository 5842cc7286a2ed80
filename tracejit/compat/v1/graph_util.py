"""``tf.graph_util``: GraphDef surgery for deployment, as TF1's freezing scripts use it.

``extract_sub_graph`` keeps what some nodes need; ``convert_variables_to_constants``
("freezing") also replaces each variable the outputs read by a ``Const`` holding its value
in a session, so the GraphDef runs alone (``tf.import_graph_def`` and a feed).
"""

from __future__ import annotations

from tensorboard.compat.proto import attr_value_pb2, graph_pb2

from .graph_def_values import attr_python, tensor_proto
from .graph_import import import_graph_def, parse_input

__all__ = ["extract_sub_graph", "convert_variables_to_constants", "import_graph_def"]

_VARIABLE_TYPES = ("VariableV2", "Variable", "VarHandleOp")


def _check_graph_def(graph_def) -> None:
    if not isinstance(graph_def, graph_pb2.GraphDef):
        raise TypeError(f"graph_def must be a graph_pb2.GraphDef proto, got "
                        f"{type(graph_def).__name__}")


def extract_sub_graph(graph_def, dest_nodes):
    """The nodes ``dest_nodes`` (names) need through their inputs and control inputs, in
    ``graph_def``'s order."""
    _check_graph_def(graph_def)
    if isinstance(dest_nodes, str):
        raise TypeError("dest_nodes must be a list of node names, not a string")
    by_name = {node.name: node for node in graph_def.node}
    needed: set[str] = set()
    stack = [parse_input(name)[0] for name in dest_nodes]
    for name in stack:
        if name not in by_name:
            raise AssertionError(f"{name} is not in graph")
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        stack.extend(parse_input(text)[0] for text in by_name[name].input)
    out = graph_pb2.GraphDef(versions=graph_def.versions, library=graph_def.library)
    out.node.extend(node for node in graph_def.node if node.name in needed)
    return out


def convert_variables_to_constants(sess, input_graph_def, output_node_names,
                                   variable_names_whitelist=None,
                                   variable_names_blacklist=None):
    """The part of ``input_graph_def`` that ``output_node_names`` need, with each
    variable it reads (those in the whitelist, none of the blacklist) a ``Const`` of the
    value it has in ``sess``; reads of a resource variable become ``Identity``."""
    sub = extract_sub_graph(input_graph_def, output_node_names)
    chosen = [node for node in sub.node if node.op in _VARIABLE_TYPES
              and (variable_names_whitelist is None or node.name in variable_names_whitelist)
              and node.name not in (variable_names_blacklist or ())]
    values = sess.run([f"{node.name}:0" for node in chosen]) if chosen else []
    frozen = {node.name: value for node, value in zip(chosen, values, strict=True)}
    out = graph_pb2.GraphDef(versions=sub.versions, library=sub.library)
    for node in sub.node:
        copy = out.node.add()
        if node.name in frozen:
            dtype = attr_python(node.attr["dtype"], node.name)
            copy.name, copy.op, copy.device = node.name, "Const", node.device
            copy.attr["dtype"].CopyFrom(node.attr["dtype"])
            copy.attr["value"].CopyFrom(attr_value_pb2.AttrValue(
                tensor=tensor_proto(frozen[node.name], dtype)))
        elif node.op == "ReadVariableOp" and parse_input(node.input[0])[0] in frozen:
            copy.CopyFrom(node)
            copy.op = "Identity"
            copy.attr["T"].CopyFrom(node.attr["dtype"])
            del copy.attr["dtype"]
        else:
            copy.CopyFrom(node)
    return out
