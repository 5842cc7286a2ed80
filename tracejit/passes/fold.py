"""Constant folding: equations whose operands are all known are replaced by their value.

The value is computed by the op's reference implementation (``op.evaluate``), the one
definition of what an op means. What folds:

* any pure equation whose operands are constants, when every operand and every result
  has at most FOLD_LIMIT elements (so folding never materializes a huge array);
* an ELEMENTWISE op whose operands are all uniform (a ``fill``, or a constant whose
  elements are all equal) at any size: it is evaluated once on the 0-d values and the
  result is a ``fill`` of the output's shape;
* a one-input MOVEMENT op (reshape, transpose, broadcast_to, slice, tile, ...) of a
  uniform value at any size: it only copies elements, so the result is the same
  ``fill`` in the new shape.

A uniform result with more than one element is written as ``fill``; anything else as
``constant``. Never folded: ops tagged STATEFUL (their effect is the point), ops
with no inputs (they already are constants), and control flow, whose work may be
unbounded; but a BRANCH op (``cond``) whose index is a constant is replaced by the
equations of the branch it selects. ``random_bits`` is a pure function of its
key, so with a constant key it folds like any other op, under the same size limit.

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> import numpy as np
>>> b = GraphBuilder()
>>> x = b.add_input(tensor_type([3], "f32"))
>>> two = b.emit1(ops.CONSTANT, [], {"value": np.float32(2)})
>>> g = fold_constants(b.build([b.emit1(ops.MUL, [x, b.emit1(ops.EXP, [two])])]))
>>> [e.op.name for e in g.eqns]
['constant', 'constant', 'mul']
"""

from __future__ import annotations

import numpy as np

from ..ir.builder import GraphBuilder
from ..ir.core import Eqn, Graph, Var
from ..ir.opdef import Tag
from ..ir.ops_control import branch_index
from ..ir.regions import inline
from .common import (
    FOLD_LIMIT,
    constant_array,
    constant_eqn,
    is_constant_eqn,
    logger,
    renamer,
    stamp,
    uniform_value,
)

__all__ = ["fold_constants"]


class _Known:
    """A value known at compile time: its defining constant equation, and (computed
    on demand) its uniform scalar and its full array."""

    __slots__ = ("eqn", "_uniform", "_array")
    _UNSET = object()

    def __init__(self, eqn: Eqn):
        self.eqn = eqn
        self._uniform = self._array = self._UNSET

    @property
    def uniform(self) -> np.ndarray | None:
        if self._uniform is self._UNSET:
            self._uniform = uniform_value(self.eqn)
        return self._uniform

    @property
    def array(self) -> np.ndarray | None:
        if self._array is self._UNSET:
            self._array = constant_array(self.eqn)
        return self._array


def _fold(eqn: Eqn, known: list[_Known]) -> list[np.ndarray] | None:
    """The results of ``eqn`` (each broadcastable to its output type) or None."""
    op = eqn.op
    sizes_ok = (all(v.type.size <= FOLD_LIMIT for v in eqn.ins)
                and all(v.type.size <= FOLD_LIMIT for v in eqn.outs))
    if not sizes_ok:
        uniforms = [k.uniform for k in known]
        if any(u is None for u in uniforms):
            return None
        if op.has(Tag.ELEMENTWISE):
            # NOTE: an elementwise reference applied to 0-d operands gives exactly the
            # element it would give everywhere, so this is still the one implementation.
            return list(op.evaluate(uniforms, eqn.params))
        if op.has(Tag.MOVEMENT) and op.arity == 1:
            return [uniforms[0]]
        return None
    arrays = [k.array for k in known]
    if any(a is None for a in arrays):
        return None
    return list(op.evaluate(arrays, eqn.params))


def _taken_branch(eqn: Eqn, known: dict[int, _Known], subst: dict[int, Var]) -> list[Eqn]:
    """The equations of the branch a known index selects, inlined, reading the branch
    operands; ``subst`` learns which Vars stand for the eqn's outputs."""
    index = known[id(eqn.ins[0])].array
    branches = eqn.params["branches"]
    builder = GraphBuilder("inline")
    outs = inline(builder, branches[branch_index(index, len(branches))], eqn.ins[1:])
    for old, new in zip(eqn.outs, outs, strict=True):
        subst[id(old)] = new
    return builder.eqns


def fold_constants(graph: Graph) -> Graph:
    known: dict[int, _Known] = {}
    eqns: list[Eqn] = []
    folded = 0
    subst: dict[int, Var] = {}
    rename = renamer(subst)
    for eqn in graph.eqns:
        if subst:
            ins = tuple(rename(v) for v in eqn.ins)
            if ins != eqn.ins:
                eqn = Eqn(eqn.op, ins, eqn.outs, eqn.params)
        if eqn.op.has(Tag.CONTROL_FLOW):
            # NOTE: never run whole (a loop's work is unbounded); a branch chosen by a
            # constant is replaced by its equations, which fold on the next round
            if eqn.op.has(Tag.BRANCH) and id(eqn.ins[0]) in known and \
                    known[id(eqn.ins[0])].array is not None:
                eqns.extend(_taken_branch(eqn, known, subst))
                folded += 1
            else:
                eqns.append(eqn)
            continue
        if is_constant_eqn(eqn):
            if len(eqn.outs) == 1:
                known[id(eqn.outs[0])] = _Known(eqn)
            eqns.append(eqn)
            continue
        if (eqn.op.has(Tag.STATEFUL) or not eqn.ins
                or any(id(v) not in known for v in eqn.ins)):
            eqns.append(eqn)
            continue
        values = _fold(eqn, [known[id(v)] for v in eqn.ins])
        if values is None:
            eqns.append(eqn)
            continue
        folded += 1
        for out, value in zip(eqn.outs, values, strict=True):
            # NOTE: the new constant defines the very Var the old eqn defined, so every
            # use downstream stays wired without a substitution.
            new = constant_eqn(np.asarray(value), out.type, out=out)
            known[id(out)] = _Known(new)
            eqns.append(new)
    if folded:
        logger.debug("fold_constants: folded %d eqns in %s", folded, graph.name)
    return stamp(graph, eqns, [rename(v) for v in graph.outputs], "fold_constants")
