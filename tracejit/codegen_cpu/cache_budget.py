"""The disk compile cache's size cap: least-recently-used entries go first.

Without a cap the cache grew to 45 MB and 10,500 files after one test run, a demo and a
benchmark. ``TRACEJIT_CACHE_MAX`` caps it (bytes, or with a unit: ``300M``, ``1.5G``,
``64K``; ``0`` or ``off`` for no cap; default ``DEFAULT_LIMIT``). Use is tracked by the
modification time of an entry's ``.json`` file, which a hit refreshes; when a process
has written ``CHECK_EVERY`` entries (and at its first write) it totals the folder and,
if over the cap, deletes the oldest entries until the cache is under ``TRIM_TO`` of it.

Several processes may share the folder. An entry's ``.json`` is deleted first: without
it the entry is incomplete, so a concurrent reader sees a miss, never half an entry; a
reader that already opened the ``.json`` and then finds the object file gone also
treats it as a miss (cache.py catches the OSError). Two processes evicting at once
only delete more than needed.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LIMIT_ENV", "DEFAULT_LIMIT", "CHECK_EVERY", "TRIM_TO", "parse_size",
           "size_limit", "Usage", "usage", "evict", "mark_used", "clear"]

log = logging.getLogger("tracejit.codegen_cpu")

LIMIT_ENV = "TRACEJIT_CACHE_MAX"
DEFAULT_LIMIT = 512 * 1024 * 1024
CHECK_EVERY = 64
TRIM_TO = 0.8
ENTRY_SUFFIXES = (".json", ".o", ".bin")
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int | None:
    """``"300M"`` -> bytes; ``"0"``/``"off"`` -> None (no cap). ValueError otherwise."""
    value = text.strip().lower()
    if value in ("0", "off", "none", "unlimited"):
        return None
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"{LIMIT_ENV}={text!r}: expected a size such as 300M, 1.5G or "
                         "268435456 (bytes), or 0/off for no cap")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def size_limit() -> int | None:
    """The cap in bytes from ``TRACEJIT_CACHE_MAX`` (None: no cap)."""
    raw = os.environ.get(LIMIT_ENV)
    return DEFAULT_LIMIT if raw is None or not raw.strip() else parse_size(raw)


@dataclass(frozen=True)
class Usage:
    entries: int
    bytes: int


def _entries(directory: Path) -> dict[Path, tuple[float, int]]:
    """Each entry (its path without suffix) -> (last use, bytes of its files)."""
    found: dict[Path, list] = {}
    try:
        shards = [d for d in directory.iterdir() if d.is_dir() and len(d.name) == 2]
    except OSError:
        return {}
    for shard in shards:
        try:
            files = list(os.scandir(shard))
        except OSError:
            continue
        for item in files:
            stem, dot, suffix = item.name.rpartition(".")
            if not dot or item.name.startswith(".") or f".{suffix}" not in ENTRY_SUFFIXES:
                continue
            try:
                stat = item.stat()
            except OSError:
                continue
            slot = found.setdefault(shard / stem, [0.0, 0])
            slot[1] += stat.st_size
            if suffix == "json":
                slot[0] = stat.st_mtime
    return {path: (used, size) for path, (used, size) in found.items()}


def usage(directory: Path) -> Usage:
    entries = _entries(directory)
    return Usage(len(entries), sum(size for _, size in entries.values()))


def _remove(stem: Path) -> None:
    for suffix in ENTRY_SUFFIXES:            # .json first: the entry is then a miss
        try:
            stem.with_suffix(suffix).unlink()
        except FileNotFoundError:
            pass


def evict(directory: Path, limit: int | None) -> int:
    """Delete least-recently-used entries until the cache is under ``TRIM_TO`` of
    ``limit`` when it is over ``limit``; returns the bytes freed."""
    if limit is None:
        return 0
    entries = _entries(directory)
    total = sum(size for _, size in entries.values())
    if total <= limit:
        return 0
    goal, freed = int(limit * TRIM_TO), 0
    for stem, (_, size) in sorted(entries.items(), key=lambda kv: kv[1][0]):
        if total - freed <= goal:
            break
        try:
            _remove(stem)
        except OSError as exc:
            log.debug("could not evict %s: %r", stem, exc)
            continue
        freed += size
    log.info("compile cache over its cap (%d of %d bytes): evicted %d bytes", total, limit,
             freed)
    return freed


def mark_used(json_path: Path) -> None:
    """Record a hit: the entry becomes the most recently used."""
    try:
        os.utime(json_path)
    except OSError:
        pass


def clear(directory: Path) -> Usage:
    """Delete every entry (the tuning record is cleared by tuning.forget)."""
    entries = _entries(directory)
    for stem in entries:
        _remove(stem)
    return Usage(len(entries), sum(size for _, size in entries.values()))
