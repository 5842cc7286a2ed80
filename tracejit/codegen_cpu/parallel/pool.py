"""tracejit's own thread pool, in generated code: ``tj_parallel_for`` for every kernel.

``tj_parallel_for(fn, ctx, n_items, shares)`` runs ``fn(ctx, lo, hi, share)`` once for
each share ``s < shares`` of ``[0, n_items)`` (share ``s`` is ``[n*s/shares,
n*(s+1)/shares)``, the static split OpenMP uses, so results do not depend on timing)
and returns when all have run. The calling thread runs share 0, then *takes any share
no worker has claimed yet*; it waits only for shares a worker is already running.

Why not OpenMP: at the end of a ``GOMP_parallel`` region the caller waits until every
thread of the team has arrived, including one that has not even been scheduled. On a
machine where another process wants the cores, that wait is a whole scheduler time
slice per kernel; an MLP step went from 4 ms to 10-60 ms under load. Here a late
worker costs nothing: the caller does its share. (It also survives ``os.fork``: the
child forgets the parent's workers and starts its own; libgomp hangs a forked child.)

How: one job at a time (programs run holding the GIL; a ``tj_parallel_for`` called
from inside a share runs serially). The caller publishes a job under a sequence
number (``gen``: odd while the job's fields are written, even once published; a worker
re-reads it after reading the fields, like a seqlock) and claims shares by
compare-and-swap of a per-share word from an older ``gen`` to the job's, so a worker
that wakes late can never claim a share of a finished job. Idle workers spin on
``gen`` for ``SPIN`` rounds (kernels of one program run microseconds apart), yielding
the core every ``YIELD_EVERY`` rounds to any thread that wants it, then sleep on a
futex that every publish bumps.

OpenBLAS's threaded jobs run here too, as *gang* jobs (a job's ``gang`` flag: the caller
and each worker run at most one share): see gang.py.

The module is built once per process (and kept in the compile cache like the entry
trampoline); :func:`ensure_pool` registers ``tj_parallel_for`` for programs to call.
"""

from __future__ import annotations

import ctypes
import os
import threading

import llvmlite.binding as llvm
from llvmlite import ir

from ..host.cache import runtime_library
from ..loops.types import I32, I64, PTR, VOID, declare
from .gang import BLAS_THREADS, emit_blas_threads

__all__ = ["PARALLEL_FOR", "BLAS_THREADS", "ensure_pool", "pool_address", "pool_module",
           "MAX_SHARES"]

PARALLEL_FOR = "tj_parallel_for"
MAX_SHARES = 256
SPIN = 4000                     # idle rounds of `pause` (about 0.1 ms) before sleeping
WAIT_SPIN = 4000                # rounds the caller spins on a running share before yielding
# NOTE: an idle worker gives up its core every YIELD_EVERY rounds of its spin
# (sched_yield returns at once when nothing else wants the core): a pipeline's thread, or
# one holding the GIL the program's caller waits for, runs there instead of waiting
# behind a spinning worker (digits CNN fed by shuffle_batch on 2 cores: 0.84 -> ~0.88 of
# the step alone).
YIELD_EVERY = 64
VERSION = 3                     # part of the module's compile-cache key

_SYS_FUTEX, _FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE = 202, 128, 129
_RANGE_FN = ir.FunctionType(VOID, [PTR, I64, I64, I64])


def _typed(b: ir.IRBuilder, fn_ptr):
    # NOTE: llvmlite's call() wants a typed function pointer; the casts are free.
    return b.inttoptr(b.ptrtoint(fn_ptr, I64), _RANGE_FN.as_pointer())


class PoolEmitter:
    """Emits the pool's globals and functions into one module (gang.py adds
    OpenBLAS's callback through the same object)."""

    MAX_SHARES = MAX_SHARES
    RANGE_FN = _RANGE_FN

    def __init__(self, module: ir.Module):
        self.module = module
        self.gen = self._global("gen", I64)                 # job sequence number
        self.wake = self._global("wake", I32)               # the futex word
        self.sleepers = self._global("sleepers", I64)
        self.busy = self._global("busy", I64)               # a job is running
        self.gang = self._global("gang", I64)               # 1: one share per thread
        self.workers = self._global("workers", I64)         # started so far
        self.done = self._global("done", I64)               # shares finished
        self.fn = self._global("fn", PTR)
        self.ctx = self._global("ctx", PTR)
        self.n = self._global("n", I64)
        self.shares = self._global("shares", I64)
        self.claims = self._global("claims", ir.ArrayType(I64, MAX_SHARES))
        self.syscall = ir.Function(module, ir.FunctionType(I64, [I64], var_arg=True),
                                   "syscall")
        # NOTE: x86's `pause` eases a spin loop; elsewhere the loop simply spins.
        self.pause = (ir.Function(module, ir.FunctionType(VOID, []), "llvm.x86.sse2.pause")
                      if llvm.get_process_triple().startswith(("x86_64", "i686")) else None)
        self.yield_ = ir.Function(module, ir.FunctionType(I32, []), "sched_yield")

    def relax(self, b: ir.IRBuilder) -> None:
        if self.pause is not None:
            b.call(self.pause, [])

    def _global(self, name: str, ty) -> ir.GlobalVariable:
        g = ir.GlobalVariable(self.module, ty, f"tj_pool_{name}")
        g.initializer = ir.Constant(ty, None)
        g.linkage = "internal"
        g.align = 64            # NOTE: one cache line each: workers spin on gen
        return g

    # ---- small pieces ----------------------------------------------------------------------

    @staticmethod
    def load(b, ptr, ty, order="acquire"):
        return b.load_atomic(ptr, order, 8 if ty == I64 or ty == PTR else 4, typ=ty)

    @staticmethod
    def store(b, value, ptr, order="release"):
        # NOTE: IRBuilder.store_atomic insists on a typed pointer; the instruction
        # itself is fine with an opaque one.
        b._insert(ir.instructions.StoreAtomicInstr(b.block, value, ptr, order,
                                                   8 if value.type != I32 else 4))

    @staticmethod
    def loop(fn: ir.Function, b: ir.IRBuilder, name: str):
        """(head, exit) blocks of a loop whose body the caller emits after ``head``."""
        head = fn.append_basic_block(f"{name}_head")
        done = fn.append_basic_block(f"{name}_exit")
        b.branch(head)
        b.position_at_end(head)
        return head, done

    def claim_slot(self, b, s):
        return b.gep(self.claims, [I32(0), s], inbounds=True)

    # ---- run_shares(gen, first): claim and run every unclaimed share ------------------------

    def emit_run_shares(self) -> ir.Function:
        fn = ir.Function(self.module, ir.FunctionType(VOID, [I64, I64]), "tj_pool_run_shares")
        fn.linkage = "internal"
        gen, first = fn.args
        entry = fn.append_basic_block("entry")
        b = ir.IRBuilder(entry)
        job_fn = self.load(b, self.fn, PTR)
        ctx = self.load(b, self.ctx, PTR)
        n = self.load(b, self.n, I64)
        shares = self.load(b, self.shares, I64)
        gang = self.load(b, self.gang, I64)
        head = fn.append_basic_block("head")
        body, claim, run, nxt, out = (fn.append_basic_block(x) for x in (
            "body", "claim", "run", "next", "out"))
        # NOTE: the fields belong to job `gen` only if gen still reads so (the caller
        # marks gen odd before it rewrites them); else this job is over: claim nothing.
        b.cbranch(b.icmp_unsigned("==", self.load(b, self.gen, I64), gen), head, out)
        entry = b.block
        b.position_at_end(head)
        j = b.phi(I64, "j")
        j.add_incoming(I64(0), entry)
        ran = b.phi(I64, "ran")
        ran.add_incoming(I64(0), entry)
        # a gang member runs one share: a second could wait on one nobody runs
        may_run = b.or_(b.icmp_unsigned("==", gang, I64(0)), b.icmp_unsigned("==", ran, I64(0)))
        b.cbranch(b.and_(b.icmp_signed("<", j, shares), may_run), body, out)
        b.position_at_end(body)
        s = b.urem(b.add(j, first), shares)
        slot = self.claim_slot(b, s)
        seen = self.load(b, slot, I64)
        b.cbranch(b.icmp_signed("<", seen, gen), claim, nxt)
        b.position_at_end(claim)
        won = b.extract_value(b.cmpxchg(slot, seen, gen, "acq_rel", "acquire"), 1)
        b.cbranch(won, run, nxt)
        b.position_at_end(run)
        lo = b.udiv(b.mul(n, s), shares)
        hi = b.udiv(b.mul(n, b.add(s, I64(1))), shares)
        b.call(_typed(b, job_fn), [ctx, lo, hi, s])
        b.atomic_rmw("add", self.done, I64(1), "release")
        b.branch(nxt)
        b.position_at_end(nxt)
        did = b.phi(I64, "did")
        for block, value in ((body, 0), (claim, 0), (run, 1)):
            did.add_incoming(I64(value), block)
        j.add_incoming(b.add(j, I64(1)), nxt)
        ran.add_incoming(b.add(ran, did), nxt)
        b.branch(head)
        b.position_at_end(out)
        b.ret_void()
        return fn

    # ---- a worker ------------------------------------------------------------------------------

    def emit_worker(self, run_shares: ir.Function) -> ir.Function:
        fn = ir.Function(self.module, ir.FunctionType(PTR, [PTR]), "tj_pool_worker")
        fn.linkage = "internal"
        me = fn.args[0]
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        index = b.ptrtoint(me, I64)
        # NOTE: a new worker has seen no job, not the current one: it may have been
        # started for the job just published (a gang job cannot finish without it). A
        # finished job's shares are all claimed, so looking at it again costs nothing.
        seen0 = I64(1)              # odd: never a published gen
        start = b.block
        wait = fn.append_basic_block("wait")
        b.branch(wait)
        # wait: spin until gen moves past what we last ran and is even, then sleep
        b.position_at_end(wait)
        last = b.phi(I64, "last")
        spins = b.phi(I64, "spins")
        last.add_incoming(seen0, start)
        spins.add_incoming(I64(0), start)
        g = self.load(b, self.gen, I64)
        ready = b.and_(b.icmp_unsigned("!=", g, last),
                       b.icmp_unsigned("==", b.and_(g, I64(1)), I64(0)))
        go, idle = fn.append_basic_block("go"), fn.append_basic_block("idle")
        b.cbranch(ready, go, idle)

        b.position_at_end(idle)
        self.relax(b)
        more = b.add(spins, I64(1))
        sleep, again = fn.append_basic_block("sleep"), fn.append_basic_block("again")
        give = fn.append_basic_block("give")
        b.cbranch(b.icmp_signed("<", more, I64(SPIN)), give, sleep)
        b.position_at_end(give)
        every = b.icmp_unsigned("==", b.and_(more, I64(YIELD_EVERY - 1)), I64(0))
        yielding = fn.append_basic_block("yielding")
        b.cbranch(every, yielding, again)
        b.position_at_end(yielding)
        b.call(self.yield_, [])
        b.branch(again)
        b.position_at_end(again)
        last.add_incoming(last, again)
        spins.add_incoming(more, again)
        b.branch(wait)

        b.position_at_end(sleep)
        b.atomic_rmw("add", self.sleepers, I64(1), "seq_cst")
        ticket = b.load_atomic(self.wake, "seq_cst", 4, typ=I32)
        g2 = b.load_atomic(self.gen, "seq_cst", 8, typ=I64)
        nap, woke = fn.append_basic_block("nap"), fn.append_basic_block("woke")
        b.cbranch(b.icmp_unsigned("==", g2, g), nap, woke)
        b.position_at_end(nap)
        b.call(self.syscall, [I64(_SYS_FUTEX), self.wake, I64(_FUTEX_WAIT_PRIVATE),
                              b.zext(ticket, I64), PTR(None)])
        b.branch(woke)
        b.position_at_end(woke)
        b.atomic_rmw("sub", self.sleepers, I64(1), "seq_cst")
        last.add_incoming(last, woke)
        spins.add_incoming(I64(0), woke)
        b.branch(wait)

        # go: the job's fields are g's if gen still reads g after run_shares loaded them;
        # a claim only succeeds for an unfinished job, so a stale read claims nothing.
        b.position_at_end(go)
        b.call(run_shares, [g, index])
        last.add_incoming(g, b.block)
        spins.add_incoming(I64(0), b.block)
        b.branch(wait)
        return fn

    # ---- the caller ----------------------------------------------------------------------------

    def acquire(self, b: ir.IRBuilder):
        """i1: this thread took the pool (``busy`` 0 -> 1; numpy's BLAS calls reach the
        pool from threads that do not hold the GIL, so this is a compare-and-swap)."""
        pair = b.cmpxchg(self.busy, I64(0), I64(1), "acquire", "monotonic")
        return b.extract_value(pair, 1)

    def run_job(self, b: ir.IRBuilder, fn: ir.Function, run_shares: ir.Function, job_fn, ctx,
                n, shares, gang: int) -> None:
        """Publish a job, run the caller's part, wait for every share, free the pool."""
        old = self.load(b, self.gen, I64, "monotonic")
        writing = b.add(old, I64(1))
        self.store(b, writing, self.gen, "seq_cst")          # odd: fields being written
        self.store(b, job_fn, self.fn)
        self.store(b, ctx, self.ctx)
        self.store(b, n, self.n)
        self.store(b, shares, self.shares)
        self.store(b, I64(gang), self.gang)
        self.store(b, I64(0), self.done)
        published = b.add(old, I64(2))
        self.store(b, published, self.gen, "seq_cst")
        b.atomic_rmw("add", self.wake, I32(1), "seq_cst")
        wake, run = fn.append_basic_block("wake"), fn.append_basic_block("run")
        sleeping = b.load_atomic(self.sleepers, "seq_cst", 8, typ=I64)
        b.cbranch(b.icmp_signed(">", sleeping, I64(0)), wake, run)
        b.position_at_end(wake)
        b.call(self.syscall, [I64(_SYS_FUTEX), self.wake, I64(_FUTEX_WAKE_PRIVATE),
                              I64(0x7FFFFFFF)])
        b.branch(run)
        b.position_at_end(run)
        b.call(run_shares, [published, I64(0)])

        head = fn.append_basic_block("wait")
        spin, yield_, out = (fn.append_basic_block(x) for x in ("spin", "yield", "out"))
        start = b.block
        b.branch(head)
        b.position_at_end(head)
        rounds = b.phi(I64, "rounds")
        rounds.add_incoming(I64(0), start)
        finished = b.icmp_signed(">=", self.load(b, self.done, I64), shares)
        b.cbranch(finished, out, spin)
        b.position_at_end(spin)
        self.relax(b)
        nxt = b.add(rounds, I64(1))
        rounds.add_incoming(nxt, spin)
        b.cbranch(b.icmp_signed("<", nxt, I64(WAIT_SPIN)), head, yield_)
        b.position_at_end(yield_)
        b.call(self.yield_, [])
        rounds.add_incoming(nxt, yield_)
        b.branch(head)
        b.position_at_end(out)
        self.store(b, I64(0), self.busy)

    def emit_parallel_for(self, run_shares: ir.Function, worker: ir.Function) -> ir.Function:
        fn = ir.Function(self.module, ir.FunctionType(VOID, [PTR, PTR, I64, I64]),
                         PARALLEL_FOR)
        job_fn, ctx, n, shares = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        serial, try_pool, pooled = (fn.append_basic_block(x)
                                    for x in ("serial", "try_pool", "pooled"))
        alone = b.or_(b.icmp_signed("<=", shares, I64(1)),
                      b.icmp_signed(">", shares, I64(MAX_SHARES)))
        b.cbranch(alone, serial, try_pool)
        b.position_at_end(try_pool)
        b.cbranch(self.acquire(b), pooled, serial)

        b.position_at_end(serial)          # nested, or one share: run it all here
        b.call(_typed(b, job_fn), [ctx, I64(0), n, I64(0)])
        b.ret_void()

        b.position_at_end(pooled)
        self.start_workers(b, fn, worker, b.sub(shares, I64(1)))
        self.run_job(b, fn, run_shares, job_fn, ctx, n, shares, gang=0)
        b.ret_void()
        return fn

    def start_workers(self, b: ir.IRBuilder, fn: ir.Function, worker: ir.Function, want):
        """Start workers until ``want`` run (a failed start leaves fewer: the caller
        then runs their shares itself)."""
        create = declare(self.module, "pthread_create",
                         ir.FunctionType(I32, [PTR, PTR, PTR, PTR]))
        handle = b.alloca(I64)
        head, more, out = (fn.append_basic_block(x) for x in ("spawn", "spawn_one", "spawned"))
        b.branch(head)
        b.position_at_end(head)
        have = self.load(b, self.workers, I64, "monotonic")
        b.cbranch(b.icmp_signed("<", have, want), more, out)
        b.position_at_end(more)
        index = b.add(have, I64(1))
        rc = b.call(create, [handle, PTR(None), worker, b.inttoptr(index, PTR)])
        self.store(b, index, self.workers, "monotonic")
        ok = fn.append_basic_block("spawn_ok")
        b.cbranch(b.icmp_signed("==", rc, I32(0)), ok, out)
        b.position_at_end(ok)
        detach = declare(self.module, "pthread_detach", ir.FunctionType(I32, [I64]))
        b.call(detach, [b.load(handle, typ=I64)])
        b.branch(head)
        b.position_at_end(out)

    def emit_after_fork(self) -> ir.Function:
        """pthread_atfork child handler: the child has no workers and no job."""
        fn = ir.Function(self.module, ir.FunctionType(VOID, []), "tj_pool_after_fork")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        for g in (self.workers, self.busy, self.sleepers):
            self.store(b, I64(0), g, "seq_cst")
        b.ret_void()
        return fn


def pool_module(module: ir.Module) -> ir.Module:
    """Add the pool (``tj_parallel_for``, ``tj_blas_threads``, ``tj_pool_after_fork``) to
    ``module``."""
    pool = PoolEmitter(module)
    run_shares = pool.emit_run_shares()
    worker = pool.emit_worker(run_shares)
    pool.emit_parallel_for(run_shares, worker)
    emit_blas_threads(pool, run_shares, worker)
    pool.emit_after_fork()
    return module


_LOCK = threading.Lock()
_POOL: list = []                # [(engine, fork handler)] once loaded


def ensure_pool() -> None:
    """Compile (or load from the compile cache) the pool once per process and make
    ``tj_parallel_for`` visible to programs."""
    with _LOCK:
        if _POOL:
            return
        engine, address = runtime_library(f"tj_pool v{VERSION} spin {SPIN} {WAIT_SPIN} "
                                          f"yield {YIELD_EVERY}",
                                          pool_module)
        llvm.add_symbol(PARALLEL_FOR, address(PARALLEL_FOR))
        after_fork = ctypes.CFUNCTYPE(None)(address("tj_pool_after_fork"))
        os.register_at_fork(after_in_child=after_fork)
        _POOL.append((engine, after_fork))


def pool_address(name: str) -> int:
    """The address of one of the pool's functions (``BLAS_THREADS``...)."""
    ensure_pool()
    return _POOL[0][0].get_function_address(name)
