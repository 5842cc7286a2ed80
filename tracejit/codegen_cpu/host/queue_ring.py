"""The storage of input queues in native code: rows of fixed size in columns, a mutex and
two condition variables, moved without the GIL.

An input pipeline's queues are touched by several threads each training step: the step
dequeues a batch, queue runners refill it. Kept in Python, every move takes the GIL
several times (the queue's lock, its conditions, each waiter's wake-up) and a random
queue's take is a Python loop; on a 2-core machine that time comes straight out of the
compiled step's (the digits CNN fed by ``shuffle_batch``: 0.88 of the step alone). Here
a put or a take is one ``ctypes`` call that releases the GIL, waits on a pthread
condition, and copies rows with ``memcpy``.

The layout (``STATE_WORDS + 2 * columns`` int64 words, owned by the caller, zeroed: all
zero bytes are ``PTHREAD_MUTEX_INITIALIZER`` and ``PTHREAD_COND_INITIALIZER`` in glibc
and musl):

==========  ===============================================================
words       field
==========  ===============================================================
0-7         the mutex (64 bytes: pthread_mutex_t is 40 on x86-64, 48 elsewhere)
8-15        ``rows``: dequeuers wait here for rows
16-23       ``room``: enqueuers wait here for room
24-35       capacity, rows allocated, head, count, closed, cancelled, random,
            min_after_dequeue, columns, waiting enqueuers, waiting dequeuers
40 ...      each column's storage pointer, then each column's row size in bytes
==========  ===============================================================

First-in first-out storage is a ring (``head``, ``count``); a random queue's rows are
always ``0 .. count-1``, and a take is a partial Fisher-Yates shuffle: the ``k``-th row
taken is the one at ``uniform[k] * (count - k)``, and the last row moves into its place,
exactly what ``k`` single dequeues of a uniformly chosen row do. Columns grow by
doubling up to the capacity (``malloc``), so a large capacity reserves nothing up
front.

Every wait ends by ``deadline_ns`` (CLOCK_REALTIME): the caller passes a short one and
calls again, so a Python thread blocked on a queue still sees its signals (Ctrl-C).
"""

from __future__ import annotations

from llvmlite import ir

from ..loops.types import F64, I32, I64, PTR, VOID, declare

__all__ = ["STATE_WORDS", "MAX_COLUMNS", "OK", "CLOSED", "TIMEOUT", "NO_MEMORY", "BAD_INDEX",
           "EXACT", "UP_TO", "AVAILABLE", "RingEmitter"]

STATE_WORDS = 40
MAX_COLUMNS = 64            # the most columns tjq_reserve keeps track of at once
# the fields (int64 words) after the mutex and the two conditions
W_ROWS, W_ROOM = 8, 16
(W_CAPACITY, W_ALLOCATED, W_HEAD, W_COUNT, W_CLOSED, W_CANCELLED, W_RANDOM, W_MIN_AFTER,
 W_COLUMNS, W_PUT_WAITERS, W_TAKE_WAITERS) = range(24, 35)
W_POINTERS = STATE_WORDS

OK, CLOSED, TIMEOUT, NO_MEMORY, BAD_INDEX = 0, 1, 2, 3, 4    # what the functions return
EXACT, UP_TO, AVAILABLE = 0, 1, 2                    # how many a take takes
_ETIMEDOUT = 110                                     # Linux


class RingEmitter:
    """Emits the ring's functions (and, through queue_pump.py, the pump) into one
    module."""
    def __init__(self, module: ir.Module):
        self.module = module
        self.lock = declare(module, "pthread_mutex_lock", ir.FunctionType(I32, [PTR]))
        self.unlock = declare(module, "pthread_mutex_unlock", ir.FunctionType(I32, [PTR]))
        self.timedwait = declare(module, "pthread_cond_timedwait",
                                 ir.FunctionType(I32, [PTR, PTR, PTR]))
        self.signal = declare(module, "pthread_cond_signal", ir.FunctionType(I32, [PTR]))
        self.broadcast = declare(module, "pthread_cond_broadcast", ir.FunctionType(I32, [PTR]))
        self.memcpy = declare(module, "memcpy", ir.FunctionType(PTR, [PTR, PTR, I64]))
        self.malloc = declare(module, "malloc", ir.FunctionType(PTR, [I64]))
        self.free = declare(module, "free", ir.FunctionType(VOID, [PTR]))

    # ---- small pieces ----------------------------------------------------------------------

    @staticmethod
    def word(b, state, index):
        return b.gep(state, [index if isinstance(index, ir.Value) else I64(index)],
                     inbounds=True, source_etype=I64)

    def get(self, b, state, index):
        return b.load(self.word(b, state, index), typ=I64)

    def set(self, b, state, index, value):
        b.store(value, self.word(b, state, index))

    def column(self, b, state, c):
        """(storage pointer slot, row bytes) of column ``c``."""
        columns = self.get(b, state, W_COLUMNS)
        slot = self.word(b, state, b.add(I64(W_POINTERS), c))
        size = self.get(b, state, b.add(b.add(I64(W_POINTERS), columns), c))
        return slot, size

    @staticmethod
    def for_range(fn, b, n, name):
        """Emit ``for i in range(n)``: returns (i, body builder position set, exit block);
        the caller emits the body then calls the returned ``next_`` to close the loop."""
        head, body, done = (fn.append_basic_block(f"{name}_{x}")
                            for x in ("head", "body", "exit"))
        start = b.block
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64)
        i.add_incoming(I64(0), start)
        b.cbranch(b.icmp_signed("<", i, n), body, done)
        b.position_at_end(body)

        def next_():
            i.add_incoming(b.add(i, I64(1)), b.block)
            b.branch(head)
            b.position_at_end(done)
        return i, next_

    @staticmethod
    def timespec(b):
        """Stack room for a ``struct timespec`` (made in the entry block: an alloca in a
        loop would grow the stack at every round)."""
        return b.alloca(I64, size=I32(2))

    def wait(self, b, state, cond_word, waiters_word, deadline, timespec):
        """One timed wait on a condition, counting the waiters; returns the rc."""
        sec = b.sdiv(deadline, I64(1_000_000_000))
        b.store(sec, timespec)
        b.store(b.srem(deadline, I64(1_000_000_000)), b.gep(timespec, [I32(1)]))
        self.set(b, state, waiters_word, b.add(self.get(b, state, waiters_word), I64(1)))
        rc = b.call(self.timedwait, [self.word(b, state, cond_word), state, timespec])
        self.set(b, state, waiters_word, b.sub(self.get(b, state, waiters_word), I64(1)))
        return rc

    def wake_if_waiting(self, b, state, cond_word, waiters_word, fn, name,
                        everyone: bool = False):
        """Signal (or, with ``everyone``, broadcast) the condition where a thread waits
        on it: no system call when nobody does."""
        yes, done = fn.append_basic_block(f"{name}_wake"), fn.append_basic_block(f"{name}_woke")
        b.cbranch(b.icmp_signed(">", self.get(b, state, waiters_word), I64(0)), yes, done)
        b.position_at_end(yes)
        b.call(self.broadcast if everyone else self.signal, [self.word(b, state, cond_word)])
        b.branch(done)
        b.position_at_end(done)

    def unlock_and_return(self, b, state, value) -> None:
        b.call(self.unlock, [state])
        b.ret(value)

    # ---- ring_copy(base, allocated, row_bytes, first, n, outside, into_ring) -------------

    def emit_ring_copy(self) -> ir.Function:
        """Copy ``n`` rows between the ring ``base`` (rows ``first % allocated`` on,
        wrapping) and the contiguous ``outside``; into the ring when ``into_ring``."""
        fn = ir.Function(self.module, ir.FunctionType(VOID, [PTR, I64, I64, I64, I64, PTR,
                                                             I64]), "tjq_ring_copy")
        fn.linkage = "internal"
        base, allocated, size, first, n, outside, into = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        nothing, something = fn.append_basic_block("nothing"), fn.append_basic_block("rows")
        b.cbranch(b.icmp_signed("<=", n, I64(0)), nothing, something)
        b.position_at_end(nothing)
        b.ret_void()
        b.position_at_end(something)
        start = b.srem(first, allocated)
        head = b.select(b.icmp_signed("<", n, b.sub(allocated, start)), n,
                        b.sub(allocated, start))
        tail = b.sub(n, head)
        ring_at = b.gep(base, [b.mul(start, size)], source_etype=ir.IntType(8))
        outside_tail = b.gep(outside, [b.mul(head, size)], source_etype=ir.IntType(8))
        to_ring, from_ring = fn.append_basic_block("to_ring"), fn.append_basic_block("from")
        b.cbranch(b.icmp_signed("!=", into, I64(0)), to_ring, from_ring)
        for block, pairs in ((to_ring, ((ring_at, outside), (base, outside_tail))),
                             (from_ring, ((outside, ring_at), (outside_tail, base)))):
            b.position_at_end(block)
            (d1, s1), (d2, s2) = pairs
            b.call(self.memcpy, [d1, s1, b.mul(head, size)])
            b.call(self.memcpy, [d2, s2, b.mul(tail, size)])
            b.ret_void()
        return fn

    # ---- reserve(state, rows) -> status ------------------------------------------------------

    def emit_reserve(self, ring_copy: ir.Function) -> ir.Function:
        """Columns of at least ``rows`` rows (doubling, up to the capacity), the rows held
        moved to the front in order; NO_MEMORY where malloc fails (nothing changed)."""
        fn = ir.Function(self.module, ir.FunctionType(I64, [PTR, I64]), "tjq_reserve")
        fn.linkage = "internal"
        state, rows = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        have = self.get(b, state, W_ALLOCATED)
        grow, ok = fn.append_basic_block("grow"), fn.append_basic_block("ok")
        b.cbranch(b.icmp_signed(">", rows, have), grow, ok)
        b.position_at_end(ok)
        b.ret(I64(OK))
        b.position_at_end(grow)
        double = b.select(b.icmp_signed(">", b.mul(have, I64(2)), I64(16)),
                          b.mul(have, I64(2)), I64(16))
        want = b.select(b.icmp_signed(">", rows, double), rows, double)
        capacity = self.get(b, state, W_CAPACITY)
        size = b.select(b.icmp_signed("<", want, capacity), want, capacity)
        columns = self.get(b, state, W_COLUMNS)
        # NOTE: every column's new storage first, so a failed malloc changes nothing
        fresh = b.alloca(PTR, size=I32(MAX_COLUMNS))
        c, next_ = self.for_range(fn, b, columns, "alloc")
        _, row_bytes = self.column(b, state, c)
        memory = b.call(self.malloc, [b.mul(b.select(b.icmp_signed(">", row_bytes, I64(0)),
                                                     row_bytes, I64(1)), size)])
        b.store(memory, b.gep(fresh, [c], source_etype=PTR))
        failed, stored = fn.append_basic_block("failed"), fn.append_basic_block("stored")
        b.cbranch(b.icmp_unsigned("==", b.ptrtoint(memory, I64), I64(0)), failed, stored)
        b.position_at_end(failed)
        k, next_free = self.for_range(fn, b, c, "undo")
        b.call(self.free, [b.load(b.gep(fresh, [k], source_etype=PTR), typ=PTR)])
        next_free()
        b.ret(I64(NO_MEMORY))
        b.position_at_end(stored)
        next_()
        c, next_ = self.for_range(fn, b, columns, "move")
        slot, row_bytes = self.column(b, state, c)
        old = b.load(slot, typ=PTR)
        new = b.load(b.gep(fresh, [c], source_etype=PTR), typ=PTR)
        moved, move = fn.append_basic_block("moved"), fn.append_basic_block("move_rows")
        b.cbranch(b.icmp_signed(">", have, I64(0)), move, moved)
        b.position_at_end(move)
        b.call(ring_copy, [old, have, row_bytes, self.get(b, state, W_HEAD),
                           self.get(b, state, W_COUNT), new, I64(0)])
        b.call(self.free, [old])
        b.branch(moved)
        b.position_at_end(moved)
        b.store(new, slot)
        next_()
        self.set(b, state, W_HEAD, I64(0))
        self.set(b, state, W_ALLOCATED, size)
        b.ret(I64(OK))
        return fn

    # ---- put(state, sources, n, deadline, done) -> status ------------------------------------

    def emit_put(self, ring_copy, reserve) -> ir.Function:
        fn = ir.Function(self.module, ir.FunctionType(I64, [PTR, PTR, I64, I64, PTR]),
                         "tjq_put")
        state, sources, n, deadline, done_at = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        timespec = self.timespec(b)
        b.call(self.lock, [state])
        loop, check, waited, closed_out, timed_out, room_ok, finish = (
            fn.append_basic_block(x) for x in
            ("loop", "check", "waited", "closed", "timed_out", "room", "finish"))
        b.branch(loop)
        b.position_at_end(loop)             # more to put?
        done = b.load(done_at, typ=I64)
        b.cbranch(b.icmp_signed("<", done, n), check, finish)

        b.position_at_end(check)            # closed, or room: go on; else wait
        closed = self.get(b, state, W_CLOSED)
        full = b.icmp_signed(">=", self.get(b, state, W_COUNT), self.get(b, state, W_CAPACITY))
        go_on = fn.append_basic_block("go_on")
        wait_block = fn.append_basic_block("wait")
        b.cbranch(b.or_(b.icmp_signed("!=", closed, I64(0)), b.not_(full)), go_on, wait_block)
        b.position_at_end(wait_block)
        rc = self.wait(b, state, W_ROOM, W_PUT_WAITERS, deadline, timespec)
        b.cbranch(b.icmp_signed("==", rc, I32(_ETIMEDOUT)), timed_out, waited)
        b.position_at_end(waited)
        b.branch(check)

        b.position_at_end(timed_out)
        # NOTE: a wake-up this thread may have taken goes on to the next enqueuer
        self.wake_room_if_any(b, state, fn, "timeout")
        self.unlock_and_return(b, state, I64(TIMEOUT))

        b.position_at_end(go_on)
        b.cbranch(b.icmp_signed("!=", self.get(b, state, W_CLOSED), I64(0)), closed_out,
                  room_ok)
        b.position_at_end(closed_out)
        self.unlock_and_return(b, state, I64(CLOSED))

        b.position_at_end(room_ok)
        count = self.get(b, state, W_COUNT)
        room = b.sub(self.get(b, state, W_CAPACITY), count)
        left = b.sub(n, done)
        room = b.select(b.icmp_signed("<", room, left), room, left)
        status = b.call(reserve, [state, b.add(count, room)])
        nomem, copy = fn.append_basic_block("nomem"), fn.append_basic_block("copy")
        b.cbranch(b.icmp_signed("!=", status, I64(OK)), nomem, copy)
        b.position_at_end(nomem)
        self.unlock_and_return(b, state, status)
        b.position_at_end(copy)
        c, next_ = self.for_range(fn, b, self.get(b, state, W_COLUMNS), "put_col")
        slot, row_bytes = self.column(b, state, c)
        source = b.load(b.gep(sources, [c], source_etype=PTR), typ=PTR)
        source = b.gep(source, [b.mul(done, row_bytes)], source_etype=ir.IntType(8))
        b.call(ring_copy, [b.load(slot, typ=PTR), self.get(b, state, W_ALLOCATED), row_bytes,
                           b.add(self.get(b, state, W_HEAD), count), room, source, I64(1)])
        next_()
        self.set(b, state, W_COUNT, b.add(count, room))
        b.store(b.add(done, room), done_at)
        # NOTE: every dequeuer: they may want different counts
        self.wake_if_waiting(b, state, W_ROWS, W_TAKE_WAITERS, fn, "rows", everyone=True)
        b.branch(loop)

        b.position_at_end(finish)
        self.wake_room_if_any(b, state, fn, "finish")
        self.unlock_and_return(b, state, I64(OK))
        return fn

    def wake_room_if_any(self, b, state, fn, name):
        """Room left: the next waiting enqueuer's turn (one at a time, each passing it
        on while room is left, instead of every enqueuer at every move)."""
        has_room, done = fn.append_basic_block(f"{name}_has_room"), \
            fn.append_basic_block(f"{name}_no_room")
        b.cbranch(b.icmp_signed("<", self.get(b, state, W_COUNT),
                                self.get(b, state, W_CAPACITY)), has_room, done)
        b.position_at_end(has_room)
        self.wake_if_waiting(b, state, W_ROOM, W_PUT_WAITERS, fn, name)
        b.branch(done)
        b.position_at_end(done)

    # ---- take(state, outputs, n, mode, uniforms, deadline, got) -> status ----------------

    def emit_take(self, ring_copy) -> ir.Function:
        fn = ir.Function(self.module, ir.FunctionType(I64, [PTR, PTR, I64, I64, PTR, I64, PTR]),
                         "tjq_take")
        state, outputs, n, mode, uniforms, deadline, got_at = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        timespec = self.timespec(b)
        b.call(self.lock, [state])
        available_mode = b.icmp_signed("==", mode, I64(AVAILABLE))
        need = b.select(available_mode, I64(1), n)
        check, wait_block, ready, timed_out = (fn.append_basic_block(x) for x in
                                               ("check", "wait", "ready", "timed_out"))
        b.branch(check)

        b.position_at_end(check)
        closed = b.icmp_signed("!=", self.get(b, state, W_CLOSED), I64(0))
        count = self.get(b, state, W_COUNT)
        floor = b.select(b.and_(b.icmp_signed("!=", self.get(b, state, W_RANDOM), I64(0)),
                                b.not_(closed)), self.get(b, state, W_MIN_AFTER), I64(0))
        takeable = b.sub(count, floor)
        b.cbranch(b.or_(closed, b.icmp_signed(">=", takeable, need)), ready, wait_block)
        b.position_at_end(wait_block)
        rc = self.wait(b, state, W_ROWS, W_TAKE_WAITERS, deadline, timespec)
        b.cbranch(b.icmp_signed("==", rc, I32(_ETIMEDOUT)), timed_out, check)
        b.position_at_end(timed_out)
        self.unlock_and_return(b, state, I64(TIMEOUT))

        b.position_at_end(ready)
        # with AVAILABLE: as many up to n as are there (at least one)
        some = b.select(b.icmp_signed("<", takeable, n), takeable, n)
        some = b.select(b.icmp_signed("<", some, I64(1)), I64(1), some)
        want = b.select(available_mode, some, n)
        enough, short = fn.append_basic_block("enough"), fn.append_basic_block("short")
        b.cbranch(b.icmp_signed(">=", takeable, want), enough, short)

        b.position_at_end(short)            # closed without enough
        partial_ok = b.and_(b.icmp_signed("!=", mode, I64(EXACT)),
                            b.icmp_signed(">", count, I64(0)))
        partial, fail = fn.append_basic_block("partial"), fn.append_basic_block("fail")
        b.cbranch(partial_ok, partial, fail)
        b.position_at_end(fail)
        b.store(count, got_at)
        self.unlock_and_return(b, state, I64(CLOSED))
        b.position_at_end(partial)
        b.branch(enough)

        b.position_at_end(enough)
        take = b.phi(I64)
        take.add_incoming(want, ready)
        take.add_incoming(count, partial)
        random, fifo, taken = (fn.append_basic_block(x) for x in ("random", "fifo", "taken"))
        b.cbranch(b.icmp_signed("!=", self.get(b, state, W_RANDOM), I64(0)), random, fifo)

        b.position_at_end(fifo)
        c, next_ = self.for_range(fn, b, self.get(b, state, W_COLUMNS), "fifo_col")
        slot, row_bytes = self.column(b, state, c)
        out = b.load(b.gep(outputs, [c], source_etype=PTR), typ=PTR)
        allocated = self.get(b, state, W_ALLOCATED)
        b.call(ring_copy, [b.load(slot, typ=PTR), allocated, row_bytes,
                           self.get(b, state, W_HEAD), take, out, I64(0)])
        next_()
        allocated = self.get(b, state, W_ALLOCATED)
        head = b.add(self.get(b, state, W_HEAD), take)
        self.set(b, state, W_HEAD, b.srem(head, b.select(
            b.icmp_signed(">", allocated, I64(0)), allocated, I64(1))))
        b.branch(taken)

        b.position_at_end(random)
        self.emit_random_take(fn, b, state, outputs, take, uniforms, count)
        b.branch(taken)

        b.position_at_end(taken)
        self.set(b, state, W_COUNT, b.sub(self.get(b, state, W_COUNT), take))
        b.store(take, got_at)
        self.wake_room_if_any(b, state, fn, "taken")
        self.unlock_and_return(b, state, I64(OK))
        return fn

    def emit_random_take(self, fn, b, state, outputs, take, uniforms, count):
        """Row ``k`` out is the row at ``uniform[k] * (count - k)``; the last row then
        moves into its place."""
        k, next_row = self.for_range(fn, b, take, "pick")
        last = b.sub(b.sub(count, I64(1)), k)
        u = b.load(b.gep(uniforms, [k], source_etype=F64), typ=F64)
        pick = b.fptosi(b.fmul(u, b.sitofp(b.add(last, I64(1)), F64)), I64)
        pick = b.select(b.icmp_signed(">", pick, last), last, pick)
        pick = b.select(b.icmp_signed("<", pick, I64(0)), I64(0), pick)
        c, next_col = self.for_range(fn, b, self.get(b, state, W_COLUMNS), "pick_col")
        slot, row_bytes = self.column(b, state, c)
        base = b.load(slot, typ=PTR)
        out = b.load(b.gep(outputs, [c], source_etype=PTR), typ=PTR)
        i8 = ir.IntType(8)
        picked = b.gep(base, [b.mul(pick, row_bytes)], source_etype=i8)
        b.call(self.memcpy, [b.gep(out, [b.mul(k, row_bytes)], source_etype=i8), picked,
                             row_bytes])
        move, moved = fn.append_basic_block("move_last"), fn.append_basic_block("moved_last")
        b.cbranch(b.icmp_signed("!=", pick, last), move, moved)
        b.position_at_end(move)
        b.call(self.memcpy, [picked, b.gep(base, [b.mul(last, row_bytes)], source_etype=i8),
                             row_bytes])
        b.branch(moved)
        b.position_at_end(moved)
        next_col()
        next_row()

    # ---- close, size, release ----------------------------------------------------------------

    def emit_close(self) -> None:
        fn = ir.Function(self.module, ir.FunctionType(VOID, [PTR, I64]), "tjq_close")
        state, cancel = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.call(self.lock, [state])
        self.set(b, state, W_CLOSED, I64(1))
        self.set(b, state, W_CANCELLED, b.or_(self.get(b, state, W_CANCELLED), cancel))
        b.call(self.broadcast, [self.word(b, state, W_ROWS)])
        b.call(self.broadcast, [self.word(b, state, W_ROOM)])
        b.call(self.unlock, [state])
        b.ret_void()

    def emit_read(self) -> None:
        """``tjq_read(state, word)``: one field read under the lock."""
        fn = ir.Function(self.module, ir.FunctionType(I64, [PTR, I64]), "tjq_read")
        state, index = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.call(self.lock, [state])
        value = self.get(b, state, index)
        self.unlock_and_return(b, state, value)

    def emit_release(self) -> None:
        """Free the columns (no thread may be inside the queue)."""
        fn = ir.Function(self.module, ir.FunctionType(VOID, [PTR]), "tjq_release")
        (state,) = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        c, next_ = self.for_range(fn, b, self.get(b, state, W_COLUMNS), "free_col")
        slot, _ = self.column(b, state, c)
        b.call(self.free, [b.load(slot, typ=PTR)])
        b.store(ir.Constant(PTR, None), slot)
        next_()
        self.set(b, state, W_ALLOCATED, I64(0))
        b.ret_void()
