"""How many threads a kernel gets, and when it goes parallel at all.

Settings (environment read once, at the first lowering; they decide the code a kernel
gets, so a compile cache must key on :func:`parallel_config`):

* ``TRACEJIT_THREADS`` -- threads per parallel kernel; ``1`` turns threading off (no
  pool call is emitted at all). Default: the CPUs this process may run on.
* ``TRACEJIT_PARALLEL_MIN_WORK`` -- a kernel goes parallel when its element count
  times its per-element weight (about 1 per cheap op, 8 per transcendental) reaches
  this (default 262144: some 100K elements of a cheap kernel, 10K of a W1-like one,
  i.e. 10-30 us of work; handing a job to spinning workers costs about 1 us, waking
  sleeping ones tens of us).

:func:`parallel_settings` overrides both for a block of code (tests use it).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from ...config import config as settings
from ...config import on_change
from ..host.standalone import standalone

__all__ = ["THREADS_ENV", "MIN_WORK_ENV", "ParallelConfig", "parallel_config",
           "parallel_settings", "should_parallelize"]

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


def parallel_config() -> ParallelConfig:
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = ParallelConfig(settings.threads or _default_threads(), _default_min_work())
    if standalone() is not None:
        # NOTE: standalone code (ahead-of-time builds) has no pool: one thread. A copy,
        # so that JIT compiles on other threads meanwhile keep theirs.
        return ParallelConfig(1, _CONFIG.min_work)
    return _CONFIG


def _threads_changed(names) -> None:
    # NOTE: tracejit.config's ``threads`` (a Session's intra_op_parallelism_threads) is
    # read by the compiles that follow; it is part of the compile cache key.
    if "threads" in names and _CONFIG is not None:
        _CONFIG.threads = max(1, int(settings.threads)) if settings.threads \
            else _default_threads()


on_change(_threads_changed)


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


def should_parallelize(n_items: int, work: int) -> bool:
    cfg = parallel_config()
    return cfg.threads > 1 and n_items >= 2 and work >= cfg.min_work
