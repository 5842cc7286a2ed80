"""TFRecord files: TensorFlow's format for a sequence of binary records (most often
serialized ``tf.train.Example`` messages).

Each record is framed as::

    uint64 length            (little-endian)
    uint32 masked CRC-32C of the 8 length bytes
    byte   data[length]
    uint32 masked CRC-32C of the data

A file may be compressed as a whole, as TensorFlow's ``TFRecordOptions`` has it: ``"ZLIB"``
(a zlib stream) or ``"GZIP"`` (a gzip member); offsets in errors and keys are offsets in
the uncompressed stream, as TensorFlow counts them.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "a.tfrecord")
>>> with RecordWriter(path) as writer:
...     writer.write(b"first")
...     writer.write(b"second")
>>> list(read_records(path))
[b'first', b'second']
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from .crc import masked_crc32c

NONE, ZLIB, GZIP = "", "ZLIB", "GZIP"
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_CHUNK = 1 << 16
# NOTE: the window bits zlib takes for each format (a zlib header, a gzip header)
_WBITS = {ZLIB: zlib.MAX_WBITS, GZIP: zlib.MAX_WBITS | 16}


class RecordError(ValueError):
    """A record file that cannot be read: truncated, or a checksum that does not match.
    ``path`` and ``offset`` (of the record's start, uncompressed) say where."""

    def __init__(self, message: str, path: str, offset: int):
        super().__init__(message)
        self.path = path
        self.offset = offset


def compression_name(compression) -> str:
    """``""``, ``"ZLIB"`` or ``"GZIP"`` from any of TensorFlow's spellings: None, a name
    (any case), ``TFRecordCompressionType``'s 0/1/2, or an options object with a
    ``compression_type``."""
    if hasattr(compression, "compression_type"):
        compression = compression.compression_type
    if compression is None:
        return NONE
    if isinstance(compression, int) and not isinstance(compression, bool):
        names = {0: NONE, 1: ZLIB, 2: GZIP}
        if compression in names:
            return names[compression]
    elif isinstance(compression, (str, bytes)):
        name = compression.decode() if isinstance(compression, bytes) else compression
        if name.upper() in (NONE, ZLIB, GZIP):
            return name.upper()
    raise ValueError(f"compression type {compression!r} is not one of '', 'ZLIB', 'GZIP' "
                     "(or TFRecordCompressionType.NONE/ZLIB/GZIP)")


def encode_record(data: bytes) -> bytes:
    """One record's bytes in the file: the framed ``data``."""
    data = bytes(data)
    length = struct.pack("<Q", len(data))
    return length + _FOOTER.pack(masked_crc32c(length)) + data + \
        _FOOTER.pack(masked_crc32c(data))


class RecordWriter:
    """Writes records to ``path`` (created or truncated), compressed as ``compression``
    says; ``level`` is zlib's compression level (default: zlib's)."""

    def __init__(self, path, compression=None, level: int | None = None):
        self.path = str(path)
        self.compression = compression_name(compression)
        self._file = open(self.path, "wb")  # noqa: SIM115 -- closed by close()
        self._deflate = None
        if self.compression:
            level = zlib.Z_DEFAULT_COMPRESSION if level is None or level < 0 else level
            self._deflate = zlib.compressobj(level, zlib.DEFLATED,
                                             _WBITS[self.compression])

    def write(self, record: bytes) -> None:
        if self._file is None:
            raise ValueError(f"write to the closed record file {self.path!r}")
        if isinstance(record, str):
            record = record.encode()
        framed = encode_record(record)
        self._file.write(self._deflate.compress(framed) if self._deflate else framed)

    def flush(self) -> None:
        """Makes what was written so far readable from the file."""
        if self._file is None:
            return
        if self._deflate is not None:
            self._file.write(self._deflate.flush(zlib.Z_SYNC_FLUSH))
        self._file.flush()

    def close(self) -> None:
        if self._file is None:
            return
        if self._deflate is not None:
            self._file.write(self._deflate.flush(zlib.Z_FINISH))
        self._file.close()
        self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Inflated:
    """A compressed file read as its uncompressed bytes (``read(n)`` as a file's)."""

    def __init__(self, file, wbits: int):
        self._file = file
        self._wbits = wbits
        self._inflate = zlib.decompressobj(wbits)
        self._buffer = bytearray()

    def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            chunk = self._inflate.unconsumed_tail or self._file.read(_CHUNK)
            if not chunk:
                return
            self._buffer += self._inflate.decompress(chunk, _CHUNK)
            if self._inflate.eof:
                rest = self._inflate.unused_data
                # NOTE: concatenated gzip members read as one stream, as gzip does
                self._inflate = zlib.decompressobj(self._wbits)
                if rest:
                    self._buffer += self._inflate.decompress(rest, _CHUNK)

    def read(self, size: int) -> bytes:
        self._fill(size)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def close(self) -> None:
        self._file.close()


def open_stream(path, compression=None):
    """``path`` opened for reading as its uncompressed bytes (``read(n)``, ``close()``);
    ``compression`` as :func:`compression_name` takes it."""
    compression = compression_name(compression)
    file = open(path, "rb")  # noqa: SIM115 -- the caller closes it
    return _Inflated(file, _WBITS[compression]) if compression else file


class RecordReader:
    """Reads the records of ``path`` one at a time, keeping its place: ``read()`` gives
    the next record, or None at the end; ``offset`` is where the next one starts."""

    def __init__(self, path, compression=None):
        self.path = str(path)
        self.compression = compression_name(compression)
        self._stream = open_stream(self.path, self.compression)
        self.offset = 0

    def _fail(self, what: str, offset: int):
        raise RecordError(f"{what} at offset {offset} of the record file {self.path!r}",
                          self.path, offset)

    def read(self) -> bytes | None:
        if self._stream is None:
            raise ValueError(f"read from the closed record file {self.path!r}")
        start = self.offset
        try:
            header = self._stream.read(_HEADER.size)
        except zlib.error as exc:
            self._fail(f"corrupted {self.compression} data ({exc})", start)
        if not header:
            return None
        if len(header) < _HEADER.size:
            self._fail("truncated record (an incomplete length)", start)
        length, length_crc = _HEADER.unpack(header)
        if masked_crc32c(header[:8]) != length_crc:
            self._fail("corrupted record (the length's checksum does not match)", start)
        try:
            body = self._stream.read(length + _FOOTER.size)
        except zlib.error as exc:
            self._fail(f"corrupted {self.compression} data ({exc})", start)
        if len(body) < length + _FOOTER.size:
            self._fail(f"truncated record (the file ends before its {length} bytes and "
                       "checksum)", start)
        data = body[:length]
        if masked_crc32c(data) != _FOOTER.unpack_from(body, length)[0]:
            self._fail("corrupted record (the data's checksum does not match)", start)
        self.offset = start + _HEADER.size + length + _FOOTER.size
        return data

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def __iter__(self) -> Iterator[bytes]:
        while (record := self.read()) is not None:
            yield record

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_records(path, compression=None) -> Iterator[bytes]:
    """The records of ``path``, in order; raises :class:`RecordError` (naming the file
    and the record's offset) at a corrupt or truncated one."""
    with RecordReader(path, compression) as reader:
        yield from reader
