"""The disk compile cache's folder (:func:`cache_dir`) and its size cap:
least-recently-used entries go first.

Without a cap the cache grew to 45 MB and 10,500 files after one test run, a demo and a
benchmark (and to 400 MB, 100,000 files on a machine that ran the suite all day).
``TRACEJIT_CACHE_MAX`` caps it (bytes, or with a unit: ``300M``, ``1.5G``, ``64K``; ``0``
or ``off`` for no cap; default ``DEFAULT_LIMIT``). Sizes are space on disk (allocated
blocks, what ``du`` shows): an entry of 2 KB still takes a 4 KiB block per file.

**Use.** The modification time of an entry's ``.json`` file, which a hit refreshes. An
entry without its ``.json`` (being written, or its writer died) counts from its newest
file, so a fresh one is not evicted first and an orphan ages out.

**When to evict.** Totalling the folder means a ``stat`` per file (seconds for 100,000
files), too slow for every process's first write. So the folder keeps an estimate:
``.usage`` holds the total of the last full scan, and each write appends its bytes to
``.usage.log``. A write that takes the estimate over the cap (or finds the scan more
than ``RESCAN_S`` old, or missing) scans the folder and deletes the oldest entries until
it is under ``TRIM_TO`` of the cap; a long log is folded into ``.usage``. Appends lost
in a race only delay eviction until the next scan.

**Several processes.** One evicts at a time (an advisory ``flock``; the others skip).
An entry's ``.json`` is deleted first: without it the entry is a miss, so a concurrent
reader never sees half an entry; a reader that already read the ``.json`` and then finds
the object file gone also gets a miss (cache.py catches the OSError).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_dir", "LIMIT_ENV", "DEFAULT_LIMIT", "TRIM_TO", "RESCAN_S",
           "parse_size", "size_limit",
           "Usage", "usage", "evict", "note_write", "mark_used", "clear"]

log = logging.getLogger("tracejit.codegen_cpu")

CACHE_ENV = "TRACEJIT_CACHE_DIR"


def cache_dir() -> Path | None:
    """The compile cache's folder (``TRACEJIT_CACHE_DIR``; ``off`` for none)."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in ("off", "0", "none", ""):
        return None
    return Path(value) if value else Path.home() / ".cache" / "tracejit"


LIMIT_ENV = "TRACEJIT_CACHE_MAX"
DEFAULT_LIMIT = 512 * 1024 ** 2
TRIM_TO = 0.8
RESCAN_S = 24 * 3600.0          # a full scan at least this often corrects the estimate
FOLD_LINES = 2048               # a log this long is folded into the recorded total
STALE_TEMPORARY_S = 3600.0
ENTRY_SUFFIXES = (".json", ".o", ".bin")
USAGE_FILE, LOG_FILE, LOCK_FILE = ".usage", ".usage.log", ".usage.lock"
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_SIZE = re.compile(r"^([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?$")


def parse_size(text: str) -> int | None:
    """``"300M"`` -> bytes; ``"0"``/``"off"`` -> None (no cap). ValueError otherwise.

    >>> parse_size("1.5G"), parse_size("64KiB"), parse_size("off")
    (1610612736, 65536, None)
    """
    value = text.strip().lower()
    if value in ("0", "off", "none", "unlimited"):
        return None
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"{LIMIT_ENV}={text!r}: expected a size such as 300M, 1.5G or "
                         "268435456 (bytes), or 0/off for no cap")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def size_limit() -> int | None:
    """The cap in bytes from ``TRACEJIT_CACHE_MAX`` (None: no cap)."""
    raw = os.environ.get(LIMIT_ENV)
    return DEFAULT_LIMIT if raw is None or not raw.strip() else parse_size(raw)


@dataclass(frozen=True)
class Usage:
    entries: int
    bytes: int


def disk_bytes(stat: os.stat_result) -> int:
    """Space a file takes on disk (its blocks), not its length."""
    blocks = getattr(stat, "st_blocks", None)
    return stat.st_size if blocks is None else blocks * 512


def _files(directory: Path):
    """``(shard folder, DirEntry)`` of every file in the cache's two-letter shards."""
    try:
        shards = [d for d in directory.iterdir() if d.is_dir() and len(d.name) == 2]
    except OSError:
        return
    for shard in shards:
        try:
            items = list(os.scandir(shard))
        except OSError:
            continue
        for item in items:
            yield shard, item


def _entries(directory: Path) -> dict[Path, tuple[float, int]]:
    """Each entry (its path without suffix) -> (last use, bytes on disk of its files)."""
    found: dict[Path, list] = {}
    for shard, item in _files(directory):
        stem, _, suffix = item.name.rpartition(".")
        if item.name.startswith(".") or f".{suffix}" not in ENTRY_SUFFIXES:
            continue
        try:
            stat = item.stat()
        except OSError:             # evicted by another process meanwhile
            continue
        # [.json mtime or None, newest mtime of any file, bytes]
        slot = found.setdefault(shard / stem, [None, 0.0, 0])
        slot[1] = max(slot[1], stat.st_mtime)
        slot[2] += disk_bytes(stat)
        if suffix == "json":
            slot[0] = stat.st_mtime
    return {stem: (used if used is not None else newest, size)
            for stem, (used, newest, size) in found.items()}


def usage(directory: Path) -> Usage:
    """Entries and bytes on disk, counted file by file (a full scan)."""
    entries = _entries(directory)
    return Usage(len(entries), sum(size for _, size in entries.values()))


def _remove(stem: Path) -> None:
    for suffix in ENTRY_SUFFIXES:            # .json first: the entry is then a miss
        try:
            stem.with_suffix(suffix).unlink()
        except FileNotFoundError:
            pass


def _remove_stale_temporaries(directory: Path, now: float) -> None:
    """Delete temporary files (``.<name>.<pid>.<thread>``) that a writer which died left
    behind; a live writer renames its file within seconds."""
    for _, item in _files(directory):
        if item.name.startswith("."):
            try:
                if now - item.stat().st_mtime > STALE_TEMPORARY_S:
                    os.unlink(item.path)
            except OSError:
                continue


def evict(directory: Path, limit: int | None) -> int:
    """Scan the folder; when it holds more than ``limit`` bytes, delete the least
    recently used entries until it is under ``TRIM_TO`` of ``limit``. Records the total
    for :func:`note_write`'s estimate; returns the bytes freed."""
    now = time.time()
    _remove_stale_temporaries(directory, now)
    entries = _entries(directory)
    total = sum(size for _, size in entries.values())
    freed = 0
    if limit is not None and total > limit:
        goal = int(limit * TRIM_TO)
        for stem, (_, size) in sorted(entries.items(), key=lambda kv: kv[1][0]):
            if total - freed <= goal:
                break
            try:
                _remove(stem)
            except OSError as exc:
                log.debug("could not evict %s: %r", stem, exc)
                continue
            freed += size
        log.info("compile cache over its cap (%d of %d bytes): evicted %d bytes", total,
                 limit, freed)
    _record(directory, total - freed, now)
    return freed


def _record(directory: Path, total: int, scanned: float) -> None:
    """Write the recorded total (atomically) and start a new log."""
    try:
        tmp = directory / f"{USAGE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps({"bytes": total, "scanned": scanned}))
        os.replace(tmp, directory / USAGE_FILE)
        (directory / LOG_FILE).write_text("")
    except OSError as exc:
        log.debug("could not record the compile cache's size: %r", exc)


def _estimate(directory: Path) -> tuple[int, int, float | None]:
    """(recorded total + logged writes, log lines, time of the last full scan or None)."""
    try:
        recorded = json.loads((directory / USAGE_FILE).read_text())
        total, scanned = int(recorded["bytes"]), float(recorded["scanned"])
    except (OSError, ValueError, KeyError, TypeError):
        total, scanned = 0, None
    try:
        lines = (directory / LOG_FILE).read_text().split()
    except OSError:
        lines = []
    logged = sum(int(n) for n in lines if n.isdigit())
    return total + logged, len(lines), scanned


@contextlib.contextmanager
def _exclusive(directory: Path):
    """True inside when this process holds the folder's eviction lock (non-blocking)."""
    try:
        import fcntl
    except ImportError:             # no flock here: every process may evict
        yield True
        return
    try:
        fd = os.open(directory / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:                 # another process is scanning
        os.close(fd)
        yield False
        return
    try:
        yield True
    finally:
        os.close(fd)                # closing releases the lock


def note_write(directory: Path, paths: list[Path], limit: int | None) -> None:
    """Account for the entry just written at ``paths``; evict when the folder's
    estimated size passes ``limit``."""
    if limit is None:
        return
    written = 0
    for path in paths:
        try:
            written += disk_bytes(path.stat())
        except OSError:
            pass
    try:
        # NOTE: one short write in append mode: lines of concurrent writers do not mix.
        with open(directory / LOG_FILE, "a") as out:
            out.write(f"{written}\n")
    except OSError:
        return
    estimate, lines, scanned = _estimate(directory)
    stale = scanned is None or time.time() - scanned > RESCAN_S
    if estimate <= limit and not stale and lines < FOLD_LINES:
        return
    with _exclusive(directory) as mine:
        if not mine:
            return
        if estimate > limit or stale:
            evict(directory, limit)
        else:
            _record(directory, estimate, scanned)


def mark_used(json_path: Path) -> None:
    """Record a hit: the entry becomes the most recently used."""
    try:
        os.utime(json_path)
    except OSError:
        pass


def clear(directory: Path) -> Usage:
    """Delete every entry (the tuning record is cleared by tuning.forget)."""
    _remove_stale_temporaries(directory, time.time() + 2 * STALE_TEMPORARY_S)
    entries = _entries(directory)
    for stem in entries:
        _remove(stem)
    if directory.is_dir():
        _record(directory, 0, time.time())
    return Usage(len(entries), sum(size for _, size in entries.values()))
