"""``CpuExecutor``: the compiler and runner of the CPU device (device.py).

* ``compile(graph)`` optimizes the graph (``tracejit.passes.optimize`` with the CPU's
  own passes, pipeline.CPU_PASSES), builds one
  LLVM module with one entry (program.py), compiles it to object code -- or finds it
  in the compile cache (cache.py) -- loads it and returns the entry as a callable:
  ``program(list_of_arrays) -> list_of_arrays``.
* ``run_op(op, arrays, params)`` (eager mode) compiles the one-equation graph of
  ``op`` and calls it; programs are kept per (op, params, input types).

When the kernel lowering cannot compile an equation of a graph, that graph runs on the
reference interpreter instead (logged once per op name on the ``tracejit.codegen_cpu``
logger); ``fallbacks`` counts them. ``TRACEJIT_CPU_STRICT=1`` turns a fallback into an
error, which tests of the backend use.

>>> import numpy as np
>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> b = GraphBuilder("inc")
>>> x = b.add_input(tensor_type([4], "f32"))
>>> one = b.emit1(ops.FILL, [], {"shape": (4,), "value": 1.0, "dtype": "f32"})
>>> program = CpuExecutor().compile(b.build([b.emit1(ops.ADD, [x, one])]))
>>> program([np.arange(4, dtype=np.float32)])[0].tolist()
[1.0, 2.0, 3.0, 4.0]
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import warnings
import weakref

import numpy as np

from ...ir.builder import GraphBuilder
from ...ir.core import Graph, Params, TensorType
from ...ir.interpret import interpret
from ...ir.opdef import OpDef
from ...ir.printer import print_graph
from ...passes.pipeline import dump_stages, optimize
from ..gemm.int8_kernels import INT8_SYMBOL_PREFIX, ensure_int8_kernels
from ..gemm.onednn import SGEMM, ensure_onednn
from ..gemm.openblas import ensure_blas
from ..gemm.tile_kernel import ensure_tile_gemm
from ..kernels.host_callback import SYMBOL as HOST_CALLBACK_SYMBOL
from ..kernels.host_callback import ensure_host_callback
from ..parallel.pool import ensure_pool
from ..pipeline import CPU_PASSES
from . import cache as cache_mod
from . import target
from .binding import CompiledProgram
from .compile_worker import CompileTimeout
from .entry import RETURN_ONE, RETURN_TUPLE, RETURN_WRAPPED_LIST
from .program import LoweringError, Unsupported, build_program

__all__ = ["CompileWarning", "CpuExecutor", "STRICT_ENV", "loaded_program"]

log = logging.getLogger("tracejit.codegen_cpu")

STRICT_ENV = "TRACEJIT_CPU_STRICT"
EAGER_ENTRIES = 4096


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "on", "true", "yes")


class CompileWarning(UserWarning):
    """A graph could not be compiled and runs on the reference interpreter instead."""


def provide_program_symbols(obj: bytes) -> None:
    """Make what a program's object code may call resolvable in this process: OpenBLAS,
    the thread pool, the tiled gemm, and oneDNN and the 8-bit kernels where the object
    names them (loading them costs milliseconds). A program loaded from disk was never
    lowered here."""
    ensure_blas()
    ensure_pool()
    ensure_tile_gemm()
    if SGEMM.encode() in obj:
        ensure_onednn()
    if HOST_CALLBACK_SYMBOL.encode() in obj:
        ensure_host_callback()
    if INT8_SYMBOL_PREFIX.encode() in obj:
        ensure_int8_kernels()


class CpuExecutor:
    """Compiles graphs to native code for this machine's CPU (llvmlite, MCJIT)."""

    name = "cpu"

    def __init__(self, cache: cache_mod.ProgramCache | None = None, lowering=None,
                 passes=CPU_PASSES):
        self.cache = cache or cache_mod.ProgramCache()
        self.lowering = lowering
        self.passes = tuple(passes)
        self.fallbacks: collections.Counter = collections.Counter()
        self.timed_out: list[str] = []          # graphs whose compile hit the time limit
        self._timed_out_keys: set[str] = set()
        self._logged: set[str] = set()
        # NOTE: loaded programs are shared by every compile of an equal graph while any
        # caller holds one; artifacts outlive them in self.cache.
        self._loaded: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._eager: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.RLock()

    # ---- what the CPU device calls ---------------------------------------------------------------

    def compile(self, graph: Graph, *, donated=()):
        """A program for ``graph``: ``program(arrays) -> list of arrays``. ``donated``
        argument indices may be overwritten, and results may be those arrays."""
        key = cache_mod.program_key(print_graph(graph), donated)
        with self._lock:
            program = self._loaded.get(key)
            if program is not None:
                dump_stages(graph, self.passes)
                return program
            artifact = self.cache.get(key)
            if artifact is not None:
                dump_stages(graph, self.passes)
            else:
                artifact = self._build(graph, donated, key)
            if artifact is None:
                program = self._interpreted(graph)
                if key in self._timed_out_keys:
                    program.fallback_reason = "compile timeout: runs on the interpreter"
            else:
                self.cache.put(key, artifact)
                program = self.load(artifact).function
            self._loaded[key] = program
            return program

    def run_op(self, op: OpDef, args, params: Params) -> tuple:
        arrays = [np.asarray(a) for a in args]
        key = (op.name, params, tuple((a.shape, a.dtype) for a in arrays))
        with self._lock:
            program = self._eager.get(key)
            if program is None:
                program = self.compile(_one_op_graph(op, arrays, params))
                self._eager[key] = program
                while len(self._eager) > EAGER_ENTRIES:
                    self._eager.popitem(last=False)
            else:
                self._eager.move_to_end(key)
        return tuple(program(arrays))

    def clear_caches(self) -> None:
        """Forget loaded programs and the in-memory artifacts (not the disk cache)."""
        with self._lock:
            self._loaded.clear()
            self._eager.clear()
            self.cache.clear_memory()

    def overwritten_arguments(self, program) -> frozenset[int] | None:
        """The arguments ``program`` (from :meth:`compile`) writes: its layout's donated
        ones (the memory plan drops a donated argument it never writes); None for an
        interpreted fallback."""
        compiled = loaded_program(program)
        if compiled is None:
            return None
        return frozenset(i for i, arg in enumerate(compiled.layout.args) if arg.donated)

    def dispatcher(self, program, slow, wrapper, returns: str, weak):
        """A native callable running ``program`` (from :meth:`compile`) on arrays or
        non-weak wrappers and returning its results wrapped, or None where there is no
        trampoline (see ``CompiledProgram.dispatcher``). ``returns`` is ``"one"``,
        ``"tuple"`` or ``"list"``; other calls go to ``slow``."""
        compiled = loaded_program(program)
        if compiled is None:
            return None
        how = {"one": RETURN_ONE, "tuple": RETURN_TUPLE, "list": RETURN_WRAPPED_LIST}[returns]
        return compiled.dispatcher(slow, wrapper, how, tuple(weak))

    # ---- pieces ------------------------------------------------------------------------------

    def load(self, artifact: cache_mod.Artifact, *, entry: str | None = None
             ) -> CompiledProgram:
        """A loaded, callable program (its own engine, arena and constants)."""
        engine = cache_mod.load_object(artifact.obj, provide=provide_program_symbols)
        return CompiledProgram(artifact.layout, engine, artifact.consts, entry=entry)

    def build(self, graph: Graph, *, donated=(), key: str | None = None):
        """``(program.Built, fused graph)`` for ``graph``, without compiling."""
        key = key or cache_mod.program_key(print_graph(graph), donated)
        fused = optimize(graph, device_passes=self.passes)
        built = build_program(fused, donated=donated, prefix=f"tj_{key[:16]}",
                              lowering=self.lowering)
        return built, fused

    def dump(self, graph: Graph, stage: str = "llvm", *, donated=()) -> str:
        """The compiled program of ``graph`` as text: ``"llvm"`` (the optimized LLVM IR),
        ``"llvm-raw"`` (as generated, before LLVM's passes) or ``"asm"`` (host assembly)."""
        built, _ = self.build(graph, donated=donated)
        if stage == "llvm-raw":
            return str(built.module)
        ref = target.optimize(target.parse(built.module))
        if stage == "llvm":
            return str(ref)
        if stage == "asm":
            return target.assembly(ref)
        raise ValueError(f"unknown stage {stage!r}; expected llvm, llvm-raw or asm")

    def _build(self, graph: Graph, donated, key: str) -> cache_mod.Artifact | None:
        try:
            built, _ = self.build(graph, donated=donated, key=key)
            try:
                obj = cache_mod.compile_object(built.module)
            except CompileTimeout as exc:
                self._note_timeout(graph, exc, key)
                return None
            except Exception as exc:    # LLVM rejected the module: a lowering bug
                raise LoweringError(f"LLVM could not compile graph '{graph.name}': "
                                    f"{exc}") from exc
        except Unsupported as exc:
            if _strict():
                raise
            self._note_fallback(exc.eqn.op.name, graph, str(exc), logging.INFO)
            return None
        except LoweringError as exc:
            if _strict():
                raise
            self._note_fallback(f"error: {exc}"[:300], graph, str(exc), logging.WARNING)
            return None
        return cache_mod.Artifact(obj, built.layout, built.consts)

    def _note_timeout(self, graph: Graph, exc: CompileTimeout, key: str) -> None:
        """A compile that hit the time limit: the graph runs on the interpreter (correct,
        slow), and the user hears about it, since it is a compiler bug to report."""
        self.fallbacks["compile timeout"] += 1
        self.timed_out.append(graph.name)
        self._timed_out_keys.add(key)
        warnings.warn(f"tracejit: compiling '{graph.name}' for the CPU was abandoned: {exc}. "
                      "It runs on the reference interpreter (slowly) for these argument "
                      "types. Please report it with the IR from `tracejit ir --stage fused`, "
                      "or raise the limit with TRACEJIT_COMPILE_TIMEOUT.", CompileWarning,
                      stacklevel=2)

    def _note_fallback(self, what: str, graph: Graph, why: str, level: int) -> None:
        self.fallbacks[what] += 1
        if what not in self._logged:
            self._logged.add(what)
            log.log(level, "cpu executor: %s; graph '%s' (and any other graph needing this) "
                    "runs on the reference interpreter", why, graph.name)

    @staticmethod
    def _interpreted(graph: Graph):
        def program(*args):
            arrays = args[0] if len(args) == 1 and type(args[0]) in (list, tuple) else args
            return interpret(graph, arrays)
        return program


def loaded_program(program) -> CompiledProgram | None:
    """The loaded program behind a callable :meth:`CpuExecutor.compile` returned: the
    trampoline builtin's descriptor knows it; the ctypes entry is its bound method."""
    owner = getattr(program, "__self__", None)
    if isinstance(owner, CompiledProgram):
        return owner
    compiled = getattr(owner, "program", None)
    return compiled if isinstance(compiled, CompiledProgram) else None


def _one_op_graph(op: OpDef, arrays, params: Params) -> Graph:
    builder = GraphBuilder(f"eager_{op.name}")
    ins = [builder.add_input(TensorType(a.shape, _dtype(a))) for a in arrays]
    outs = builder.emit(op, ins, dict(params))
    return builder.build(list(outs))


def _dtype(array: np.ndarray):
    from ...ir.dtypes import as_dtype
    return as_dtype(array.dtype)
