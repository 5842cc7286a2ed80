"""Algebraic simplification: a small table of local rewrite rules.

Every rule is exact: the rewritten program gives bit-for-bit the same results as the
original for every input, NaN, infinities and signed zeros included (up to the sign or
payload of a NaN). That rules out some familiar rewrites for floats:

* ``x * 0 -> 0`` holds for integers only (``inf * 0`` and ``nan * 0`` are NaN);
* ``x + 0 -> x`` holds for integers, and for floats only when the constant is ``-0.0``
  (``-0.0 + 0.0`` is ``+0.0``); ``x - 0 -> x`` holds for ``+0.0``;
* ``x / c -> x * (1/c)`` holds when every element of ``c`` is a power of two whose
  reciprocal is representable: both sides are then the same real number, rounded once.

Rules that change a value's type never fire (``x * 1`` where the constant broadcasts
``x`` to a bigger shape is left alone). Each rule that fires is logged to the
``tracejit.passes`` logger at DEBUG level and counted in ``fired`` when given.
``stop_gradient(x) -> x`` assumes differentiation has already happened, as it has by
the time a graph is optimized.

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> b = GraphBuilder()
>>> x = b.add_input(tensor_type([3], "f32"))
>>> y = b.emit1(ops.NEG, [b.emit1(ops.NEG, [x])])
>>> fired = Counter()
>>> g = simplify_algebra(b.build([y]), fired=fired)
>>> g.outputs[0] is x, dict(fired)
(True, {'neg_neg': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from ..ir.core import Eqn, Graph, TensorType, Var
from ..ir.errors import VerifyError
from ..ir.opdef import get_op
from .common import constant_array, constant_eqn, logger, make_eqn, renamer, stamp, uniform_value

__all__ = ["simplify_algebra", "RULES"]

_TRANSPOSE, _RESHAPE = get_op("transpose"), get_op("reshape")
_BROADCAST_TO, _MUL, _RECIPROCAL = get_op("broadcast_to"), get_op("mul"), get_op("reciprocal")
_MATMUL = get_op("matmul")
_RESHAPES = ("reshape", "expand_dims", "squeeze")   # movement ops that keep row-major order


class _Rewriter:
    """Builds the new equation list; rules look at producers and constants through it."""

    def __init__(self, graph: Graph, fired: Counter):
        self.graph = graph
        self.eqns: list[Eqn] = []
        self.producers: dict[int, Eqn] = {}
        self.subst: dict[int, Var] = {}
        self.fired = fired

    def producer(self, var: Var, op_names: tuple[str, ...] = ()) -> Eqn | None:
        eqn = self.producers.get(id(var))
        if eqn is None or (op_names and eqn.op.name not in op_names):
            return None
        return eqn

    def uniform(self, var: Var) -> np.ndarray | None:
        eqn = self.producers.get(id(var))
        return None if eqn is None else uniform_value(eqn)

    def constant(self, var: Var) -> np.ndarray | None:
        """The value of ``var`` when it is a known constant (broadcastable to its type)."""
        scalar = self.uniform(var)
        if scalar is not None:
            return scalar
        eqn = self.producers.get(id(var))
        return None if eqn is None else constant_array(eqn)

    def emit(self, op, ins, params=None, like: Var | None = None) -> Var:
        """Add a new single-output equation, itself simplified; returns its value."""
        eqn = make_eqn(op, ins, params, meta=None if like is None else like.meta)
        return self.add(eqn)

    def emit_constant(self, value: np.ndarray, type_: TensorType, like: Var) -> Var:
        return self.add(constant_eqn(value, type_, meta=like.meta))

    def add(self, eqn: Eqn) -> Var | None:
        if len(eqn.outs) == 1:
            out = eqn.outs[0]
            for name, rule in RULES.get(eqn.op.name, ()):
                result = rule(self, eqn)
                if result is None:
                    continue
                if result.type != out.type:
                    raise VerifyError(f"rule {name} changed {out.type} into {result.type}",
                                      op=eqn.op.name)
                self.fired[name] += 1
                logger.debug("simplify_algebra: rule %s fired on %s in %s", name,
                             eqn.op.name, self.graph.name)
                return result
        self.eqns.append(eqn)
        for var in eqn.outs:
            self.producers[id(var)] = eqn
        return eqn.outs[0] if eqn.outs else None


# ---- predicates on constants ----------------------------------------------------------------

def _is(rw: _Rewriter, var: Var, value: float, sign: bool | None = None) -> bool:
    """``var`` is a constant equal to ``value`` everywhere (with the given sign bit)."""
    scalar = rw.uniform(var)
    if scalar is None or scalar.dtype == np.bool_ or not bool(scalar == value):
        return False
    return sign is None or bool(np.signbit(scalar.astype(np.float64))) == sign


def _integer(var: Var) -> bool:
    return var.dtype.is_integer


def _same(var: Var, eqn: Eqn) -> Var | None:
    """``var`` when it can stand for the eqn's output (identical type), else None."""
    return var if var.type == eqn.outs[0].type else None


# ---- the rules -----------------------------------------------------------------------------

def mul_one(rw, eqn):
    a, b = eqn.ins
    for x, c in ((a, b), (b, a)):
        if _is(rw, c, 1) and _same(x, eqn):
            return x
    return None


def mul_zero_int(rw, eqn):
    out = eqn.outs[0]
    if _integer(out) and any(_is(rw, v, 0) for v in eqn.ins):
        return rw.emit_constant(np.zeros((), out.dtype.np_dtype), out.type, out)
    return None


def add_zero(rw, eqn):
    a, b = eqn.ins
    for x, c in ((a, b), (b, a)):
        zero = _is(rw, c, 0) if _integer(x) else _is(rw, c, 0, sign=True)
        if zero and _same(x, eqn):
            return x
    return None


def sub_zero(rw, eqn):
    x, c = eqn.ins
    zero = _is(rw, c, 0) if _integer(x) else _is(rw, c, 0, sign=False)
    return _same(x, eqn) if zero else None


def div_one(rw, eqn):
    x, c = eqn.ins
    return _same(x, eqn) if _is(rw, c, 1) else None


def div_power_of_two(rw, eqn):
    x, c = eqn.ins
    if not x.dtype.is_float:
        return None
    value = rw.constant(c)
    if value is None or value.size == 0:
        return None
    wide = value.astype(np.float64)
    if not (np.isfinite(wide).all() and (np.abs(np.frexp(wide)[0]) == 0.5).all()):
        return None
    (recip,) = _RECIPROCAL.evaluate([value], _RECIPROCAL.make_params({}))
    wide_recip = recip.astype(np.float64)
    if not (np.isfinite(wide_recip).all() and (wide_recip * wide == 1.0).all()):
        return None
    inverse = rw.emit_constant(recip, c.type, c)
    return rw.emit(_MUL, [x, inverse], like=eqn.outs[0])


def _involution(op_name: str):
    def rule(rw, eqn):
        inner = rw.producer(eqn.ins[0], (op_name,))
        return None if inner is None else _same(inner.ins[0], eqn)
    rule.__name__ = f"{op_name}_{op_name}"
    return rule


def transpose_identity(rw, eqn):
    perm = eqn.params["perm"]
    return _same(eqn.ins[0], eqn) if perm == tuple(range(len(perm))) else None


def transpose_transpose(rw, eqn):
    inner = rw.producer(eqn.ins[0], ("transpose",))
    if inner is None:
        return None
    first, second = inner.params["perm"], eqn.params["perm"]
    # out.shape[i] = mid.shape[second[i]] = x.shape[first[second[i]]]
    perm = tuple(first[p] for p in second)
    return rw.emit(_TRANSPOSE, inner.ins, {"perm": perm}, like=eqn.outs[0])


def reshape_identity(rw, eqn):
    return _same(eqn.ins[0], eqn)


def reshape_reshape(rw, eqn):
    inner = rw.producer(eqn.ins[0], _RESHAPES)
    if inner is None:
        return None
    return rw.emit(_RESHAPE, inner.ins, {"shape": eqn.outs[0].shape}, like=eqn.outs[0])


def broadcast_identity(rw, eqn):
    return _same(eqn.ins[0], eqn)


def broadcast_broadcast(rw, eqn):
    inner = rw.producer(eqn.ins[0], ("broadcast_to",))
    if inner is None:
        return None
    return rw.emit(_BROADCAST_TO, inner.ins, {"shape": eqn.outs[0].shape}, like=eqn.outs[0])


def cast_same(rw, eqn):
    return _same(eqn.ins[0], eqn)


def select_same(rw, eqn):
    cond, a, b = eqn.ins
    if a is b:
        return _same(a, eqn)
    choice = rw.uniform(cond)
    if choice is None:
        return None
    return _same(a if bool(choice) else b, eqn)


def same_operands(rw, eqn):
    a, b = eqn.ins
    return _same(a, eqn) if a is b else None


def identity_op(rw, eqn):
    return _same(eqn.ins[0], eqn)


def pow_one(rw, eqn):
    x, c = eqn.ins
    return _same(x, eqn) if _is(rw, c, 1) else None


def _swaps_last_two(perm: tuple[int, ...]) -> bool:
    n = len(perm)
    return n >= 2 and perm == tuple(range(n - 2)) + (n - 1, n - 2)


def matmul_transpose(rw, eqn):
    """matmul(transpose(a), b) -> matmul[transpose_a](a, b) when the transpose swaps the
    last two axes: BLAS reads the operand transposed, so no copy is made."""
    ins, params, changed = list(eqn.ins), dict(eqn.params), False
    for i, flag in enumerate(("transpose_a", "transpose_b")):
        inner = rw.producer(ins[i], ("transpose",))
        if inner is not None and _swaps_last_two(inner.params["perm"]):
            ins[i] = inner.ins[0]
            params[flag] = not params[flag]
            changed = True
    return rw.emit(_MATMUL, ins, params, like=eqn.outs[0]) if changed else None


Rule = Callable[[_Rewriter, Eqn], "Var | None"]

# NOTE: the table names ops on purpose: a rewrite rule is about particular ops.
RULES: dict[str, tuple[tuple[str, Rule], ...]] = {
    "mul": (("mul_one", mul_one), ("mul_zero_int", mul_zero_int)),
    "add": (("add_zero", add_zero),),
    "sub": (("sub_zero", sub_zero),),
    "div": (("div_one", div_one), ("div_power_of_two", div_power_of_two)),
    "pow": (("pow_one", pow_one),),
    "neg": (("neg_neg", _involution("neg")),),
    "logical_not": (("not_not", _involution("logical_not")),),
    "transpose": (("transpose_identity", transpose_identity),
                  ("transpose_transpose", transpose_transpose)),
    **{name: (("reshape_identity", reshape_identity), ("reshape_reshape", reshape_reshape))
       for name in _RESHAPES},
    "broadcast_to": (("broadcast_identity", broadcast_identity),
                     ("broadcast_broadcast", broadcast_broadcast)),
    "cast": (("cast_same", cast_same),),
    "select": (("select_same", select_same),),
    "maximum": (("max_same", same_operands),),
    "minimum": (("min_same", same_operands),),
    "stop_gradient": (("stop_gradient", identity_op),),
    "matmul": (("matmul_transpose", matmul_transpose),),
}


def simplify_algebra(graph: Graph, *, fired: Counter | None = None) -> Graph:
    """Apply RULES in one forward sweep (new equations are simplified as they are made,
    so chains collapse in one pass); ``fired`` counts each rule that fired."""
    rw = _Rewriter(graph, Counter() if fired is None else fired)
    rename = renamer(rw.subst)
    for eqn in graph.eqns:
        ins = tuple(rename(v) for v in eqn.ins)
        if ins != eqn.ins:
            eqn = Eqn(eqn.op, ins, eqn.outs, eqn.params)
        result = rw.add(eqn)
        if len(eqn.outs) == 1 and result is not eqn.outs[0]:
            rw.subst[id(eqn.outs[0])] = result
    return stamp(graph, rw.eqns, [rename(v) for v in graph.outputs], "simplify_algebra")
