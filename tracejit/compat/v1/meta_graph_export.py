"""``tf.train.export_meta_graph``: a graph with its collections (and a Saver's
``SaverDef``) as TensorFlow's ``MetaGraphDef``, the ``.meta`` file written beside a
checkpoint. ``meta_graph_import.py`` reads it back.

Collections are written as TensorFlow writes them: variables as ``VariableDef``s (their
op, initializer, value and initial value by name, whether trainable), operations and
tensors by name (``node_list``), strings, ints and floats as themselves. A collection of
anything else (queue runners, summaries' writers) is left out, as TensorFlow leaves out
what it cannot serialize.
"""

from __future__ import annotations

import os

from google.protobuf import text_format
from tensorboard.compat.proto import meta_graph_pb2, variable_pb2

from .graph import Graph, Operation, Tensor, get_default_graph
from .graph_export import export_graph_def
from .variables import Variable


def variable_def(variable: Variable, scope: str = "") -> variable_pb2.VariableDef:
    """A variable as TensorFlow's VariableDef, names relative to ``scope``."""
    def name(element) -> str:
        return _relative(element.name, scope) if element is not None else ""
    return variable_pb2.VariableDef(
        variable_name=name(variable.op.outputs[0]),
        initializer_name=name(variable.initializer),
        snapshot_name=name(variable.op.outputs[0]),
        initial_value_name=name(variable.initial_value)
        if isinstance(variable.initial_value, Tensor) else "",
        trainable=bool(variable.trainable))


def _relative(name: str, scope: str) -> str:
    return name[len(scope):] if scope and name.startswith(scope) else name


def collection_def(items: list, scope: str = "") -> meta_graph_pb2.CollectionDef | None:
    """One collection as a CollectionDef; None for one whose items have no such form."""
    found = meta_graph_pb2.CollectionDef()
    if not items:
        return None
    if all(isinstance(i, Variable) for i in items):
        found.bytes_list.value.extend(variable_def(i, scope).SerializeToString()
                                      for i in items)
    elif all(isinstance(i, (Operation, Tensor)) for i in items):
        found.node_list.value.extend(_relative(i.name, scope) for i in items)
    elif all(isinstance(i, (str, bytes)) for i in items):
        found.bytes_list.value.extend(i.encode() if isinstance(i, str) else i for i in items)
    elif all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        found.int64_list.value.extend(items)
    elif all(isinstance(i, float) for i in items):
        found.float_list.value.extend(items)
    else:
        return None
    return found


def _scoped_graph_def(graph_def, scope: str):
    """The nodes under ``scope`` with the scope taken off their names and inputs."""
    kept = [n for n in graph_def.node if n.name.startswith(scope)]
    out = type(graph_def)(versions=graph_def.versions)
    for node in kept:
        copy = out.node.add()
        copy.CopyFrom(node)
        copy.name = node.name[len(scope):]
        del copy.input[:]
        for text in node.input:
            control = text.startswith("^")
            bare = text.lstrip("^")
            if not bare.startswith(scope):
                raise ValueError(f"export_meta_graph(export_scope={scope[:-1]!r}): node "
                                 f"{node.name!r} reads {bare!r}, outside the scope")
            copy.input.append(("^" if control else "") + bare[len(scope):])
    return out


def export_meta_graph(filename=None, meta_info_def=None, graph_def=None, saver_def=None,
                      collection_list=None, as_text=False, graph=None, export_scope=None,
                      clear_devices=False, clear_extraneous_savers=False,
                      strip_default_attrs=False, save_debug_info=False, **kwargs):
    """``tf.train.export_meta_graph``: the MetaGraphDef of ``graph`` (the default graph)
    with the collections named in ``collection_list`` (all when None) and ``saver_def``;
    written to ``filename`` when given (binary, or text with ``as_text``)."""
    graph = graph if graph is not None else get_default_graph()
    if not isinstance(graph, Graph):
        raise TypeError(f"export_meta_graph: graph must be a tf.Graph, got {graph!r}")
    scope = export_scope.rstrip("/") + "/" if export_scope else ""
    if graph_def is None:
        graph_def = export_graph_def(graph)
    else:       # NOTE: a copy: clear_devices must not change the caller's message
        graph_def = type(graph_def).FromString(graph_def.SerializeToString())
    if scope:
        graph_def = _scoped_graph_def(graph_def, scope)
    if clear_devices:
        for node in graph_def.node:
            node.device = ""
    meta = meta_graph_pb2.MetaGraphDef(graph_def=graph_def)
    meta.meta_info_def.CopyFrom(meta_info_def or meta_graph_pb2.MetaGraphDef.MetaInfoDef(
        tensorflow_version="tracejit", tensorflow_git_version="tracejit"))
    if saver_def is not None:
        meta.saver_def.CopyFrom(saver_def)
    keys = sorted(graph.collections) if collection_list is None else list(collection_list)
    for key in keys:
        items = graph.get_collection(key)
        if scope:
            items = [i for i in items if getattr(i, "name", "").startswith(scope)]
        found = collection_def(items, scope)
        if found is not None:
            meta.collection_def[key].CopyFrom(found)
    if filename:
        data = text_format.MessageToString(meta).encode() if as_text \
            else meta.SerializeToString()
        temporary = f"{os.fspath(filename)}.tmp"
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, os.fspath(filename))
    return meta
