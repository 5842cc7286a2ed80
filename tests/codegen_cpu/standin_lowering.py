"""A tiny kernel lowering with the real one's interface (``supports``, ``lower_equation``),
so the graph-level machinery (buffers, entry, cache, donation) is tested on its own.

It handles float32/float64/int32 ``elementwise`` kernels and plain elementwise equations
whose operands have the output's size or one element, with add/sub/mul/neg/maximum and
the index maps reshape/broadcast_to/expand_dims/squeeze, scalar ``constant``/``fill`` in
bodies -- and counts what it lowered, so tests can assert that a program ran natively.
"""

from __future__ import annotations

from llvmlite import ir

from tracejit.ir import dtypes as dt
from tracejit.ir.core import Eqn, Graph

PTR = ir.PointerType()
I64 = ir.IntType(64)
_TYPES = {dt.float32: ir.FloatType(), dt.float64: ir.DoubleType(), dt.int32: ir.IntType(32)}
_MAPS = {"reshape", "broadcast_to", "expand_dims", "squeeze"}
_OPS = {"add", "sub", "mul", "neg", "maximum"}
lowered: list[str] = []


def _body(eqn: Eqn) -> Graph | None:
    if eqn.op.name == "kernel":
        return eqn.params["body"] if eqn.params["kind"] == "elementwise" else None
    if eqn.op.name in _OPS:
        return Graph(eqn.ins, [eqn], eqn.outs)
    return None


def supports(eqn: Eqn) -> bool:
    body = _body(eqn)
    if body is None or not eqn.outs:
        return False
    size = eqn.outs[0].type.size
    for e in body.eqns:
        if e.op.name not in _OPS | _MAPS | {"fill", "constant"}:
            return False
        if e.op.name == "constant" and e.params["value"].array.size != 1:
            return False
        if any(v.dtype not in _TYPES for v in e.outs + e.ins):
            return False
    vars_ = list(body.inputs) + [v for e in body.eqns for v in e.outs]
    return all(v.type.size in (1, size) for v in vars_) and all(
        v.type.size == size for v in body.outputs)


def _scalar(ty, value):
    return ir.Constant(ty, float(value) if isinstance(ty, (ir.FloatType, ir.DoubleType))
                       else int(value))


def lower_equation(module: ir.Module, eqn: Eqn, name: str) -> ir.Function:
    body = _body(eqn)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR]), name)
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    n_out = len(eqn.outs)
    bufs = [b.load(b.gep(fn.args[0], [I64(k)], source_etype=PTR), typ=PTR)
            for k in range(n_out + len(eqn.ins))]
    size = eqn.outs[0].type.size
    loop, done = fn.append_basic_block("loop"), fn.append_basic_block("done")
    start = b.block
    b.cbranch(b.icmp_signed(">", I64(size), I64(0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(I64(0), start)
    env = {}
    for k, v in enumerate(body.inputs):
        at = i if v.type.size == size else I64(0)
        ty = _TYPES[v.dtype]
        env[id(v)] = b.load(b.gep(bufs[n_out + k], [at], source_etype=ty), typ=ty)
    for e in body.eqns:
        out = e.outs[0]
        ty = _TYPES[out.dtype]
        name_ = e.op.name
        xs = [env[id(v)] for v in e.ins]
        flt = out.dtype.is_float
        if name_ in _MAPS:
            value = xs[0]
        elif name_ == "fill":
            value = _scalar(ty, e.params["value"])
        elif name_ == "constant":
            value = _scalar(ty, e.params["value"].array.reshape(-1)[0])
        elif name_ == "neg":
            value = b.fneg(xs[0]) if flt else b.neg(xs[0])
        elif name_ == "maximum":
            cmp = b.fcmp_ordered(">=", *xs) if flt else b.icmp_signed(">=", *xs)
            value = b.select(cmp, *xs)
        else:
            method = {"add": "add", "sub": "sub", "mul": "mul"}[name_]
            value = getattr(b, ("f" if flt else "") + method)(*xs)
        env[id(out)] = value
    # NOTE: every load of this iteration happens before any store (in-place contract).
    for k, v in enumerate(body.outputs):
        ty = _TYPES[v.dtype]
        b.store(env[id(v)], b.gep(bufs[k], [i], source_etype=ty))
    nxt = b.add(i, I64(1))
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, I64(size)), loop, done)
    b.position_at_end(done)
    b.ret_void()
    lowered.append(eqn.op.name)
    return fn
