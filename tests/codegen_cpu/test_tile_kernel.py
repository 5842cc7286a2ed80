"""tile_kernel.py's run-time register-tiled gemm, called directly: every row and column
remainder, strided (transposed) A, accumulation, empty sums, both float types."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from tracejit.codegen_cpu.gemm.tile_kernel import TILE_GEMM, ensure_tile_gemm
from tracejit.codegen_cpu.gemm.tiles import tile_gemm_exists
from tracejit.ir import dtypes as dt

pytestmark = pytest.mark.skipif(not tile_gemm_exists(dt.float32),
                                reason="the register-tiled kernels need AVX-512")

_I, _P = ctypes.c_int64, ctypes.c_void_p


def _kernel(dtype):
    import llvmlite.binding as llvm
    ensure_tile_gemm()
    address = llvm.address_of_symbol(TILE_GEMM[dtype])
    return ctypes.CFUNCTYPE(None, _I, _I, _I, _P, _I, _I, _P, _I, _P, _I, _I)(address)


@pytest.mark.parametrize("dtype", [dt.float32, dt.float64])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (6, 64, 9), (7, 65, 3), (13, 17, 40),
                                     (5, 130, 1), (19, 200, 33), (4, 9, 0)])
@pytest.mark.parametrize("transposed_a", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_matches_numpy(dtype, m, n, k, transposed_a, accumulate):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    np_type = dtype.np_dtype
    a = rng.normal(size=(k, m) if transposed_a else (m, k)).astype(np_type)
    b = rng.normal(size=(k, n + 3)).astype(np_type)          # ldb wider than n
    c = rng.normal(size=(m, n + 5)).astype(np_type)          # ldc wider than n
    want = c.copy()
    product = (a.T if transposed_a else a) @ b[:, :n]
    want[:, :n] = want[:, :n] + product if accumulate else product
    a_row, a_k = (1, m) if transposed_a else (k, 1)
    _kernel(dtype)(m, n, k, a.ctypes.data, a_row, a_k, b.ctypes.data, n + 3,
                   c.ctypes.data, n + 5, int(accumulate))
    tol = 1e-5 if dtype is dt.float32 else 1e-12
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol * max(1, k))
