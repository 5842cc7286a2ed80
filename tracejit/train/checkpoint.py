"""``tj.train.Checkpoint`` and ``CheckpointManager``: save and restore any set of
Variables (and optimizers' slots) from ``@jit`` code, in TensorFlow's checkpoint format.

>>> import os, tempfile, numpy as np, tracejit as tj
>>> w = tj.Variable(np.ones(3, np.float32), name="w")
>>> ckpt = tj.train.Checkpoint(w=w)
>>> path = ckpt.save(os.path.join(tempfile.mkdtemp(), "ckpt"))
>>> w.load(np.zeros(3, np.float32))
>>> _ = ckpt.restore(path)
>>> w.numpy().tolist()
[1.0, 1.0, 1.0]

Entries are named by where they were given: ``Checkpoint(w=v)`` saves ``v`` as ``w``;
a list, tuple or dict of Variables as ``key/<variable name>`` (or ``key/<dict key>``);
an optimizer's variables as ``key/<slot name>`` (``key/w/Adam``). A checkpoint is
plain TF1 name-based, so ``tf.compat.v1.train.Saver`` and ``tf.train.load_checkpoint``
read it. ``save_counter`` numbers the saves and is saved too.
"""

from __future__ import annotations

import os

import numpy as np

from ..trace.variables import Variable
from .checkpoint_files import (
    CheckpointError,
    CheckpointHistory,
    CheckpointReader,
    latest_checkpoint,
    read_for_restore,
    save_arrays,
)
from .optimizer import Optimizer

SAVE_COUNTER = "save_counter"


class Checkpoint:
    """``Checkpoint(**objects)``: ``save(prefix)`` (numbered), ``write(path)`` (as named),
    ``restore(path)``; objects are Variables, optimizers, and lists or dicts of
    Variables."""

    def __init__(self, **objects):
        if not objects:
            raise ValueError("Checkpoint needs at least one object to track, e.g. "
                             "Checkpoint(weights=w)")
        for key, value in objects.items():
            _check_trackable(key, value)
        self._objects = objects
        self.save_counter = 0

    def _variables(self) -> dict[str, Variable]:
        named: dict[str, Variable] = {}
        for key, value in self._objects.items():
            if isinstance(value, Variable):
                named[key] = value
            elif isinstance(value, Optimizer):
                named.update({f"{key}/{v.name}": v for v in value.variables()})
            elif isinstance(value, dict):
                named.update({f"{key}/{k}": v for k, v in value.items()})
            else:
                named.update({f"{key}/{v.name}": v for v in value})
        return named

    def write(self, file_prefix: str) -> str:
        """Save to exactly ``file_prefix`` (no number); returns it."""
        file_prefix = os.fspath(file_prefix)
        arrays = {name: v.numpy() for name, v in self._variables().items()}
        arrays[SAVE_COUNTER] = np.int64(self.save_counter)
        return save_arrays(file_prefix, arrays)

    def save(self, file_prefix: str) -> str:
        """Save to ``file_prefix-N`` (N counts this object's saves, from 1) and name it
        the latest checkpoint in its directory's state file."""
        self.save_counter += 1
        path = self.write(f"{os.fspath(file_prefix)}-{self.save_counter}")
        # NOTE: a bare save keeps every checkpoint (CheckpointManager deletes old ones)
        CheckpointHistory(max_to_keep=None).resume(os.path.dirname(path) or ".").record(path)
        return path

    def restore(self, save_path: str) -> Checkpoint:
        """Load every tracked Variable from ``save_path`` (a prefix or a directory: its
        latest). All shapes and dtypes are checked first: a mismatch changes nothing.
        Optimizer variables not made yet (before the first step) take their values when
        they are made."""
        reader = CheckpointReader(save_path)
        variables = self._variables()
        wanted = {name: (tuple(v.shape), v.dtype.np_dtype) for name, v in variables.items()}
        values = read_for_restore(reader, wanted)
        for key, value in self._objects.items():
            if isinstance(value, Optimizer):
                prefix = f"{key}/"
                value.restore_when_created(
                    {name[len(prefix):]: reader.get_tensor(name) for name in reader.names()
                     if name.startswith(prefix) and name not in variables})
        for name, variable in variables.items():
            variable.load(values[name])
        if reader.has_tensor(SAVE_COUNTER):
            self.save_counter = int(reader.get_tensor(SAVE_COUNTER))
        return self

    read = restore


def _check_trackable(key: str, value) -> None:
    if isinstance(value, (Variable, Optimizer)):
        return
    items = value.values() if isinstance(value, dict) else value \
        if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(v, Variable) for v in items):
        raise TypeError(f"Checkpoint({key}=...): expected a tracejit Variable, an optimizer, "
                        f"or a list or dict of Variables, got {type(value).__name__}")




class CheckpointManager:
    """``CheckpointManager(checkpoint, directory, max_to_keep=5, checkpoint_name='ckpt',
    keep_checkpoint_every_n_hours=None)``: numbered saves in ``directory``, the oldest
    deleted past ``max_to_keep``; ``latest_checkpoint``, ``checkpoints``,
    ``restore_or_initialize()``."""

    def __init__(self, checkpoint: Checkpoint, directory: str, max_to_keep: int | None = 5,
                 checkpoint_name: str = "ckpt", keep_checkpoint_every_n_hours=None):
        if not isinstance(checkpoint, Checkpoint):
            raise TypeError(f"CheckpointManager needs a tj.train.Checkpoint, got "
                            f"{type(checkpoint).__name__}")
        self.checkpoint = checkpoint
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self._prefix = os.path.join(self.directory, checkpoint_name)
        self._history = CheckpointHistory(max_to_keep, keep_checkpoint_every_n_hours) \
            .resume(self.directory)

    @property
    def latest_checkpoint(self) -> str | None:
        return latest_checkpoint(self.directory)

    @property
    def checkpoints(self) -> list[str]:
        return self._history.paths

    def save(self, checkpoint_number: int | None = None) -> str:
        if checkpoint_number is None:
            self.checkpoint.save_counter += 1
            number = self.checkpoint.save_counter
        else:
            number = int(checkpoint_number)
        path = self.checkpoint.write(f"{self._prefix}-{number}")
        self._history.record(path)
        return path

    def restore_or_initialize(self) -> str | None:
        """Restore the latest checkpoint if there is one (and return its path); else leave
        the variables as they are and return None."""
        latest = self.latest_checkpoint
        if latest is not None:
            self.checkpoint.restore(latest)
        return latest


__all__ = ["Checkpoint", "CheckpointManager", "CheckpointError"]
