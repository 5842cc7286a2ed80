"""Fusion: group compute equations into ``kernel`` equations that a backend lowers as one
loop nest each (the kernel op: tracejit/ir/ops_kernel.py; the rules: docs/passes.md).

The algorithm, in order:

1. **Roles** (fusion_rules.role_of): compute eqns, index maps (reshape-like ops,
   broadcast_to, small constants; duplicated into every kernel that reads them), others.
2. **Producer-consumer grouping**, greedy in program order: each compute eqn starts a
   group and absorbs the groups producing its operands (seen through index maps) when
   the union is still one loop nest (fusion_rules.classify) and no path leaves the
   union and comes back, through single eqns or through other groups (which would make
   the kernels depend on each other in a cycle).
3. **Sibling grouping**: groups that read a common source merge under the same two
   conditions, giving multi-output kernels that read the source once.
4. **Assembly**: each group becomes one ``kernel`` eqn, except a lone matmul (which stays
   a BLAS call). A computed value that something outside its kernel needs becomes a
   kernel output; nothing is recomputed. Kernels and the remaining eqns are put back in
   a topological order, and index maps and constants nothing reads any more disappear.

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> b = GraphBuilder()
>>> x = b.add_input(tensor_type([8], "f32"))
>>> g = fuse_kernels(b.build([b.emit1(ops.SUM, [b.emit1(ops.EXP, [x])], {"axes": (0,)})]))
>>> [(e.op.name, e.params["kind"]) for e in g.eqns]
[('kernel', 'reduction')]
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from ..ir.core import Eqn, Graph, Params, Var
from ..ir.opdef import Tag, get_op
from .common import fresh_var, logger, make_eqn, stamp
from .dce import eliminate_dead_code
from .fusion_rules import Chain, Role, classify, resolve_chains, role_of

__all__ = ["fuse_kernels"]

_KERNEL = get_op("kernel")


@dataclass
class _Group:
    members: list[int]      # sorted eqn indices
    mask: int               # members as a bitset
    anc: int                # strict ancestors of the members (bitset over eqn indices)
    desc: int               # strict descendants
    kind: str


class _Fusion:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.eqns = graph.eqns
        self.producer = {id(v): i for i, e in enumerate(self.eqns) for v in e.outs}
        self.roles = [role_of(e) for e in self.eqns]
        self.chains = resolve_chains(self.eqns, self.roles, self.producer)
        self._dependencies()
        self.group_of: dict[int, _Group] = {}
        self.groups: list[_Group] = []
        self._wrapped: dict[int, bool] = {}

    # ---- the dependency DAG, index maps seen through -----------------------------------

    def sources(self, i: int) -> list[Var]:
        """The values eqn ``i`` reads, seen through index maps (operands of a LINALG eqn
        are read directly: a BLAS call takes no index map)."""
        eqn = self.eqns[i]
        if eqn.op.has(Tag.LINALG) and self.roles[i] == Role.COMPUTE:
            return list(eqn.ins)
        found = (self.chains[id(v)].source for v in eqn.ins)
        return [v for v in found if v is not None]

    def _dependencies(self) -> None:
        n = len(self.eqns)
        preds: list[set[int]] = [set() for _ in range(n)]
        for i in range(n):
            # NOTE: an index map depends on its operand directly, so that a path through
            # it (into a matmul, which reads index maps directly) is seen by _acyclic.
            reads = self.eqns[i].ins if self.roles[i] == Role.INDEX_MAP else self.sources(i)
            for var in reads:
                p = self.producer.get(id(var))
                if p is not None:
                    preds[i].add(p)
        self.anc = [0] * n
        for i in range(n):
            for p in preds[i]:
                self.anc[i] |= self.anc[p] | (1 << p)
        succs: list[list[int]] = [[] for _ in range(n)]
        for i in range(n):
            for p in preds[i]:
                succs[p].append(i)
        self.desc = [0] * n
        for i in reversed(range(n)):
            for s in succs[i]:
                self.desc[i] |= self.desc[s] | (1 << s)

    # ---- grouping ----------------------------------------------------------------------

    def _acyclic(self, mask: int, anc: int, desc: int) -> bool:
        """Merging ``mask`` into one kernel keeps the kernels' graph acyclic: no path
        leaves it and comes back, either through single eqns or through another group
        (which runs as a unit, so whatever follows one member follows all of them)."""
        if anc & desc & ~mask:
            return False
        reach = desc & ~mask
        while True:
            grown = reach
            for group in self.groups:
                if group.mask & reach and not group.mask & mask:
                    grown |= group.mask | group.desc
            if grown & mask:
                return False
            if grown == reach:
                return True
            reach = grown

    def _try_merge(self, a: _Group, b: _Group) -> _Group | None:
        mask = a.mask | b.mask
        anc, desc = a.anc | b.anc, a.desc | b.desc
        if not self._acyclic(mask, anc, desc):
            return None
        members = sorted(a.members + b.members)
        kind = classify(members, self.eqns, self.chains, self.producer)
        if kind is None:
            return None
        return _Group(members, mask, anc, desc, kind)

    def _adopt(self, group: _Group) -> None:
        for i in group.members:
            self.group_of[i] = group
        self.groups = [g for g in self.groups if not g.mask & group.mask] + [group]

    def group_producers_into_consumers(self) -> None:
        for i, role in enumerate(self.roles):
            if role != Role.COMPUTE:
                continue
            kind = classify([i], self.eqns, self.chains, self.producer)
            if kind is None:
                continue
            group = _Group([i], 1 << i, self.anc[i], self.desc[i], kind)
            for var in self.sources(i):
                other = self.group_of.get(self.producer.get(id(var), -1))
                if other is None or other.mask & group.mask:
                    continue        # not fusible, or already absorbed
                merged = self._try_merge(group, other)
                if merged is not None:
                    group = merged
            self._adopt(group)

    def group_siblings(self) -> None:
        readers: dict[int, list[_Group]] = {}
        for i in sorted(self.group_of):
            for var in self.sources(i):
                found = readers.setdefault(id(var), [])
                if self.group_of[i] not in found:
                    found.append(self.group_of[i])
        for groups in readers.values():
            for k, first in enumerate(groups):
                for later in groups[k + 1:]:
                    a, b = self.group_of[first.members[0]], self.group_of[later.members[0]]
                    if a.mask & b.mask:
                        continue
                    merged = self._try_merge(a, b)
                    if merged is not None:
                        self._adopt(merged)

    # ---- assembly ----------------------------------------------------------------------

    def wrapped(self, i: int) -> _Group | None:
        """The group of eqn ``i`` if that group becomes a kernel."""
        group = self.group_of.get(i)
        if group is None:
            return None
        verdict = self._wrapped.get(id(group))
        if verdict is None:
            inside = set(group.members)
            alone = len(inside) == 1 and self.eqns[i].op.has(Tag.LINALG)
            reads = any(self.producer.get(id(v)) not in inside
                        for m in group.members for v in self.sources(m))
            # NOTE: a matmul alone stays a BLAS call; a group that reads only constants
            # stays as it is (a kernel takes at least one input).
            verdict = self._wrapped[id(group)] = not alone and reads
        return group if verdict else None

    def liveness(self) -> tuple[set[int], set[int]]:
        """Live eqns (index maps and constants read only inside kernels are not), and the
        ids of the vars something outside their producer's kernel reads."""
        needed: set[int] = {id(v) for v in self.graph.outputs}
        outside: set[int] = set(needed)
        live: set[int] = set()
        for i in reversed(range(len(self.eqns))):
            eqn = self.eqns[i]
            if not (eqn.op.has(Tag.STATEFUL) or any(id(v) in needed for v in eqn.outs)):
                continue
            live.add(i)
            group = self.wrapped(i)
            # NOTE: a kernel member reads through index maps (they are copied into the
            # body), so those index maps need not stay at the top level for it.
            reads = self.sources(i) if group is not None else list(eqn.ins)
            for var in reads:
                needed.add(id(var))
                p = self.producer.get(id(var))
                if group is None or p is None or self.group_of.get(p) is not group:
                    outside.add(id(var))
        return live, outside

    def assemble(self) -> Graph:
        live, outside = self.liveness()
        items: dict[int, object] = {}       # item key -> Eqn (top level) or _Group
        item_of: dict[int, int] = {}        # eqn index -> item key
        for i in sorted(live):
            group = self.wrapped(i)
            key = group.members[0] if group is not None else i
            item_of[i] = key
            items.setdefault(key, group if group is not None else self.eqns[i])
        built: dict[int, Eqn] = {}
        for key, item in items.items():
            if isinstance(item, _Group):
                members = [i for i in item.members if i in live]
                built[key] = self.kernel(members, outside)
            else:
                built[key] = item
        order = self._topological(built, item_of)
        kernels = sum(isinstance(items[k], _Group) for k in order)
        logger.debug("fuse_kernels: %d kernels from %d eqns in %s", kernels,
                     len(self.eqns), self.graph.name)
        return stamp(self.graph, [built[k] for k in order], self.graph.outputs, "fuse_kernels")

    def kernel(self, members: list[int], outside: set[int]) -> Eqn:
        kind = classify(members, self.eqns, self.chains, self.producer)
        if kind is None:
            raise AssertionError("unreachable: dropping dead members broke a kernel")
        inside = set(members)
        inputs: list[Var] = []
        body_in: dict[int, Var] = {}
        body_val: dict[int, Var] = {}       # id(outer computed var) -> body var
        copied: dict[int, Var] = {}         # index-map eqn index -> its body value
        body_eqns: list[Eqn] = []

        def read_source(var: Var) -> Var:
            if self.producer.get(id(var)) in inside:
                return body_val[id(var)]
            if id(var) not in body_in:
                inputs.append(var)
                body_in[id(var)] = fresh_var(var)
            return body_in[id(var)]

        def read(var: Var, direct: bool) -> Var:
            if direct:
                return read_source(var)
            chain: Chain = self.chains[id(var)]
            value = None if chain.source is None else read_source(chain.source)
            for m in reversed(chain.maps):
                if m not in copied:
                    eqn = self.eqns[m]
                    out = fresh_var(eqn.outs[0])
                    body_eqns.append(Eqn(eqn.op, () if value is None else (value,), (out,),
                                         eqn.params))
                    copied[m] = out
                value = copied[m]
            return value

        outs: list[Var] = []
        for i in members:
            eqn = self.eqns[i]
            direct = eqn.op.has(Tag.LINALG)
            ins = tuple(read(v, direct) for v in eqn.ins)
            new_outs = tuple(fresh_var(v) for v in eqn.outs)
            body_eqns.append(Eqn(eqn.op, ins, new_outs, eqn.params))
            for old, new in zip(eqn.outs, new_outs, strict=True):
                body_val[id(old)] = new
                if id(old) in outside:
                    outs.append(old)
        body = Graph([body_in[id(v)] for v in inputs], body_eqns,
                     [body_val[id(v)] for v in outs], name=f"{kind}_{members[0]}",
                     stage="fuse_kernels")
        if not inputs:
            raise AssertionError("unreachable: kernels without inputs are not wrapped")
        return make_eqn(_KERNEL, inputs, Params({"body": body, "kind": kind}), outs)

    def _topological(self, built: dict[int, Eqn], item_of: dict[int, int]) -> list[int]:
        """Kahn's algorithm over the items, breaking ties by original position."""
        deps: dict[int, set[int]] = {k: set() for k in built}
        for key, eqn in built.items():
            for var in eqn.ins:
                p = self.producer.get(id(var))
                if p is not None and item_of[p] != key:
                    deps[key].add(item_of[p])
        users: dict[int, list[int]] = {k: [] for k in built}
        for key, ds in deps.items():
            for d in ds:
                users[d].append(key)
        waiting = {k: len(ds) for k, ds in deps.items()}
        ready = [k for k, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            key = heapq.heappop(ready)
            order.append(key)
            for user in users[key]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, user)
        if len(order) != len(built):
            raise AssertionError("fusion produced a cycle; _acyclic should have refused it")
        return order


def fuse_kernels(graph: Graph) -> Graph:
    # NOTE: dead eqns would make groups whose live part reads nothing; DCE is pure and
    # cheap, so fusion does not depend on the pipeline having run it.
    fusion = _Fusion(eliminate_dead_code(graph))
    fusion.group_producers_into_consumers()
    fusion.group_siblings()
    return fusion.assemble()
