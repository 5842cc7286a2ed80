"""An independent check of fused graphs against the rules of docs/passes.md ("Fusion"),
written from the documentation rather than from fusion_rules.py."""

from __future__ import annotations

from tracejit.ir import Tag
from tracejit.ir.core import Graph

INDEX_MAP_OPS = {"reshape", "expand_dims", "squeeze", "broadcast_to"}


def _is_compute(eqn) -> bool:
    return any(eqn.op.has(t) for t in (Tag.ELEMENTWISE, Tag.REDUCE, Tag.LINALG))


def check_kernel(eqn) -> None:
    body: Graph = eqn.params["body"]
    kind = eqn.params["kind"]
    assert [v.type for v in body.inputs] == [v.type for v in eqn.ins]
    assert [v.type for v in body.outputs] == [v.type for v in eqn.outs]
    producer = {id(v): e for e in body.eqns for v in e.outs}
    linalg = [e for e in body.eqns if e.op.has(Tag.LINALG)]
    reduces = [e for e in body.eqns if e.op.has(Tag.REDUCE)]
    computed: dict[int, tuple[int, bool]] = {}      # id -> (size, after an anchor)

    def origin(var):
        """The computed value ``var`` is an index map of, or None (a source/constant)."""
        while id(var) not in computed:
            e = producer.get(id(var))
            if e is None or not e.ins:
                return None
            var = e.ins[0]
        return computed[id(var)]

    for e in body.eqns:
        if not _is_compute(e):
            assert e.op.name in INDEX_MAP_OPS or (e.op.has(Tag.CREATION) and not e.ins), \
                f"{e.op.name} inside a kernel"
            continue
        size = e.outs[0].type.size
        if e.op.has(Tag.LINALG):
            assert all(v in body.inputs for v in e.ins), "a matmul operand computed in-kernel"
            computed[id(e.outs[0])] = (size, True)
            continue
        inner = [o for o in map(origin, e.ins) if o is not None]
        if e.op.has(Tag.REDUCE):
            assert not any(post for _, post in inner), "a reduction of a reduction"
            computed[id(e.outs[0])] = (size, True)
            continue
        assert all(s == size for s, _ in inner), "a computed value is broadcast"
        post = any(p for _, p in inner)
        if kind == "reduction" and post:
            assert all(p for _, p in inner), "an epilogue reads the prologue"
        computed[id(e.outs[0])] = (size, post)

    domains = set(computed.values())
    if kind == "elementwise":
        assert not linalg and not reduces
        assert len({s for s, _ in domains}) == 1, f"more than one domain: {domains}"
    elif kind == "reduction":
        assert reduces and not linalg
        assert len({(r.ins[0].shape, _axes(r)) for r in reduces}) == 1
        d_in, d_out = reduces[0].ins[0].type.size, reduces[0].outs[0].type.size
        assert all(s == (d_out if post else d_in) for s, post in domains)
    else:
        assert kind == "matmul_epilogue" and len(linalg) == 1 and not reduces
        assert all(s == linalg[0].outs[0].type.size for s, _ in domains)


def _axes(reduce_eqn) -> tuple[int, ...]:
    params = reduce_eqn.params
    return tuple(params["axes"]) if "axes" in params else (params["axis"],)


def check_fused(graph: Graph) -> None:
    """Every kernel obeys its kind's rules, and no elementwise op or reduction is left
    outside a kernel unless it computes from constants only."""
    producers = {id(v): e for e in graph.eqns for v in e.outs}

    def constant_only(var) -> bool:
        e = producers.get(id(var))
        return e is not None and all(constant_only(v) for v in e.ins)

    for e in graph.eqns:
        if e.op.name == "kernel":
            check_kernel(e)
        elif e.op.has(Tag.ELEMENTWISE) or e.op.has(Tag.REDUCE):
            assert all(constant_only(v) for v in e.ins), f"{e.op.name} left outside a kernel"
