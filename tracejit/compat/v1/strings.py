"""``tf.string``: the dtype of names and file paths.

No IR op takes strings (tracejit compiles numbers); a string tensor is one whose value
the Session computes on the host, such as ``report_uninitialized_variables``' names.
Its values are ``bytes``, as TensorFlow returns them, in NumPy object arrays."""

from __future__ import annotations

from ...ir.dtypes import DType

# NOTE: not registered with as_dtype: an IR op given it refuses it with the usual error.
string = DType("string", "str", object, "string", 0)
