"""Files as tensors, run as host ops: ``tf.read_file``, ``tf.write_file``,
``tf.matching_files``.

>>> import os, tempfile
>>> import tracejit.compat.v1 as tf
>>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
>>> with tf.Graph().as_default():
...     write = tf.write_file(path, "hello")
...     with tf.Session() as sess:
...         _ = sess.run(write)
...         sess.run(tf.read_file(path)).item()
b'hello'
"""

from __future__ import annotations

import glob
import os

import numpy as np

from .errors import NotFoundError
from .host_ops import host_op
from .parsing import byte_strings, string_input
from .strings import string


def _path(name: bytes) -> str:
    return os.fsdecode(name)


def read_file(filename, name=None):
    """The contents of the files a string tensor names (of its shape)."""
    tensor = string_input(filename, "read_file")

    def compute(session, values):
        names = byte_strings(values[0])
        out = np.empty(names.shape, dtype=object)
        for index, path in np.ndenumerate(names):
            try:
                with open(_path(path), "rb") as file:
                    out[index] = file.read()
            except FileNotFoundError:
                raise NotFoundError(f"{_path(path)}; No such file or directory") from None
        return [out]

    return host_op("ReadFile", compute, [tensor], [(string, tensor.shape.dims)],
                   name=name or "ReadFile").outputs[0]


def write_file(filename, contents, name=None):
    """An op that writes the string ``contents`` to the file ``filename`` (both
    scalars), creating the directories above it."""
    target = string_input(filename, "write_file")
    data = string_input(contents, "write_file")

    def compute(session, values):
        path = _path(byte_strings(values[0]).reshape(-1)[0])
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(byte_strings(values[1]).reshape(-1)[0])
        return []

    return host_op("WriteFile", compute, [target, data], [], name=name or "WriteFile")


def _matches(patterns) -> np.ndarray:
    """The sorted, distinct files matching any of the glob ``patterns`` (bytes)."""
    found = sorted({os.fsencode(match) for p in byte_strings(patterns).reshape(-1)
                    for match in glob.glob(_path(p))})
    out = np.empty(len(found), dtype=object)
    out[:] = found
    return out


def matching_files(pattern, name=None):
    """The sorted names of the files that match the glob pattern(s) (a vector)."""
    tensor = string_input(pattern, "matching_files")
    return host_op("MatchingFiles", lambda session, values: [_matches(values[0])], [tensor],
                   [(string, [None])], name=name or "MatchingFiles").outputs[0]


def match_filenames_once(pattern, name=None):
    """``tf.train.match_filenames_once``: the sorted files matching ``pattern``, matched
    once per session (TensorFlow keeps them in a local variable that
    ``local_variables_initializer`` fills; here the first run that needs them matches,
    and later runs of that session see the same list, as they would the variable's)."""
    tensor = string_input(pattern, "match_filenames_once")
    key = ("match_filenames_once", object())

    def compute(session, values):
        kept = session.resource(key, dict)
        if "files" not in kept:
            kept["files"] = _matches(values[0])
        return [kept["files"]]

    return host_op("MatchingFiles", compute, [tensor], [(string, [None])],
                   name=name or "matching_filenames").outputs[0]
