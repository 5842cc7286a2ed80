"""The small functions generated kernels call for ops whose NumPy meaning takes more than
one expression: integer division by zero, Python's floor-division and modulo signs,
IEEE maximum with signed zeros, saturating float-to-int casts, a stable sigmoid, and
Threefry-2x32-20 for ``random_bits``.

They are written once, as Python source, and run in a kernel's namespace
(scalars.kernel_namespace): on a GPU each becomes a numba.cuda device function; in the
simulator each is plain Python over NumPy scalars. Same text, same meaning, so the
simulator tests what the GPU runs. Every result is converted by the caller to the op's
dtype, so these may return a wider type (int64, float64).
"""

from __future__ import annotations

import linecache

__all__ = ["SOURCE", "NAMES", "bind"]

SOURCE = '''
def tj_div_int(a, b):
    # truncating toward zero, x / 0 == 0 (C and XLA)
    if b == 0:
        return 0
    q = a // b
    if a % b != 0 and (a < 0) != (b < 0):
        q += 1
    return q


def tj_floordiv_int(a, b):
    if b == 0:
        return 0
    return a // b


def tj_mod_int(a, b):
    if b == 0:
        return 0
    return a % b


def tj_pow_int(a, b):
    if b < 0:
        if a == 1:
            return 1
        if a == -1:
            return -1 if b % 2 != 0 else 1
        return 0
    result = a - a + 1
    base = a
    e = b
    while e > 0:
        if e & 1:
            result = result * base
        base = base * base
        e >>= 1
    return result


def tj_mod_float(a, b):
    # NumPy's mod: the remainder takes the divisor's sign; a zero remainder too
    m = math.fmod(a, b)
    if m != 0:
        if (b < 0) != (m < 0):
            m = m + b
    else:
        m = math.copysign(m - m, b)
    return m


def tj_floordiv_float(a, b):
    # NumPy's floor_divide (npy_divmod): exact for the quotient of the remainder
    if b == 0:
        return a / b
    m = math.fmod(a, b)
    div = (a - m) / b
    if m != 0:
        if (b < 0) != (m < 0):
            div = div - 1
    if div != 0:
        fl = floor64(div)
        if div - fl > 0.5:
            fl = fl + 1
        return fl + (div - div)
    return math.copysign(div - div, a / b)


def tj_max_float(a, b):
    # IEEE 754-2019 maximum: NaN wins, -0.0 < +0.0
    if a != a:
        return a
    if b != b:
        return b
    if a == 0 and b == 0:
        return a + b
    return a if a > b else b


def tj_min_float(a, b):
    if a != a:
        return a
    if b != b:
        return b
    if a == 0 and b == 0:
        return -(-a - b)
    return a if a < b else b


def tj_sign_float(x):
    # NOTE: not x - x + 1: for an infinite x that is NaN (the GPU fuzzer found it)
    if x != x:
        return x
    if x > 0:
        return math.copysign(1.0, x)
    if x < 0:
        return math.copysign(1.0, x)
    return x - x


def tj_sigmoid(x):
    # exp never overflows: e = exp(-|x|) is in (0, 1]
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def tj_float_to_int(x, lo_float, hi_float, lo, hi):
    # truncate toward zero, saturate at the type's range, NaN -> 0 (the IR's cast). The
    # bounds are compared as floats but returned as the integers: float(int64 max) is
    # 2**63, which no int64 holds (converting it back was INT64_MIN: the fuzzer found it)
    if x != x:
        return 0
    if x >= hi_float:
        return hi
    if x <= lo_float:
        return lo
    return int(x)


def tj_threefry_word0(k0, k1, c0, c1):
    # Threefry-2x32-20 (tracejit/ir/ops_random.py), in int64 arithmetic masked to 32
    # bits so that the GPU and the simulator compute the same words
    mask = 0xFFFFFFFF
    k0 = int(k0) & mask
    k1 = int(k1) & mask
    k2 = k0 ^ k1 ^ 0x1BD11BDA
    x0 = (int(c0) + k0) & mask
    x1 = (int(c1) + k1) & mask
    for r in range(20):
        rot = TJ_ROTATIONS[r % 8]
        x0 = (x0 + x1) & mask
        x1 = (((x1 << rot) | (x1 >> (32 - rot))) & mask) ^ x0
        if r % 4 == 3:
            s = r // 4 + 1
            ks0 = k0 if s % 3 == 0 else (k1 if s % 3 == 1 else k2)
            t = (s + 1) % 3
            ks1 = k0 if t == 0 else (k1 if t == 1 else k2)
            x0 = (x0 + ks0) & mask
            x1 = (x1 + ks1 + s) & mask
    return x0 - 4294967296 if x0 >= 2147483648 else x0
'''

NAMES = ("tj_div_int", "tj_floordiv_int", "tj_mod_int", "tj_pow_int", "tj_mod_float",
         "tj_floordiv_float", "tj_max_float", "tj_min_float", "tj_sign_float", "tj_sigmoid",
         "tj_float_to_int", "tj_threefry_word0")

_FILENAME = "<tracejit-cuda:device_functions>"


def bind(namespace: dict, cuda, simulating: bool) -> None:
    """Define the functions in ``namespace`` (device functions unless simulating)."""
    from ..ir.ops_random import THREEFRY_ROTATIONS
    linecache.cache[_FILENAME] = (len(SOURCE), None, SOURCE.splitlines(True), _FILENAME)
    namespace["TJ_ROTATIONS"] = tuple(THREEFRY_ROTATIONS)
    exec(compile(SOURCE, _FILENAME, "exec"), namespace)     # noqa: S102 (our own source)
    if not simulating:
        for name in NAMES:
            namespace[name] = cuda.jit(device=True, inline="always")(namespace[name])
