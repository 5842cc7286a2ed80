"""Choices measured on this host and remembered: the tuning record.

Where the CPU backend has more than one way to do a thing (its register-tiled gemm or
OpenBLAS, ...), which is faster depends on the CPU under the machine: the tiled kernel
beat OpenBLAS by 2x on AMD Zen 5 and lost by 3x on Intel Emerald Rapids. So the choice
is never inferred from a CPU flag: the first time a *class* of problem is met on a
host, :func:`choose` times each candidate briefly (a warm-up run, then timed runs
until the decision's budget, ``BUDGET_SECONDS``, is spent; the fastest run counts),
keeps the winner in the record, and every later compile, in this process or another
on the same host, reuses it (as FFTW's wisdom does).

**Where.** ``<compile cache folder>/tuning/<host key>.json`` (``~/.cache/tracejit``
unless ``TRACEJIT_CACHE_DIR`` says otherwise; with ``TRACEJIT_CACHE_DIR=off`` the
record lives in memory only). The host key is a digest of LLVM's name for the host CPU
and its feature string, so a machine that moves to another CPU starts a fresh record.
One JSON object: ``{"format", "host": {"cpu", "features"}, "decisions": {key:
{"choice", "seconds": {candidate: best seconds}}}}``. A record that cannot be read is
rebuilt with a warning; writes go to a temporary file renamed into place, after
merging with what other processes wrote meanwhile.

**Forcing.** ``TRACEJIT_TUNE=off`` measures nothing and writes nothing: each decision
takes its default. Decisions may have their own override (``TRACEJIT_GEMM=blas`` or
``tiles``). ``tracejit cache clear`` removes the record with the compile cache (a
cached program keeps the choice it was compiled with).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

from .cache_budget import cache_dir
from .machine import host_cpu

__all__ = ["BUDGET_SECONDS", "TUNE_ENV", "choose", "record_path", "decisions", "forget",
           "reload", "tuning_enabled"]

log = logging.getLogger("tracejit.codegen_cpu")

TUNE_ENV = "TRACEJIT_TUNE"
FORMAT = 1
BUDGET_SECONDS = 0.05           # per decision, all candidates together
MAX_RUNS = 5                    # timed runs per candidate at most

_LOCK = threading.Lock()
_MEMORY: dict[str, dict] = {}   # record path (or "" in memory only) -> decisions
_LOADED: set[str] = set()


def tuning_enabled() -> bool:
    return os.environ.get(TUNE_ENV, "").strip().lower() not in ("off", "0", "no", "false")


def _host() -> dict[str, str]:
    cpu, features = host_cpu()
    return {"cpu": cpu, "features": features}


def record_path() -> Path | None:
    """The tuning record's file for this host; None when the compile cache is off."""
    folder = cache_dir()
    if folder is None:
        return None
    host = _host()
    digest = hashlib.sha256(f"{host['cpu']}/{host['features']}".encode()).hexdigest()[:16]
    return folder / "tuning" / f"{host['cpu']}-{digest}.json"


def _read(path: Path) -> dict:
    """The decisions stored at ``path``; {} (and a warning) when the file is corrupt."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        warnings.warn(f"tracejit: cannot read the tuning record {path} ({exc}); "
                      "measuring again", RuntimeWarning, stacklevel=3)
        return {}
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT or not isinstance(data.get("decisions"), dict):
            raise ValueError(f"format {data.get('format')!r}")
        found = {}
        for key, entry in data["decisions"].items():
            if isinstance(entry, dict) and isinstance(entry.get("choice"), str):
                found[key] = entry
        return found
    except (ValueError, AttributeError, TypeError) as exc:
        warnings.warn(f"tracejit: the tuning record {path} is corrupt ({exc}); rebuilding "
                      "it", RuntimeWarning, stacklevel=3)
        return {}


def _write(path: Path, key: str, entry: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = _read(path)
        merged[key] = entry
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "host": _host(), "decisions": merged},
                                  indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:        # a read-only cache folder: keep the choice in memory
        log.debug("tuning record %s not written: %s", path, exc)


def _decisions_for(path: Path | None) -> dict:
    name = str(path) if path is not None else ""
    if name not in _LOADED:
        _MEMORY[name] = _read(path) if path is not None else {}
        _LOADED.add(name)
    return _MEMORY[name]


def decisions() -> dict[str, dict]:
    """A copy of this host's remembered decisions."""
    with _LOCK:
        return dict(_decisions_for(record_path()))


def reload() -> None:
    """Read the record from disk again at the next decision (what another process wrote
    since is seen; nothing is deleted)."""
    with _LOCK:
        _MEMORY.clear()
        _LOADED.clear()


def forget() -> None:
    """Drop the remembered decisions, in memory and on disk (``tracejit cache clear``)."""
    with _LOCK:
        path = record_path()
        _MEMORY.clear()
        _LOADED.clear()
        if path is not None:
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def _time(run: Callable[[], None], budget: float) -> float:
    run()                                   # warm-up: page faults, caches, lazy loads
    best = float("inf")
    spent = 0.0
    for _ in range(MAX_RUNS):
        start = time.perf_counter()
        run()
        took = time.perf_counter() - start
        best = min(best, took)
        spent += took
        if spent >= budget:
            break
    return best


def choose(key: str, candidates: Mapping[str, Callable[[], None]], default: str, *,
           force: str | None = None, budget: float = BUDGET_SECONDS) -> str:
    """The name of the fastest of ``candidates`` (name -> a callable that does the work
    once) for the problem class ``key``, measured the first time on this host.

    ``force`` (a candidate's name) wins over everything; with ``TRACEJIT_TUNE=off`` the
    answer is ``default``. Measurements run under a lock, one decision at a time, so
    two threads compiling at once do not time each other's work."""
    if force is not None:
        if force not in candidates:
            raise ValueError(f"unknown choice {force!r} for {key}; expected one of "
                             f"{sorted(candidates)}")
        return force
    if not tuning_enabled() or len(candidates) == 1:
        return default
    with _LOCK:
        path = record_path()
        known = _decisions_for(path)
        entry = known.get(key)
        if entry is not None and entry["choice"] in candidates:
            return entry["choice"]
        share = budget / len(candidates)
        seconds = {name: _time(run, share) for name, run in candidates.items()}
        choice = min(seconds, key=seconds.get)
        entry = {"choice": choice, "seconds": {k: float(f"{v:.4g}") for k, v in seconds.items()}}
        known[key] = entry
        if path is not None:
            _write(path, key, entry)
        log.info("tuning %s: %s (%s)", key, choice,
                 ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in seconds.items()))
        return choice
