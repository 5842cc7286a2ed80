"""Helpers of the lowering tests: lower equations into one module, JIT it, call each
function through ctypes with NumPy buffers, and build inputs that hit the edge cases."""

from __future__ import annotations

import ctypes

import numpy as np

from tracejit.codegen_cpu.host import target
from tracejit.codegen_cpu.kernels.table import lower_equation
from tracejit.codegen_cpu.parallel.settings import parallel_settings
from tracejit.ir import GraphBuilder, interpret
from tracejit.ir import dtypes as dt
from tracejit.ir.core import Eqn, Graph, TensorType
from tracejit.ir.opdef import get_op

_CALL = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class Compiled:
    """Functions of one JIT-compiled module, callable with NumPy arrays."""

    def __init__(self, eqns: dict[str, Eqn], *, threads: int | None = None,
                 min_work: int | None = None):
        module = target.new_module("lowering_test")
        with parallel_settings(threads=threads, min_work=min_work):
            for name, eqn in eqns.items():
                lower_equation(module, eqn, name)
        self.ir = str(module)
        _, self.addresses = target.compile_module(module)
        self.eqns = eqns

    def __call__(self, name: str, arrays, outs=None) -> list[np.ndarray]:
        eqn = self.eqns[name]
        ins = [np.asarray(a, order="C") for a in arrays]
        for var, a in zip(eqn.ins, ins, strict=True):
            assert a.shape == var.shape and a.dtype == var.dtype.np_dtype, (var, a.dtype)
        if outs is None:
            outs = [np.full(v.shape, 0x5A, np.uint8).view(v.dtype.np_dtype)
                    if v.dtype.itemsize == 1 else _garbage(v.type) for v in eqn.outs]
        buffers = (ctypes.c_void_p * (len(outs) + len(ins)))(
            *[a.ctypes.data for a in list(outs) + ins])
        _CALL(self.addresses[name])(ctypes.addressof(buffers))
        return outs


def _garbage(t: TensorType) -> np.ndarray:
    """An output buffer full of a NaN-ish pattern, so an unwritten element shows."""
    raw = np.full(t.size * t.dtype.itemsize, 0x7F, np.uint8)
    return raw.view(t.dtype.np_dtype).reshape(t.shape)


def one_eqn(name: str, types, params=None) -> tuple[Eqn, Graph]:
    b = GraphBuilder(name)
    ins = [b.add_input(t) for t in types]
    outs = b.emit(get_op(name), ins, params or {})
    g = b.build(list(outs))
    return g.eqns[0], g


def reference(eqn: Eqn, arrays) -> list[np.ndarray]:
    return list(eqn.op.evaluate([np.asarray(a) for a in arrays], eqn.params))


def graph_reference(graph: Graph, arrays) -> list[np.ndarray]:
    return interpret(graph, arrays)


def random_input(rng: np.random.Generator, t: TensorType, *, specials: bool = True,
                 low: float = -4.0, high: float = 4.0) -> np.ndarray:
    """Floats in [low, high) with NaN, +-inf and +-0 mixed in; integers over the whole
    8-bit range or [-1000, 1000] (with zeros); bools."""
    shape, dtype = t.shape, t.dtype
    if dtype.is_bool:
        return rng.random(shape) < 0.5
    if dtype.is_integer:
        info = np.iinfo(dtype.np_dtype)
        lo, hi = (info.min, info.max) if dtype.bits <= 8 else (-1000, 1000)
        x = rng.integers(max(lo, info.min), hi, size=shape, endpoint=True, dtype=np.int64)
        if x.size:
            x.reshape(-1)[rng.random(x.size) < 0.1] = 0
            x.reshape(-1)[0] = info.min
        return x.astype(dtype.np_dtype)
    x = rng.uniform(low, high, size=shape)
    if specials and x.size:
        picks = rng.random(shape) < 0.15
        x[picks] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 100.0, -100.0],
                              size=int(picks.sum()))
    with np.errstate(over="ignore"):
        return x.astype(dtype.np_dtype)


def index_input(rng, t: TensorType, n: int) -> np.ndarray:
    """Indices around [0, n): some negative (wrapping), some out of range (clamped)."""
    info = np.iinfo(t.dtype.np_dtype)
    lo, hi = max(-n - 2, info.min), min(n + 1, info.max)
    return rng.integers(lo, hi, size=t.shape, endpoint=True).astype(t.dtype.np_dtype)


EPS = {dt.float16: 2.0 ** -10, dt.bfloat16: 2.0 ** -7, dt.float32: 2.0 ** -23,
       dt.float64: 2.0 ** -52}


def same_bits(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, want.dtype,
                                                                  got.shape, want.shape)
    assert got.tobytes() == np.ascontiguousarray(want).tobytes(), \
        f"{what}: bits differ\n got {got.reshape(-1)[:8]}\nwant {want.reshape(-1)[:8]}"
