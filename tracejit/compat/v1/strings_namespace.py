"""``tf.strings``: TensorFlow 1's string ops under their ``tf.strings`` names."""

from .parsing import string_to_number as to_number  # noqa: F401
from .string_ops import as_string, length, split, substr  # noqa: F401
from .string_ops import string_join as join  # noqa: F401
from .string_ops import string_to_hash_bucket_fast as to_hash_bucket_fast  # noqa: F401

__all__ = ["as_string", "join", "length", "split", "substr", "to_hash_bucket_fast",
           "to_number"]
