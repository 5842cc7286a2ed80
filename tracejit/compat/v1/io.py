"""``tf.io``: the input names of TensorFlow 1.x under their ``tf.io`` spelling."""

from __future__ import annotations

from .file_ops import matching_files, read_file, write_file  # noqa: F401
from .parse_example import (  # noqa: F401
    FixedLenFeature,
    FixedLenSequenceFeature,
    VarLenFeature,
    parse_example,
    parse_single_example,
)
from .parsing import decode_compressed, decode_csv, decode_raw  # noqa: F401
from .python_io import (  # noqa: F401
    TFRecordCompressionType,
    TFRecordOptions,
    TFRecordWriter,
    tf_record_iterator,
)
