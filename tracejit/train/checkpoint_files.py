"""Checkpoints on disk, for both front ends: saving named arrays atomically, the
``checkpoint`` state file naming the latest ones, keeping the last few, and reading a
checkpoint back (``latest_checkpoint``, ``list_variables``, ``load_checkpoint``).

The format is TensorFlow's own (tracejit/io/bundle.py), so checkpoints move both ways
between tracejit and TensorFlow. The state file is the text protobuf TensorFlow writes:
``model_checkpoint_path: "model.ckpt-100"`` then one ``all_model_checkpoint_paths`` line
per kept checkpoint; paths that are not absolute are relative to its directory.
"""

from __future__ import annotations

import glob
import os
import re
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ..io.bundle import BundleError, BundleReader, BundleWriter, index_file, sync_directory
from ..ir import dtypes as dt
from ..ir.errors import TracejitError
from ..ir.source import user_location

STATE_FILE = "checkpoint"


class CheckpointError(TracejitError, ValueError):
    """A checkpoint that cannot be found, read, or restored into these variables; it
    names the user's line (the first frame outside tracejit) where it was raised."""

    def __init__(self, message: str, *, location=None):
        super().__init__(message, location=location or user_location())


# ---- the state file --------------------------------------------------------------------------

@dataclass
class CheckpointState:
    """``tf.train.get_checkpoint_state``'s result: paths as a reader can open them."""
    model_checkpoint_path: str = ""
    all_model_checkpoint_paths: list[str] = field(default_factory=list)
    all_model_checkpoint_timestamps: list[float] = field(default_factory=list)
    last_preserved_timestamp: float = 0.0


_STATE_LINE = re.compile(r'^\s*(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|([-+0-9.eE]+))\s*$')


def _unescape(text: str) -> str:
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def read_state(directory: str, latest_filename: str | None = None) -> CheckpointState | None:
    """The state file in ``directory``, or None when there is none. Relative paths are
    joined to ``directory``."""
    path = os.path.join(directory, latest_filename or STATE_FILE)
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    state = CheckpointState()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _STATE_LINE.match(line)
        if match is None:
            raise CheckpointError(f"{path}:{number}: not a checkpoint state line: {line!r}")
        key, text, number_text = match.groups()
        if key == "model_checkpoint_path":
            state.model_checkpoint_path = _unescape(text or "")
        elif key == "all_model_checkpoint_paths":
            state.all_model_checkpoint_paths.append(_unescape(text or ""))
        elif key == "all_model_checkpoint_timestamps":
            state.all_model_checkpoint_timestamps.append(float(number_text))
        elif key == "last_preserved_timestamp":
            state.last_preserved_timestamp = float(number_text)
    state.model_checkpoint_path = _joined(directory, state.model_checkpoint_path)
    state.all_model_checkpoint_paths = [_joined(directory, p)
                                        for p in state.all_model_checkpoint_paths]
    return state


def get_checkpoint_state(checkpoint_dir: str, latest_filename: str | None = None
                         ) -> CheckpointState | None:
    """``tf.train.get_checkpoint_state``: the state file's contents, or None."""
    return read_state(os.fspath(checkpoint_dir), latest_filename)


def _joined(directory: str, path: str) -> str:
    return path if not path or os.path.isabs(path) else os.path.join(directory, path)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_state(directory: str, latest: str, kept: list[str], timestamps: list[float],
                last_preserved: float, latest_filename: str | None = None) -> None:
    """Replace the state file atomically: a reader sees the old file or the new one."""
    def written(path: str) -> str:
        # NOTE: a checkpoint saved under a relative path is named relative to the state
        # file, as TensorFlow does, so the directory can be moved
        return path if os.path.isabs(path) else os.path.relpath(path, directory or ".")
    lines = [f"model_checkpoint_path: {_quoted(written(latest))}"]
    lines += [f"all_model_checkpoint_paths: {_quoted(written(p))}" for p in kept]
    lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in timestamps]
    lines.append(f"last_preserved_timestamp: {last_preserved!r}")
    path = os.path.join(directory or ".", latest_filename or STATE_FILE)
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    sync_directory(directory or ".")


def checkpoint_exists(prefix: str) -> bool:
    return bool(prefix) and os.path.exists(index_file(prefix))


def latest_checkpoint(checkpoint_dir: str, latest_filename: str | None = None) -> str | None:
    """The prefix of the newest complete checkpoint the state file in ``checkpoint_dir``
    names, or None."""
    state = read_state(checkpoint_dir, latest_filename)
    if state is None or not checkpoint_exists(state.model_checkpoint_path):
        return None
    return state.model_checkpoint_path


def resolve(ckpt_dir_or_file: str) -> str:
    """A checkpoint prefix from a directory (its latest checkpoint) or a prefix."""
    if ckpt_dir_or_file is None:
        raise CheckpointError("a checkpoint path is required, got None")
    path = os.fspath(ckpt_dir_or_file)
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"Couldn't find 'checkpoint' file or checkpoints in given "
                                  f"directory {path}")
        return latest
    if not checkpoint_exists(path):
        raise CheckpointError(f"Unsuccessful TensorSliceReader constructor: Failed to find "
                              f"any matching files for {path} (no {index_file(path)})")
    return path


def remove_checkpoint(prefix: str) -> None:
    """Delete a checkpoint's files (index first: from then on it does not exist)."""
    for path in [index_file(prefix), *glob.glob(glob.escape(prefix) + ".data-*-of-*"),
                 prefix + ".meta"]:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


class CheckpointHistory:
    """The checkpoints a saver keeps: the last ``max_to_keep`` (None or 0: all); with
    ``keep_every_n_hours``, a checkpoint falling out of that window is kept for ever when
    it is newer than the next keep time, which then moves on by N hours (TensorFlow's
    rule). The state file lists the last ones."""

    def __init__(self, max_to_keep: int | None = 5, keep_every_n_hours: float | None = None,
                 latest_filename: str | None = None):
        self.max_to_keep = max_to_keep
        self.keep_every_s = None if keep_every_n_hours is None else keep_every_n_hours * 3600
        self.latest_filename = latest_filename
        self.kept: list[tuple[str, float]] = []
        self.next_keep_time = time.time() + (self.keep_every_s or 0)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.kept]

    def resume(self, directory: str) -> CheckpointHistory:
        """Go on from the checkpoints the state file in ``directory`` lists (an earlier
        run's); returns self."""
        state = read_state(directory, self.latest_filename)
        if state is not None:
            self.recover(state.all_model_checkpoint_paths,
                         state.all_model_checkpoint_timestamps)
        return self

    def recover(self, paths, timestamps=None) -> None:
        """Resume from checkpoints an earlier run kept (the state file's list)."""
        now = time.time()
        stamps = list(timestamps or [])
        self.kept = [(p, stamps[i] if i < len(stamps) else now) for i, p in enumerate(paths)]

    def record(self, path: str, write_state_file: bool = True) -> None:
        now = time.time()
        self.kept = [(p, t) for p, t in self.kept if p != path] + [(path, now)]
        if self.max_to_keep:
            while len(self.kept) > self.max_to_keep:
                oldest, stamp = self.kept.pop(0)
                if self.keep_every_s is not None and stamp > self.next_keep_time:
                    self.next_keep_time += self.keep_every_s     # preserved: not deleted
                    continue
                remove_checkpoint(oldest)
        if write_state_file:
            last_preserved = self.next_keep_time - (self.keep_every_s or 0)
            write_state(os.path.dirname(path), path, self.paths,
                        [t for _, t in self.kept], last_preserved, self.latest_filename)


# ---- saving and reading named arrays ---------------------------------------------------------

def save_arrays(prefix: str, arrays: dict[str, np.ndarray]) -> str:
    """Write ``{name: array}`` as a checkpoint at ``prefix``, atomically."""
    try:
        with BundleWriter(prefix) as writer:
            for name in sorted(arrays):
                writer.add(name, arrays[name])
    except BundleError as exc:
        raise CheckpointError(str(exc)) from None
    return prefix


class CheckpointReader:
    """``tf.train.load_checkpoint(path)``: the tensors of one checkpoint by name."""

    def __init__(self, ckpt_dir_or_file: str):
        self.prefix = resolve(ckpt_dir_or_file)
        try:
            self._bundle = BundleReader(self.prefix)
        except BundleError as exc:
            raise CheckpointError(str(exc)) from None

    def names(self) -> list[str]:
        return self._bundle.names()

    def has_tensor(self, name: str) -> bool:
        return name in self._bundle

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entry(name).shape

    def numpy_dtype(self, name: str):
        return self._entry(name).dtype

    def _entry(self, name: str):
        try:
            return self._bundle.entry(name)
        except BundleError as exc:
            raise CheckpointError(str(exc)) from None

    def get_tensor(self, name: str) -> np.ndarray:
        try:
            return self._bundle.get(name)
        except BundleError as exc:
            raise CheckpointError(str(exc)) from None

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {name: list(self.shape(name)) for name in self.names()}

    def get_variable_to_dtype_map(self) -> dict:
        found = {}
        for name in self.names():
            dtype = self.numpy_dtype(name)
            try:
                found[name] = dt.as_dtype(dtype)
            except (TypeError, ValueError, KeyError):
                found[name] = dtype
        return found

    def debug_string(self) -> bytes:
        return "".join(f"{n} ({self._entry(n).dtype_name}) {list(self.shape(n))}\n"
                       for n in self.names()).encode()


def list_variables(ckpt_dir_or_file: str) -> list[tuple[str, list[int]]]:
    reader = CheckpointReader(ckpt_dir_or_file)
    return [(name, list(reader.shape(name))) for name in reader.names()]


def load_checkpoint(ckpt_dir_or_file: str) -> CheckpointReader:
    return CheckpointReader(ckpt_dir_or_file)


def load_variable(ckpt_dir_or_file: str, name: str) -> np.ndarray:
    return CheckpointReader(ckpt_dir_or_file).get_tensor(name.split(":")[0])


def read_for_restore(reader: CheckpointReader, wanted: dict[str, tuple[tuple, np.dtype]]
                     ) -> dict[str, np.ndarray]:
    """The arrays for ``{name: (shape, dtype)}``, after checking every one: a missing name
    or a shape or dtype that differs fails naming each variable and both sides, before
    anything is read (so a failed restore changes nothing)."""
    problems = []
    for name, (shape, dtype) in sorted(wanted.items()):
        if not reader.has_tensor(name):
            problems.append(f"Key {name} not found in checkpoint")
            continue
        saved_shape, saved_dtype = reader.shape(name), reader.numpy_dtype(name)
        if tuple(saved_shape) != tuple(shape):
            problems.append(f"{name}: the checkpoint's shape {list(saved_shape)} does not "
                            f"match the variable's shape {list(shape)}")
        elif saved_dtype != np.dtype(dtype):
            problems.append(f"{name}: the checkpoint's dtype {saved_dtype} does not match the "
                            f"variable's dtype {np.dtype(dtype)}")
    if problems:
        raise CheckpointError(f"cannot restore from {reader.prefix}: " + "; ".join(problems))
    return {name: reader.get_tensor(name) for name in wanted}
