"""Parallel-for from generated code: OpenMP's ``GOMP_parallel`` (libgomp), no Python.

A kernel's outer loop runs over ``n`` *work items* (rows, or blocks of a long row).
:func:`emit_parallel_for` outlines the loop body into ``<name>.range(ctx, lo, hi, tid)``
and either calls it once for the whole range (small kernels: no thread ever wakes) or
hands ``<name>.omp(ctx)`` to ``GOMP_parallel``, where each OpenMP thread takes one
contiguous share ``[n*t/T, n*(t+1)/T)`` of the items. Values the body needs from the
caller travel in a stack-allocated context struct (after inlining into the serial path,
LLVM's SROA turns them back into registers).

Settings (environment read once, at the first lowering; they decide the code a kernel
gets, so a compile cache must key on :func:`parallel_config`):

* ``TRACEJIT_THREADS`` -- threads per parallel kernel; ``1`` turns threading off (no
  libgomp call is emitted at all). Default: the CPUs this process may run on.
* ``TRACEJIT_PARALLEL_MIN_WORK`` -- a kernel goes parallel when its element count
  times its per-element weight (about 1 per cheap op, 8 per transcendental) reaches
  this (default 262144: some 100K elements of a cheap kernel, 10K of a W1-like one,
  i.e. 10-30 us of work; a GOMP dispatch costs about 1 us, waking a sleeping OpenMP
  thread about 44 us).

:func:`parallel_settings` overrides both for a block of code (tests use it).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import llvmlite.binding as llvm
from llvmlite import ir

from .lower_types import I32, I64, PTR, VOID

__all__ = ["ParallelConfig", "parallel_config", "parallel_settings", "ensure_gomp",
           "emit_parallel_for", "should_parallelize"]

THREADS_ENV = "TRACEJIT_THREADS"
MIN_WORK_ENV = "TRACEJIT_PARALLEL_MIN_WORK"
DEFAULT_MIN_WORK = 1 << 18


def _default_threads() -> int:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            raise ValueError(f"{THREADS_ENV}={raw!r}: expected a positive integer") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:      # not Linux
        return max(1, os.cpu_count() or 1)


def _default_min_work() -> int:
    raw = os.environ.get(MIN_WORK_ENV, "").strip()
    return int(raw) if raw else DEFAULT_MIN_WORK


@dataclass
class ParallelConfig:
    threads: int
    min_work: int


_CONFIG: ParallelConfig | None = None
_LOCK = threading.Lock()


def parallel_config() -> ParallelConfig:
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = ParallelConfig(_default_threads(), _default_min_work())
    return _CONFIG


@contextlib.contextmanager
def parallel_settings(threads: int | None = None, min_work: int | None = None):
    """Temporarily change the threading settings used by the lowering functions."""
    cfg = parallel_config()
    saved = (cfg.threads, cfg.min_work)
    if threads is not None:
        cfg.threads = max(1, int(threads))
    if min_work is not None:
        cfg.min_work = max(0, int(min_work))
    try:
        yield cfg
    finally:
        cfg.threads, cfg.min_work = saved


_GOMP_LOADED = False


# NOTE: how long an idle OpenMP thread spins before it sleeps (libgomp's default is
# 300000 spins, about 0.1-1 ms). Kernels of one program run microseconds apart, so a
# short spin keeps the team awake through a program; a long one, on a machine where
# another process wants the core, makes the thread at the barrier burn the time slice
# the late thread needs (an MLP step went from 4 ms to 58 ms under load).
DEFAULT_SPINCOUNT = "10000"


def ensure_gomp() -> None:
    """Make libgomp's symbols visible to JIT code (once per process). Unless the user
    set ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``, libgomp starts with a short spin
    count (it reads the environment once, when it is loaded)."""
    global _GOMP_LOADED
    with _LOCK:
        if _GOMP_LOADED:
            return
        own = not ({"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(os.environ))
        if own:
            os.environ["GOMP_SPINCOUNT"] = DEFAULT_SPINCOUNT
        try:
            path = ctypes.util.find_library("gomp") or "libgomp.so.1"
            try:
                llvm.load_library_permanently(path)
            except RuntimeError:
                llvm.load_library_permanently("libgomp.so.1")
        finally:
            if own:     # child processes see the user's environment, not ours
                del os.environ["GOMP_SPINCOUNT"]
        _GOMP_LOADED = True


def should_parallelize(n_items: int, work: int) -> bool:
    cfg = parallel_config()
    return cfg.threads > 1 and n_items >= 2 and work >= cfg.min_work


def _declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    try:
        return module.get_global(name)
    except KeyError:
        return ir.Function(module, fnty, name)


def emit_parallel_for(builder: ir.IRBuilder, name: str, n_items: int, work: int,
                      captures: Sequence[ir.Value],
                      body: Callable[[ir.IRBuilder, ir.Value, ir.Value, ir.Value, list], None],
                      *, force_serial: bool = False) -> bool:
    """Run ``body(builder, lo, hi, tid, captured)`` over ``[0, n_items)``.

    ``body`` is emitted once, into a new function; ``captured`` are the values of
    ``captures`` inside it. With threading it runs on every OpenMP thread with that
    thread's share and ``tid`` = the thread number (< ``parallel_config().threads``);
    otherwise once with ``lo=0, hi=n_items, tid=0``. Returns whether it went parallel.
    """
    module = builder.module
    ctx_type = ir.LiteralStructType([c.type for c in captures])
    range_fn = ir.Function(module, ir.FunctionType(VOID, [PTR, I64, I64, I64]),
                           f"{name}.range")
    range_fn.linkage = "internal"
    rb = ir.IRBuilder(range_fn.append_basic_block("entry"))
    ctx, lo, hi, tid = range_fn.args
    captured = [rb.load(rb.gep(ctx, [ir.Constant(I32, 0), ir.Constant(I32, i)],
                               inbounds=True, source_etype=ctx_type), typ=c.type)
                for i, c in enumerate(captures)]
    body(rb, lo, hi, tid, captured)
    if not rb.block.is_terminated:
        rb.ret_void()

    ctx_ptr = entry_alloca(builder, ctx_type)
    for i, c in enumerate(captures):
        builder.store(c, builder.gep(ctx_ptr, [ir.Constant(I32, 0), ir.Constant(I32, i)],
                                     inbounds=True, source_etype=ctx_type))
    parallel = not force_serial and should_parallelize(n_items, work)
    if not parallel:
        builder.call(range_fn, [ctx_ptr, ir.Constant(I64, 0), ir.Constant(I64, n_items),
                                ir.Constant(I64, 0)])
        return False

    ensure_gomp()
    omp_fn = ir.Function(module, ir.FunctionType(VOID, [PTR]), f"{name}.omp")
    omp_fn.linkage = "internal"
    ob = ir.IRBuilder(omp_fn.append_basic_block("entry"))
    thread_num = _declare(module, "omp_get_thread_num", ir.FunctionType(I32, []))
    num_threads = _declare(module, "omp_get_num_threads", ir.FunctionType(I32, []))
    t = ob.sext(ob.call(thread_num, []), I64)
    nt = ob.sext(ob.call(num_threads, []), I64)
    n = ir.Constant(I64, n_items)
    first = ob.sdiv(ob.mul(n, t), nt)
    last = ob.sdiv(ob.mul(n, ob.add(t, ir.Constant(I64, 1))), nt)
    ob.call(range_fn, [omp_fn.args[0], first, last, t])
    ob.ret_void()

    gomp = _declare(module, "GOMP_parallel",
                    ir.FunctionType(VOID, [PTR, PTR, I32, I32]))
    threads = min(parallel_config().threads, n_items)
    builder.call(gomp, [omp_fn, ctx_ptr, ir.Constant(I32, threads), ir.Constant(I32, 0)])
    return True


def entry_alloca(builder: ir.IRBuilder, ty: ir.Type, count: int | None = None,
                 name: str = "") -> ir.Value:
    """An ``alloca`` in the function's entry block (so SROA/mem2reg can promote it)."""
    fn = builder.function
    entry = fn.entry_basic_block
    saved = builder.block
    if entry.instructions:
        builder.position_before(entry.instructions[0])
    else:
        builder.position_at_end(entry)
    size = ir.Constant(I64, count) if count is not None else None
    slot = builder.alloca(ty, size=size, name=name)
    # NOTE: llvmlite types an alloca as a typed pointer; everything here uses opaque ones.
    slot.type = PTR
    builder.position_at_end(saved)
    return slot
