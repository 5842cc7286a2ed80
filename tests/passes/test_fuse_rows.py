"""The GPU's row fusion (passes/fuse_rows.py): which kernel chains become one ``rows``
kernel, which stay apart, and that the merged graph means what the original did."""

from __future__ import annotations

import numpy as np

from tracejit.ir import GraphBuilder, interpret, ops
from tracejit.ir.core import tensor_type
from tracejit.passes.fuse import fuse_kernels
from tracejit.passes.fuse_rows import fuse_rows
from tracejit.passes.pipeline import optimize


def _kinds(graph):
    return [e.params.get("kind", e.op.name) if e.op.name == "kernel" else e.op.name
            for e in graph.eqns]


def _softmax(shape=(8, 32)):
    b = GraphBuilder("softmax")
    x = b.add_input(tensor_type(shape, "f32"))
    m = b.emit1(ops.MAX, [x], {"axes": (1,), "keepdims": True})
    e = b.emit1(ops.EXP, [b.emit1(ops.SUB, [x, m])])
    s = b.emit1(ops.SUM, [e], {"axes": (1,), "keepdims": True})
    return b.build([b.emit1(ops.DIV, [e, s])])


def _same_meaning(before, after):
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(v.shape).astype(np.float32) for v in before.inputs]
    for x, y in zip(interpret(before, args), interpret(after, args), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6)


def test_softmax_is_one_rows_kernel():
    fused = fuse_kernels(optimize(_softmax()))
    assert _kinds(fused) == ["reduction", "reduction", "elementwise"]
    rows = fuse_rows(fused)
    assert _kinds(rows) == ["rows"]
    _same_meaning(_softmax(), rows)


def test_a_per_row_value_broadcast_along_another_axis_stays_apart():
    # mean(x, 1) has shape [4]: against x[4, 4] it broadcasts along axis 1, so it is not
    # "this row's mean" at each element: the group must not be merged
    b = GraphBuilder("clip")
    x = b.add_input(tensor_type((4, 4), "f32"))
    m = b.emit1(ops.MEAN, [x], {"axes": (1,)})
    graph = b.build([b.emit1(ops.CLIP, [x, x, m]), m])
    fused = fuse_kernels(optimize(graph))
    assert "rows" not in _kinds(fuse_rows(fused))


def test_reductions_over_other_rows_are_not_merged():
    b = GraphBuilder("two")
    x = b.add_input(tensor_type((6, 5), "f32"))
    m = b.emit1(ops.SUM, [x], {"axes": (1,), "keepdims": True})
    c = b.emit1(ops.SUM, [b.emit1(ops.SUB, [x, m])], {"axes": (0,), "keepdims": True})
    graph = b.build([c])
    fused = fuse_kernels(optimize(graph))
    assert "rows" not in _kinds(fuse_rows(fused))


def test_values_read_outside_the_group_stay_outputs():
    b = GraphBuilder("softmax_and_sum")
    x = b.add_input(tensor_type((8, 32), "f32"))
    m = b.emit1(ops.MAX, [x], {"axes": (1,), "keepdims": True})
    e = b.emit1(ops.EXP, [b.emit1(ops.SUB, [x, m])])
    s = b.emit1(ops.SUM, [e], {"axes": (1,), "keepdims": True})
    graph = b.build([b.emit1(ops.DIV, [e, s]), s, m])
    rows = fuse_rows(fuse_kernels(optimize(graph)))
    assert _kinds(rows) == ["rows"]
    assert len(rows.eqns[0].outs) == 3
    _same_meaning(graph, rows)


def test_the_cpu_pipeline_does_not_make_rows_kernels():
    from tracejit.codegen_cpu.pipeline import CPU_PASSES
    assert "rows" not in _kinds(optimize(_softmax(), device_passes=CPU_PASSES))
