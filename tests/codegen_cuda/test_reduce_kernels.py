"""The GPU's three reduction loop nests on the simulator, against the reference
interpreter: a block per output (rows), a thread per output (short reductions, leading
axes with many outputs) and two passes (few outputs, long reductions), with NaN,
argmax ties, fused prologues, side outputs and epilogues -- and the same bits every run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.codegen_cuda.simulated import require_gpu, run_on, simulated_gpu
from tracejit.ir import GraphBuilder, interpret, ops
from tracejit.ir import dtypes as dt
from tracejit.ir.core import tensor_type

require_gpu()


def _softmax_like(shape, axes, dtype="f32"):
    """max, then exp(x - max) (a side output) and its sum, then the quotient."""
    b = GraphBuilder("softmax")
    x = b.add_input(tensor_type(shape, dtype))
    m = b.emit1(ops.MAX, [x], {"axes": axes, "keepdims": True})
    e = b.emit1(ops.EXP, [b.emit1(ops.SUB, [x, m])])
    s = b.emit1(ops.SUM, [e], {"axes": axes, "keepdims": True})
    return b.build([b.emit1(ops.DIV, [e, s]), s])


def _reductions(shape, axes, axis, dtype="f32"):
    b = GraphBuilder("reductions")
    x = b.add_input(tensor_type(shape, dtype))
    outs = [b.emit1(op, [x], {"axes": axes}) for op in (ops.SUM, ops.MEAN, ops.MAX, ops.MIN)]
    outs += [b.emit1(op, [x], {"axis": axis}) for op in (ops.ARGMAX, ops.ARGMIN)]
    outs.append(b.emit1(ops.SUM, [b.emit1(ops.MUL, [x, x])], {"axes": axes}))
    return b.build(outs)


CASES = {
    # (the simulator's thresholds: a thread per output up to 16 elements, columns from
    # 64 outputs, two passes from 256 elements: reduce.py)
    "rows": (_reductions, (4, 40), (1,), 1),                # a block per output
    "short": (_reductions, (20, 9), (1,), 1),               # a thread per output
    "columns": (_reductions, (24, 70), (0,), 0),            # leading axis, many outputs
    "two_pass": (_reductions, (2, 300), (1,), 1),           # few outputs, long rows
    "full": (_reductions, (280,), (0,), 0),                 # one output, two passes
    "middle": (_reductions, (3, 30, 5), (1,), 1),           # general axes
}


@pytest.fixture(scope="module")
def gpu():
    return simulated_gpu()


_run = run_on


def _inputs(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[::97] = 2.5            # ties for argmax/argmin: the first must win
    flat[5::131] = -2.5
    return x


@pytest.mark.parametrize("case", sorted(CASES))
def test_reductions_match_the_interpreter(gpu, case):
    make, shape, axes, axis = CASES[case]
    graph = make(shape, axes, axis)
    x = _inputs(shape, len(case))
    got, want = _run(gpu, graph, [x]), interpret(graph, [x])
    for g, w in zip(got, want, strict=True):
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)
        else:
            np.testing.assert_array_equal(g, w)
    again = _run(gpu, graph, [x])
    for g, h in zip(got, again, strict=True):
        assert g.tobytes() == h.tobytes()           # the same bits every run


@pytest.mark.parametrize("case", ["rows", "two_pass", "columns"])
def test_nan_wins_max_and_argmax(gpu, case):
    make, shape, axes, axis = CASES[case]
    graph = make(shape, axes, axis)
    x = _inputs(shape, 7)
    x.reshape(-1)[3::211] = np.nan
    got, want = _run(gpu, graph, [x]), interpret(graph, [x])
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5, equal_nan=True)


@pytest.mark.parametrize("shape,axes", [((6, 40), (1,)), ((2, 300), (1,)),
                                        ((30, 8), (1,)), ((24, 70), (0,))])
def test_fused_softmax_with_a_side_output(gpu, shape, axes):
    graph = _softmax_like(shape, axes)
    from tracejit.codegen_cuda.program import build_steps
    kinds = [s.kernel.kind for s in build_steps(gpu.optimize(graph), True)
             if hasattr(s, "kernel")]
    assert "reduction" in kinds
    x = _inputs(shape, 3)
    for g, w in zip(_run(gpu, graph, [x]), interpret(graph, [x]), strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6)


def test_integer_sums_wrap_and_halves_round_once(gpu):
    b = GraphBuilder("wrap")
    x = b.add_input(tensor_type((3, 300), "int8"))
    h = b.add_input(tensor_type((2, 300), "bf16"))
    graph = b.build([b.emit1(ops.SUM, [x], {"axes": (1,)}),
                     b.emit1(ops.PROD, [x], {"axes": (0,)}),
                     b.emit1(ops.MEAN, [h], {"axes": (1,)})])
    rng = np.random.default_rng(0)
    args = [rng.integers(-128, 127, (3, 300)).astype(np.int8),
            rng.standard_normal((2, 300)).astype(dt.bfloat16.np_dtype)]
    got, want = _run(gpu, graph, args), interpret(graph, args)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[2].astype(np.float64), want[2].astype(np.float64),
                               rtol=1e-2)


def test_each_case_takes_the_loop_nest_it_is_named_for(gpu):
    if not gpu.simulating:
        pytest.skip("the cases are sized for the simulator's thresholds")
    from tracejit.codegen_cuda.program import build_steps
    expected = {"rows": "reduce_rows", "short": "reduce_columns",
                "columns": "reduce_columns", "two_pass": "reduce_partials",
                "full": "reduce_partials", "middle": "reduce_rows"}
    for case, stem in expected.items():
        make, shape, axes, axis = CASES[case]
        graph = make(shape, axes, axis)
        names = [s.kernel.name for s in build_steps(gpu.optimize(graph), True)
                 if hasattr(s, "kernel")]
        assert any(n.startswith(f"tj_{stem}_") for n in names), (case, names)


def _layer_norm(shape, axes):
    b = GraphBuilder("layer_norm")
    x = b.add_input(tensor_type(shape, "f32"))
    g = b.add_input(tensor_type(shape[-1:], "f32"))
    mu = b.emit1(ops.MEAN, [x], {"axes": axes, "keepdims": True})
    d = b.emit1(ops.SUB, [x, mu])
    var = b.emit1(ops.MEAN, [b.emit1(ops.MUL, [d, d])], {"axes": axes, "keepdims": True})
    eps = b.emit1(ops.FILL, [], {"shape": (), "value": 1e-5, "dtype": dt.float32})
    scale = b.emit1(ops.RSQRT, [b.emit1(ops.ADD, [var, eps])])
    return b.build([b.emit1(ops.MUL, [b.emit1(ops.MUL, [d, scale]), g]), var])


def _log_softmax(shape, axes):
    b = GraphBuilder("log_softmax")
    x = b.add_input(tensor_type(shape, "f32"))
    m = b.emit1(ops.MAX, [x], {"axes": axes, "keepdims": True})
    d = b.emit1(ops.SUB, [x, m])
    s = b.emit1(ops.SUM, [b.emit1(ops.EXP, [d])], {"axes": axes, "keepdims": True})
    return b.build([b.emit1(ops.SUB, [d, b.emit1(ops.LOG, [s])]),
                    b.emit1(ops.ARGMAX, [x], {"axis": axes[0]})])


@pytest.mark.parametrize("make", [_softmax_like, _layer_norm, _log_softmax])
@pytest.mark.parametrize("shape", [(5, 40), (30, 8)], ids=["block_rows", "serial_rows"])
def test_row_kernels_fuse_phases_into_one_kernel(gpu, make, shape):
    graph = make(shape, (1,))
    from tracejit.codegen_cuda.program import build_steps
    steps = [s for s in build_steps(gpu.optimize(graph), True) if hasattr(s, "kernel")]
    stem = "tj_rows_" if shape[1] > 16 else "tj_rows_serial_"
    assert any(s.kernel.name.startswith(stem) for s in steps), [s.kernel.name for s in steps]
    rng = np.random.default_rng(5)
    args = [rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
    for g, w in zip(_run(gpu, graph, args), interpret(graph, args), strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
