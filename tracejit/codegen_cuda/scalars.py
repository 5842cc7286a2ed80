"""How generated kernels hold values: storage in memory, compute types in registers, and
the names a kernel's source calls that mean different code on a GPU and in the simulator.

Storage (what a buffer holds): bool as uint8 0/1, bfloat16 as its uint16 bits, every
other dtype as itself. Compute (what an expression holds): float16 and bfloat16 as
float32, rounded back to their precision after every op (the reference interpreter's
rule: halves compute in float32 and round once per op); bool as a boolean; every
other dtype as itself, integer results wrapped to their width after every op (NumPy's
modular arithmetic).

A generated kernel is Python source run by numba.cuda's compiler on a GPU (and for
PTX) and by Python itself in the simulator, where a value is a NumPy scalar. So every
op result goes through a conversion function (``F32``, ``I8``, ...), which keeps the
simulator in NumPy scalars (IEEE division by zero, wrapping integers) and tells numba
the exact type. The namespace a kernel runs in binds those names per mode
(:func:`kernel_namespace`); the source is the same text in both.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes as dt
from ..ir.dtypes import DType

__all__ = ["storage_numpy", "numba_type_name", "convert_name", "literal", "load_expr",
           "store_expr", "round_op_result", "type_name", "kernel_namespace", "COMPUTE_FLOAT"]

# IR dtype -> the name of its conversion function in a kernel's namespace
_CONVERT = {dt.float64: "F64", dt.float32: "F32", dt.float16: "F32", dt.bfloat16: "F32",
            dt.int64: "I64", dt.int32: "I32", dt.int8: "I8", dt.uint8: "U8",
            dt.bool_: "B1"}
_STORAGE = {dt.bool_: np.dtype(np.uint8), dt.bfloat16: np.dtype(np.uint16)}
_NUMBA = {"uint8": "uint8", "uint16": "uint16", "float16": "float16", "float32": "float32",
          "float64": "float64", "int8": "int8", "int32": "int32", "int64": "int64"}
COMPUTE_FLOAT = {dt.float16: dt.float32, dt.bfloat16: dt.float32}
# compute dtype -> the name of its numba type in a kernel's namespace (shared arrays)
_TYPE = {dt.float64: "TF64", dt.float32: "TF32", dt.int64: "TI64", dt.bool_: "TU8"}


def type_name(dtype: DType) -> str:
    """The namespace name of the numba type an accumulator of compute ``dtype`` has."""
    return _TYPE[dtype]


def storage_numpy(dtype: DType) -> np.dtype:
    """The NumPy dtype of a buffer of IR ``dtype`` in device memory."""
    return _STORAGE.get(dtype, dtype.np_dtype)


def numba_type_name(dtype: DType) -> str:
    """The numba scalar type name of ``dtype``'s storage (for kernel signatures)."""
    return _NUMBA[storage_numpy(dtype).name]


def convert_name(dtype: DType) -> str:
    return _CONVERT[dtype]


def literal(value, dtype: DType) -> str:
    """A constant of ``dtype`` as kernel source, in its compute type."""
    if dtype.is_bool:
        return "True" if bool(value) else "False"
    if dtype.is_float:
        v = float(value)
        text = ("math.inf" if v > 0 else "-math.inf") if math.isinf(v) else \
            "math.nan" if math.isnan(v) else repr(v)
        return f"{convert_name(dtype)}({text})"
    return f"{convert_name(dtype)}({int(value)})"


def round_op_result(expr: str, dtype: DType) -> str:
    """``expr`` (computed in ``dtype``'s compute type) as the value the op returns."""
    if dtype is dt.float16:
        return f"F32(F16({expr}))"
    if dtype is dt.bfloat16:
        return f"bf16_round({expr})"
    return f"{convert_name(dtype)}({expr})"


def load_expr(array: str, index: str, dtype: DType) -> str:
    if dtype is dt.bool_:
        return f"({array}[{index}] != 0)"
    if dtype is dt.bfloat16:
        return f"bf16_to_f32({array}[{index}])"
    if dtype is dt.float16:
        return f"F32({array}[{index}])"
    return f"{array}[{index}]"


def store_expr(value: str, dtype: DType) -> str:
    """``value`` (compute type) as what a buffer of ``dtype`` stores."""
    if dtype is dt.bool_:
        return f"U8(1 if {value} else 0)"
    if dtype is dt.bfloat16:
        return f"f32_to_bf16({value})"
    if dtype is dt.float16:
        return f"F16({value})"
    return value


# ---- the per-mode bindings -----------------------------------------------------------------

def _wrapping(np_type):
    # NOTE: NumPy's astype wraps an integer out of range (int8(300) == 44), as the GPU's
    # truncating conversion does; numba's Python-level int8(300) raises instead.
    def convert(x):
        return np.asarray(x).astype(np_type)[()]
    return convert


def _sim_bf16_to_f32(bits):
    return np.array(int(bits) << 16, dtype=np.uint32).view(np.float32)[()]


def _sim_f32_to_bf16(x):
    import ml_dtypes
    return np.array(x, dtype=np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)[()]


def _sim_bf16_round(x):
    return _sim_bf16_to_f32(_sim_f32_to_bf16(x))


class _SimMath:
    """``math`` for the simulator: NumPy's functions, which return inf/NaN where
    Python's ``math`` raises (exp overflow, log of 0), as the GPU's libdevice does."""

    inf, nan, pi = math.inf, math.nan, math.pi
    exp, expm1, log, log1p = np.exp, np.expm1, np.log, np.log1p
    sqrt, tanh, sin, cos = np.sqrt, np.tanh, np.sin, np.cos
    floor, ceil = np.floor, np.ceil
    isnan, isinf, fabs, fmod, copysign, pow = (np.isnan, np.isinf, np.fabs, np.fmod,
                                               np.copysign, np.power)

    @staticmethod
    def erf(x):
        return type(x)(math.erf(float(x))) if not np.isnan(x) else x


def _sim_namespace() -> dict:
    ns = {"math": _SimMath, "F64": np.float64, "F32": np.float32, "F16": np.float16,
          "I64": _wrapping(np.int64), "I32": _wrapping(np.int32), "I8": _wrapping(np.int8),
          "U8": _wrapping(np.uint8), "U16": _wrapping(np.uint16), "B1": np.bool_,
          "bf16_to_f32": _sim_bf16_to_f32, "f32_to_bf16": _sim_f32_to_bf16,
          "bf16_round": _sim_bf16_round,
          "floor32": np.floor, "floor64": np.floor, "ceil32": np.ceil, "ceil64": np.ceil,
          "rint32": np.rint, "rint64": np.rint}
    ns.update({name: np.dtype(dtype.np_dtype if dtype is not dt.bool_ else np.uint8).type
               for dtype, name in _TYPE.items()})
    return ns


def _gpu_namespace(cuda) -> dict:
    import numba
    from numba.cuda import libdevice

    def device(fn):
        return cuda.jit(device=True, inline="always")(fn)

    @device
    def bf16_to_f32(bits):
        return libdevice.int_as_float(numba.int32(numba.int32(bits) << 16))

    @device
    def f32_to_bf16(x):
        if x != x:
            return numba.uint16(0x7FC0)
        b = numba.int64(libdevice.float_as_int(x)) & 0xFFFFFFFF
        # round to nearest, ties to even, on the 16 bits that go
        b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
        return numba.uint16(b & 0xFFFF)

    @device
    def bf16_round(x):
        return bf16_to_f32(f32_to_bf16(x))

    return {"floor32": libdevice.floorf, "floor64": libdevice.floor,
            "ceil32": libdevice.ceilf, "ceil64": libdevice.ceil,
            "rint32": libdevice.rintf, "rint64": libdevice.rint,
            "math": math, "numba": numba, "F64": numba.float64, "F32": numba.float32,
            "F16": numba.types.float16, "I64": numba.int64, "I32": numba.int32,
            "I8": numba.int8, "U8": numba.uint8, "U16": numba.uint16, "B1": numba.boolean,
            "bf16_to_f32": bf16_to_f32, "f32_to_bf16": f32_to_bf16,
            "bf16_round": bf16_round,
            **{name: getattr(numba, dtype.np_dtype.name if dtype is not dt.bool_ else "uint8")
               for dtype, name in _TYPE.items()}}


def kernel_namespace(cuda, simulating: bool) -> dict:
    """The globals a generated kernel's source runs in (see the module docstring)."""
    from . import device_functions
    ns = _sim_namespace() if simulating else _gpu_namespace(cuda)
    ns["cuda"] = cuda
    ns["np"] = np
    device_functions.bind(ns, cuda, simulating)
    return ns
