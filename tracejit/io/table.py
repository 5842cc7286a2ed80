"""The sorted string table a TensorFlow checkpoint's ``.index`` file is (LevelDB's
table format, uncompressed): data blocks of prefix-compressed key/value entries with
restart points, an index block pointing at them, an empty meta-index block and a
48-byte footer ending in the table magic. Every block carries a type byte and a masked
CRC-32C of its contents.

A checkpoint's index holds one entry per tensor: it is read whole."""

from __future__ import annotations

import struct

from .crc import masked_crc32c
from .wire import WireError, read_varint, varint

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48            # two block handles padded to 40 bytes, then the magic
BLOCK_TRAILER_SIZE = 5      # type byte + masked CRC
NO_COMPRESSION = 0


class TableError(ValueError):
    """A table file that is truncated, corrupt or not a table."""


class BlockBuilder:
    """Entries whose keys share a prefix with the previous key store only the rest; every
    ``restart_interval`` entries one stores its whole key, so a reader can start there."""

    def __init__(self, restart_interval: int):
        self.restart_interval = restart_interval
        self.reset()

    def reset(self) -> None:
        self.buffer = bytearray()
        self.restarts = [0]
        self.since_restart = 0
        self.last_key = b""

    @property
    def empty(self) -> bool:
        return not self.buffer

    def size_estimate(self) -> int:
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.since_restart < self.restart_interval:
            limit = min(len(key), len(self.last_key))
            while shared < limit and key[shared] == self.last_key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buffer))
            self.since_restart = 0
        self.buffer += varint(shared) + varint(len(key) - shared) + varint(len(value))
        self.buffer += key[shared:] + value
        self.last_key = key
        self.since_restart += 1

    def finish(self) -> bytes:
        tail = b"".join(struct.pack("<I", r) for r in self.restarts)
        return bytes(self.buffer) + tail + struct.pack("<I", len(self.restarts))


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    """A short key k with start <= k < limit (the index entry of a finished block)."""
    common = 0
    while common < min(len(start), len(limit)) and start[common] == limit[common]:
        common += 1
    if common >= min(len(start), len(limit)):
        return start                      # one is a prefix of the other
    byte = start[common]
    if byte < 0xFF and byte + 1 < limit[common]:
        return start[:common] + bytes([byte + 1])
    return start


def short_successor(key: bytes) -> bytes:
    """A short key >= ``key`` (the index entry of the last block)."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


class TableWriter:
    """Writes ``add(key, value)`` calls, keys strictly increasing, to a binary file."""

    def __init__(self, file, block_size: int = 256 * 1024, restart_interval: int = 16):
        self.file = file
        self.offset = 0
        self.block_size = block_size
        self.data = BlockBuilder(restart_interval)
        self.index = BlockBuilder(1)
        self.pending_handle: bytes | None = None     # a finished block awaiting its key
        self.last_key: bytes | None = None

    def add(self, key: bytes, value: bytes) -> None:
        if self.last_key is not None and key <= self.last_key:
            raise TableError(f"table keys must increase: {key!r} after {self.last_key!r}")
        if self.pending_handle is not None:
            self.index.add(shortest_separator(self.last_key, key), self.pending_handle)
            self.pending_handle = None
        self.data.add(key, value)
        self.last_key = key
        if self.data.size_estimate() >= self.block_size:
            self._flush()

    def _flush(self) -> None:
        self.pending_handle = self._write_block(self.data.finish())
        self.data.reset()

    def _write_block(self, contents: bytes) -> bytes:
        trailer = bytes([NO_COMPRESSION])
        crc = masked_crc32c(contents + trailer)
        self.file.write(contents + trailer + struct.pack("<I", crc))
        handle = varint(self.offset) + varint(len(contents))
        self.offset += len(contents) + BLOCK_TRAILER_SIZE
        return handle

    def finish(self) -> None:
        if not self.data.empty:
            self._flush()
        meta_handle = self._write_block(BlockBuilder(16).finish())
        if self.pending_handle is not None:
            self.index.add(short_successor(self.last_key), self.pending_handle)
        index_handle = self._write_block(self.index.finish())
        handles = meta_handle + index_handle
        self.file.write(handles + bytes(40 - len(handles)) + struct.pack("<Q", TABLE_MAGIC))


def _block(data: bytes, handle: bytes, what: str) -> bytes:
    offset, pos = read_varint(handle, 0)
    size, _ = read_varint(handle, pos)
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(data):
        raise TableError(f"{what}: a block runs past the end of the file (truncated?)")
    kind = data[end]
    (stored,) = struct.unpack_from("<I", data, end + 1)
    if masked_crc32c(data[offset:end + 1]) != stored:
        raise TableError(f"{what}: a block's checksum does not match (corrupt file)")
    if kind != NO_COMPRESSION:
        raise TableError(f"{what}: compressed blocks (type {kind}) are not supported")
    return data[offset:end]


def _entries(block: bytes, what: str):
    if len(block) < 4:
        raise TableError(f"{what}: a block too short to hold its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise TableError(f"{what}: a block's restart array is larger than the block")
    pos, key = 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        fresh, pos = read_varint(block, pos)
        size, pos = read_varint(block, pos)
        if shared > len(key) or pos + fresh + size > end:
            raise TableError(f"{what}: a malformed block entry")
        key = key[:shared] + block[pos:pos + fresh]
        pos += fresh
        yield key, block[pos:pos + size]
        pos += size


def read_table(data: bytes, what: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a table held in ``data``, in key order; ``what`` (the file's
    name) goes into the errors."""
    if len(data) < FOOTER_SIZE:
        raise TableError(f"{what}: {len(data)} bytes is too short for a table")
    (magic,) = struct.unpack_from("<Q", data, len(data) - 8)
    if magic != TABLE_MAGIC:
        raise TableError(f"{what}: not a table (bad magic number)")
    footer = data[len(data) - FOOTER_SIZE:]
    try:
        _, pos = read_varint(footer, 0)
        _, pos = read_varint(footer, pos)          # the meta-index handle: unused
        index_handle = footer[pos:40]
        entries = []
        for _, handle in _entries(_block(data, index_handle, what), what):
            entries.extend(_entries(_block(data, handle, what), what))
    except WireError as exc:
        raise TableError(f"{what}: {exc}") from None
    return entries
