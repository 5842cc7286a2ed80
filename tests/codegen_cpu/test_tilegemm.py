"""The register-tiled products of convolution blocks (``lower_tilegemm``) against NumPy:
row tails (every remainder of the tile height), masked last vectors, A read by rows or
by columns, strided B and C, k = 0, accumulation, float32 and float64."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from llvmlite import ir

from tracejit.codegen_cpu.gemm.tiles import emit_tile_gemm, tile_gemm_exists
from tracejit.codegen_cpu.host import target
from tracejit.ir import dtypes as dt

pytestmark = pytest.mark.skipif(not tile_gemm_exists(dt.float32),
                                reason="the tiled products need AVX-512")

LDA = 40                 # A's row stride when read by rows; its column stride otherwise
WIDTHS = [1, 15, 17, 64, 65, 100]
_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                       ctypes.c_int64, ctypes.c_int64)


def _name(n, by_rows, accumulate):
    return f"g{n}_{'r' if by_rows else 'c'}{'a' if accumulate else ''}"


@pytest.fixture(scope="module", params=[dt.float32, dt.float64], ids=str)
def compiled(request):
    """One module: a function ``(A, B, C, m, k)`` per width, layout and accumulation."""
    dtype = request.param
    module = target.new_module("tilegemm_test")
    i64, ptr = ir.IntType(64), ir.PointerType()
    for n in WIDTHS:
        for by_rows in (True, False):
            for accumulate in (False, True):
                fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr, i64, i64]),
                                 _name(n, by_rows, accumulate))
                b = ir.IRBuilder(fn.append_basic_block("entry"))
                a, bp, c, m, k = fn.args
                a_row, a_k = (LDA, 1) if by_rows else (1, LDA)
                emit_tile_gemm(b, dtype, m, n, k, a, a_row, a_k, bp, n + 3, c, n + 5,
                               accumulate=accumulate)
                b.ret_void()
    engine, addresses = target.compile_module(module)
    return dtype, engine, addresses


@pytest.mark.parametrize("by_rows", [True, False], ids=["A-rows", "A-columns"])
@pytest.mark.parametrize("accumulate", [False, True], ids=["store", "accumulate"])
@pytest.mark.parametrize("n", WIDTHS)
def test_tile_gemm_matches_numpy(compiled, n, by_rows, accumulate):
    dtype, _, addresses = compiled
    fn = _FN(addresses[_name(n, by_rows, accumulate)])
    rng = np.random.default_rng(n)
    np_dtype = dtype.np_dtype
    for m in list(range(1, 20)) + [37]:
        for k in (0, 1, 7, 33):
            a = rng.standard_normal((LDA, LDA)).astype(np_dtype)
            b = rng.standard_normal((max(k, 1), n + 3)).astype(np_dtype)
            c = rng.standard_normal((m, n + 5)).astype(np_dtype)
            before = c.copy()
            fn(a.ctypes.data, b.ctypes.data, c.ctypes.data, m, k)
            op_a = (a if by_rows else a.T)[:m, :k].astype(np.float64)
            want = op_a @ b[:k, :n].astype(np.float64)
            if accumulate:
                want += before[:, :n]
            tol = 1e-4 if np_dtype == np.float32 else 1e-12
            np.testing.assert_allclose(c[:, :n], want, rtol=tol, atol=tol * max(1, k),
                                       err_msg=f"m={m} k={k}")
            np.testing.assert_array_equal(c[:, n:], before[:, n:])   # masked: untouched
