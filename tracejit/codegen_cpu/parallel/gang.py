"""OpenBLAS's threaded jobs on tracejit's pool (see pool.py).

``tj_blas_threads`` is the callback OpenBLAS (0.3.27 and later) calls instead of waking
its own threads (``openblas_set_threads_callback_function``, installed by gemm/openblas.py). Its
jobs must run *at the same time* -- a threaded gemm packs B once, each job a slice, and
every job waits for the others' slices -- so it publishes a *gang* job on the pool: the
caller and each worker run at most one share, nobody takes a second, and the pool starts
at least as many workers as the call has jobs. When the pool is taken (a job of another
thread, or a gemm called from inside a share) the jobs run on threads started for the
call instead.
"""

from __future__ import annotations

from llvmlite import ir

from ..loops.types import I32, I64, PTR, VOID, declare

__all__ = ["BLAS_THREADS", "emit_blas_threads"]

BLAS_THREADS = "tj_blas_threads"
# OpenBLAS's callback: (sync, dojob, numjobs, jobdata_elsize, jobdata, dojob_data), and
# dojob(thread_num, job, dojob_data)
_BLAS_CALLBACK = ir.FunctionType(VOID, [I32, PTR, I32, I64, PTR, I32])
_BLAS_DOJOB = ir.FunctionType(VOID, [I32, PTR, I32])
# what a gang share needs: dojob, jobdata, elsize, dojob_data
_GANG = ir.LiteralStructType([PTR, PTR, I64, I32])


def _alloca(b: ir.IRBuilder, ty: ir.Type, size=None) -> ir.Value:
    slot = b.alloca(ty, size=size)
    slot.type = PTR  # NOTE: llvmlite types an alloca; the geps here use opaque pointers
    return slot


def _call_dojob(b: ir.IRBuilder, gang_ctx, index) -> None:
    """``dojob(index, jobdata + index*elsize, dojob_data)`` from a ``_GANG`` struct."""
    fields = [b.load(b.gep(gang_ctx, [I32(0), I32(i)], inbounds=True, source_etype=_GANG),
                     typ=_GANG.elements[i]) for i in range(4)]
    dojob, jobdata, elsize, data = fields
    job = b.gep(jobdata, [b.mul(index, elsize)], inbounds=True, source_etype=ir.IntType(8))
    target = b.inttoptr(b.ptrtoint(dojob, I64), _BLAS_DOJOB.as_pointer())
    b.call(target, [b.trunc(index, I32), job, data])


def _emit_gang_share(pool) -> ir.Function:
    """The job function of a gang job: share ``s`` runs OpenBLAS's job ``s``."""
    fn = ir.Function(pool.module, pool.RANGE_FN, "tj_pool_gang_share")
    fn.linkage = "internal"
    ctx, _lo, _hi, s = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    _call_dojob(b, ctx, s)
    b.ret_void()
    return fn


def _emit_own_thread(pool) -> ir.Function:
    """A thread started for one job when the pool is taken: arg = (gang ctx, index)."""
    fn = ir.Function(pool.module, ir.FunctionType(PTR, [PTR]), "tj_pool_own_thread")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pair = ir.LiteralStructType([PTR, I64])
    arg = fn.args[0]
    gang_ctx = b.load(b.gep(arg, [I32(0), I32(0)], inbounds=True, source_etype=pair), typ=PTR)
    index = b.load(b.gep(arg, [I32(0), I32(1)], inbounds=True, source_etype=pair), typ=I64)
    _call_dojob(b, gang_ctx, index)
    b.ret(PTR(None))
    return fn


def emit_blas_threads(pool, run_shares: ir.Function, worker: ir.Function) -> ir.Function:
    """Add ``tj_blas_threads`` to ``pool``'s module (a threadpool.PoolEmitter)."""
    fn = ir.Function(pool.module, _BLAS_CALLBACK, BLAS_THREADS)
    _sync, dojob, numjobs, elsize, jobdata, data = fn.args
    share_fn, own_thread = _emit_gang_share(pool), _emit_own_thread(pool)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    jobs = b.sext(numjobs, I64)
    gang_ctx = _alloca(b, _GANG)
    for i, value in enumerate((dojob, jobdata, elsize, data)):
        b.store(value, b.gep(gang_ctx, [I32(0), I32(i)], inbounds=True, source_etype=_GANG))
    one, try_pool, pooled, started, own = (fn.append_basic_block(x) for x in (
        "one", "try_pool", "pooled", "started", "own"))
    b.cbranch(b.icmp_signed("<=", jobs, I64(1)), one, try_pool)
    b.position_at_end(one)
    _call_dojob(b, gang_ctx, I64(0))
    b.ret_void()

    b.position_at_end(try_pool)
    fits = b.icmp_signed("<=", jobs, I64(pool.MAX_SHARES))
    b.cbranch(fits, pooled, own)
    b.position_at_end(pooled)
    taken = fn.append_basic_block("taken")
    b.cbranch(pool.acquire(b), taken, own)
    b.position_at_end(taken)
    pool.start_workers(b, fn, worker, b.sub(jobs, I64(1)))
    have = pool.load(b, pool.workers, I64, "monotonic")
    short = fn.append_basic_block("short")
    b.cbranch(b.icmp_signed(">=", have, b.sub(jobs, I64(1))), started, short)
    b.position_at_end(short)           # too few workers for a gang: give the pool back
    pool.store(b, I64(0), pool.busy)
    b.branch(own)
    b.position_at_end(started)
    pool.run_job(b, fn, run_shares, share_fn, gang_ctx, jobs, jobs, gang=1)
    b.ret_void()

    b.position_at_end(own)
    _run_on_own_threads(pool, b, fn, own_thread, gang_ctx, jobs)
    b.ret_void()
    return fn


def _run_on_own_threads(pool, b: ir.IRBuilder, fn: ir.Function, own_thread: ir.Function,
                       gang_ctx, jobs) -> None:
    """Jobs 1.. on threads started here, job 0 on the caller, then join them all."""
    create = declare(pool.module, "pthread_create",
                     ir.FunctionType(I32, [PTR, PTR, PTR, PTR]))
    join = declare(pool.module, "pthread_join", ir.FunctionType(I32, [I64, PTR]))
    pair = ir.LiteralStructType([PTR, I64])
    handles = _alloca(b, I64, jobs)
    args = _alloca(b, pair, jobs)
    oks = _alloca(b, I32, jobs)

    def each(name: str, body) -> None:
        head, step, out = (fn.append_basic_block(f"{name}_{x}") for x in ("head", "do", "out"))
        start = b.block
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64, name)
        i.add_incoming(I64(1), start)
        b.cbranch(b.icmp_signed("<", i, jobs), step, out)
        b.position_at_end(step)
        body(i)
        i.add_incoming(b.add(i, I64(1)), b.block)
        b.branch(head)
        b.position_at_end(out)

    def start(i):
        arg = b.gep(args, [i], inbounds=True, source_etype=pair)
        b.store(gang_ctx, b.gep(arg, [I32(0), I32(0)], inbounds=True, source_etype=pair))
        b.store(i, b.gep(arg, [I32(0), I32(1)], inbounds=True, source_etype=pair))
        rc = b.call(create, [b.gep(handles, [i], inbounds=True, source_etype=I64), PTR(None),
                             own_thread, arg])
        b.store(rc, b.gep(oks, [i], inbounds=True, source_etype=I32))

    each("own_start", start)
    _call_dojob(b, gang_ctx, I64(0))

    def finish(i):
        rc = b.load(b.gep(oks, [i], inbounds=True, source_etype=I32), typ=I32)
        with b.if_else(b.icmp_signed("==", rc, I32(0))) as (started, failed):
            with started:
                handle = b.load(b.gep(handles, [i], inbounds=True, source_etype=I64), typ=I64)
                b.call(join, [handle, PTR(None)])
            with failed:
                # NOTE: a thread that could not start runs its job here, after job
                # 0; the gemm may then wait forever, but only in a process that is
                # out of threads
                _call_dojob(b, gang_ctx, i)

    each("own_join", finish)
