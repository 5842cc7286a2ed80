"""Compile one-op loop kernels around vmath emitters and compare them with NumPy.

``kernel(op, dtype)`` JITs ``void f(T* in0, [T* in1,] T* out, i64 n)`` whose scalar loop
body is the vmath emitter, through tracejit.codegen_cpu.host.target at O3 (the loop vectorizer
does the rest), and returns a NumPy-callable plus its assembly.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from tracejit.codegen_cpu import vmath
from tracejit.codegen_cpu.host import target

I64 = ir.IntType(64)
_TYPES = {np.dtype(np.float32): ir.FloatType(), np.dtype(np.float64): ir.DoubleType()}


@dataclass
class Kernel:
    fn: object
    arity: int
    dtype: np.dtype
    asm: str
    ir: str

    def __call__(self, *args: np.ndarray) -> np.ndarray:
        ins = [np.ascontiguousarray(a, dtype=self.dtype) for a in args]
        out = np.empty_like(ins[0])
        self.fn(*(a.ctypes.data for a in ins), out.ctypes.data, out.size)
        return out


def loop_hint(mod: ir.Module, interleave: int):
    """``!llvm.loop`` metadata asking the vectorizer to interleave ``interleave`` vectors."""
    node = mod.add_metadata([])
    hint = mod.add_metadata([ir.MetaDataString(mod, "llvm.loop.interleave.count"),
                             ir.Constant(ir.IntType(32), interleave)])
    node.operands = (node, hint)  # a loop id refers to itself
    return node


def build_module(op: str, dtype, interleave: int | None = None) -> ir.Module:
    dtype = np.dtype(dtype)
    fty = _TYPES[dtype]
    emitter = vmath.UNARY.get(op) or vmath.BINARY[op]
    arity = 1 if op in vmath.UNARY else 2
    mod = target.new_module(f"vmath_{op}")
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [target.PTR] * (arity + 1) + [I64]),
                     "kernel")
    for arg in fn.args[:-1]:
        arg.add_attribute("noalias")
    *ins, out, n = fn.args
    entry, loop, done = (fn.append_basic_block(s) for s in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(ir.Constant(I64, 0), entry)
    xs = [b.load(b.gep(p, [i], source_etype=fty), typ=fty) for p in ins]
    b.store(emitter(b, *xs), b.gep(out, [i], source_etype=fty))
    nxt = b.add(i, ir.Constant(I64, 1))
    i.add_incoming(nxt, loop)
    latch = b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
    if interleave:
        latch.set_metadata("llvm.loop", loop_hint(mod, interleave))
    b.position_at_end(done)
    b.ret_void()
    return mod


@functools.cache
def kernel(op: str, dtype, interleave: int | None = None) -> Kernel:
    dtype = np.dtype(dtype)
    mod = build_module(op, dtype, interleave)
    ref = target.optimize(target.parse(mod))
    asm = target.assembly(ref, opt=False)
    _, addrs = target.compile_module(ref)
    arity = 1 if op in vmath.UNARY else 2
    proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (arity + 1)), ctypes.c_int64)
    return Kernel(proto(addrs["kernel"]), arity, dtype, asm, str(ref))


# ---- references and error measurement ---------------------------------------------------

def _erf64(x: np.ndarray) -> np.ndarray:
    import math

    return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x < 0, e, 1.0) / (1 + e)


REFERENCE = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh,
    "sigmoid": _sigmoid, "sin": np.sin, "cos": np.cos, "erf": _erf64, "pow": np.power,
}


def reference(op: str, *args: np.ndarray, precise: bool = False) -> np.ndarray:
    """NumPy's value of ``op`` in float64 (for float32 inputs: close to the exact value);
    ``precise=True``: in long double where NumPy has it (for float64 results)."""
    wide = np.longdouble if precise and op != "erf" else np.float64
    with np.errstate(all="ignore"):
        return REFERENCE[op](*(np.asarray(a, dtype=wide) for a in args))


def ulp_error(got: np.ndarray, exact: np.ndarray, dtype) -> np.ndarray:
    """|got - exact| in units of the last place of ``dtype`` at ``exact`` (subnormal ulp
    below the normal range). Where ``exact`` rounds to +-inf in ``dtype`` (overflow), and
    for NaN, the result must be exactly that: error 0, else inf."""
    info = np.finfo(dtype)
    wide = np.longdouble if np.asarray(exact).dtype == np.longdouble else np.float64
    got64 = got.astype(wide)
    exact = np.asarray(exact, dtype=wide)
    with np.errstate(all="ignore"):
        rounded = exact.astype(dtype).astype(wide)
        mag = np.maximum(np.abs(exact), wide(info.tiny))
        _, e = np.frexp(mag)
        ulp = np.ldexp(wide(1.0), e - info.nmant - 1)
        err = np.abs(got64 - exact) / ulp
    special = np.isnan(rounded) | np.isinf(rounded) | np.isnan(got64) | np.isinf(got64)
    same = (got64 == rounded) | (np.isnan(got64) & np.isnan(rounded))
    return np.where(special, np.where(same, 0.0, np.inf), err)


def float32_sweep(n_per_binade: int = 7000, seed: int = 0) -> np.ndarray:
    """Random float32 values from every binade (exponents -149..127), both signs, plus
    special values and the edges of each binade."""
    rng = np.random.default_rng(seed)
    bits = []
    for biased in range(0, 255):
        lo = biased << 23
        bits.append(rng.integers(lo, lo + (1 << 23), n_per_binade, dtype=np.uint32))
        bits.append(np.array([lo, lo + 1, lo + (1 << 23) - 1], dtype=np.uint32))
    pos = np.concatenate(bits).view(np.float32)
    specials = np.array([0.0, np.inf, np.nan, 1.0, 0.5, 2.0, np.finfo(np.float32).max,
                         np.finfo(np.float32).tiny, 1e-45], dtype=np.float32)
    return np.concatenate([pos, -pos, specials, -specials])
