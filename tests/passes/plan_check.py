"""Invariants every MemoryPlan must satisfy, checked from the plan and the graph."""

from __future__ import annotations

from tracejit.ir.core import Graph
from tracejit.passes.memory import MemoryPlan


def check_plan(graph: Graph, plan: MemoryPlan, donated=()) -> None:
    n = len(graph.eqns)
    outputs = {id(v) for v in graph.outputs}
    for k, v in enumerate(graph.inputs):
        vp = plan.value(v)
        assert vp.first == -1
        if k not in donated:
            assert vp.buffer is None            # the caller's memory
    by_buffer: dict[int, list] = {}
    for i, eqn in enumerate(graph.eqns):
        for v in eqn.outs:
            vp = plan.value(v)
            assert vp.first == i and vp.nbytes == v.type.size * v.dtype.itemsize
            assert vp.last == (n if id(v) in outputs else max(
                [j for j, e in enumerate(graph.eqns) if v in e.ins], default=i))
            if vp.nbytes:
                buffer = plan.buffers[vp.buffer]
                assert buffer.nbytes >= vp.nbytes
                if id(v) in outputs:
                    assert buffer.kind in ("output", "donated")
                else:
                    assert buffer.kind in ("arena", "donated")
    for vp in plan.values:
        if vp.buffer is not None:
            by_buffer.setdefault(vp.buffer, []).append(vp)
    for values in by_buffer.values():
        values.sort(key=lambda vp: vp.first)
        for a, b in zip(values, values[1:], strict=False):
            # lifetimes on one buffer never overlap, except an in-place write at the
            # eqn that last reads the previous value
            assert a.last < b.first or (a.last == b.first and b.inplace
                                        and a.var in graph.eqns[b.first].ins), (a, b)
    for i, k, p in plan.inplace:
        eqn = graph.eqns[i]
        assert plan.buffer_of(eqn.outs[k]) == plan.buffer_of(eqn.ins[p])
        assert plan.value(eqn.ins[p]).last == i
    assert plan.bytes_with_reuse <= plan.bytes_without_reuse
    assert plan.peak_live_bytes <= plan.bytes_without_reuse
    for k, j in plan.output_aliases.items():
        assert j in donated
        # the caller gets argument j's array back as result k
        assert graph.outputs[k].type == graph.inputs[j].type
        assert plan.buffer_of(graph.outputs[k]) == plan.buffer_of(graph.inputs[j])
