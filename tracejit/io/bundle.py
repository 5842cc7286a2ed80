"""TensorFlow's tensor bundle (the V2 checkpoint): ``PREFIX.index``, a table mapping
each tensor's name to a BundleEntryProto (dtype, shape, which data file, offset, size,
masked CRC-32C), and ``PREFIX.data-00000-of-00001``, the tensors' little-endian bytes
back to back. The table's empty key holds the BundleHeaderProto.

A tensor saved in slices (a partitioned variable) has an entry under its own name that
lists the slices and holds no data, and one entry per slice under a key that encodes the
name and the slice's extents in TensorFlow's order-preserving code (so they sort before
every plain name and together).

Writing is atomic: both files are written under temporary names, flushed to disk and
renamed, the index last -- a prefix whose index exists is complete."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from . import wire
from .crc import crc32c_of, masked, unmasked
from .table import TableError, TableWriter, read_table


class BundleError(ValueError):
    """A checkpoint that is missing, corrupt, or asked for what it does not hold."""


# TensorFlow's DataType enum (types.proto) for the types a bundle can hold as raw bytes.
TF_DTYPES = {
    1: np.dtype(np.float32), 2: np.dtype(np.float64), 3: np.dtype(np.int32),
    4: np.dtype(np.uint8), 5: np.dtype(np.int16), 6: np.dtype(np.int8),
    8: np.dtype(np.complex64), 9: np.dtype(np.int64), 10: np.dtype(np.bool_),
    14: np.dtype(ml_dtypes.bfloat16), 17: np.dtype(np.uint16), 18: np.dtype(np.complex128),
    19: np.dtype(np.float16), 22: np.dtype(np.uint32), 23: np.dtype(np.uint64),
}
TF_DTYPE_NAMES = {7: "string", 20: "resource", 21: "variant"}
_ENUM_OF = {dtype: code for code, dtype in TF_DTYPES.items()}


def tf_dtype_enum(dtype) -> int:
    try:
        return _ENUM_OF[np.dtype(dtype)]
    except KeyError:
        raise BundleError(f"dtype {np.dtype(dtype)} cannot be saved in a TensorFlow "
                          "checkpoint") from None


def data_file(prefix: str, shard: int = 0, shards: int = 1) -> str:
    return f"{prefix}.data-{shard:05d}-of-{shards:05d}"


def index_file(prefix: str) -> str:
    return f"{prefix}.index"


# ---- the order-preserving code of slice keys -------------------------------------------------

def _num_increasing(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def _signed_num_increasing(value: int) -> bytes:
    """n bytes for |value| < 2**(7n-1): n one bits, a zero bit, then the value; a
    negative value is the complement of the code of its complement."""
    if value < 0:
        return bytes(b ^ 0xFF for b in _signed_num_increasing(~value))
    n = 1
    while value >= 1 << (7 * n - 1):
        n += 1
    return ((((1 << n) - 1) << (7 * n)) | value).to_bytes(n, "big")


def _string_increasing(text: bytes) -> bytes:
    return text.replace(b"\xff", b"\xff\x00").replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def slice_key(name: str, extents: list[tuple[int, int]]) -> bytes:
    """The table key of one slice; ``extents`` are (start, length), length -1 for a whole
    dimension."""
    key = _num_increasing(0) + _string_increasing(name.encode()) + _num_increasing(len(extents))
    for start, length in extents:
        key += _signed_num_increasing(start) + _signed_num_increasing(length)
    return key


# ---- entries ---------------------------------------------------------------------------------

@dataclass
class Entry:
    dtype_enum: int
    shape: tuple[int, ...]
    shard: int = 0
    offset: int = 0
    size: int = 0
    crc: int = 0
    slices: tuple = ()          # of ((start, length), ...) per slice; length -1: whole

    @property
    def dtype(self) -> np.dtype | None:
        return TF_DTYPES.get(self.dtype_enum)

    @property
    def dtype_name(self) -> str:
        dtype = self.dtype
        return str(dtype) if dtype is not None else \
            TF_DTYPE_NAMES.get(self.dtype_enum, f"DataType {self.dtype_enum}")

    def encode(self) -> bytes:
        shape = b"".join(wire.field_bytes(2, wire.field_varint(1, d) if d else b"")
                         for d in self.shape)
        out = wire.field_varint(1, self.dtype_enum) + wire.field_bytes(2, shape)
        for number, value in ((3, self.shard), (4, self.offset), (5, self.size)):
            if value:
                out += wire.field_varint(number, value)
        if not self.slices:
            out += wire.field_fixed32(6, self.crc)
        for extents in self.slices:
            proto = b"".join(
                wire.field_bytes(1, (wire.field_varint(1, start) if start else b"")
                                 + (wire.field_varint(2, length) if length >= 0 else b""))
                for start, length in extents)
            out += wire.field_bytes(7, proto)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        fields = wire.parse(data)
        shape_fields = wire.parse(wire.first(fields, 2, b""))
        if wire.first(shape_fields, 3):
            raise BundleError("an entry of unknown rank")
        shape = tuple(wire.as_int64(wire.first(wire.parse(dim), 1))
                      for dim in shape_fields.get(2, []))
        slices = []
        for proto in fields.get(7, []):
            extents = []
            for extent in wire.parse(proto).get(1, []):
                parts = wire.parse(extent)
                length = wire.as_int64(parts[2][-1]) if 2 in parts else -1
                extents.append((wire.as_int64(wire.first(parts, 1)), length))
            slices.append(tuple(extents))
        return cls(wire.first(fields, 1), shape, wire.first(fields, 3),
                   wire.first(fields, 4), wire.first(fields, 5), wire.first(fields, 6),
                   tuple(slices))


# ---- writing ---------------------------------------------------------------------------------

class BundleWriter:
    """``add(name, array)`` and ``add_slice(...)`` calls, then ``finish()``; ``abort()``
    (or an exception inside ``with``) leaves nothing behind."""

    def __init__(self, prefix: str):
        directory = os.path.dirname(prefix) or "."
        if not os.path.isdir(directory):
            raise BundleError(f"the directory of checkpoint prefix {prefix!r} does not exist")
        self.prefix = prefix
        token = uuid.uuid4().hex[:12]
        self._temporary = {path: f"{path}.tmp-{token}"
                           for path in (data_file(prefix), index_file(prefix))}
        self._data = open(self._temporary[data_file(prefix)], "wb")
        self._offset = 0
        self._entries: dict[bytes, Entry] = {}

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.finish()
        else:
            self.abort()
        return False

    def _write(self, key: bytes, array: np.ndarray) -> Entry:
        if key in self._entries:
            raise BundleError(f"checkpoint key {key!r} added twice")
        if not array.flags.c_contiguous:
            array = array.copy()        # NOTE: not ascontiguousarray: it makes a 0-d array 1-d
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        view = array.reshape(-1).view(np.uint8)       # raw bytes (bfloat16 has no buffer)
        self._data.write(view)
        entry = Entry(tf_dtype_enum(array.dtype), array.shape, 0, self._offset, array.nbytes,
                      masked(crc32c_of(view)))
        self._offset += array.nbytes
        self._entries[key] = entry
        return entry

    def add(self, name: str, array) -> None:
        self._write(name.encode(), np.asarray(array))

    def add_slice(self, name: str, full_shape, start, array) -> None:
        """One slice of ``name`` (of ``full_shape``), whose corner is at ``start``."""
        array = np.asarray(array)
        extents = tuple(zip(tuple(int(s) for s in start), array.shape, strict=True))
        self._write(slice_key(name, list(extents)), array)
        whole = self._entries.setdefault(
            name.encode(), Entry(tf_dtype_enum(array.dtype), tuple(full_shape)))
        whole.slices += (extents,)

    def finish(self) -> None:
        try:
            self._finish()
        except BaseException:
            self.abort()          # a failed save leaves no temporary files behind
            raise

    def _finish(self) -> None:
        self._data.flush()
        os.fsync(self._data.fileno())
        self._data.close()
        temporary_index = self._temporary[index_file(self.prefix)]
        with open(temporary_index, "wb") as file:
            table = TableWriter(file)
            header = wire.field_varint(1, 1) + wire.field_bytes(3, wire.field_varint(1, 1))
            table.add(b"", header)        # num_shards 1, little-endian, producer version 1
            for key in sorted(self._entries):
                table.add(key, self._entries[key].encode())
            table.finish()
            file.flush()
            os.fsync(file.fileno())
        # NOTE: an index left from an earlier save to this prefix goes first, so no index
        # ever describes the new data file before the new index is in place.
        if os.path.exists(index_file(self.prefix)):
            os.remove(index_file(self.prefix))
        os.replace(self._temporary[data_file(self.prefix)], data_file(self.prefix))
        os.replace(temporary_index, index_file(self.prefix))
        sync_directory(os.path.dirname(self.prefix) or ".")

    def abort(self) -> None:
        self._data.close()
        for path in self._temporary.values():
            if os.path.exists(path):
                os.remove(path)


def sync_directory(directory: str) -> None:
    """Make renames in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- reading ---------------------------------------------------------------------------------

class BundleReader:
    """The tensors of the checkpoint at ``prefix``: ``names()``, ``entry(name)``,
    ``get(name)`` (checksummed; slices joined into the whole tensor)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        path = index_file(prefix)
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            raise BundleError(f"no checkpoint at {prefix!r} ({path} does not exist)") from None
        try:
            table = read_table(data, path)
        except (TableError, wire.WireError) as exc:
            raise BundleError(str(exc)) from None
        if not table or table[0][0] != b"":
            raise BundleError(f"{path}: the bundle header is missing")
        header = wire.parse(table[0][1])
        self.shards = wire.first(header, 1, 1)
        self.big_endian = wire.first(header, 2) == 1
        self._entries = {key: value for key, value in table[1:]}

    def names(self) -> list[str]:
        """Every tensor's name, sorted (slice entries are parts of their tensor)."""
        return sorted(key.decode() for key in self._entries if not key.startswith(b"\x00"))

    def __contains__(self, name: str) -> bool:
        return name.encode() in self._entries

    def entry(self, name: str) -> Entry:
        try:
            raw = self._entries[name.encode()]
        except KeyError:
            raise BundleError(f"Key {name} not found in checkpoint {self.prefix}") from None
        return Entry.decode(raw)

    def get(self, name: str) -> np.ndarray:
        entry = self.entry(name)
        if entry.dtype is None:
            raise BundleError(f"{name}: a {entry.dtype_name} tensor; only numeric and bool "
                              "tensors can be read")
        if not entry.slices:
            return self._read(name, entry)
        whole = np.zeros(entry.shape, entry.dtype)
        for extents in entry.slices:
            raw = self._entries.get(slice_key(name, list(extents)))
            if raw is None:
                raise BundleError(f"{name}: slice {extents} is listed but not stored")
            part = Entry.decode(raw)
            region = tuple(slice(start, None if length < 0 else start + length)
                           for start, length in extents)
            whole[region] = self._read(name, part)
        return whole

    def _read(self, name: str, entry: Entry) -> np.ndarray:
        path = data_file(self.prefix, entry.shard, self.shards)
        try:
            with open(path, "rb") as file:
                file.seek(entry.offset)
                data = file.read(entry.size)
        except FileNotFoundError:
            raise BundleError(f"{name}: data file {path} does not exist") from None
        if len(data) != entry.size:
            raise BundleError(f"{name}: {path} is truncated")
        if crc32c_of(data) != unmasked(entry.crc):
            raise BundleError(f"{name}: checksum mismatch in {path} (corrupt checkpoint)")
        dtype = entry.dtype.newbyteorder(">") if self.big_endian else entry.dtype
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise BundleError(f"{name}: {entry.size} bytes do not hold a {entry.dtype_name} "
                              f"tensor of shape {list(entry.shape)}")
        return np.frombuffer(data, dtype).reshape(entry.shape).astype(entry.dtype)
