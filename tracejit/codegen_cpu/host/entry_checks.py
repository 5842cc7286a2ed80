"""Whether the trampoline's assumptions hold in this process: the CPython and NumPy
object offsets entry.py bakes into the code it generates, checked on live objects; and
entries of NumPy's C-API table."""

from __future__ import annotations

import ctypes
import functools
import sys
import sysconfig

import numpy as np

from .entry import (
    ARR_DATA,
    ARR_DESCR,
    ARR_DIMS,
    ARR_FLAGS,
    ARR_ND,
    C_CONTIGUOUS,
    DESCR_BYTEORDER,
    DESCR_TYPEOBJ,
    NEW_FROM_DESCR_INDEX,
    OB_SIZE,
    OB_TYPE,
    SEQ_ITEMS,
)

__all__ = ["numpy_api", "trampoline_support"]


def _word(address: int) -> int:
    return ctypes.c_uint64.from_address(address).value


def numpy_api(index: int) -> int:
    """Address of entry ``index`` of NumPy's C-API table."""
    core = getattr(np, "_core", None) or np.core
    capsule = core._multiarray_umath._ARRAY_API
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return _word(get(capsule, None) + 8 * index)


@functools.cache
def trampoline_support() -> str | None:
    """``None`` when the trampoline's assumptions hold in this process, else why not."""
    if sys.implementation.name != "cpython" or sys.version_info < (3, 11):
        return f"needs CPython 3.11+, this is {sys.implementation.name} {sys.version}"
    if ctypes.sizeof(ctypes.c_void_p) != 8 or sys.byteorder != "little":
        return "needs a 64-bit little-endian process"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "the free-threaded build has another object layout"
    try:
        a = np.zeros((3, 5), np.float32)[:, :4]
        ref = a.base
        lst, tup = [a], (a,)
        checks = [
            _word(id(lst) + SEQ_ITEMS) and _word(_word(id(lst) + SEQ_ITEMS)) == id(a),
            _word(id(lst) + OB_SIZE) == 1 and _word(id(tup) + OB_SIZE) == 1,
            _word(id(tup) + SEQ_ITEMS) == id(a),
            _word(id(a) + OB_TYPE) == id(np.ndarray),
            _word(id(a) + ARR_DATA) == a.ctypes.data,
            ctypes.c_int32.from_address(id(a) + ARR_ND).value == 2,
            _word(_word(id(a) + ARR_DIMS) + 8) == 4,
            _word(id(a) + ARR_DESCR) == id(a.dtype),
            ctypes.c_int32.from_address(id(ref) + ARR_FLAGS).value & 0x501 == 0x501,
            ctypes.c_int32.from_address(id(a) + ARR_FLAGS).value & C_CONTIGUOUS == 0,
            _word(id(np.dtype("f4")) + DESCR_TYPEOBJ) == id(np.float32),
            ctypes.c_char.from_address(id(np.dtype(">f4")) + DESCR_BYTEORDER).value == b">",
            numpy_api(NEW_FROM_DESCR_INDEX) != 0,
        ]
    except Exception as exc:            # any surprise means: do not trust the layout
        return f"probing object layouts failed: {exc!r}"
    if not all(checks):
        return f"unexpected CPython/NumPy object layout (checks: {checks})"
    return None
