"""The Python-callable entry of compiled programs: one generic METH_FASTCALL trampoline.

Every compiled program is called through the same function, ``tj_entry_call(self,
args, nargs)``, generated here once per process (and cached on disk like a program).
CPython calls it directly: no ctypes and no argument parsing in Python. ``self`` is
the program's *descriptor*, an ndarray of 64-bit words (binding.py builds it) that says
everything the trampoline needs: the program's ``<prefix>_run`` address, what each
argument must be, what each result is, and this process's addresses (``numpy.ndarray``,
``PyList_New``, ...). The trampoline:

* takes the arrays as positional arguments, ``f(x, w)``, or as one list or tuple,
  ``f([x, w])`` (the :class:`~tracejit.trace.executors.Executor` convention);
* checks each argument from the object's fields: exact ``numpy.ndarray`` type, rank and
  dimensions, dtype (descriptor identity, else the same scalar type in native byte
  order), C-contiguous and aligned (and writeable when donated);
* takes each result from a pool of two arrays per result (a pooled array is reused once
  nothing but the pool refers to it and it still has the result's shape, dtype and
  flags) or makes one with NumPy's ``PyArray_NewFromDescr``; a result that is a donated
  argument is that argument;
* calls ``<prefix>_run(io)`` (program.py) and returns a list of the results.

A *dispatcher* (``tj_entry_call_kw``, METH_FASTCALL|METH_KEYWORDS) is the same code
reading a descriptor that also names a wrapper type (tracejit's ``Array``: a
``__slots__`` class whose slot offsets binding.py measures): it accepts such wrappers
(non-weak) in place of arrays, returns each result in a fresh wrapper -- the one result
itself, or a tuple or list of them -- and sends keyword arguments to the slow path.
``@jit`` makes one the ``__call__`` of a function it has compiled (tracejit/trace/jit.py).

Anything unusual -- a wrong count, a non-array, a non-contiguous or byte-swapped array
-- goes to the descriptor's Python slow path, which raises an error naming the argument
or copies it into a contiguous array and calls again.

Nothing process-specific is baked into code (it is cached on disk and loaded by other
processes), and CPython globals are never referenced by symbol name (a process with
numba loaded resolves such names wrongly). The offsets used are CPython's (3.11+,
64-bit) object header, list and tuple layouts and NumPy's ``PyArrayObject_fields`` /
``PyArray_Descr``; :func:`.entry_checks.trampoline_support` checks them on live objects
first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from llvmlite import ir

__all__ = ["ArgSpec", "Layout", "ResultSpec", "TRAMPOLINE", "trampoline_module",
           "POOL", "RT_ARENA", "RT_CONSTS", "RT_SIZE"]

PTR = ir.PointerType()
I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
TRAMPOLINE, TRAMPOLINE_KW = "tj_entry_call", "tj_entry_call_kw"
TRAMPOLINE_VERSION = 3          # part of the trampoline's compile-cache key

# A program's own table (global <prefix>_rt), filled at load: the arena and constants.
RT_ARENA, RT_CONSTS, RT_SIZE = 0, 1, 2

# The descriptor: a header, one record per argument, one per result, then the dims.
(D_RUN, D_NARGS, D_NRES, D_SLOW, D_NDARRAY, D_LIST, D_TUPLE, D_LIST_NEW, D_NEW_DESCR,
 D_INCREF, D_DECREF, D_VECTORCALL,
 # the dispatcher's: the wrapper type (0: none), PyType_GenericAlloc, the wrapper's slot
 # offsets, what to return (RETURN_*), PyTuple_New, and the False object.
 D_WRAP, D_ALLOC, D_VALUE_AT, D_WEAK_AT, D_RETURN, D_TUPLE_NEW, D_FALSE,
 # whether the program runs without the GIL (Layout.release_gil), PyEval_SaveThread and
 # PyEval_RestoreThread
 D_RELEASE, D_SAVE_THREAD, D_RESTORE_THREAD) = range(22)
HEADER = 22
RETURN_LIST, RETURN_ONE, RETURN_TUPLE, RETURN_WRAPPED_LIST = range(4)
A_NDIM, A_DIMS, A_DESCR, A_TYPE, A_FLAGS = range(5)      # argument record
ARG_WORDS = 5
POOL = 2    # NOTE: covers the loop `y = f(x)`: the previous result is alive during a call
# result record (R_WEAK: the True/False a wrapper's `weak` slot gets); pool slots last
R_ALIAS, R_NDIM, R_DIMS, R_DESCR, R_WEAK, R_POOL = range(6)
RES_WORDS = R_POOL + POOL

# CPython object layout (64-bit): ob_refcnt, ob_type, ob_size; list/tuple items.
OB_REFCNT, OB_TYPE, OB_SIZE, SEQ_ITEMS = 0, 8, 16, 24
# NumPy's PyArrayObject_fields and PyArray_Descr.
ARR_DATA, ARR_ND, ARR_DIMS, ARR_DESCR, ARR_FLAGS = 16, 24, 32, 56, 64
DESCR_TYPEOBJ, DESCR_BYTEORDER = 16, 26
C_CONTIGUOUS, ALIGNED, WRITEABLE = 0x1, 0x100, 0x400
NEW_FROM_DESCR_INDEX = 94       # PyArray_NewFromDescr in NumPy's C-API table
METH_FASTCALL, METH_KEYWORDS = 0x80, 0x02


@dataclass(frozen=True)
class ArgSpec:
    shape: tuple[int, ...]
    dtype: str                  # a tracejit dtype name, e.g. "float32"
    label: str                  # how error messages name the argument
    donated: bool = False       # the program may write into it


@dataclass(frozen=True)
class ResultSpec:
    shape: tuple[int, ...]
    dtype: str
    alias: int | None = None    # the donated argument this result is, if any


@dataclass(frozen=True)
class Layout:
    """What binding a compiled program needs to know; stored as JSON in the disk cache."""

    name: str                   # the graph's name, for messages
    prefix: str                 # symbols <prefix>_run and <prefix>_rt
    args: tuple[ArgSpec, ...]
    results: tuple[ResultSpec, ...]
    arena_bytes: int
    const_bytes: int
    release_gil: bool = False   # long enough to run with the GIL released (see emit_run)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Layout:
        args = tuple(ArgSpec(tuple(a["shape"]), a["dtype"], a["label"], a["donated"])
                     for a in data["args"])
        results = tuple(ResultSpec(tuple(r["shape"]), r["dtype"], r["alias"])
                        for r in data["results"])
        return cls(data["name"], data["prefix"], args, results, data["arena_bytes"],
                   data["const_bytes"], data.get("release_gil", False))


def _libc(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    """A C library function, declared once in ``module`` (libc symbols resolve by name;
    only CPython's are passed in the descriptor)."""
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, fnty, name)


def _call(b: ir.IRBuilder, fnptr, fnty: ir.FunctionType, args) -> ir.Value:
    # NOTE: llvmlite's call() needs a typed function pointer; the cast is free after -O1.
    return b.call(b.inttoptr(b.ptrtoint(fnptr, I64), fnty.as_pointer()), args)


_UNARY = ir.FunctionType(ir.VoidType(), [PTR])
_SAVE_THREAD = ir.FunctionType(PTR, [])
MUTEX_BYTES = 64        # pthread_mutex_t is 40 bytes on x86-64 and aarch64 glibc
_LIST_NEW = ir.FunctionType(PTR, [I64])
_VECTORCALL = ir.FunctionType(PTR, [PTR, PTR, I64, PTR])
_NEW_DESCR = ir.FunctionType(PTR, [PTR, PTR, I32, PTR, PTR, PTR, I32, PTR])
_ALLOC = ir.FunctionType(PTR, [PTR, I64])
_CORE = ir.FunctionType(PTR, [PTR, PTR, I64, PTR])


class _Trampoline:
    def __init__(self, module: ir.Module):
        self.fn = ir.Function(module, _CORE, "tj_entry_core")
        self.fn.linkage = "internal"
        self.fn.attributes.add("alwaysinline")
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.slow = self.fn.append_basic_block("slow")
        self.fail = self.fn.append_basic_block("fail")

    def block(self, name: str) -> ir.Block:
        return self.fn.append_basic_block(name)

    def at(self, base, offset) -> ir.Value:
        """Address ``base + offset`` bytes (``offset`` an int or an i64 value)."""
        offset = I64(offset) if isinstance(offset, int) else offset
        return self.b.gep(base, [offset], inbounds=True, source_etype=I8)

    def load(self, base, offset, ty=PTR) -> ir.Value:
        return self.b.load(self.at(base, offset), typ=ty)

    def word(self, record, index: int, ty=PTR) -> ir.Value:
        return self.load(record, 8 * index, ty)

    def require(self, cond, on_fail: ir.Block, name: str) -> None:
        ok = self.block(name)
        self.b.cbranch(cond, ok, on_fail)
        self.b.position_at_end(ok)

    def loop(self, count, body, name: str) -> None:
        """``for i in range(count): body(i)``; the builder ends after the loop."""
        b = self.b
        pre, head, done = b.block, self.block(f"{name}_head"), self.block(f"{name}_done")
        b.cbranch(b.icmp_signed(">", count, I64(0)), head, done)
        b.position_at_end(head)
        i = b.phi(I64, name)
        i.add_incoming(I64(0), pre)
        body(i)
        nxt = b.add(i, I64(1))
        i.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, count), head, done)
        b.position_at_end(done)

    def check_array(self, arr, record, flags, descr_exact: bool, on_fail, name: str) -> None:
        """Continue only if ``arr`` (an ndarray) matches the record's rank, dims and dtype
        and has every bit of ``flags`` (an i64 value) set."""
        b = self.b
        ndim = self.word(record, A_NDIM if not descr_exact else R_NDIM, I64)
        got_nd = b.sext(self.load(arr, ARR_ND, I32), I64)
        got_flags = b.zext(self.load(arr, ARR_FLAGS, I32), I64)
        ok = b.and_(b.icmp_signed("==", got_nd, ndim),
                    b.icmp_unsigned("==", b.and_(got_flags, flags), flags))
        descr = self.load(arr, ARR_DESCR)
        want = self.word(record, A_DESCR if not descr_exact else R_DESCR)
        same = b.icmp_unsigned("==", descr, want)
        if not descr_exact:
            # NOTE: an equal dtype need not be the same descriptor object (np.dtype("<f4")
            # made by hand); the same scalar type in native byte order is the same dtype.
            kind = b.icmp_unsigned("==", self.load(descr, DESCR_TYPEOBJ),
                                   self.word(record, A_TYPE))
            order = self.load(descr, DESCR_BYTEORDER, I8)
            same = b.or_(same, b.and_(kind, b.icmp_unsigned("!=", order, I8(ord(">")))))
        self.require(b.and_(ok, same), on_fail, f"{name}_kind")
        dims = self.load(arr, ARR_DIMS)
        want_dims = self.word(record, A_DIMS if not descr_exact else R_DIMS)

        def each(d):
            at = b.shl(d, I64(3))
            equal = b.icmp_signed("==", self.load(dims, at, I64), self.load(want_dims, at, I64))
            self.require(equal, on_fail, f"{name}_dim")
        self.loop(ndim, each, f"{name}_dims")

    def emit(self) -> ir.Function:
        b = self.b
        this, args, nargs, kwnames = self.fn.args
        d = self.d = self.load(this, ARR_DATA)                     # the descriptor's words
        n_args, n_res = self.word(d, D_NARGS, I64), self.word(d, D_NRES, I64)
        io = b.alloca(PTR, size=b.add(b.add(n_args, n_res), I64(1)), name="io")
        arrays = b.alloca(PTR, size=b.add(n_args, I64(1)), name="arrays")
        res = self.res = b.alloca(PTR, size=b.add(n_res, I64(1)), name="res")
        self.loop(n_res, lambda k: b.store(PTR(None), b.gep(res, [k], source_etype=PTR)),
                  "clear")
        self.require(b.icmp_unsigned("==", kwnames, PTR(None)), self.slow, "no_keywords")
        items, count = self.unpack(args, nargs)
        self.require(b.icmp_signed("==", count, n_args), self.slow, "count_ok")

        def argument(i):
            arr = self.unwrap(b.load(b.gep(items, [i], inbounds=True, source_etype=PTR),
                                     typ=PTR))
            record = self.at(d, b.shl(b.add(I64(HEADER), b.mul(i, I64(ARG_WORDS))), I64(3)))
            self.require(b.icmp_unsigned("==", self.load(arr, OB_TYPE),
                                         self.word(d, D_NDARRAY)), self.slow, "is_array")
            self.check_array(arr, record, self.word(record, A_FLAGS, I64), False, self.slow,
                             "arg")
            b.store(arr, b.gep(arrays, [i], inbounds=True, source_etype=PTR))
            b.store(self.load(arr, ARR_DATA), b.gep(io, [i], inbounds=True, source_etype=PTR))
        self.loop(n_args, argument, "args")
        results_at = b.add(I64(HEADER), b.mul(n_args, I64(ARG_WORDS)))

        def result(k):
            record = self.at(d, b.shl(b.add(results_at, b.mul(k, I64(RES_WORDS))), I64(3)))
            alias = self.word(record, R_ALIAS, I64)
            aliased, fresh, done = self.block("aliased"), self.block("fresh"), self.block("got")
            b.cbranch(b.icmp_signed(">=", alias, I64(0)), aliased, fresh)
            b.position_at_end(aliased)
            donated = b.load(b.gep(arrays, [alias], inbounds=True, source_etype=PTR), typ=PTR)
            _call(b, self.word(d, D_INCREF), _UNARY, [donated])
            b.branch(done)
            b.position_at_end(fresh)
            made, made_in = self.result_array(record)
            b.branch(done)
            b.position_at_end(done)
            arr = b.phi(PTR)
            arr.add_incoming(donated, aliased)
            arr.add_incoming(made, made_in)
            b.store(arr, b.gep(res, [k], inbounds=True, source_etype=PTR))
            b.store(self.load(arr, ARR_DATA),
                    b.gep(io, [b.add(n_args, k)], inbounds=True, source_etype=PTR))
        self.loop(n_res, result, "results")
        self.emit_run(io)
        self.emit_return(results_at, n_res)
        self.emit_exits(args, nargs, kwnames, n_res)
        return self.fn

    def unwrap(self, obj):
        """The array a non-weak wrapper (the descriptor's D_WRAP type) holds, else ``obj``.
        A weak wrapper goes to the slow path, which knows what it means."""
        b, d = self.b, self.d
        start, wrapped, done = b.block, self.block("wrapped"), self.block("unwrapped")
        b.cbranch(b.icmp_unsigned("==", self.load(obj, OB_TYPE), self.word(d, D_WRAP)),
                  wrapped, done)
        b.position_at_end(wrapped)
        weak = self.load(obj, self.word(d, D_WEAK_AT, I64))
        self.require(b.icmp_unsigned("==", weak, self.word(d, D_FALSE)), self.slow, "strong")
        inner = self.load(obj, self.word(d, D_VALUE_AT, I64))
        inner_block = b.block
        b.branch(done)
        b.position_at_end(done)
        arr = b.phi(PTR)
        arr.add_incoming(obj, start)
        arr.add_incoming(inner, inner_block)
        return arr

    def emit_run(self, io) -> None:
        """Call ``<prefix>_run(io)`` holding the process's one execution mutex: programs
        share tracejit's thread pool (one job at a time) and each its own arena, so two
        never run at once. A long program (``D_RELEASE``) runs with the GIL released,
        so Python threads -- input pipelines, queue runners -- go on meanwhile. A short
        one keeps the GIL (giving it up and getting it back costs more than it runs, and
        invites another thread to hold it for a whole switch interval), unless the mutex
        is taken: then it gives up the GIL before waiting, because the mutex's holder
        may need the GIL to finish."""
        b, d = self.b, self.d
        module = self.fn.module
        mutex = module.globals.get("tj_execution_mutex")
        if mutex is None:
            # NOTE: all-zero bytes are PTHREAD_MUTEX_INITIALIZER (glibc and musl).
            storage = ir.ArrayType(I8, MUTEX_BYTES)
            mutex = ir.GlobalVariable(module, storage, "tj_execution_mutex")
            mutex.initializer = storage(None)
            mutex.align = 16
            mutex.linkage = "internal"
        lock_type = ir.FunctionType(I32, [PTR])
        trylock, lock, unlock = (_libc(module, name, lock_type) for name in (
            "pthread_mutex_trylock", "pthread_mutex_lock", "pthread_mutex_unlock"))
        busy = b.icmp_signed("!=", b.call(trylock, [mutex]), I32(0))
        release = b.or_(busy, b.icmp_signed("!=", self.word(d, D_RELEASE, I64), I64(0)))
        holding, released, done = (self.block(n) for n in ("run_gil", "run_nogil", "ran"))
        b.cbranch(release, released, holding)
        b.position_at_end(holding)
        _call(b, self.word(d, D_RUN), _UNARY, [io])
        b.call(unlock, [mutex])
        b.branch(done)
        b.position_at_end(released)
        state = _call(b, self.word(d, D_SAVE_THREAD), _SAVE_THREAD, [])
        wait, got = self.block("run_wait"), self.block("run_locked")
        b.cbranch(busy, wait, got)
        b.position_at_end(wait)
        b.call(lock, [mutex])
        b.branch(got)
        b.position_at_end(got)
        _call(b, self.word(d, D_RUN), _UNARY, [io])
        b.call(unlock, [mutex])
        _call(b, self.word(d, D_RESTORE_THREAD), _UNARY, [state])
        b.branch(done)
        b.position_at_end(done)

    def emit_return(self, results_at, n_res) -> None:
        """Return the results as the descriptor's D_RETURN says."""
        b, d, res = self.b, self.d, self.res
        how = self.word(d, D_RETURN, I64)
        wrap, listed = self.block("wrap"), self.block("list")
        b.cbranch(b.icmp_signed("==", how, I64(RETURN_LIST)), listed, wrap)
        b.position_at_end(wrap)

        def wrap_one(k):
            record = self.at(d, b.shl(b.add(results_at, b.mul(k, I64(RES_WORDS))), I64(3)))
            obj = _call(b, self.word(d, D_ALLOC), _ALLOC, [self.word(d, D_WRAP), I64(0)])
            self.require(b.icmp_unsigned("!=", obj, PTR(None)), self.fail, "wrapper")
            slot = b.gep(res, [k], inbounds=True, source_etype=PTR)
            # NOTE: the wrapper takes over our reference to the array.
            b.store(b.load(slot, typ=PTR), self.at(obj, self.word(d, D_VALUE_AT, I64)))
            weak = self.word(record, R_WEAK)
            _call(b, self.word(d, D_INCREF), _UNARY, [weak])
            b.store(weak, self.at(obj, self.word(d, D_WEAK_AT, I64)))
            b.store(obj, slot)
        self.loop(n_res, wrap_one, "wrap")
        one, several, tupled = self.block("one"), self.block("several"), self.block("tuple")
        b.cbranch(b.icmp_signed("==", how, I64(RETURN_ONE)), one, several)
        b.position_at_end(one)
        b.ret(b.load(res, typ=PTR))
        b.position_at_end(several)
        b.cbranch(b.icmp_signed("==", how, I64(RETURN_TUPLE)), tupled, listed)
        b.position_at_end(tupled)
        self.emit_sequence(D_TUPLE_NEW, n_res, inline=True)
        b.position_at_end(listed)
        self.emit_sequence(D_LIST_NEW, n_res, inline=False)

    def emit_sequence(self, new_word: int, n_res, *, inline: bool) -> None:
        """Return a new tuple (items inline) or list (items behind a pointer) of res."""
        b = self.b
        out = _call(b, self.word(self.d, new_word), _LIST_NEW, [n_res])
        self.require(b.icmp_unsigned("!=", out, PTR(None)), self.fail, "sequenced")
        items = self.at(out, SEQ_ITEMS) if inline else self.load(out, SEQ_ITEMS)

        def store(k):
            item = b.load(b.gep(self.res, [k], inbounds=True, source_etype=PTR), typ=PTR)
            b.store(item, b.gep(items, [k], inbounds=True, source_etype=PTR))
        self.loop(n_res, store, "fill")
        b.ret(out)

    def unpack(self, args, nargs):
        """(items, count): the one list/tuple argument's items, else the arguments."""
        b, d = self.b, self.d
        start = b.block
        one, is_list, not_list, is_tuple, done = (self.block(n) for n in (
            "one_arg", "list", "not_list", "tuple", "unpacked"))
        b.cbranch(b.icmp_signed("==", nargs, I64(1)), one, done)
        b.position_at_end(one)
        first = b.load(args, typ=PTR)
        kind = self.load(first, OB_TYPE)
        b.cbranch(b.icmp_unsigned("==", kind, self.word(d, D_LIST)), is_list, not_list)
        b.position_at_end(is_list)
        list_items = self.load(first, SEQ_ITEMS)               # PyListObject.ob_item
        list_count = self.load(first, OB_SIZE, I64)
        b.branch(done)
        b.position_at_end(not_list)
        b.cbranch(b.icmp_unsigned("==", kind, self.word(d, D_TUPLE)), is_tuple, done)
        b.position_at_end(is_tuple)
        tuple_items = self.at(first, SEQ_ITEMS)                # PyTupleObject.ob_item[]
        tuple_count = self.load(first, OB_SIZE, I64)
        b.branch(done)
        b.position_at_end(done)
        items, count = b.phi(PTR, "items"), b.phi(I64, "count")
        for block, p, n in ((start, args, nargs), (is_list, list_items, list_count),
                            (not_list, args, nargs), (is_tuple, tuple_items, tuple_count)):
            items.add_incoming(p, block)
            count.add_incoming(n, block)
        return items, count

    def result_array(self, record):
        """A fresh result: a free pooled array, else a new one (kept in the pool when a
        slot is empty). Returns (array, block it is defined in); NULL goes to ``fail``."""
        b = self.b
        done = self.block("res_done")
        incoming = []
        flags = I64(C_CONTIGUOUS | ALIGNED | WRITEABLE)
        for s in range(POOL):
            slot = self.at(record, 8 * (R_POOL + s))
            held = b.load(slot, typ=PTR)
            empty, used, check, evict, nxt = (self.block(f"pool{s}_{n}") for n in (
                "empty", "used", "check", "evict", "next"))
            b.cbranch(b.icmp_unsigned("==", held, PTR(None)), empty, used)
            b.position_at_end(used)
            refs = self.load(held, OB_REFCNT, I64)
            b.cbranch(b.icmp_signed("==", refs, I64(1)), check, nxt)
            b.position_at_end(check)
            # NOTE: only the pool refers to it, so nobody sees it change; but its last
            # owner may have reshaped it or cleared WRITEABLE before letting it go.
            self.check_array(held, record, flags, True, evict, f"pool{s}")
            _call(b, self.word(self.d, D_INCREF), _UNARY, [held])
            incoming.append((held, b.block))
            b.branch(done)
            b.position_at_end(evict)
            _call(b, self.word(self.d, D_DECREF), _UNARY, [held])
            b.store(PTR(None), slot)
            b.branch(empty)
            b.position_at_end(empty)
            fresh = self.new_array(record)
            _call(b, self.word(self.d, D_INCREF), _UNARY, [fresh])    # the pool's reference
            b.store(fresh, slot)
            incoming.append((fresh, b.block))
            b.branch(done)
            b.position_at_end(nxt)
        incoming.append((self.new_array(record), b.block))
        b.branch(done)
        b.position_at_end(done)
        arr = b.phi(PTR)
        for value, block in incoming:
            arr.add_incoming(value, block)
        return arr, done

    def new_array(self, record):
        b, d = self.b, self.d
        descr = self.word(record, R_DESCR)
        _call(b, self.word(d, D_INCREF), _UNARY, [descr])       # NewFromDescr steals it
        ndim = b.trunc(self.word(record, R_NDIM, I64), I32)
        arr = _call(b, self.word(d, D_NEW_DESCR), _NEW_DESCR, [
            self.word(d, D_NDARRAY), descr, ndim, self.word(record, R_DIMS), PTR(None),
            PTR(None), I32(0), PTR(None)])
        self.require(b.icmp_unsigned("!=", arr, PTR(None)), self.fail, "made")
        return arr

    def emit_exits(self, args, nargs, kwnames, n_res) -> None:
        b, d = self.b, self.d
        b.position_at_end(self.fail)
        self.loop(n_res, lambda k: _call(b, self.word(d, D_DECREF), _UNARY, [
            b.load(b.gep(self.res, [k], inbounds=True, source_etype=PTR), typ=PTR)]), "drop")
        b.ret(PTR(None))
        b.position_at_end(self.slow)
        # NOTE: Python does the rare work (messages, copies) and calls back in.
        b.ret(_call(b, self.word(d, D_VECTORCALL), _VECTORCALL,
                    [self.word(d, D_SLOW), args, nargs, kwnames]))


def trampoline_module(module: ir.Module) -> ir.Module:
    """Add the generic trampolines ``tj_entry_call(self, args, nargs)`` (METH_FASTCALL)
    and ``tj_entry_call_kw(self, args, nargs, kwnames)`` (with METH_KEYWORDS)."""
    core = _Trampoline(module).emit()
    for name, params in ((TRAMPOLINE, [PTR, PTR, I64]), (TRAMPOLINE_KW, [PTR, PTR, I64, PTR])):
        fn = ir.Function(module, ir.FunctionType(PTR, params), name)
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        kwnames = fn.args[3] if len(fn.args) == 4 else PTR(None)
        b.ret(b.call(core, [*fn.args[:3], kwnames]))
    return module
