"""What may be fused, and the rule a kernel of each kind obeys (docs/passes.md, "Fusion").

Equations play one of three roles for fusion:

* **compute**: ELEMENTWISE ops (not STATEFUL, not RANDOM), REDUCE ops, and LINALG ops;
  each belongs to at most one kernel and is never duplicated;
* **index maps**: the ops tagged RESHAPE or BROADCAST (``fuses_as_index_map``)
  and small constants (pure CREATION ops with no inputs whose held array, if any, has at
  most INLINE_CONSTANT_LIMIT elements). They do no arithmetic, so each kernel that
  reads one gets its own copy in its body (a way to index a kernel input, or a value
  computed in the loop);
* everything else, which fusion leaves alone.

A kernel's **sources** are the values it reads from outside (its inputs); its
**computed** values are the outputs of its compute members. "Size" is an element count:
row-major reshapes keep the flat index, so the loop nest runs over flat indices.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..ir.const_value import ConstValue
from ..ir.core import Eqn, Var
from ..ir.opdef import Tag
from .common import is_constant_eqn

__all__ = ["fuses_as_index_map", "INLINE_CONSTANT_LIMIT", "Role", "role_of", "Chain",
           "resolve_chains", "classify"]



def fuses_as_index_map(op) -> bool:
    """Index maps fusion reads through: those that keep the row-major order or only
    replicate. Other index maps (transpose, slice, reverse, tile) stay equations of
    their own: the fusion policy every benchmark figure so far was measured with."""
    return op.has(Tag.INDEX_MAP) and (op.has(Tag.RESHAPE) or op.has(Tag.BROADCAST))

# Constants with more elements stay one top-level value that kernels read as an input.
INLINE_CONSTANT_LIMIT = 1024


class Role:
    COMPUTE = "compute"
    INDEX_MAP = "index_map"
    OTHER = "other"


def role_of(eqn: Eqn) -> str:
    op = eqn.op
    if op.has(Tag.STATEFUL) or op.has(Tag.RANDOM):
        return Role.OTHER
    if is_constant_eqn(eqn):
        held = [p for p in eqn.params.values() if isinstance(p, ConstValue)]
        small = all(p.array.size <= INLINE_CONSTANT_LIMIT for p in held)
        return Role.INDEX_MAP if small else Role.OTHER
    if fuses_as_index_map(op):
        return Role.INDEX_MAP
    if op.has(Tag.ELEMENTWISE) or op.has(Tag.REDUCE) or op.has(Tag.LINALG):
        return Role.COMPUTE
    return Role.OTHER


@dataclass(frozen=True)
class Chain:
    """How an operand is reached: index-map eqns (outermost first) over ``source`` (an
    outside value or a computed value), or over nothing for an inlined constant."""

    maps: tuple[int, ...]      # eqn indices
    source: Var | None


def resolve_chains(eqns: Sequence[Eqn], roles: Sequence[str],
                   producer: dict[int, int]) -> dict[int, Chain]:
    """The Chain of every Var that an equation reads (keyed by id)."""
    chains: dict[int, Chain] = {}

    def resolve(var: Var) -> Chain:
        found = chains.get(id(var))
        if found is not None:
            return found
        where = producer.get(id(var))
        if where is None or roles[where] != Role.INDEX_MAP:
            chain = Chain((), var)
        elif not eqns[where].ins:
            chain = Chain((where,), None)
        else:
            inner = resolve(eqns[where].ins[0])
            chain = Chain((where,) + inner.maps, inner.source)
        chains[id(var)] = chain
        return chain

    for eqn in eqns:
        for var in eqn.ins:
            resolve(var)
    return chains


def reduced_axes(eqn: Eqn) -> tuple[int, ...]:
    params = eqn.params
    return tuple(params["axes"]) if "axes" in params else (params["axis"],)


def classify(members: Sequence[int], eqns: Sequence[Eqn], chains: dict[int, Chain],
             producer: dict[int, int]) -> str | None:
    """The kernel kind of a set of compute eqns (sorted indices), or None when the set
    cannot be one loop nest. The rules, stated in docs/passes.md:

    * at most one LINALG eqn, and then no REDUCE eqn (kind matmul_epilogue); the
      LINALG operands are outside values read directly (no prologue, no index map);
    * REDUCE eqns (kind reduction) all reduce one input shape over the same axes;
    * an elementwise eqn's computed operands have its output's size (only sources and
      constants are broadcast, so no computed value is ever recomputed);
    * computed values reshaped inside the kernel keep their size;
    * elementwise kind: every computed value has one size D;
    * reduction kind: values that do not depend on a reduction (the prologue, including
      side outputs) have the reduction input's size; values that do (the epilogue) have
      its output's size and read no prologue value;
    * matmul_epilogue kind: every other computed value has the matmul output's size.
    """
    inside: Collection[int] = set(members)
    ops = [eqns[i].op for i in members]
    n_linalg = sum(op.has(Tag.LINALG) for op in ops)
    reductions = [i for i in members if eqns[i].op.has(Tag.REDUCE)]
    if n_linalg > 1 or (n_linalg and reductions):
        return None
    kind = "matmul_epilogue" if n_linalg else "reduction" if reductions else "elementwise"
    if reductions:
        shapes = {(eqns[i].ins[0].shape, reduced_axes(eqns[i])) for i in reductions}
        if len(shapes) > 1:
            return None
    computed: dict[int, tuple[int, bool]] = {}   # id(var) -> (size, depends on an anchor)

    def operand(var: Var) -> tuple[int, bool] | None | bool:
        """(size, post) for a computed value, False for a source, None if invalid."""
        chain = chains[id(var)]
        if chain.source is None or producer.get(id(chain.source)) not in inside:
            return False
        size, post = computed[id(chain.source)]
        if any(eqns[m].outs[0].type.size != size for m in chain.maps):
            return None
        return size, post

    pre_sizes, post_sizes = set(), set()
    for i in members:
        eqn = eqns[i]
        out_size = eqn.outs[0].type.size
        if eqn.op.has(Tag.LINALG):
            if any(producer.get(id(chains[id(v)].source)) in inside for v in eqn.ins):
                return None
            computed[id(eqn.outs[0])] = (out_size, True)
            continue
        infos = [operand(v) for v in eqn.ins]
        if any(info is None for info in infos):
            return None
        inner = [info for info in infos if info is not False]
        if eqn.op.has(Tag.REDUCE):
            if any(post for _, post in inner):
                return None
            computed[id(eqn.outs[0])] = (out_size, True)
            continue
        if any(size != out_size for size, _ in inner):
            return None
        post = any(p for _, p in inner)
        if post and kind == "reduction" and not all(p for _, p in inner):
            return None
        (post_sizes if post else pre_sizes).add(out_size)
        for var in eqn.outs:
            computed[id(var)] = (out_size, post)
    if kind == "elementwise":
        return kind if len(pre_sizes) <= 1 else None
    anchor = eqns[reductions[0] if reductions else
                  next(i for i in members if eqns[i].op.has(Tag.LINALG))]
    d_out = anchor.outs[0].type.size
    if kind == "reduction":
        d_in = anchor.ins[0].type.size
        return kind if pre_sizes <= {d_in} and post_sizes <= {d_out} else None
    return kind if (pre_sizes | post_sizes) <= {d_out} else None
