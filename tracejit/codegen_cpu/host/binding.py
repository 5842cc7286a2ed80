"""Loading a compiled program into this process and making it callable from Python.

:class:`CompiledProgram` owns what one loaded program needs for its whole life: the
MCJIT engine holding its machine code, the arena of temporaries, the constants (their
addresses go into the program's ``<prefix>_rt``), and the descriptor the generic
trampoline reads (entry.py). Its :attr:`~CompiledProgram.function` is what callers use:

* normally a builtin function (``PyCFunction_NewEx`` over the METH_FASTCALL trampoline,
  bound to the descriptor) -- one C call from Python, about as cheap as ``len``;
* when the trampoline cannot be used (another Python implementation, an unexpected
  object layout, or ``TRACEJIT_CPU_ENTRY=ctypes``), a Python function that checks the
  arguments, allocates results with ``np.empty`` and calls ``<prefix>_run`` through
  ctypes.

Both take the arrays as arguments or as one list/tuple, and return a list of arrays.
:meth:`CompiledProgram.dispatcher` makes another builtin over the same program that
wraps its results (entry.py's dispatcher), for ``@jit``'s native ``__call__``.

**Threads.** The arena is shared by all calls of one program, so a program is not
re-entrant, and all programs share one thread pool. The trampoline runs every program
under one process-wide mutex, and a long program (``Layout.release_gil``) with the GIL
released, so Python threads (input pipelines) run beside it; the ctypes path holds the
GIL for the whole call (``PYFUNCTYPE``). Calls from several Python threads thus run one
after another and never share the arena. (A process uses one kind of entry; mixing a
forced ctypes entry with trampolines that release the GIL is not supported.)
"""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
import weakref

import numpy as np

from ...ir import dtypes as dt
from . import cache as cache_mod
from . import entry as E
from .entry import Layout
from .entry_checks import numpy_api, trampoline_support

__all__ = ["CompiledProgram", "ENTRY_ENV", "HUGE_PAGE", "entry_kind"]

ENTRY_ENV = "TRACEJIT_CPU_ENTRY"        # "ctypes" forces the fallback entry
HUGE_PAGE = 2 << 20
ALIGN = 64


def entry_kind() -> str:
    """``"trampoline"`` or ``"ctypes"``: which entry new programs get."""
    if os.environ.get(ENTRY_ENV, "").strip().lower() == "ctypes":
        return "ctypes"
    return "ctypes" if trampoline_support() is not None else "trampoline"


class _PyMethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


def _c_address(name: str) -> int:
    return ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value


_TRAMPOLINE_LOCK = threading.Lock()
_TRAMPOLINE: list = []              # [engine, addresses by name] once compiled or loaded


def trampoline_address(name: str = E.TRAMPOLINE) -> int:
    """A generic trampoline's address, compiled once per process (or loaded from the
    compile cache)."""
    with _TRAMPOLINE_LOCK:
        if not _TRAMPOLINE:
            engine, address = cache_mod.runtime_library(
                f"tj_entry trampolines v{E.TRAMPOLINE_VERSION}", E.trampoline_module)
            _TRAMPOLINE[:] = [engine, {n: address(n) for n in (E.TRAMPOLINE, E.TRAMPOLINE_KW)}]
        return _TRAMPOLINE[1][name]


def slot_offsets(cls: type, *names: str) -> list[int]:
    """Byte offsets of the ``__slots__`` ``names`` in instances of ``cls``, found by
    storing a marker in each and looking for it (CPython does not expose them)."""
    if cls.__dictoffset__ or cls.__weakrefoffset__:
        raise TypeError(f"{cls.__name__} must be a __slots__ class without __dict__")
    obj = cls.__new__(cls)
    offsets = []
    for name in names:
        marker = object()
        setattr(obj, name, marker)
        found = [at for at in range(16, cls.__basicsize__, 8)
                 if ctypes.c_void_p.from_address(id(obj) + at).value == id(marker)]
        if len(found) != 1:
            raise TypeError(f"slot {name!r} of {cls.__name__} not found")
        offsets.append(found[0])
    return offsets


class _Descriptor(np.ndarray):
    """The words the trampoline reads (entry.py); its ``program`` attribute keeps the
    program alive as long as a function bound to it exists."""


class Arena:
    """Scratch memory for a program's temporaries, mapped once and reused by every call.

    Large arenas are aligned to 2 MiB and advised ``MADV_HUGEPAGE`` (first touch of
    4 KiB pages costs about 5x more); the mapping is never returned to the OS while the
    program lives, so later calls touch no fresh pages."""

    def __init__(self, nbytes: int):
        self.nbytes = nbytes
        self.address = 0
        self._map = None
        if nbytes <= 0:
            return
        huge = nbytes >= HUGE_PAGE
        pad = HUGE_PAGE if huge else ALIGN
        size = -(-(nbytes + pad) // mmap.PAGESIZE) * mmap.PAGESIZE
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._view = ctypes.c_char.from_buffer(self._map)     # pins the mapping
        base = ctypes.addressof(self._view)
        self.address = -(-base // pad) * pad
        if huge and hasattr(mmap, "MADV_HUGEPAGE"):
            offset = self.address - base
            try:
                self._map.madvise(mmap.MADV_HUGEPAGE, offset, size - offset)
            except OSError:             # no transparent huge pages: plain pages work too
                pass


class CompiledProgram:
    """A loaded program: ``function(*arrays)`` or ``function(list_of_arrays)``."""

    def __init__(self, layout: Layout, engine, consts: bytes, *, entry: str | None = None):
        self.layout = layout
        self._engine = engine
        self._arena = Arena(layout.arena_bytes)
        self._consts = np.zeros(len(consts) + ALIGN, np.uint8)
        start = -self._consts.ctypes.data % ALIGN
        self._consts[start:start + len(consts)] = np.frombuffer(consts, np.uint8)
        self._args = [(a.shape, dt.as_dtype(a.dtype).np_dtype) for a in layout.args]
        self._results = [(r.shape, dt.as_dtype(r.dtype).np_dtype) for r in layout.results]
        self._in_slow_path = False
        table = (ctypes.c_void_p * E.RT_SIZE).from_address(
            engine.get_global_value_address(f"{layout.prefix}_rt"))
        table[E.RT_ARENA] = self._arena.address or None
        table[E.RT_CONSTS] = self._consts.ctypes.data + start
        run = engine.get_function_address(f"{layout.prefix}_run")
        # NOTE: PYFUNCTYPE keeps the GIL during the call (CFUNCTYPE would release it and
        # let a second thread into the shared arena).
        self._run = ctypes.PYFUNCTYPE(None, ctypes.c_void_p)(run)
        self.entry = entry or entry_kind()
        self._run_address = run
        if self.entry == "trampoline":
            self.function = self._make_builtin(self._descriptor(run), self._slow_path,
                                               E.TRAMPOLINE, E.METH_FASTCALL)
        else:
            self.function = self._call_ctypes

    def dispatcher(self, slow, wrapper: tuple[type, str, str], returns: int,
                   weak: tuple[bool, ...]):
        """A builtin running this program on arrays (or non-weak ``wrapper`` objects
        holding them) that returns its results wrapped: ``wrapper = (cls, value slot,
        weak slot)``; result ``k`` gets ``weak[k]``; ``returns`` is one of entry.py's
        RETURN_*. Anything else, keyword arguments included, goes to ``slow(*args,
        **kwargs)``. None when this program has no trampoline."""
        if self.entry != "trampoline":
            return None
        cls, value_slot, weak_slot = wrapper
        words = self._descriptor(self._run_address)
        words[E.D_WRAP] = id(cls)
        words[E.D_VALUE_AT], words[E.D_WEAK_AT] = slot_offsets(cls, value_slot, weak_slot)
        words[E.D_RETURN] = returns
        for k, flag in enumerate(weak):
            words[self._results_at + E.RES_WORDS * k + E.R_WEAK] = id(bool(flag))
        return self._make_builtin(words, slow, E.TRAMPOLINE_KW,
                                  E.METH_FASTCALL | E.METH_KEYWORDS, keep=cls)

    def _descriptor(self, run: int) -> np.ndarray:
        """The trampoline's words for this program (entry.py lists them)."""
        layout = self.layout
        n_args, n_res = len(layout.args), len(layout.results)
        self._results_at = E.HEADER + E.ARG_WORDS * n_args
        dims_at = self._results_at + E.RES_WORDS * n_res
        n_dims = sum(len(a.shape) for a in layout.args) + sum(len(r.shape)
                                                               for r in layout.results)
        words = np.zeros(dims_at + n_dims, np.int64)
        base = words.ctypes.data
        words[:E.HEADER] = [
            run, n_args, n_res, 0, id(np.ndarray), id(list), id(tuple),
            _c_address("PyList_New"), numpy_api(E.NEW_FROM_DESCR_INDEX),
            _c_address("Py_IncRef"), _c_address("Py_DecRef"),
            _c_address("PyObject_Vectorcall"),
            0, _c_address("PyType_GenericAlloc"), 0, 0, E.RETURN_LIST,
            _c_address("PyTuple_New"), id(False), int(layout.release_gil),
            _c_address("PyEval_SaveThread"), _c_address("PyEval_RestoreThread")]
        # NOTE: the dtype objects and the slow path must outlive the words that point at
        # them: NumPy keeps builtin descriptors forever, self keeps the rest.
        self._dtype_objects = [np.dtype(d) for _, d in self._args + self._results]

        def dims(shape) -> int:
            nonlocal dims_at
            words[dims_at:dims_at + len(shape)] = shape
            dims_at += len(shape)
            return base + 8 * (dims_at - len(shape))
        for i, (spec, (shape, dtype)) in enumerate(zip(layout.args, self._args, strict=True)):
            flags = E.C_CONTIGUOUS | E.ALIGNED | (E.WRITEABLE if spec.donated else 0)
            at = E.HEADER + E.ARG_WORDS * i
            words[at:at + E.ARG_WORDS] = [len(shape), dims(shape), id(dtype), id(dtype.type),
                                          flags]
        for k, (spec, (shape, dtype)) in enumerate(zip(layout.results, self._results,
                                                       strict=True)):
            at = self._results_at + E.RES_WORDS * k
            alias = -1 if spec.alias is None else spec.alias
            words[at:at + E.R_POOL] = [alias, len(shape), dims(shape), id(dtype), id(False)]
        return words

    def _is_pool_slot(self, index: int) -> bool:
        offset = index - self._results_at
        return 0 <= offset < E.RES_WORDS * len(self.layout.results) and \
            offset % E.RES_WORDS >= E.R_POOL

    def _make_builtin(self, words: np.ndarray, slow, trampoline: str, flags: int,
                      keep=None):
        # NOTE: the descriptor is the function's __self__: the trampoline reads its data
        # pointer, and its attributes keep the program (engine, arena, constants), the
        # slow path, the method definition and `keep` alive as long as the function is.
        words[E.D_SLOW] = id(slow)
        descriptor = words.view(_Descriptor)
        descriptor.program, descriptor.slow, descriptor.keep = self, slow, keep
        descriptor.method_name = (self.layout.name or "program").encode()
        descriptor.method_def = _PyMethodDef(descriptor.method_name,
                                             trampoline_address(trampoline), flags, None)
        new = ctypes.pythonapi.PyCFunction_NewEx
        new.restype = ctypes.py_object
        new.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]
        pools = [i for i in range(len(words)) if self._is_pool_slot(i)]
        weakref.finalize(descriptor, _release_pool, words, pools)
        return new(ctypes.addressof(descriptor.method_def), descriptor, None)

    # ---- checking arguments in Python ---------------------------------------------------------

    def _label(self, i: int) -> str:
        label = self.layout.args[i].label
        return f"argument {i} (`{label}`)" if label else f"argument {i}"

    def _checked(self, arrays) -> list[np.ndarray]:
        """The arguments as arrays the native code accepts, or a TypeError/ValueError
        naming the first bad one (non-contiguous arrays are copied, not refused)."""
        name = self.layout.name
        if len(arrays) != len(self._args):
            labels = ", ".join(a.label or f"arg{i}" for i, a in enumerate(self.layout.args))
            raise TypeError(f"compiled function '{name}' takes {len(self._args)} arrays "
                            f"({labels}), got {len(arrays)}")
        out = []
        for i, (a, (shape, dtype)) in enumerate(zip(arrays, self._args, strict=True)):
            if isinstance(a, (np.generic, bool, int, float)):
                a = np.asarray(a)           # a scalar is a 0-d array, as in interpret()
            if not isinstance(a, np.ndarray):
                raise TypeError(f"{self._label(i)} of compiled function '{name}' must be a "
                                f"numpy.ndarray of {dtype.name}{list(shape)}, got "
                                f"{type(a).__name__}")
            if a.dtype != dtype and a.dtype.newbyteorder("=") != dtype:
                raise TypeError(f"{self._label(i)} of compiled function '{name}' must have "
                                f"dtype {dtype.name}, got {a.dtype}")
            if a.shape != shape:
                raise ValueError(f"{self._label(i)} of compiled function '{name}' must have "
                                 f"shape {list(shape)}, got {list(a.shape)}")
            flags = a.flags
            if (type(a) is not np.ndarray or a.dtype is not dtype or not flags.c_contiguous
                    or not flags.aligned
                    or (self.layout.args[i].donated and not flags.writeable)):
                a = np.array(a, dtype=dtype, order="C", copy=True)
            out.append(a)
        return out

    def _slow_path(self, *args):
        """Called by the trampoline when a fast check fails: raise the right error, or
        retry with contiguous copies of the arguments."""
        arrays = args[0] if len(args) == 1 and type(args[0]) in (list, tuple) else args
        fixed = self._checked(arrays)
        if self._in_slow_path:
            raise RuntimeError(f"compiled function '{self.layout.name}' rejected arguments "
                               "that passed its checks (an object-layout mismatch)")
        self._in_slow_path = True
        try:
            return self.function(fixed)
        finally:
            self._in_slow_path = False

    def _call_ctypes(self, *args) -> list[np.ndarray]:
        arrays = args[0] if len(args) == 1 and type(args[0]) in (list, tuple) else args
        arrays = self._checked(arrays)
        results = []
        for spec, (shape, dtype) in zip(self.layout.results, self._results, strict=True):
            results.append(arrays[spec.alias] if spec.alias is not None
                           else np.empty(shape, dtype))
        pointers = [a.ctypes.data for a in arrays] + [r.ctypes.data for r in results]
        self._run((ctypes.c_void_p * max(1, len(pointers)))(*pointers))
        return results

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self) -> str:
        return (f"<CompiledProgram '{self.layout.name}' {len(self.layout.args)} args, "
                f"{len(self.layout.results)} results, arena {self.layout.arena_bytes} B, "
                f"{self.entry}>")


def _release_pool(words: np.ndarray, slots: list[int]) -> None:
    """Drop the references the result pool holds (``words`` is the descriptor's plain
    array, which does not refer back to the program)."""
    decref = ctypes.pythonapi.Py_DecRef
    decref.argtypes = [ctypes.c_void_p]
    for s in slots:
        held = int(words[s])
        if held:
            words[s] = 0
            decref(held)
