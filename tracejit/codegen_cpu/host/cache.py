"""The compile cache: object code in memory and on disk, so a second process does not
compile again.

**Key.** SHA-256 of: the graph's printed IR (constants are printed in full, so their
contents are part of it), the donated argument indices, the host target (triple, CPU
name and features), the tracejit, llvmlite, NumPy and Python versions, a digest of the
CPU backend's own source files (a changed lowering must not load stale code), and the
``TRACEJIT_*`` environment settings that change generated code (fast-math, threads).

**What is stored.** The *object code* of the optimized module, made with the JIT target
machine's ``emit_object`` and loaded into a fresh MCJIT engine with ``add_object_file``
(it is relocated at load, so it does not depend on where it was first loaded), plus the
binding layout as JSON and the constants segment as raw bytes. Nothing is ever
unpickled: a corrupt or foreign entry fails to parse as JSON or as an object file and
is treated as a miss.

**Where.** ``$TRACEJIT_CACHE_DIR``, else ``~/.cache/tracejit``; ``TRACEJIT_CACHE_DIR=off``
keeps the cache in memory only. ``TRACEJIT_CACHE_MAX`` caps its size (default 512 MiB;
least-recently-used entries are evicted, see cache_budget.py); ``tracejit cache info``
and ``tracejit cache clear`` show and empty it. Entries are written to a temporary name and renamed
into place, so concurrent processes never read half a file.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from ..parallel.settings import parallel_config
from . import cache_budget, target
from .cache_budget import CACHE_ENV, cache_dir
from .entry import Layout
from .machine import LLVM_LOCK
from .standalone import standalone

__all__ = ["Artifact", "CACHE_ENV", "ProgramCache", "cache_dir", "compile_object",
           "load_object", "program_key"]

log = logging.getLogger("tracejit.codegen_cpu")

# NOTE: settings that only select among cached artifacts or concern other layers are not
# part of the key; every other TRACEJIT_* variable might change generated code.
_KEY_IGNORES = {"TRACEJIT_CACHE_DIR", "TRACEJIT_LOG", "TRACEJIT_DUMP", "TRACEJIT_EXECUTOR",
                "TRACEJIT_CPU_ENTRY", "TRACEJIT_CPU_STRICT", "TRACEJIT_CACHE_MAX"}
FORMAT = "1"                    # bump when the entry's files change meaning
MEMORY_ENTRIES = 512


@dataclass(frozen=True)
class Artifact:
    """A compiled program, ready to load: object code, binding layout, constants."""

    obj: bytes
    layout: Layout | None       # None for code that is not a program (the trampoline)
    consts: bytes


@functools.cache
def _sources_digest() -> str:
    """Digest of the Python sources that decide what is emitted: the CPU backend, the
    passes that rewrite and plan the graph, and the IR (op semantics, printing)."""
    h = hashlib.sha256()
    for path in key_sources():
        h.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


_PACKAGE = Path(__file__).resolve().parents[2]      # tracejit/


def key_sources() -> list[Path]:
    return [path for layer in ("codegen_cpu", "passes", "ir")
            for path in sorted((_PACKAGE / layer).rglob("*.py"))]


@functools.cache
def _environment() -> str:
    from ... import __version__
    return "\n".join([
        f"format {FORMAT}", f"tracejit {__version__}", f"llvmlite {llvmlite.__version__}",
        f"numpy {np.__version__}", f"python {sys.version_info[:2]}",
        f"sources {_sources_digest()}"])


def _codegen_settings() -> str:
    """Settings the lowering reads at compile time, which code can also change
    (``parallel_settings``) without touching the environment."""
    # NOTE: the target is read on every call, not cached with the versions: a process
    # may compile for another CPU for a while (target.compiling_for).
    parts = [f"target {target.target_id()}", f"fastmath {target.fast_math_flags()}"]
    config = parallel_config()
    parts.append(f"threads {config.threads} min_work {config.min_work}")
    code = standalone()
    if code is not None:
        parts.append(f"standalone {code.vector_isa}")
    return " ".join(parts)


def program_key(graph_text: str, donated=()) -> str:
    """The cache key of a graph (printed IR) compiled with these donated arguments."""
    settings = sorted((k, v) for k, v in os.environ.items()
                      if k.startswith("TRACEJIT_") and k not in _KEY_IGNORES)
    h = hashlib.sha256()
    for part in (_environment(), _codegen_settings(), repr(settings), repr(sorted(donated)),
                 graph_text):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def compile_object(module: ir.Module | llvm.ModuleRef) -> bytes:
    """Verify, optimize at O3 and emit the object code of ``module`` for the compile
    target (an ``ir.Module`` in the compile worker, target.emit_object; a ModuleRef,
    already optimized, here)."""
    if not isinstance(module, llvm.ModuleRef):
        return target.emit_object(module)
    with LLVM_LOCK:
        return target.target_machine().emit_object(module)


def runtime_library(description: str, build):
    """``(engine, address of)`` for code every program shares (the entry trampolines,
    the thread pool, the tile kernels): ``build(module)`` fills a fresh module the first
    time; later processes load the object code from the cache. ``description`` names
    it (and its version) in the cache key. Such code calls only the C library and the
    Python API. Callers keep the engine alive."""
    key = program_key(f"runtime library: {description}")
    cache = ProgramCache()
    artifact = cache.get(key)
    if artifact is None:
        module = build(target.new_module(description.split()[0]))
        # NOTE: compiled here, not in the compile worker: these are fixed, known-good
        # modules compiled once per host (then loaded from the cache), and a program's
        # compile must not wait on, or time out because of, the pieces it links to.
        ref = target.optimize(target.parse(module))
        artifact = Artifact(compile_object(ref), None, b"")
        cache.put(key, artifact)
    engine = load_object(artifact.obj)
    return engine, engine.get_function_address


def load_object(obj: bytes, *, provide: Callable[[bytes], None] | None = None
                ) -> llvm.ExecutionEngine:
    """A fresh MCJIT engine holding ``obj``, relocated and ready to call. ``provide(obj)``
    first makes resolvable the external symbols the code may call beyond the C library
    (a program's: BLAS, the pool; the executor passes it): an unresolved symbol would be
    called at address 0."""
    if provide is not None:
        provide(obj)
    target.check_runnable()
    with LLVM_LOCK:
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target.engine_machine())
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        return engine




class ProgramCache:
    """Artifacts by key: an LRU in memory in front of the disk directory."""

    def __init__(self, directory: Path | None | str = "default",
                 capacity: int = MEMORY_ENTRIES):
        self._directory = directory
        self._memory: collections.OrderedDict[str, Artifact] = collections.OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()
        self.hits = collections.Counter()       # "memory", "disk", "miss"

    @property
    def directory(self) -> Path | None:
        if self._directory == "default":
            return cache_dir()
        return None if self._directory is None else Path(self._directory)

    def get(self, key: str) -> Artifact | None:
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                self.hits["memory"] += 1
                return found
        found = self._read(key)
        self.hits["disk" if found else "miss"] += 1
        if found is not None:
            self._remember(key, found)
        return found

    def put(self, key: str, artifact: Artifact) -> None:
        self._remember(key, artifact)
        self._write(key, artifact)

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    def _remember(self, key: str, artifact: Artifact) -> None:
        with self._lock:
            self._memory[key] = artifact
            self._memory.move_to_end(key)
            while len(self._memory) > self._capacity:
                self._memory.popitem(last=False)

    def _paths(self, key: str) -> tuple[Path, Path, Path] | None:
        directory = self.directory
        if directory is None:
            return None
        base = directory / key[:2] / key
        return base.with_suffix(".o"), base.with_suffix(".json"), base.with_suffix(".bin")

    def _read(self, key: str) -> Artifact | None:
        paths = self._paths(key)
        if paths is None or not paths[1].exists():
            return None
        try:
            meta = json.loads(paths[1].read_text())
            if meta.get("key") != key:
                return None
            obj = paths[0].read_bytes()
            consts = paths[2].read_bytes() if meta["const_file"] else b""
            if hashlib.sha256(obj + consts).hexdigest() != meta["digest"]:
                return None
            layout = meta["layout"] and Layout.from_json(meta["layout"])
            cache_budget.mark_used(paths[1])
            return Artifact(obj, layout, consts)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("ignoring unreadable cache entry %s: %r", key, exc)
            return None

    def _write(self, key: str, artifact: Artifact) -> None:
        paths = self._paths(key)
        if paths is None:
            return
        meta = {"key": key, "layout": artifact.layout and artifact.layout.to_json(),
                "const_file": bool(artifact.consts),
                "digest": hashlib.sha256(artifact.obj + artifact.consts).hexdigest()}
        try:
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            # NOTE: the JSON goes last: its presence is what marks the entry complete.
            files = [(paths[0], artifact.obj)]
            if artifact.consts:
                files.append((paths[2], artifact.consts))
            files.append((paths[1], json.dumps(meta).encode()))
            for path, data in files:
                tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
                tmp.write_bytes(data)
                os.replace(tmp, path)
        except OSError as exc:          # a read-only or full disk costs only recompiles
            log.warning("could not write the compile cache entry %s: %r", key, exc)
            return
        cache_budget.note_write(paths[0].parent.parent, [path for path, _ in files],
                                cache_budget.size_limit())
