"""Gradient rules of the control-flow ops: regions are differentiated as graphs.

``differentiate`` (autodiff's ``add_gradients``, handed to the rules through the
SymBuilder as ``g.differentiate``, since it lives above the IR) appends a region's
gradient equations to a builder; the rules wrap those gradient graphs in control flow
of their own:

* ``cond``: a ``cond`` on the same index over the branches' gradient graphs: the
  gradient flows through the branch that ran.
* ``scan``: before the backward walk, autodiff swaps the scan for one whose body also
  outputs, stacked per iteration, the *residuals* its gradient needs
  (``scan_with_residuals``); the rule is then a scan running the other way over the
  residuals, carrying the carried values' cotangents and summing the invariants'.
  Residuals are the body's intermediate values that vary per iteration and are not
  cheap to recompute (matmuls, reductions, nested loops: elementwise and movement ops
  are recomputed from them), and the carried values the gradient reads; values that
  depend only on invariants are recomputed too.
  With ``remat=True`` only the carried values are stored and the backward body
  recomputes the forward body first (memory per iteration: the carry; time: one more
  forward).
* ``while_loop`` with a bound (``max_trips``, TensorFlow's ``maximum_iterations``):
  differentiated as a scan of that many steps whose body runs only while the loop
  would, so its residuals are stored per iteration like TF1's stacks (linear time and
  memory in the bound).
* ``while_loop`` without a bound: its trip count is data-dependent and the IR's shapes
  are static, so it counts the iterations with a second loop, then walks back: step
  ``j`` recomputes the carried value ``c_j`` from ``init`` (j body iterations) and
  applies the body's gradient there. Time is quadratic in the trip count, memory
  constant.
"""

from __future__ import annotations

from collections.abc import Sequence

from .builder import GraphBuilder
from .core import Eqn, Graph, TensorType, Var, VarMeta
from .dtypes import bool_, int32
from .opdef import Tag, get_op
from .regions import inline
from .symbolic import Sym

__all__ = ["cond_vjp", "scan_vjp", "scan_with_residuals", "while_vjp", "region_vjp"]

_I32 = TensorType((), int32)


def _floats(vars_: Sequence[Var]) -> list[int]:
    return [k for k, v in enumerate(vars_) if v.dtype.is_float]


def _zeros(b: GraphBuilder, type_: TensorType) -> Var:
    return b.emit1(get_op("fill"), [], {"shape": type_.shape, "value": 0, "dtype": type_.dtype})


def _scalar(b: GraphBuilder, value: int) -> Var:
    return b.emit1(get_op("fill"), [], {"shape": (), "value": value, "dtype": int32})


class RegionGradient:
    """A region's gradient graph ``G``: inputs, the forward outputs (inlined), the
    cotangent inputs, and the gradients (``G.outputs``) for inputs ``wrt``."""

    def __init__(self, region: Graph, wrt: Sequence[int], out_ct: Sequence[int],
                 differentiate):
        b = GraphBuilder(f"{region.name}_vjp")
        self.ins = [b.add_input(v.type, v.meta) for v in region.inputs]
        self.outs = inline(b, region, self.ins)
        self.cts = [b.add_input(region.outputs[k].type) for k in out_ct]
        grads = differentiate(b, [self.outs[k] for k in out_ct], [self.ins[k] for k in wrt],
                              self.cts) if wrt and out_ct else [None] * len(wrt)
        grads = [gv if gv is not None else _zeros(b, self.ins[k].type)
                 for gv, k in zip(grads, wrt, strict=True)]
        self.builder, self.grads = b, grads
        self.graph = b.build(grads, stage="region")


def region_vjp(region: Graph, wrt: Sequence[int], out_ct: Sequence[int],
               differentiate) -> Graph:
    """``(*region inputs, *cotangents of outputs out_ct) -> cotangents of inputs wrt``."""
    return RegionGradient(region, wrt, out_ct, differentiate).graph


def _emit(g, op: str, ins: Sequence[Var], params) -> list[Sym]:
    outs = g.builder.emit(get_op(op), list(ins), params, **({} if g.meta is None
                                                             else {"meta": g.meta}))
    return [Sym(v, g) for v in outs]


# ---- cond ----------------------------------------------------------------------------------

def cond_vjp(g, ins, outs, cts, params):
    index, operands = ins[0], ins[1:]
    wrt = _floats([s.var for s in operands])
    out_ct = _floats([s.var for s in outs])
    if not wrt or not out_ct:
        return [None] * len(ins)
    backward = tuple(region_vjp(branch, wrt, out_ct, g.differentiate)
                     for branch in params["branches"])
    grads = _emit(g, "cond", [index.var, *(s.var for s in operands),
                              *(cts[k].var for k in out_ct)], {"branches": backward})
    result: list = [None] * len(ins)
    for j, k in enumerate(wrt):
        result[1 + k] = grads[j]
    return result


# ---- scan ----------------------------------------------------------------------------------

def _cheap(eqn: Eqn) -> bool:
    """Recomputed in the backward loop rather than stored: elementwise and movement ops
    read little and compute little, while storing their results costs a write in the
    forward loop and a read in the backward one. Matmuls, reductions, nested loops and
    the rest are stored (the policy of JAX's ``checkpoint_dots``, extended)."""
    return (eqn.op.has(Tag.ELEMENTWISE) or eqn.op.has(Tag.MOVEMENT)) and \
        not eqn.op.has(Tag.CONTROL_FLOW)


class _ScanSplit:
    """What a scan body's gradient needs from each iteration (see the module doc)."""

    def __init__(self, body: Graph, n: int, m: int, remat: bool, differentiate):
        self.wrt = [k for k in _floats(body.inputs) if k > 0]
        self.out_ct = _floats(body.outputs)
        rg = RegionGradient(body, self.wrt, self.out_ct, differentiate)
        self.rg = rg
        eqns = rg.builder.eqns
        ct_ids = {id(v) for v in rg.cts}
        vary_ids = {id(v) for v in rg.ins[:1 + n + m]}
        for eqn in eqns:
            if any(id(v) in ct_ids for v in eqn.ins):
                ct_ids.update(id(o) for o in eqn.outs)
            elif any(id(v) in vary_ids for v in eqn.ins):
                vary_ids.update(id(o) for o in eqn.outs)
        need = {id(v) for v in rg.grads}
        kept: list[Eqn] = []
        stored: dict[int, Var] = {}
        for eqn in reversed(eqns):
            if not any(id(o) in need for o in eqn.outs):
                continue
            backward = any(id(o) in ct_ids for o in eqn.outs)
            varying = any(id(o) in vary_ids for o in eqn.outs)
            if backward or not varying or remat or _cheap(eqn):
                kept.append(eqn)
                need.update(id(v) for v in eqn.ins)
            else:
                stored.update((id(o), o) for o in eqn.outs if id(o) in need)
        carried = [v for v in rg.ins[1:1 + n] if id(v) in need]
        order = {id(o): i for i, e in enumerate(eqns) for o in e.outs}
        self.residuals = carried + sorted(stored.values(), key=lambda v: order[id(v)])
        self.kept = list(reversed(kept))
        forward = [e for e in eqns if not any(id(o) in ct_ids for o in e.outs)]
        self.forward = Graph(rg.ins, forward, list(rg.outs) + self.residuals,
                             name=body.name, stage="region")


def scan_with_residuals(eqn: Eqn, differentiate):
    params = dict(eqn.params)
    split = _ScanSplit(params["body"], params["num_carried"], params["num_xs"],
                       params["remat"], differentiate)
    params["body"] = split.forward
    checked = eqn.op.make_params(params)
    types = eqn.op.infer_types([v.type for v in eqn.ins], checked)
    meta = eqn.outs[0].meta if eqn.outs else VarMeta()
    extra = tuple(Var(t, meta) for t in types[len(eqn.outs):])
    return [Eqn(eqn.op, eqn.ins, eqn.outs + extra, checked)], split


def scan_vjp(g, ins, outs, cts, params, saved: _ScanSplit):
    split, rg = saved, saved.rg
    n, m, length = params["num_carried"], params["num_xs"], params["length"]
    body = params["body"]
    n_ys = len(body.outputs) - n - len(split.residuals)
    carried_f = [k for k in _floats(rg.ins[1:1 + n])]
    xs_f = [k for k in _floats(rg.ins[1 + n:1 + n + m])]
    inv_f = [k for k in _floats(rg.ins[1 + n + m:])]
    ys_f = [k for k in split.out_ct if k >= n]
    if not split.wrt:
        return [None] * len(ins)
    residual_inputs = {id(v) for v in rg.ins}
    stored = [v for v in split.residuals if id(v) not in residual_inputs]
    res_types = [v.type for v in split.residuals]

    # the backward body: (i, ct_c, acc, ct_y, residuals, x, invariants) -> (ct_c, acc, ct_x)
    b = GraphBuilder(f"{body.name}_backward")
    i = b.add_input(_I32)
    ct_c = [b.add_input(rg.ins[1 + k].type) for k in carried_f]
    acc = [b.add_input(rg.ins[1 + n + m + k].type) for k in inv_f]
    ct_y = [b.add_input(body.outputs[k].type) for k in ys_f]
    res = [b.add_input(t) for t in res_types]
    xv = [b.add_input(v.type) for v in rg.ins[1 + n:1 + n + m]]
    inv = [b.add_input(v.type) for v in rg.ins[1 + n + m:]]
    by_res = {id(v): r for v, r in zip(split.residuals, res, strict=True)}
    feed: dict[int, Var] = {id(rg.ins[0]): i}
    for v in rg.ins[1:1 + n]:
        feed[id(v)] = by_res.get(id(v)) or _zeros(b, v.type)
    feed.update((id(v), x) for v, x in zip(rg.ins[1 + n:1 + n + m], xv, strict=True))
    feed.update((id(v), x) for v, x in zip(rg.ins[1 + n + m:], inv, strict=True))
    ct_of_out = dict(zip(split.out_ct, rg.cts, strict=True))
    for k in split.out_ct:
        feed[id(ct_of_out[k])] = ct_c[carried_f.index(k)] if k < n else ct_y[ys_f.index(k)]
    feed.update((id(v), by_res[id(v)]) for v in stored)
    core_inputs = list(rg.ins) + list(rg.cts) + stored
    core = Graph(core_inputs, split.kept, rg.grads, name=body.name, stage="region")
    grads = dict(zip(split.wrt, inline(b, core, [feed[id(v)] for v in core_inputs]),
                     strict=True))
    new_ct_c = [grads[1 + k] for k in carried_f]
    sunk = _sinkable(b, inv, {k: grads[1 + n + m + k] for k in inv_f})
    for a, k in zip(acc, inv_f, strict=True):
        if k in sunk:
            b.inputs.remove(a)
    summed = [(a, k) for a, k in zip(acc, inv_f, strict=True) if k not in sunk]
    new_acc = [b.emit1(get_op("add"), [a, grads[1 + n + m + k]]) for a, k in summed]
    ct_x = [grads[1 + n + k] for k in xs_f]
    stacked = [v for k in sunk for v in sunk[k]]
    backward = b.build(new_ct_c + new_acc + ct_x + stacked, stage="region")

    # operands: carried (ct_c, acc), xs (ct_ys, residual stacks, forward xs), invariants
    builder = g.builder
    residual_stacks = [s.var for s in outs[n + n_ys:]]
    init = [cts[k].var for k in carried_f] + [_zeros(builder, ins[n + m + k].var.type)
                                              for _, k in summed]
    xs = [cts[k].var for k in ys_f] + residual_stacks + [s.var for s in ins[n:n + m]]
    invariants = [s.var for s in ins[n + m:]]
    results = _emit(g, "scan", init + xs + invariants, {
        "body": backward, "length": length, "reverse": not params["reverse"],
        "num_carried": len(init), "num_xs": len(xs), "remat": params["remat"]})
    out: list = [None] * len(ins)
    for j, k in enumerate(carried_f):
        out[k] = results[j]
    for j, (_, k) in enumerate(summed):
        out[n + m + k] = results[len(carried_f) + j]
    for j, k in enumerate(xs_f):
        out[n + k] = results[len(init) + j]
    at = len(init) + len(xs_f)
    for j, k in enumerate(sunk):
        left, right = results[at + 2 * j], results[at + 2 * j + 1]
        out[n + m + k] = _emit(g, "matmul", [_flatten_steps(g, left), _flatten_steps(g, right)],
                               {"transpose_a": True})[0]
    return out


def _sinkable(b: GraphBuilder, invariants: Sequence[Var], grads: dict[int, Var]) -> dict:
    """The invariants whose per-iteration gradient is ``a^T @ b`` of per-iteration
    values (the weight gradient of ``h @ w`` in a recurrent cell): their sum over the
    iterations is one matmul of the stacked ``a``s and ``b``s after the loop, with
    ``L * k`` rows to contract instead of ``L`` matmuls of ``k`` rows and a weight-sized
    accumulation per iteration. ``{invariant: (a, b)}`` for those."""
    producer = {id(o): e for e in b.eqns for o in e.outs}
    fixed = {id(v) for v in invariants}
    matmul = get_op("matmul")
    found = {}
    for k, var in grads.items():
        eqn = producer.get(id(var))
        if eqn is None or eqn.op is not matmul or not eqn.params["transpose_a"] or \
                eqn.params["transpose_b"]:
            continue
        left, right = eqn.ins
        if left.type.ndim == 2 and right.type.ndim == 2 and \
                id(left) not in fixed and id(right) not in fixed:
            found[k] = (left, right)
    return found


def _flatten_steps(g, stacked: Sym) -> Var:
    """[L, k, n] -> [L * k, n]: the iterations' rows one after another."""
    shape = stacked.var.type.shape
    return _emit(g, "reshape", [stacked.var], {"shape": (shape[0] * shape[1], shape[2])})[0].var


# ---- while_loop ------------------------------------------------------------------------------

def _region(name: str, types: Sequence[TensorType], emit) -> Graph:
    b = GraphBuilder(name)
    ins = [b.add_input(t) for t in types]
    return b.build(list(emit(b, ins)), stage="region")


def while_vjp(g, ins, outs, cts, params):
    cond, body, n = params["cond"], params["body"], params["num_carried"]
    carried_t = [s.var.type for s in ins[:n]]
    inv_t = [s.var.type for s in ins[n:]]
    carried_f = _floats([s.var for s in ins[:n]])
    inv_f = [n + k for k in _floats([s.var for s in ins[n:]])]
    if not (carried_f or inv_f) or not carried_f:
        return [None] * len(ins)
    if params["max_trips"] >= 0:
        return _bounded_while_vjp(g, ins, cts, params, carried_f, inv_f)
    add, less = get_op("add"), get_op("less")

    def one(b):
        return _scalar(b, 1)

    # 1. the trip count: the same loop, counting
    count_cond = _region("count_cond", [_I32, *carried_t, *inv_t],
                         lambda b, v: inline(b, cond, v[1:]))
    count_body = _region("count_body", [_I32, *carried_t, *inv_t], lambda b, v: [
        b.emit1(add, [v[0], one(b)]), *inline(b, body, v[1:])])
    counted = _emit(g, "while_loop", [_scalar(g.builder, 0), *(s.var for s in ins)],
                    {"cond": count_cond, "body": count_body, "num_carried": 1 + n})
    trips = counted[0].var

    # 2. c_j: j iterations of the body from init (for the backward step j)
    def replay(b, j, init, invariants):
        test = _region("replay_cond", [_I32, *carried_t, _I32, *inv_t],
                       lambda bb, v: [bb.emit1(less, [v[0], v[1 + n]])])
        step = _region("replay_body", [_I32, *carried_t, _I32, *inv_t], lambda bb, v: [
            bb.emit1(add, [v[0], one(bb)]), *inline(bb, body, v[1:1 + n] + v[2 + n:])])
        return b.emit(get_op("while_loop"), [_scalar(b, 0), *init, j, *invariants],
                      {"cond": test, "body": step, "num_carried": 1 + n})[1:]

    # 3. walk back: (j, ct_c, acc) while j > 0, invariants (init, invariants)
    body_grad = region_vjp(body, carried_f + inv_f, carried_f, g.differentiate)
    ct_t = [carried_t[k] for k in carried_f]
    acc_t = [inv_t[k - n] for k in inv_f]
    state_t = [_I32, *ct_t, *acc_t, *carried_t, *inv_t]

    def back(b, v):
        j, ct, acc = v[0], v[1:1 + len(ct_t)], v[1 + len(ct_t):1 + len(ct_t) + len(acc_t)]
        init = v[1 + len(ct_t) + len(acc_t):1 + len(ct_t) + len(acc_t) + n]
        invariants = v[1 + len(ct_t) + len(acc_t) + n:]
        j1 = b.emit1(get_op("sub"), [j, one(b)])
        c_j = replay(b, j1, init, invariants)
        grads = inline(b, body_grad, [*c_j, *invariants, *ct])
        new_acc = [b.emit1(add, [a, gr]) for a, gr in zip(acc, grads[len(ct):], strict=True)]
        return [j1, *grads[:len(ct)], *new_acc]

    back_cond = _region("back_cond", state_t, lambda b, v: [
        b.emit1(get_op("greater"), [v[0], _scalar(b, 0)])])
    back_body = _region("back_body", state_t, back)
    start = [trips, *(cts[k].var for k in carried_f),
             *(_zeros(g.builder, inv_t[k - n]) for k in inv_f)]
    walked = _emit(g, "while_loop", start + [s.var for s in ins], {
        "cond": back_cond, "body": back_body, "num_carried": len(start)})
    out: list = [None] * len(ins)
    for j, k in enumerate(carried_f):
        out[k] = walked[1 + j]
    for j, k in enumerate(inv_f):
        out[k] = walked[1 + len(ct_t) + j]
    return out


def _bounded_while_vjp(g, ins, cts, params, carried_f, inv_f):
    """A loop of at most ``max_trips`` iterations is, for its gradient, a scan of that
    many steps whose body runs only while the loop would (a ``cond`` on a carried
    "still running" flag): the scan's gradient stores each step's residuals, as TF1's
    stacks do, so time and memory are linear in the bound."""
    cond, body, n, bound = (params["cond"], params["body"], params["num_carried"],
                            params["max_trips"])
    carried_t = [s.var.type for s in ins[:n]]
    inv_t = [s.var.type for s in ins[n:]]
    keep = _region("stopped", [*carried_t, *inv_t], lambda b, v: v[:n])
    run = _region("running", [*carried_t, *inv_t], lambda b, v: inline(b, body, v))
    bool_t = TensorType((), bool_)

    def step(b, v):
        going = b.emit1(get_op("logical_and"), [v[1], *inline(b, cond, v[2:])])
        return [going, *b.emit(get_op("cond"), [going, *v[2:]], {"branches": (keep, run)})]
    masked = _region("masked_step", [_I32, bool_t, *carried_t, *inv_t], step)

    def as_scan(b, v):
        start = b.emit1(get_op("fill"), [], {"shape": (), "value": True, "dtype": bool_t.dtype})
        return b.emit(get_op("scan"), [start, *v], {"body": masked, "length": bound,
                                                    "num_carried": 1 + n})[1:]
    loop = _region("bounded_loop", [*carried_t, *inv_t], as_scan)
    wrt = carried_f + inv_f
    grads = inline(g.builder, region_vjp(loop, wrt, carried_f, g.differentiate),
                   [*(s.var for s in ins), *(cts[k].var for k in carried_f)])
    out: list = [None] * len(ins)
    for k, gv in zip(wrt, grads, strict=True):
        out[k] = Sym(gv, g)
    return out
