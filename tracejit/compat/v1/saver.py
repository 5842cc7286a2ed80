"""``tf.train.Saver`` and TF1's checkpoint functions, in TensorFlow's own V2 format
(tracejit/io/bundle.py): a checkpoint tracejit writes loads in TensorFlow and one
TensorFlow wrote loads here.

The Saver builds its restore ops when it is made (as TensorFlow's does, so a finalized
graph can still restore): one placeholder and Assign per variable, grouped. ``save``
reads the variables through the session (so it works for variables on a parameter
server or a GPU) and writes them atomically; ``restore`` checks every name, shape and
dtype before it assigns anything.
"""

from __future__ import annotations

import os

import numpy as np
from tensorboard.compat.proto import saver_pb2

from ...ir.source import user_location
from ...train.checkpoint_files import (
    CheckpointError,
    CheckpointHistory,
    CheckpointReader,
    checkpoint_exists,
    get_checkpoint_state,
    latest_checkpoint,
    list_variables,
    load_checkpoint,
    load_variable,
    read_for_restore,
    save_arrays,
)
from .errors import InvalidArgumentError, NotFoundError
from .graph import Tensor, get_default_graph
from .meta_graph_export import export_meta_graph
from .ops import constant, group, placeholder
from .variables import GraphKeys, Variable

__all__ = ["Saver", "latest_checkpoint", "get_checkpoint_state", "checkpoint_exists",
           "list_variables", "load_checkpoint", "load_variable", "NewCheckpointReader",
           "init_from_checkpoint", "CheckpointSaverListener", "SaverDef", "write_graph"]

NewCheckpointReader = load_checkpoint


# NOTE: TensorFlow's message (``SaverDef.V2`` is its format enum), which the .meta holds
SaverDef = saver_pb2.SaverDef


def _named_variables(var_list) -> dict[str, Variable]:
    if var_list is None:
        graph = get_default_graph()
        var_list = graph.get_collection(GraphKeys.GLOBAL_VARIABLES) + \
            graph.get_collection("saveable_objects")
    if isinstance(var_list, dict):
        named = dict(var_list)
    else:
        named = {}
        for variable in var_list:
            if not isinstance(variable, Variable):
                raise TypeError(f"Saver's var_list holds {variable!r}, not a tf.Variable")
            name = variable.op.name
            if name in named:
                raise ValueError(f"At least two variables have the same name: {name}")
            named[name] = variable
    for name, variable in named.items():
        if not isinstance(variable, Variable):
            raise TypeError(f"Saver's var_list maps {name!r} to {variable!r}, not a "
                            "tf.Variable")
    return named


class Saver:
    """``tf.train.Saver(var_list=None, max_to_keep=5, keep_checkpoint_every_n_hours=10000,
    sharded=False, allow_empty=False, pad_step_number=False, save_relative_paths=False,
    filename=None, defer_build=False)``."""

    def __init__(self, var_list=None, reshape=False, sharded=False, max_to_keep=5,
                 keep_checkpoint_every_n_hours=10000.0, name=None, restore_sequentially=False,
                 saver_def=None, builder=None, defer_build=False, allow_empty=False,
                 write_version=SaverDef.V2, pad_step_number=False, save_relative_paths=False,
                 filename=None):
        if write_version == SaverDef.V1:
            raise ValueError("tracejit writes only TensorFlow's V2 checkpoints "
                             "(write_version=tf.train.SaverDef.V2)")
        self._var_list = var_list
        self._pad_step_number = pad_step_number
        self._filename = filename
        self._allow_empty = allow_empty
        self._name = name or "save"
        self._history = CheckpointHistory(max_to_keep, keep_checkpoint_every_n_hours)
        self._variables: dict[str, Variable] | None = None
        self._restore_op = None
        self._feeds: dict[str, Tensor] = {}
        self.saver_def = SaverDef(max_to_keep=max_to_keep or 0, version=SaverDef.V2,
                                  keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours)
        if not defer_build:
            self.build()

    def build(self) -> None:
        """Find the variables and make the restore ops (done by the constructor unless
        ``defer_build=True``)."""
        if self._variables is not None:
            return
        variables = _named_variables(self._var_list)
        if not variables and not self._allow_empty:
            raise ValueError("No variables to save")
        self._variables = variables
        if not variables:
            return
        graph = get_default_graph()
        with graph.outside_regions(), graph.name_scope(self._name), \
                graph.control_dependencies(None):
            assigns = []
            for name, variable in sorted(variables.items()):
                fed = placeholder(variable.dtype, variable.shape.as_list(),
                                  name="restore_value")
                self._feeds[name] = fed
                assigns.append(variable.assign(fed, name="restore_assign"))
            self._restore_op = group(*assigns, name="restore_all")
        # NOTE: the restore op's scope tells import_meta_graph which nodes are the saver's
        self.saver_def.restore_op_name = self._restore_op.name

    # ---- the checkpoints it keeps --------------------------------------------------------------

    @property
    def last_checkpoints(self) -> list[str]:
        return self._history.paths

    def set_last_checkpoints(self, last_checkpoints) -> None:
        self._history.recover(list(last_checkpoints))

    def set_last_checkpoints_with_time(self, last_checkpoints_with_time) -> None:
        paths = [p for p, _ in last_checkpoints_with_time]
        self._history.recover(paths, [t for _, t in last_checkpoints_with_time])

    def recover_last_checkpoints(self, checkpoint_paths) -> None:
        """Resume from an earlier run's checkpoints (those that still exist)."""
        self._history.recover([p for p in checkpoint_paths if checkpoint_exists(p)])

    # ---- save and restore ----------------------------------------------------------------------

    def save(self, sess, save_path, global_step=None, latest_filename=None,
             meta_graph_suffix="meta", write_meta_graph=True, write_state=True,
             strip_default_attrs=False, save_debug_info=False):
        """Write the variables' values to ``save_path`` (``save_path-STEP`` with a global
        step) and return that path; the state file ``checkpoint`` beside it names it."""
        self.build()
        save_path = os.fspath(save_path)
        directory = os.path.dirname(save_path)
        if directory and not os.path.isdir(directory):
            raise ValueError(f"Parent directory of {save_path} doesn't exist, can't save.")
        if global_step is not None:
            if not isinstance(global_step, (int, np.integer)):
                global_step = sess.run(global_step)
            step = int(global_step)
            save_path += f"-{step:08d}" if self._pad_step_number else f"-{step}"
        if not self._variables:
            return None
        names = sorted(self._variables)
        values = sess.run([self._variables[n].value() for n in names])
        try:
            save_arrays(save_path, dict(zip(names, values, strict=True)))
        except CheckpointError as exc:
            raise InvalidArgumentError(exc.bare_message, location=exc.location) from None
        if write_meta_graph:
            self.export_meta_graph(f"{save_path}.{meta_graph_suffix}")
        self._history.latest_filename = latest_filename
        self._history.record(save_path, write_state_file=write_state)
        return save_path

    def restore(self, sess, save_path) -> None:
        """Load every variable of this Saver from the checkpoint at ``save_path``.
        Nothing is assigned unless every variable is found with its shape and dtype."""
        self.build()
        if save_path is None:
            raise ValueError("Can't load save_path when it is None.")
        save_path = os.fspath(save_path)
        if not checkpoint_exists(save_path):
            raise ValueError(f"The passed save_path is not a valid checkpoint: {save_path}")
        reader = CheckpointReader(save_path)
        missing = [n for n in sorted(self._variables) if not reader.has_tensor(n)]
        if missing:
            raise NotFoundError(f"Key {missing[0]} not found in checkpoint {save_path}"
                                + (f" (nor {missing[1:]})" if len(missing) > 1 else ""),
                                location=user_location())
        wanted = {name: (tuple(v.shape.as_list()), v.dtype.np_dtype)
                  for name, v in self._variables.items()}
        try:
            values = read_for_restore(reader, wanted)
        except CheckpointError as exc:
            raise InvalidArgumentError(exc.bare_message, location=exc.location) from None
        sess.run(self._restore_op, {self._feeds[n]: values[n] for n in self._variables})

    def export_meta_graph(self, filename=None, collection_list=None, as_text=False,
                          export_scope=None, clear_devices=False,
                          clear_extraneous_savers=False, strip_default_attrs=False,
                          save_debug_info=False):
        """Write the graph, its collections and this Saver's SaverDef as a MetaGraphDef
        (what ``tf.train.import_meta_graph`` reads back)."""
        return export_meta_graph(filename, saver_def=self.as_saver_def(),
                                 collection_list=collection_list, as_text=as_text,
                                 export_scope=export_scope, clear_devices=clear_devices)

    def as_saver_def(self) -> SaverDef:
        return self.saver_def


class CheckpointSaverListener:
    """Called around each save a CheckpointSaverHook makes."""

    def begin(self):
        pass

    def before_save(self, session, global_step_value):
        pass

    def after_save(self, session, global_step_value):
        pass

    def end(self, session, global_step_value):
        pass


def init_from_checkpoint(ckpt_dir_or_file, assignment_map) -> None:
    """Make variables start from a checkpoint: their initializers assign the saved values.
    ``assignment_map`` maps checkpoint names to variables or names (``'old/w': 'new/w'``)
    or scopes (``'old_scope/': 'new_scope/'``, ``'/': 'scope/'`` for the checkpoint's
    root)."""
    reader = CheckpointReader(os.fspath(ckpt_dir_or_file))
    graph = get_default_graph()
    by_name = {v.op.name: v for v in graph.get_collection(GraphKeys.GLOBAL_VARIABLES)}
    pairs: list[tuple[str, Variable]] = []
    items = assignment_map.items() if isinstance(assignment_map, dict) else assignment_map
    for in_checkpoint, current in items:
        if isinstance(current, Variable):
            pairs.append((in_checkpoint, current))
        elif isinstance(current, str) and current in by_name and \
                not in_checkpoint.endswith("/"):
            pairs.append((in_checkpoint, by_name[current]))
        elif isinstance(current, str):
            if not in_checkpoint.endswith("/"):
                raise ValueError(f"Assignment map with scope only name {current} should "
                                 f"map to scope only {in_checkpoint}. Should be 'scope/': "
                                 "'other_scope/'.")
            scope = current[:current.rindex("/")] if "/" in current else ""
            for name in sorted(by_name):
                if scope and not name.startswith(scope + "/"):
                    continue
                rest = name[len(scope):].lstrip("/") if current != "/" else name[len(scope):]
                saved = rest if in_checkpoint == "/" else in_checkpoint + rest
                pairs.append((saved.rstrip("/"), by_name[name]))
        else:
            raise TypeError(f"init_from_checkpoint: cannot map {in_checkpoint!r} to "
                            f"{current!r}")
    for saved, variable in pairs:
        if not reader.has_tensor(saved):
            raise ValueError(f"Tensor {saved} ({variable.op.name}) is not found in "
                             f"{reader.prefix} checkpoint")
        value = reader.get_tensor(saved)
        if tuple(value.shape) != tuple(variable.shape.as_list()):
            raise ValueError(f"Shape of variable {variable.op.name} "
                             f"({variable.shape.as_list()}) doesn't match with shape of "
                             f"tensor {saved} ({list(value.shape)}) from checkpoint reader.")
        with graph.outside_regions(), graph.control_dependencies(None):
            initial = constant(value.astype(variable.dtype.np_dtype),
                               name=f"{variable.op.name}/checkpoint_value")
            variable.initializer = variable.assign(initial).op
            variable.initial_value = initial


def write_graph(graph_or_graph_def, logdir, name, as_text=True) -> str:
    """``tf.train.write_graph``: the graph's GraphDef as ``logdir/name`` (text protobuf by
    default, as ``graph.pbtxt`` beside checkpoints); returns the path."""
    from google.protobuf import text_format

    from .graph_export import export_graph_def
    graph_def = graph_or_graph_def if hasattr(graph_or_graph_def, "SerializeToString") \
        else export_graph_def(graph_or_graph_def)
    logdir = os.fspath(logdir)
    os.makedirs(logdir, exist_ok=True)
    path = os.path.join(logdir, name)
    data = text_format.MessageToString(graph_def).encode() if as_text \
        else graph_def.SerializeToString()
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as file:
        file.write(data)
    os.replace(temporary, path)
    return path
