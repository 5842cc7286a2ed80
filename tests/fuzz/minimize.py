"""Shrinking a failing program to a small one that fails the same way.

Each candidate is checked in a worker subprocess under the deadline, like any fuzz
program, so hangs and crashes shrink too. The moves, repeated while one helps:
drop a returned value; turn a step into an input whose arguments are the values the
reference computes for it (the rest of the program sees the same numbers); drop the
gradient, the donation, the GEMM choice. Dead steps and unused inputs go after each.
A control-flow step is atomic: it goes whole (its results become inputs), regions and
all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from tracejit.ir.ops import OPS

from .program import Program
from .runner import Session


def values(p: Program, args: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every named value of ``p`` on ``args``, by the reference implementations."""
    env = {name: a for (name, _), a in zip(p.inputs, args, strict=True)}
    with np.errstate(all="ignore"):
        for s in p.steps:
            opdef = OPS[s.op]
            outs = opdef.evaluate([env[n] for n in s.ins], opdef.make_params(s.params))
            env.update(zip(s.outs, outs, strict=True))
    return env


def _copy(p: Program) -> Program:
    """A copy whose lists and steps can change. (Not copy.deepcopy: regions are Graphs
    of Eqns whose op is compared by identity, ``eqn.op is SCAN``.)"""
    return dataclasses.replace(
        p, inputs=list(p.inputs), outputs=list(p.outputs), args=list(p.args),
        args2=list(p.args2), loss_weights=list(p.loss_weights),
        loss_weights2=list(p.loss_weights2),
        steps=[dataclasses.replace(s, params=dict(s.params)) for s in p.steps])


def prune(p: Program) -> Program:
    """Without steps nothing returned needs, and without inputs nothing reads."""
    p = _copy(p)
    needed = set(p.outputs)
    kept = []
    for s in reversed(p.steps):
        if needed.intersection(s.outs):
            kept.append(s)
            needed.update(s.ins)
    p.steps = kept[::-1]
    keep = [i for i, (name, _) in enumerate(p.inputs) if name in needed]
    where = {old: new for new, old in enumerate(keep)}
    p.inputs = [p.inputs[i] for i in keep]
    p.args = [p.args[i] for i in keep]
    p.args2 = [p.args2[i] for i in keep]
    p.donate = tuple(where[i] for i in p.donate if i in where)
    if p.grad is not None:
        grad = tuple(where[i] for i in p.grad if i in where)
        p.grad = grad or None
        if p.grad is None:
            p.loss_weights, p.loss_weights2 = [], []
    return _fix_weights(p)


def _fix_weights(p: Program) -> Program:
    """One loss weight per float output, as render expects."""
    if p.grad is None:
        return p
    types = p.types()
    floats = [name for name in p.outputs if types[name].dtype.is_float]
    if not floats:
        p.grad, p.loss_weights, p.loss_weights2 = None, [], []
        return p
    rng = np.random.default_rng(len(floats))
    p.loss_weights = [rng.normal(size=types[n].shape).astype(np.float32) for n in floats]
    p.loss_weights2 = [rng.normal(size=types[n].shape).astype(np.float32) for n in floats]
    return p


def candidates(p: Program):
    """Smaller variants of ``p``, most promising first."""
    for k in range(len(p.outputs)):
        if len(p.outputs) > 1:
            q = _copy(p)
            del q.outputs[k]
            yield prune(q)
    if p.grad is not None:
        yield prune(_without(p, grad=None, loss_weights=[], loss_weights2=[]))
    if p.donate:
        yield prune(_without(p, donate=()))
    if p.gemm != "auto":
        yield prune(_without(p, gemm="auto"))
    first, second = values(p, p.args), values(p, p.args2)
    types = p.types()
    for k, s in enumerate(p.steps):
        q = _copy(p)
        names = {out: f"x{out}" for out in s.outs}
        q.steps = q.steps[:k] + q.steps[k + 1:]
        for later in q.steps:
            later.ins = tuple(names.get(n, n) for n in later.ins)
        q.outputs = [names.get(n, n) for n in q.outputs]
        for out, name in names.items():
            q.inputs.append((name, types[out]))
            q.args.append(first[out])
            q.args2.append(second[out])
        yield prune(q)


def _without(p: Program, **changes) -> Program:
    q = _copy(p)
    for key, value in changes.items():
        setattr(q, key, value)
    return q


def minimize(p: Program, status: str, *, deadline: float = 20.0,
             log: Callable[[str], None] = print) -> Program:
    """The smallest variant found that still fails with ``status``."""
    session = Session(deadline)
    try:
        best = prune(p)
        improved = True
        while improved:
            improved = False
            for q in candidates(best):
                outcome = session.check({"source": q.source(), "seed": q.seed})
                if outcome.status == status:
                    log(f"  shrunk to {len(q.steps)} steps, {len(q.inputs)} inputs")
                    best, improved = q, True
                    break
        return best
    finally:
        session.close()
