"""``cache(filename)``: a dataset's elements kept in a file after the first complete pass.

The first iteration that reaches the end of the input writes every element to
``<filename>.tjcache`` (through a temporary file renamed at the end, so a pass stopped
early, or a crash, leaves no partial cache behind); every later iteration -- in this
process or in the next run of the program -- reads the file instead of computing the
input again (TensorFlow's reason for it: decoding and preprocessing done once).

The file is a TFRecord stream (io/records.py, CRC-checked). Its first record describes
the elements (structure and dtypes), and a file written by a dataset with other elements
is an error naming the file, not elements of the wrong kind. Each element is one record:
a JSON header (each component's dtype and shape, and the lengths of byte strings) and
the components' raw bytes. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import uuid

import numpy as np

from ..io.records import RecordReader, RecordWriter
from . import structure as st

__all__ = ["FileCache", "CACHE_SUFFIX"]

CACHE_SUFFIX = ".tjcache"
_FORMAT = "tracejit dataset cache 1"


class FileCache:
    """The input's elements, read from ``filename`` + CACHE_SUFFIX once a complete pass
    wrote it."""

    def __init__(self, input, filename: str):
        self.input = input
        self.path = os.fspath(filename) + CACHE_SUFFIX

    @property
    def spec(self):
        return self.input.spec

    def _description(self) -> dict:
        treedef, leaves = st.flatten(self.input.spec)
        return {"format": _FORMAT, "structure": st.describe(treedef),
                "dtypes": [np.dtype(leaf.dtype).str for leaf in leaves]}

    def elements(self):
        if os.path.exists(self.path):
            yield from self._read()
            return
        folder = os.path.dirname(self.path)
        if folder and not os.path.isdir(folder):
            raise FileNotFoundError(f"cache({self.path[:-len(CACHE_SUFFIX)]!r}): the folder "
                                    f"{folder!r} does not exist")
        partial = f"{self.path}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        complete = False
        try:
            with RecordWriter(partial) as writer:
                writer.write(json.dumps(self._description()).encode())
                for element in self.input.elements():
                    writer.write(_encode(st.flatten(element)[1]))
                    yield element
            complete = True
        finally:
            if complete:
                os.replace(partial, self.path)
            elif os.path.exists(partial):
                os.remove(partial)

    def _read(self):
        treedef = st.flatten(self.input.spec)[0]
        with RecordReader(self.path) as reader:
            first = reader.read()
            try:
                found = json.loads(first.decode()) if first is not None else None
            except (UnicodeDecodeError, ValueError):
                found = None
            want = self._description()
            if found != want:
                raise ValueError(
                    f"cache file {self.path!r} holds other elements than this dataset's "
                    f"({'not a tracejit cache' if not isinstance(found, dict) else found}; "
                    f"this dataset: {want}): delete it, or cache to another file name")
            for record in reader:
                yield st.unflatten(treedef, _decode(record, self.path))


def _encode(leaves) -> bytes:
    header, parts = [], []
    for leaf in leaves:
        array = np.asarray(leaf)
        if array.dtype.kind == "O":
            items = [bytes(v) if not isinstance(v, str) else v.encode()
                     for v in array.reshape(-1)]
            header.append(["bytes", list(array.shape), [len(v) for v in items]])
            parts.extend(items)
        else:
            header.append([array.dtype.str, list(array.shape)])
            parts.append(np.ascontiguousarray(array).tobytes())
    return json.dumps(header).encode() + b"\n" + b"".join(parts)


def _decode(record: bytes, path: str) -> list:
    split = record.index(b"\n")
    header = json.loads(record[:split].decode())
    data = memoryview(record)[split + 1:]
    at, leaves = 0, []
    for entry in header:
        if entry[0] == "bytes":
            _, shape, lengths = entry
            items = []
            for length in lengths:
                items.append(bytes(data[at:at + length]))
                at += length
            leaves.append(np.array(items, dtype=object).reshape(shape))
        else:
            dtype, shape = np.dtype(entry[0]), entry[1]
            size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
            leaves.append(np.frombuffer(data[at:at + size], dtype).reshape(shape).copy())
            at += size
    if at != len(data):
        raise ValueError(f"cache file {path!r}: a record's size does not match its header")
    return leaves
