"""The C entry points of an ahead-of-time library, emitted as LLVM IR beside the program.

``program.build_program`` gives ``void <prefix>_run(ptr io)`` (``io``: the arguments'
addresses, then the results') and ``<prefix>_rt``, the table holding the addresses of
the arena of temporaries and of the constants segment, which the JIT fills at load
time. Here the table is filled at link time instead: the arena is a zeroed static array
(``.bss``: no bytes in the file) and the constants -- the weights -- a read-only array
in the object (or, with the weights in a file, a pointer set by ``NAME_load_weights`` /
``NAME_set_weights``). Every symbol but the C API becomes internal, so LLVM may inline
the program into ``NAME_run`` and two libraries never clash.

The C API (``NAME.h`` declares it; c_sources.py writes the header):

* ``int NAME_run(const T *arg0, ..., T *result0, ...)`` and
  ``int NAME_run_buffers(const void *const *args, void *const *results)``;
* ``int NAME_num_args(void)``, ``int NAME_num_results(void)``,
  ``size_t NAME_arg_bytes(int i)``, ``size_t NAME_result_bytes(int i)`` (0 past the end);
* weights in a file: ``int NAME_load_weights(const char *path)`` and
  ``int NAME_set_weights(const void *data, size_t bytes)`` (the file's bytes, 64-byte
  aligned, kept alive by the caller).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from llvmlite import ir

from ..codegen_cpu.host.entry import RT_ARENA, RT_CONSTS, RT_SIZE

__all__ = ["CApi", "add_c_api", "weights_header", "ERRORS", "WEIGHTS_HEADER_BYTES"]

PTR = ir.PointerType()
I8, I32, I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
ALIGN = 64
WEIGHTS_MAGIC = b"TJWEIGHT"
WEIGHTS_HEADER_BYTES = 64
# The codes NAME_run and the weight loaders return (NAME_<code> in the header).
ERRORS = {"OK": 0, "ERROR_OPEN": -1, "ERROR_WEIGHTS_MISMATCH": -2,
          "ERROR_NO_WEIGHTS": -3, "ERROR_ALIGNMENT": -4, "ERROR_NO_MEMORY": -5}


def weights_header(payload: int, weights_id: int) -> bytes:
    """The 64 bytes a weights file starts with: magic, payload size, the build's id."""
    head = WEIGHTS_MAGIC + struct.pack("<QQ", payload, weights_id)
    return head + bytes(WEIGHTS_HEADER_BYTES - len(head))


@dataclass(frozen=True)
class CApi:
    """What the library exports (symbol names), for the header and the checks."""

    symbols: tuple[str, ...]


def add_c_api(module: ir.Module, prefix: str, name: str, *, arg_bytes, result_bytes,
              arena_bytes: int, consts: bytes, weights_id: int | None) -> CApi:
    """Add the C API of library ``name`` to ``module`` (holding the program built with
    ``prefix``). ``weights_id`` None embeds ``consts``; an int keeps them in a file whose
    header carries that id."""
    return _Emitter(module, prefix, name, list(arg_bytes), list(result_bytes), arena_bytes,
                    consts, weights_id).emit()


class _Emitter:
    def __init__(self, module, prefix, name, arg_bytes, result_bytes, arena_bytes, consts,
                 weights_id):
        self.module, self.prefix, self.name = module, prefix, name
        self.arg_bytes, self.result_bytes = arg_bytes, result_bytes
        self.arena_bytes, self.consts, self.weights_id = arena_bytes, consts, weights_id
        self.run = module.globals[f"{prefix}_run"]
        self.table = module.globals[f"{prefix}_rt"]
        self.exports: list[str] = []

    def emit(self) -> CApi:
        self.storage()
        self.run_positional()
        self.run_buffers()
        self.count("num_args", len(self.arg_bytes))
        self.count("num_results", len(self.result_bytes))
        self.sizes("arg_bytes", self.arg_bytes)
        self.sizes("result_bytes", self.result_bytes)
        if self.weights_id is not None:
            self.weight_loaders()
        self.internalize()
        return CApi(tuple(self.exports))

    # ---- storage -----------------------------------------------------------------------------

    def global_array(self, label: str, data: bytes | None, size: int, *, constant: bool):
        ty = ir.ArrayType(I8, max(size, 1))
        gv = ir.GlobalVariable(self.module, ty, f"{self.name}_{label}")
        gv.initializer = ir.Constant(ty, None if data is None else bytearray(data or b"\0"))
        gv.align, gv.linkage, gv.global_constant = ALIGN, "internal", constant
        return gv

    def storage(self) -> None:
        arena = self.global_array("arena", None, self.arena_bytes, constant=False)
        slots = [ir.Constant(PTR, None)] * RT_SIZE
        slots[RT_ARENA] = arena
        if self.weights_id is None:
            slots[RT_CONSTS] = self.global_array("weights", self.consts, len(self.consts),
                                                 constant=True)
        ty = ir.ArrayType(PTR, RT_SIZE)
        self.table.initializer = ir.Constant(ty, slots)
        # NOTE: with the weights embedded nothing changes the table: constant, LLVM folds
        # its loads and addresses the arena and weights directly.
        self.table.global_constant = self.weights_id is None

    def slot(self, b: ir.IRBuilder, index: int):
        return b.gep(self.table, [I32(0), I32(index)], inbounds=True)

    # ---- running -----------------------------------------------------------------------------

    def function(self, suffix: str, ret: ir.Type, args) -> tuple[ir.Function, ir.IRBuilder]:
        fn = ir.Function(self.module, ir.FunctionType(ret, args), f"{self.name}_{suffix}")
        self.exports.append(fn.name)
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def call_program(self, b: ir.IRBuilder, addresses) -> None:
        """Return NAME_ERROR_NO_WEIGHTS if the weights are missing, else run and return 0."""
        if self.weights_id is not None:
            consts = b.load(self.slot(b, RT_CONSTS), typ=PTR)
            missing = b.icmp_unsigned("==", b.ptrtoint(consts, I64), I64(0))
            with b.if_then(missing, likely=False):
                b.ret(I32(ERRORS["ERROR_NO_WEIGHTS"]))
        io = b.alloca(ir.ArrayType(PTR, max(len(addresses), 1)))
        for k, address in enumerate(addresses):
            b.store(address, b.gep(io, [I32(0), I32(k)], inbounds=True))
        b.call(self.run, [b.bitcast(io, PTR)])
        b.ret(I32(0))

    def run_positional(self) -> None:
        n = len(self.arg_bytes) + len(self.result_bytes)
        fn, b = self.function("run", I32, [PTR] * n)
        self.call_program(b, list(fn.args))

    def run_buffers(self) -> None:
        fn, b = self.function("run_buffers", I32, [PTR, PTR])
        args, results = fn.args
        addresses = []
        for base, count in ((args, len(self.arg_bytes)), (results, len(self.result_bytes))):
            for k in range(count):
                at = b.gep(base, [I64(k)], inbounds=True, source_etype=PTR)
                addresses.append(b.load(at, typ=PTR))
        self.call_program(b, addresses)

    # ---- queries -----------------------------------------------------------------------------

    def count(self, suffix: str, value: int) -> None:
        _, b = self.function(suffix, I32, [])
        b.ret(I32(value))

    def sizes(self, suffix: str, values: list[int]) -> None:
        fn, b = self.function(suffix, I64, [I32])
        ty = ir.ArrayType(I64, max(len(values), 1))
        table = ir.GlobalVariable(self.module, ty, f"{self.name}_{suffix}_table")
        table.initializer = ir.Constant(ty, values or [0])
        table.linkage, table.global_constant = "internal", True
        (i,) = fn.args
        inside = b.and_(b.icmp_signed(">=", i, I32(0)), b.icmp_signed("<", i, I32(len(values))))
        with b.if_then(inside):
            at = b.gep(table, [I32(0), i], inbounds=True)
            b.ret(b.load(at, typ=I64))
        b.ret(I64(0))

    # ---- weights in a file -------------------------------------------------------------------

    def weight_loaders(self) -> None:
        payload = len(self.consts)
        header = weights_header(payload, self.weights_id)
        expected = self.global_array("weights_header", header, len(header), constant=True)
        owned = ir.GlobalVariable(self.module, PTR, f"{self.name}_weights_owned")
        owned.initializer, owned.linkage = ir.Constant(PTR, None), "internal"
        declare = self.declare
        memcmp = declare("memcmp", I32, [PTR, PTR, I64])
        total = WEIGHTS_HEADER_BYTES + payload

        def matches(b, data):
            same = b.call(memcmp, [data, expected, I64(WEIGHTS_HEADER_BYTES)])
            return b.icmp_signed("==", same, I32(0))

        def install(b, data):
            start = b.gep(data, [I64(WEIGHTS_HEADER_BYTES)], inbounds=True, source_etype=I8)
            b.store(start, self.slot(b, RT_CONSTS))

        # int NAME_set_weights(const void *data, size_t bytes)
        fn, b = self.function("set_weights", I32, [PTR, I64])
        data, size = fn.args
        with b.if_then(b.icmp_unsigned("!=", size, I64(total)), likely=False):
            b.ret(I32(ERRORS["ERROR_WEIGHTS_MISMATCH"]))
        misaligned = b.and_(b.ptrtoint(data, I64), I64(ALIGN - 1))
        with b.if_then(b.icmp_unsigned("!=", misaligned, I64(0)), likely=False):
            b.ret(I32(ERRORS["ERROR_ALIGNMENT"]))
        with b.if_then(b.not_(matches(b, data)), likely=False):
            b.ret(I32(ERRORS["ERROR_WEIGHTS_MISMATCH"]))
        install(b, data)
        b.ret(I32(0))

        # int NAME_load_weights(const char *path)
        fopen = declare("fopen", PTR, [PTR, PTR])
        fread = declare("fread", I64, [PTR, I64, I64, PTR])
        fclose = declare("fclose", I32, [PTR])
        alloc = declare("aligned_alloc", PTR, [I64, I64])
        free = declare("free", ir.VoidType(), [PTR])
        mode = self.global_array("read_mode", b"rb\0", 3, constant=True)
        fn, b = self.function("load_weights", I32, [PTR])
        (path,) = fn.args
        file = b.call(fopen, [path, mode])
        with b.if_then(b.icmp_unsigned("==", b.ptrtoint(file, I64), I64(0)), likely=False):
            b.ret(I32(ERRORS["ERROR_OPEN"]))
        rounded = -(-total // ALIGN) * ALIGN        # aligned_alloc wants a multiple
        buffer = b.call(alloc, [I64(ALIGN), I64(rounded)])
        with b.if_then(b.icmp_unsigned("==", b.ptrtoint(buffer, I64), I64(0)), likely=False):
            b.call(fclose, [file])
            b.ret(I32(ERRORS["ERROR_NO_MEMORY"]))
        got = b.call(fread, [buffer, I64(1), I64(total), file])
        b.call(fclose, [file])
        short = b.icmp_unsigned("!=", got, I64(total))
        bad = b.or_(short, b.not_(matches(b, buffer)))
        with b.if_then(bad, likely=False):
            b.call(free, [buffer])
            b.ret(I32(ERRORS["ERROR_WEIGHTS_MISMATCH"]))
        install(b, buffer)
        b.call(free, [b.load(owned, typ=PTR)])      # a previous load's (free(NULL): none)
        b.store(buffer, owned)
        b.ret(I32(0))

    def declare(self, symbol: str, ret: ir.Type, args) -> ir.Function:
        found = self.module.globals.get(symbol)
        return found if found is not None else ir.Function(
            self.module, ir.FunctionType(ret, args), symbol)

    # ---- linkage -----------------------------------------------------------------------------

    def internalize(self) -> None:
        """Everything defined here but the C API: internal."""
        exports = set(self.exports)
        for value in self.module.global_values:
            if value.name in exports:
                continue
            if isinstance(value, ir.Function):
                if not value.is_declaration:
                    value.linkage = "internal"
            elif getattr(value, "linkage", "") not in ("private", "internal") \
                    and value.initializer is not None:
                value.linkage = "internal"
