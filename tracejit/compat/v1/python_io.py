"""``tf.python_io``: TFRecord files from Python, outside the graph.

>>> import os, tempfile
>>> import tracejit.compat.v1 as tf
>>> path = os.path.join(tempfile.mkdtemp(), "data.tfrecord.gz")
>>> options = tf.python_io.TFRecordOptions(tf.python_io.TFRecordCompressionType.GZIP)
>>> with tf.python_io.TFRecordWriter(path, options) as writer:
...     writer.write(b"one")
>>> list(tf.python_io.tf_record_iterator(path, options))
[b'one']
"""

from __future__ import annotations

from ...io import records
from .errors import DataLossError, NotFoundError


class TFRecordCompressionType:
    """The compression of a record file, as TensorFlow numbers them."""

    NONE = 0
    ZLIB = 1
    GZIP = 2


class TFRecordOptions:
    """How a record file is compressed (``compression_type``: a
    :class:`TFRecordCompressionType` or ``""``/``"ZLIB"``/``"GZIP"``) and at which zlib
    ``compression_level``. The buffer sizes, flush mode and the like are taken and kept
    for TensorFlow's signature; zlib's defaults apply."""

    compression_type_map = {TFRecordCompressionType.NONE: "",
                            TFRecordCompressionType.ZLIB: "ZLIB",
                            TFRecordCompressionType.GZIP: "GZIP"}

    def __init__(self, compression_type=None, flush_mode=None, input_buffer_size=None,
                 output_buffer_size=None, window_bits=None, compression_level=None,
                 compression_method=None, mem_level=None, compression_strategy=None):
        self.compression_type = records.compression_name(compression_type)
        self.compression_level = compression_level
        self.flush_mode = flush_mode
        self.input_buffer_size = input_buffer_size
        self.output_buffer_size = output_buffer_size
        self.window_bits = window_bits
        self.compression_method = compression_method
        self.mem_level = mem_level
        self.compression_strategy = compression_strategy

    @classmethod
    def get_compression_type_string(cls, options) -> str:
        """``""``, ``"ZLIB"`` or ``"GZIP"`` for options, a type, a name or None."""
        return records.compression_name(options)

    def __repr__(self) -> str:
        return f"TFRecordOptions(compression_type={self.compression_type!r})"


def _level(options):
    return getattr(options, "compression_level", None)


class TFRecordWriter:
    """Writes records (bytes, such as serialized ``tf.train.Example``s) to ``path``."""

    def __init__(self, path, options=None):
        try:
            self._writer = records.RecordWriter(path, options, _level(options))
        except FileNotFoundError:
            raise NotFoundError(f"{path}; No such file or directory") from None

    def write(self, record) -> None:
        self._writer.write(record)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tf_record_iterator(path, options=None):
    """The records of ``path``, in order; a corrupt or truncated record raises
    ``tf.errors.DataLossError`` naming the file and the record's offset."""
    try:
        reader = records.RecordReader(path, options)
    except FileNotFoundError:
        raise NotFoundError(f"{path}; No such file or directory") from None
    with reader:
        while True:
            try:
                record = reader.read()
            except records.RecordError as exc:
                raise DataLossError(str(exc)) from None
            if record is None:
                return
            yield record
