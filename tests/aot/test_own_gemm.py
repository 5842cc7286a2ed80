"""The gemm standalone code calls instead of cblas (codegen_cpu/gemm/own_gemm.py), on its
own: every transpose combination, beta 0, 1 and 0.5, run-time sizes and leading
dimensions wider than the rows -- against NumPy in float64; and the standalone setting
gives one thread without touching the JIT's."""

from __future__ import annotations

import ctypes
import itertools

import numpy as np
import pytest
from llvmlite import ir

from tracejit.codegen_cpu.gemm.own_gemm import call_own_gemm
from tracejit.codegen_cpu.host import target
from tracejit.codegen_cpu.host.standalone import standalone, standalone_code
from tracejit.codegen_cpu.parallel.settings import parallel_config
from tracejit.ir import dtypes as dt

I64, PTR = ir.IntType(64), ir.PointerType()


# float64: the transposes with a general beta (the loops are the same code as float32's)
VARIANTS = {dt.float32: list(itertools.product([False, True], [False, True], [0.0, 1.0, 0.5])),
            dt.float64: list(itertools.product([False, True], [False, True], [0.5]))}


def _compiled(dtype):
    """One entry per variant (one module: one compile), as ctypes callables."""
    module = target.new_module("own_gemm_test")
    for i, (trans_a, trans_b, beta) in enumerate(VARIANTS[dtype]):
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, I64, I64, PTR, I64,
                                                                 PTR, I64, PTR, I64]),
                         f"entry{i}")
        b = ir.IRBuilder(fn.append_basic_block())
        m, n, k, a, lda, bp, ldb, c, ldc = fn.args
        call_own_gemm(b, dtype, m, n, k, a, lda, trans_a, bp, ldb, trans_b, c, ldc, beta)
        b.ret_void()
    engine, addresses = target.compile_module(module, keep_alive=False)
    signature = ctypes.CFUNCTYPE(None, *([ctypes.c_int64] * 3
                                         + [ctypes.c_void_p, ctypes.c_int64] * 3))
    return engine, [signature(addresses[f"entry{i}"]) for i in range(len(VARIANTS[dtype]))]


@pytest.mark.parametrize("dtype", [dt.float32, dt.float64])
def test_every_variant_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    m, n, k, pad = 5, 19, 7, 3
    engine, entries = _compiled(dtype)     # the engine holds the code: kept alive here
    for run, (trans_a, trans_b, beta) in zip(entries, VARIANTS[dtype], strict=True):
        a = rng.standard_normal((k, m + pad) if trans_a else (m, k + pad))
        bm = rng.standard_normal((n, k + pad) if trans_b else (k, n + pad))
        c = rng.standard_normal((m, n + pad))
        op_a = a[:, :m].T if trans_a else a[:, :k]
        op_b = bm[:, :k].T if trans_b else bm[:, :n]
        expected = c.copy()
        expected[:, :n] = op_a @ op_b + (beta * c[:, :n] if beta else 0.0)
        a, bm, c = (x.astype(dtype.np_dtype) for x in (a, bm, c))
        if beta == 0.0:
            c[:, :n] = np.nan           # never read when beta is 0
        run(m, n, k, a.ctypes.data, a.shape[1], bm.ctypes.data, bm.shape[1], c.ctypes.data,
            c.shape[1])
        tol = 1e-5 if dtype is dt.float32 else 1e-12
        np.testing.assert_allclose(c[:, :n], expected[:, :n], rtol=tol, atol=tol,
                                   err_msg=f"{trans_a=} {trans_b=} {beta=}")
        np.testing.assert_array_equal(c[:, n:], expected[:, n:].astype(dtype.np_dtype))


def test_standalone_code_runs_on_one_thread_and_leaves_the_jit_alone():
    before = parallel_config()
    with standalone_code("avx2"):
        assert standalone().vector_isa == "avx2"
        assert parallel_config().threads == 1
        assert parallel_config() is not before
    assert standalone() is None and parallel_config() is before
