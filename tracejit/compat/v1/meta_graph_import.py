"""``tf.train.import_meta_graph``: a ``.meta`` file (a ``MetaGraphDef``, written by
tracejit's ``tf.train.Saver`` or by TensorFlow's) becomes the default graph's operations
and collections, and a Saver for its variables.

The saver's own nodes (``save/SaveV2``, ``save/RestoreV2``, the scope of the
``SaverDef``'s restore op) are not imported: the Saver returned is a tracejit Saver over
the imported variables, which reads and writes the same checkpoint format under the same
names. So the classic pattern works:

    saver = tf.train.import_meta_graph("model.ckpt.meta")
    with tf.Session() as sess:
        saver.restore(sess, "model.ckpt")
        sess.run(tf.get_default_graph().get_tensor_by_name("y:0"), {"x:0": ...})
"""

from __future__ import annotations

import os

from google.protobuf import message, text_format
from tensorboard.compat.proto import graph_pb2, meta_graph_pb2, variable_pb2

from .graph import get_default_graph
from .graph_import import import_nodes, parse_input
from .saver import Saver
from .variables import GraphKeys, Variable

#: The collections whose bytes are VariableDefs (as TensorFlow registers them).
VARIABLE_COLLECTIONS = frozenset({
    GraphKeys.GLOBAL_VARIABLES, GraphKeys.TRAINABLE_VARIABLES, GraphKeys.LOCAL_VARIABLES,
    GraphKeys.MOVING_AVERAGE_VARIABLES, GraphKeys.GLOBAL_STEP, "model_variables",
    "metric_variables"})


def read_meta_graph(meta_graph_or_file) -> meta_graph_pb2.MetaGraphDef:
    """A MetaGraphDef, or one read from a file (binary, else text format)."""
    if isinstance(meta_graph_or_file, meta_graph_pb2.MetaGraphDef):
        return meta_graph_or_file
    path = os.fspath(meta_graph_or_file)
    if not os.path.isfile(path):
        raise OSError(f"File {path} does not exist.")
    with open(path, "rb") as file:
        data = file.read()
    try:
        return meta_graph_pb2.MetaGraphDef.FromString(data)
    except message.DecodeError:
        try:
            return text_format.Parse(data.decode("utf-8"), meta_graph_pb2.MetaGraphDef())
        except (UnicodeDecodeError, text_format.ParseError) as exc:
            raise ValueError(f"{path} is not a MetaGraphDef (binary or text): {exc}") \
                from None


def _saver_scope(meta: meta_graph_pb2.MetaGraphDef) -> str | None:
    """The name scope of the SaverDef's ops (``save/``), whose nodes are not imported."""
    if not meta.HasField("saver_def") or "/" not in meta.saver_def.restore_op_name:
        return None
    return meta.saver_def.restore_op_name.rsplit("/", 1)[0] + "/"


def _graph_def_to_import(meta, clear_devices: bool) -> graph_pb2.GraphDef:
    scope = _saver_scope(meta)
    kept = graph_pb2.GraphDef(versions=meta.graph_def.versions)
    for node in meta.graph_def.node:
        if scope is not None and node.name.startswith(scope):
            continue
        copy = kept.node.add()
        copy.CopyFrom(node)
        if clear_devices:
            copy.device = ""
    return kept


def _restore_variable(graph, definition: variable_pb2.VariableDef, prefix: str):
    """The imported Variable a VariableDef names, given its initializer, initial value
    and trainability; None when the graph does not have it."""
    name = prefix + parse_input(definition.variable_name)[0]
    try:
        op = graph.get_operation_by_name(name)
    except KeyError:
        return None
    variable = getattr(op, "reads", None)
    if not isinstance(variable, Variable) or variable.op is not op:
        return None
    if definition.initializer_name and variable.initializer is None:
        variable.initializer = graph.as_graph_element(prefix + definition.initializer_name)
    if definition.initial_value_name and variable.initial_value is None:
        variable.initial_value = graph.as_graph_element(prefix + definition.initial_value_name)
    variable.trainable = definition.trainable
    return variable


def _restore_collections(graph, meta, prefix: str) -> None:
    for key in sorted(meta.collection_def):
        found = meta.collection_def[key]
        kind = found.WhichOneof("kind")
        if kind == "node_list":
            for name in found.node_list.value:
                try:
                    graph.add_to_collection(key, graph.as_graph_element(prefix + name))
                except (KeyError, ValueError):
                    continue        # a node of the saver, not imported
        elif kind == "bytes_list" and key in VARIABLE_COLLECTIONS:
            for data in found.bytes_list.value:
                variable = _restore_variable(graph, variable_pb2.VariableDef.FromString(data),
                                             prefix)
                if variable is not None and variable not in graph.get_collection(key):
                    graph.add_to_collection(key, variable)
        elif kind is not None:
            for value in getattr(found, kind).value:
                graph.add_to_collection(key, value)


def import_meta_graph(meta_graph_or_file, clear_devices=False, import_scope=None,
                      input_map=None, **kwargs):
    """``tf.train.import_meta_graph``: import the graph and collections of a MetaGraphDef
    (or ``.meta`` file) into the default graph, under ``import_scope`` when given, and
    return a Saver for its variables (None when it has none)."""
    meta = read_meta_graph(meta_graph_or_file)
    graph = get_default_graph()
    prefix, _ = import_nodes(_graph_def_to_import(meta, clear_devices), input_map,
                             import_scope.rstrip("/") if import_scope else "",
                             unknown_runs_as_error=True)
    _restore_collections(graph, meta, prefix)
    variables = graph.get_collection(GraphKeys.GLOBAL_VARIABLES)
    variables = [v for v in variables if v.op.name.startswith(prefix)]
    if not variables:
        return None
    saver_def = meta.saver_def if meta.HasField("saver_def") else None
    # NOTE: checkpoint keys are the names the graph was saved under, without the scope
    return Saver({v.op.name[len(prefix):]: v for v in variables},
                 max_to_keep=saver_def.max_to_keep if saver_def else 5,
                 keep_checkpoint_every_n_hours=(saver_def.keep_checkpoint_every_n_hours
                                                if saver_def else 10000.0))
