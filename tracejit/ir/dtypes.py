"""Element types of the IR, their NumPy mapping, and the promotion rules.

The lattice (weakest to strongest) follows JAX rather than NumPy, because
NumPy's value-based promotion would make a float32 model silently turn
float64:

    bool -> uint8 -> int8? -> int32 -> int64 -> float16/bfloat16 -> float32 -> float64

Rules for two *strong* (array) types ``a`` and ``b``:

* equal types stay as they are;
* bool joins anything as the other type;
* two integer types give the wider one; uint8 with int8 gives int32
  (the smallest signed type holding both ranges);
* integer with float gives the float;
* float16 with bfloat16 gives float32; otherwise the wider float.

Python scalars are *weakly typed*: they take the type of the array they meet
when that type is of the same kind or a higher kind (``x * 2.0`` stays float32
for a float32 ``x``; ``i + 1`` stays int8 for an int8 ``i``). A weak float
meeting an integer array gives the default float type (float32). Two weak
values promote as their default types and stay weak.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = [
    "DType", "bool_", "int8", "uint8", "int32", "int64", "float16", "bfloat16",
    "float32", "float64", "ALL_DTYPES", "FLOAT_DTYPES", "INT_DTYPES", "NUMERIC_DTYPES",
    "as_dtype", "promote_types", "result_type", "default_dtype_for_python",
]


class DType:
    """One IR element type. Instances are singletons; compare with ``is`` or ``==``.

    ``==`` also accepts anything :func:`as_dtype` understands, so
    ``x.dtype == np.float32`` and ``x.dtype == "float32"`` read naturally.
    """

    __slots__ = ("name", "short", "np_dtype", "kind", "bits")

    def __init__(self, name: str, short: str, np_dtype, kind: str, bits: int):
        self.name = name          # TensorFlow-style name: "float32"
        self.short = short        # IR text name: "f32"
        self.np_dtype = np.dtype(np_dtype)
        self.kind = kind          # "bool" | "int" | "uint" | "float"
        self.bits = bits

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_integer(self) -> bool:
        return self.kind in ("int", "uint")

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    @property
    def is_half(self) -> bool:
        """16-bit floats, which are stored in 16 bits but computed in float32."""
        return self.kind == "float" and self.bits == 16

    @property
    def itemsize(self) -> int:
        return max(1, self.bits // 8)

    def __repr__(self) -> str:
        return f"tracejit.{self.name}"

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        if other is self:
            return True
        if isinstance(other, DType):
            return False
        try:
            return as_dtype(other) is self
        except TypeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self):
        return (as_dtype, (self.name,))


bool_ = DType("bool", "bool", np.bool_, "bool", 8)
int8 = DType("int8", "i8", np.int8, "int", 8)
uint8 = DType("uint8", "u8", np.uint8, "uint", 8)
int32 = DType("int32", "i32", np.int32, "int", 32)
int64 = DType("int64", "i64", np.int64, "int", 64)
float16 = DType("float16", "f16", np.float16, "float", 16)
bfloat16 = DType("bfloat16", "bf16", ml_dtypes.bfloat16, "float", 16)
float32 = DType("float32", "f32", np.float32, "float", 32)
float64 = DType("float64", "f64", np.float64, "float", 64)

ALL_DTYPES = (bool_, int8, uint8, int32, int64, float16, bfloat16, float32, float64)
FLOAT_DTYPES = (float16, bfloat16, float32, float64)
INT_DTYPES = (int8, uint8, int32, int64)
NUMERIC_DTYPES = INT_DTYPES + FLOAT_DTYPES

_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({d.short: d for d in ALL_DTYPES})
_BY_NUMPY = {d.np_dtype: d for d in ALL_DTYPES}


def as_dtype(value) -> DType:
    """Convert a DType, NumPy dtype or type, or a name ("float32", "f32") to a DType."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str):
        found = _BY_NAME.get(value)
        if found is not None:
            return found
    if value is bool:
        return bool_
    if value is int:
        return int32
    if value is float:
        return float32
    try:
        npd = np.dtype(value)
    except TypeError:
        npd = None
    if npd is not None and npd in _BY_NUMPY:
        return _BY_NUMPY[npd]
    raise TypeError(
        f"unsupported dtype {value!r}; tracejit supports "
        + ", ".join(d.name for d in ALL_DTYPES))


def default_dtype_for_python(value) -> DType:
    """The type a Python scalar takes when nothing else decides: bool, int32 (int64 for
    larger ints), float32."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, int):
        # NOTE: ints beyond int32 would overflow silently; they are int64 instead.
        return int32 if -(2**31) <= value < 2**31 else int64
    if isinstance(value, float):
        return float32
    raise TypeError(f"{type(value).__name__} is not a Python scalar")


_KIND_RANK = {"bool": 0, "uint": 1, "int": 1, "float": 2}


def promote_types(a: DType, b: DType) -> DType:
    """Join of two strong types in the lattice described in the module docstring."""
    if a is b:
        return a
    if a.is_bool:
        return b
    if b.is_bool:
        return a
    if a.is_float and b.is_float:
        if a.bits == b.bits:      # float16 with bfloat16
            return float32
        return a if a.bits > b.bits else b
    if a.is_float:
        return a
    if b.is_float:
        return b
    # Two integer types.
    if a.kind == b.kind:
        return a if a.bits > b.bits else b
    signed, unsigned = (a, b) if a.kind == "int" else (b, a)
    if signed.bits > unsigned.bits:
        return signed
    return int32 if unsigned.bits < 32 else int64


def result_type(*typed: tuple[DType, bool]) -> tuple[DType, bool]:
    """Promote ``(dtype, weak)`` pairs; returns the joined dtype and whether it is weak."""
    strong = [d for d, weak in typed if not weak]
    weak = [d for d, w in typed if w]
    if not strong:
        out = weak[0]
        for d in weak[1:]:
            out = promote_types(out, d)
        return out, True
    out = strong[0]
    for d in strong[1:]:
        out = promote_types(out, d)
    for d in weak:
        if _KIND_RANK[d.kind] > _KIND_RANK[out.kind]:
            # A weak scalar of a higher kind lifts the result to that kind's default.
            out = float32 if d.is_float else int32
    return out, False
