"""What several passes share: validated equation construction, constants as the IR
spells them (``constant`` and ``fill``), and the passes' logger.

Passes never mutate a Graph, an Eqn or a Var. They build new equation lists; a Var of
the old graph may be reused in the new one (Vars are immutable values too), which is
how a pass keeps the rest of the program wired without renaming everything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..ir.const_value import ConstValue
from ..ir.core import Eqn, Graph, TensorType, Var, VarMeta
from ..ir.errors import VerifyError
from ..ir.opdef import OpDef, Tag, get_op
from ..ir.regions import map_regions

__all__ = ["in_regions", "logger", "make_eqn", "fresh_var", "stamp", "FOLD_LIMIT", "uniform_value",
           "constant_array", "constant_eqn", "is_constant_eqn", "renamer"]

logger = logging.getLogger("tracejit.passes")

# NOTE: the largest constant (in elements) a pass materializes. Bigger uniform values
# stay as `fill`, so folding `broadcast_to(1.0, [16M])` costs nothing and the compiled
# program does not carry 64 MB of ones.
FOLD_LIMIT = 2 ** 16

_CONSTANT = get_op("constant")
_FILL = get_op("fill")


def make_eqn(op: OpDef, ins: Sequence[Var], params: Mapping[str, Any] | None = None,
             outs: Sequence[Var] | None = None, meta: VarMeta | None = None) -> Eqn:
    """An equation with normalized params and inferred types. ``outs`` (Vars to reuse)
    must have exactly the inferred types; otherwise fresh Vars carry ``meta``."""
    checked = op.make_params(dict(params or {}))
    types = op.infer_types([v.type for v in ins], checked)
    if outs is None:
        outs = tuple(Var(t, meta or VarMeta()) for t in types)
    elif tuple(v.type for v in outs) != tuple(types):
        raise VerifyError(f"a pass built outputs {[str(v.type) for v in outs]}, the op gives "
                          f"{[str(t) for t in types]}", op=op.name)
    return Eqn(op, tuple(ins), tuple(outs), checked)


def fresh_var(like: Var) -> Var:
    """A new Var of the same type and metadata (for nested graphs, which own their Vars)."""
    return Var(like.type, like.meta)


def stamp(graph: Graph, eqns: Sequence[Eqn], outputs: Sequence[Var], stage: str) -> Graph:
    """The new graph a pass returns: same inputs and name, its stage set to the pass."""
    return Graph(graph.inputs, eqns, outputs, name=graph.name, stage=stage)


def renamer(subst: dict[int, Var]):
    """``rename(var)``: follows a substitution (old Var id -> new Var), else the Var."""
    def rename(var: Var) -> Var:
        return subst.get(id(var), var)
    return rename


def in_regions(run):
    """``run`` (a pass) applied to every region of the graph's control flow, innermost
    first, and then to the graph: every pass sees loop bodies and branches as graphs of
    their own. (Fusion kernels' bodies are not regions: they are made last.)"""
    def recursive(graph: Graph) -> Graph:
        eqns = [map_regions(e, recursive) for e in graph.eqns]
        if any(new is not old for new, old in zip(eqns, graph.eqns, strict=True)):
            graph = graph.replace(eqns=eqns)
        return run(graph)
    return recursive


# ---- constants ----------------------------------------------------------------------------

def is_constant_eqn(eqn: Eqn) -> bool:
    """A pure equation with no inputs: its value is known at compile time."""
    return (not eqn.ins and eqn.op.has(Tag.CREATION)
            and not eqn.op.has(Tag.STATEFUL) and not eqn.op.has(Tag.RANDOM))


def _is_uniform(array: np.ndarray) -> bool:
    """All elements bit-identical (so NaN counts as equal to NaN, -0.0 not to 0.0)."""
    if array.size <= 1:
        return True
    rows = np.ascontiguousarray(array).reshape(-1).view(np.uint8).reshape(array.size, -1)
    return bool((rows == rows[0]).all())


def uniform_value(eqn: Eqn) -> np.ndarray | None:
    """The 0-d array every element of a constant equation's output equals, if there is one.

    ``fill`` answers without materializing anything; other constants are evaluated only
    up to FOLD_LIMIT elements.
    """
    if not is_constant_eqn(eqn) or len(eqn.outs) != 1:
        return None
    out = eqn.outs[0].type
    if eqn.op is _FILL:
        (scalar,) = _FILL.evaluate([], _FILL.make_params({**eqn.params, "shape": ()}))
        return scalar
    if out.size == 0:
        return None
    array = constant_array(eqn)
    if array is None or not _is_uniform(array):
        return None
    return array.reshape(-1)[:1].reshape(())


def constant_array(eqn: Eqn) -> np.ndarray | None:
    """The value of a constant equation, evaluated by the op's reference implementation
    (``None`` past FOLD_LIMIT elements or for a non-constant equation)."""
    if not is_constant_eqn(eqn) or len(eqn.outs) != 1:
        return None
    if eqn.op is _CONSTANT:
        return eqn.params["value"].array
    if eqn.outs[0].type.size > FOLD_LIMIT:
        return None
    (array,) = eqn.op.evaluate([], eqn.params)
    return array


def constant_eqn(value: np.ndarray, out_type: TensorType, out: Var | None = None,
                 meta: VarMeta | None = None) -> Eqn:
    """An equation producing ``value`` (broadcast to ``out_type``): ``fill`` when the value
    is uniform and has more than one element, else ``constant``. ``value`` must already
    have the dtype of ``out_type``."""
    value = np.asarray(value)
    if value.dtype != out_type.dtype.np_dtype:
        raise VerifyError(f"constant of dtype {value.dtype} for a {out_type} output")
    outs = None if out is None else (out,)
    if out_type.size > 1 and _is_uniform(value) and value.size >= 1:
        scalar = value.reshape(-1)[0].item()
        return make_eqn(_FILL, (), {"shape": out_type.shape, "value": scalar,
                                    "dtype": out_type.dtype}, outs, meta)
    array = np.broadcast_to(value, out_type.shape)
    return make_eqn(_CONSTANT, (), {"value": ConstValue(array)}, outs, meta)
