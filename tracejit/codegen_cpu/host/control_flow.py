"""Control flow in the program's one native entry: branches and loops around regions.

Each region of a ``cond``, ``while_loop`` or ``scan`` becomes a function of the same
module with the entry's own signature (``void f(ptr io)``, io = the inputs' addresses,
then the outputs'), compiled by the same program builder (its own memory plan, in a
slice of the shared arena; its constants in the shared segment). The rules here emit,
in the calling function, the native ``switch`` or loop that calls them: no Python and
no call back out between iterations. The regions are internal to the module, so LLVM
inlines them into the loop where that pays.

Loops keep their carried values in two buffers per value, reserved once in the arena:
an iteration reads one and writes the other, and the two swap roles (pointer phis), so
nothing is allocated or copied per iteration. The initial values are copied in once
and the final ones out once. A scan's body reads its slice of each scanned input and
writes its slice of each stacked output where they lie.
"""

from __future__ import annotations

from llvmlite import ir

from ...ir import ops
from ...ir.core import Eqn, Var

__all__ = ["CONTROL_RULES"]

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)


def _nbytes(var: Var) -> int:
    return var.type.size * var.dtype.itemsize


def _load_index(p, var: Var) -> ir.Value:
    """A bool or integer scalar at ``var``'s address as an i64."""
    b = p.b
    bits = 8 if var.dtype.is_bool else var.dtype.bits
    value = b.load(p.address(var), typ=ir.IntType(bits))
    if var.dtype.is_bool:
        return b.zext(b.icmp_unsigned("!=", value, ir.IntType(8)(0)), I64)
    if bits == 64:
        return value
    return (b.sext if var.dtype.np_dtype.kind == "i" else b.zext)(value, I64)


def lower_cond(p, eqn: Eqn) -> None:
    """``switch`` on the clamped index; each case calls its branch, which writes the
    outputs where the plan put them."""
    b = p.b
    branches = eqn.params["branches"]
    fns = [p.region_function(g) for g in branches]
    index = _load_index(p, eqn.ins[0])
    last = I64(len(branches) - 1)
    index = b.select(b.icmp_signed("<", index, I64(0)), I64(0), index)
    index = b.select(b.icmp_signed(">", index, last), last, index)
    addresses = [p.address(v) for v in eqn.ins[1:] + eqn.outs]
    done = b.append_basic_block("cond_done")
    cases = [b.append_basic_block(f"cond_branch{k}") for k in range(len(branches))]
    switch = b.switch(index, cases[-1])
    for k, block in enumerate(cases[:-1]):
        switch.add_case(I64(k), block)
    for fn, block in zip(fns, cases, strict=True):
        b.position_at_end(block)
        p.call_with(fn, addresses)
        b.branch(done)
    b.position_at_end(done)


class _Carried:
    """The ping-pong buffers of a loop's carried values."""

    def __init__(self, p, carried: list[Var]):
        self.p, self.vars = p, carried
        self.a = [self._reserve(v) for v in carried]
        self.b = [self._reserve(v) for v in carried]

    def _reserve(self, var: Var) -> ir.Value:
        p = self.p
        if not _nbytes(var):
            return p.b.bitcast(p.zero, ir.PointerType())
        return p.byte_offset(p.arena_base, p.shared.reserve(_nbytes(var)))

    def copy_in(self, init: list[Var]) -> None:
        for var, dst in zip(init, self.a, strict=True):
            self.p.copy(dst, self.p.address(var), _nbytes(var))

    def open_loop(self, name: str):
        """Branch into a new loop head; there, the iteration count and, per carried value,
        phis for the buffer holding it (``cur``) and the one the iteration writes
        (``nxt``). Returns ``(head, count, cur, nxt)``; :meth:`close_loop` wires the back
        edge."""
        b = self.p.b
        pre = b.block
        head = b.append_basic_block(f"{name}_head")
        b.branch(head)
        b.position_at_end(head)
        count = b.phi(I64, f"{name}_count")
        count.add_incoming(I64(0), pre)
        cur, nxt = [], []
        for a, other in zip(self.a, self.b, strict=True):
            c, n = b.phi(ir.PointerType()), b.phi(ir.PointerType())
            c.add_incoming(a, pre)
            n.add_incoming(other, pre)
            cur.append(c)
            nxt.append(n)
        return head, count, cur, nxt

    def close_loop(self, count, cur: list, nxt: list) -> ir.Value:
        """The back edge from the current block: the count advances and the buffers swap.
        Returns the advanced count (the caller branches)."""
        b = self.p.b
        following = b.add(count, I64(1))
        count.add_incoming(following, b.block)
        for c, n in zip(cur, nxt, strict=True):
            c.add_incoming(n, b.block)
            n.add_incoming(c, b.block)
        return following

    def copy_out(self, cur: list, outs: list[Var]) -> None:
        for var, src in zip(outs, cur, strict=True):
            self.p.copy(self.p.address(var), src, _nbytes(var))


def lower_while_loop(p, eqn: Eqn) -> None:
    b = p.b
    n = eqn.params["num_carried"]
    cond_fn = p.region_function(eqn.params["cond"])
    body_fn = p.region_function(eqn.params["body"])
    invariants = [p.address(v) for v in eqn.ins[n:]]
    carried = _Carried(p, list(eqn.ins[:n]))
    carried.copy_in(list(eqn.ins[:n]))
    flag = p.entry_alloca(I8, "while_flag")
    limit = eqn.params["max_trips"]
    head, trips, cur, nxt = carried.open_loop("while")
    test = b.append_basic_block("while_test")
    body = b.append_basic_block("while_body")
    done = b.append_basic_block("while_done")
    # NOTE: with a bound, the count is tested before the condition runs (TensorFlow's
    # maximum_iterations: the condition is not evaluated once the bound is reached)
    b.cbranch(b.icmp_signed("<", trips, I64(limit)) if limit >= 0 else I1(1), test, done)
    b.position_at_end(test)
    p.call_with(cond_fn, [*cur, *invariants, flag])
    b.cbranch(b.icmp_unsigned("!=", b.load(flag, typ=I8), I8(0)), body, done)
    b.position_at_end(body)
    p.call_with(body_fn, [*cur, *invariants, *nxt])
    carried.close_loop(trips, cur, nxt)
    b.branch(head)
    b.position_at_end(done)
    carried.copy_out(cur, list(eqn.outs))


def lower_scan(p, eqn: Eqn) -> None:
    b = p.b
    params = eqn.params
    n, m, length = params["num_carried"], params["num_xs"], params["length"]
    if length == 0:
        for var, src in zip(eqn.outs[:n], eqn.ins[:n], strict=True):
            p.copy(p.address(var), p.address(src), _nbytes(var))
        return
    body_fn = p.region_function(params["body"])
    xs, ys = eqn.ins[n:n + m], eqn.outs[n:]
    invariants = [p.address(v) for v in eqn.ins[n + m:]]
    bases = [(p.address(v), _nbytes(v) // length) for v in (*xs, *ys)]
    carried = _Carried(p, list(eqn.ins[:n]))
    carried.copy_in(list(eqn.ins[:n]))
    index = p.entry_alloca(I32, "scan_index")
    head, step, cur, nxt = carried.open_loop("scan")
    done = b.append_basic_block("scan_done")
    i = b.sub(I64(length - 1), step) if params["reverse"] else step
    b.store(b.trunc(i, I32), index)
    # each scanned input's and stacked output's slice i, where it lies
    slices = [b.gep(base, [b.mul(i, I64(size))], inbounds=True, source_etype=I8)
              if size else base for base, size in bases]
    p.call_with(body_fn, [index, *cur, *slices[:m], *invariants, *nxt, *slices[m:]])
    following = carried.close_loop(step, cur, nxt)
    b.cbranch(b.icmp_signed("<", following, I64(length)), head, done)
    b.position_at_end(done)
    # NOTE: the exit edge leaves from the latch, so the last iteration's values are in
    # the buffers it wrote (`nxt`), not yet swapped into `cur`.
    carried.copy_out(nxt, list(eqn.outs[:n]))


CONTROL_RULES = {ops.COND: lower_cond, ops.WHILE_LOOP: lower_while_loop, ops.SCAN: lower_scan}
