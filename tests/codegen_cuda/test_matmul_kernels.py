"""Both generated product kernels -- the tiled one a GPU runs where cuBLAS cannot (integer
products, partial batch broadcasts) and the barrier-free one the simulator prefers -- on
the simulator against the reference interpreter: transposes, batch broadcasting,
integers that wrap, halves, odd sizes that leave partial tiles."""

from __future__ import annotations

import numpy as np
import pytest

from tests.codegen_cuda.simulated import require_gpu, run_on, simulated_gpu
from tests.ir.op_examples import T, random_array
from tracejit.ir import OPS, GraphBuilder, interpret
from tracejit.ir import dtypes as dt

require_gpu()

CASES = [
    ([T((5, 7), dt.float32), T((7, 3), dt.float32)], {}),
    ([T((7, 5), dt.float64), T((3, 7), dt.float64)], {"transpose_a": True, "transpose_b": True}),
    ([T((2, 1, 3, 5), dt.float32), T((4, 5, 2), dt.float32)], {}),        # partial broadcast
    ([T((3, 6), dt.int8), T((6, 2), dt.int8)], {}),                        # wraps
    ([T((4, 9), dt.int64), T((2, 9), dt.int64)], {"transpose_b": True}),
    ([T((5, 6), dt.bfloat16), T((6, 5), dt.bfloat16)], {}),
    ([T((0, 3), dt.float32), T((3, 2), dt.float32)], {}),
]


@pytest.fixture(params=["tiled", "dot"])
def kernel(request, monkeypatch):
    from tracejit.codegen_cuda.kernels import matmul
    monkeypatch.setattr(matmul, "SIM_TILED", [request.param == "tiled"])
    return request.param


@pytest.mark.parametrize("types,params", CASES, ids=[str(i) for i in range(len(CASES))])
def test_products_match_the_interpreter(kernel, types, params):
    b = GraphBuilder("mm")
    ins = [b.add_input(t) for t in types]
    graph = b.build([b.emit1(OPS["matmul"], ins, params)])
    rng = np.random.default_rng(3)
    args = [random_array(rng, t.shape, t.dtype, low=-3.0, high=3.0) for t in types]
    if types[0].dtype is dt.int8:
        args = [np.full(t.shape, 100, np.int8) for t in types]      # 6 * 100 * 100 wraps
    (got,) = run_on(simulated_gpu(), graph, args)
    (want,) = interpret(graph, args)
    assert got.dtype == want.dtype and got.shape == want.shape
    if types[0].dtype.is_float:
        rtol = {16: 2e-2, 32: 2e-5, 64: 1e-12}[types[0].dtype.bits]
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=rtol, atol=rtol)
    else:
        np.testing.assert_array_equal(got, want)
