"""target.py: the host target machine, module setup, O3 pipeline, MCJIT, fast-math switch."""

from __future__ import annotations

import ctypes
import os
import re
import threading

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir

from tracejit.codegen_cpu.host import target

I64 = ir.IntType(64)
F32 = ir.FloatType()


def _saxpy_module(name="saxpy", flags=()) -> ir.Module:
    """``void saxpy(float* x, float* y, float a, i64 n)``: y[i] = a*x[i] + y[i]."""
    mod = target.new_module(name)
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [target.PTR, target.PTR, F32, I64]),
                     name)
    x, y, a, n = fn.args
    for p in (x, y):
        p.add_attribute("noalias")
    entry, loop, done = (fn.append_basic_block(s) for s in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(ir.Constant(I64, 0), entry)
    py = b.gep(y, [i], source_etype=F32)
    xi = b.load(b.gep(x, [i], source_etype=F32), typ=F32)
    b.store(b.fadd(b.fmul(a, xi, flags=flags), b.load(py, typ=F32), flags=flags), py)
    nxt = b.add(i, ir.Constant(I64, 1))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return mod


def test_target_machine_is_cached_and_named_in_the_cache_key():
    tm = target.target_machine()
    assert tm is target.target_machine()
    assert target.host_cpu()[0] == llvm.get_host_cpu_name()
    assert tm.triple == llvm.get_process_triple()
    cpu, features = target.target_cpu()
    assert target.target_id().endswith(f"/{cpu}/{features}")
    if os.environ.get(target.CPU_ENV, "host") not in ("", "host"):
        return
    assert cpu == target.host_cpu()[0]
    assert features.startswith(target.host_cpu()[1])     # plus a measured vector width


def test_new_module_has_host_triple_and_layout():
    mod = target.new_module("m")
    assert mod.triple == target.target_machine().triple
    assert mod.data_layout == str(target.target_machine().target_data)
    assert "target datalayout" in str(mod)


def test_compile_module_runs_and_vectorizes():
    engine, addrs = target.compile_module(_saxpy_module())
    assert set(addrs) == {"saxpy"} and addrs["saxpy"]
    f = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float,
                         ctypes.c_int64)(addrs["saxpy"])
    for n in (0, 1, 7, 1003):
        x = np.arange(n, dtype=np.float32)
        y = np.ones(n, dtype=np.float32)
        f(x.ctypes.data, y.ctypes.data, 2.0, n)
        np.testing.assert_array_equal(y, 2 * np.arange(n, dtype=np.float32) + 1)
    asm = target.assembly(_saxpy_module())
    # NOTE: which width LLVM picks for a loop is its tuning for the target CPU (256 bits
    # on Intel cores that prefer them, 512 on Zen 4/5): assert packed arithmetic in the
    # registers the target's ISA has, never one register inferred from the host's flags.
    assert re.search(r"\t\w+ps\t.*%[xyz]mm", asm), asm
    allowed = {"sse": ("xmm",), "avx": ("ymm",), "avx2": ("ymm",),
               "avx512": ("ymm", "zmm")}[target.target_vector_isa()]
    packed = set(re.findall(r"\t\w+ps\t.*%([xyz]mm)", asm))
    assert packed & set(allowed) and packed <= {"xmm", *allowed}, asm


@pytest.mark.parametrize("cpu,isa", [("haswell", "avx2"), ("skylake-avx512", "avx512"),
                                     ("znver4", "avx512"), ("sapphirerapids", "avx512"),
                                     ("sandybridge", "avx"), ("x86-64", "sse")])
def test_named_cpus_compile_to_their_vector_isa(cpu, isa):
    with target.compiling_for(cpu):
        assert target.target_cpu() == (cpu, "")
        assert target.target_vector_isa() == isa
        assert f"/{cpu}/" in target.target_id()
        asm = target.assembly(_saxpy_module(f"on_{cpu.replace('-', '_')}"))
        assert ("ymm" in asm or "zmm" in asm) == (isa != "sse"), asm


def test_named_cpu_features_are_read_off_llvms_code():
    # What LLVM gives each CPU (its X86.td), seen through the probes: the facts the
    # runnable check stands on. sapphirerapids has AVX512-FP16, Zen 4/5 do not; AMD's
    # cores have SSE4A, Intel's do not. VNNI: AVX-512's from Cascade Lake and Zen 4 on,
    # the VEX form (AVX-VNNI) on Alder Lake, Sapphire Rapids and Zen 5.
    common = {"popcnt", "lzcnt", "bmi", "bmi2", "avx", "avx2", "fma", "f16c"}
    icelake = common | {"avx512f", "avx512bw", "avx512vpopcntdq", "avx512bitalg", "gfni",
                        "avx512vnni"}
    assert target.code_features("x86-64", "") == set()
    assert target.code_features("haswell", "") == common
    assert target.code_features("znver3", "") == common | {"sse4a"}
    assert target.code_features("skylake-avx512", "") == common | {"avx512f", "avx512bw"}
    assert target.code_features("znver4", "") == icelake | {"avx512bf16", "sse4a"}
    assert target.code_features("znver5", "") == icelake | {"avx512bf16", "sse4a", "avxvnni"}
    assert target.code_features("sapphirerapids", "") == icelake | {"avx512bf16",
                                                                     "avx512fp16", "avxvnni"}
    assert target.code_features("sapphirerapids", "-avx512fp16,-avxvnni") == \
        icelake | {"avx512bf16"}
    assert target.code_features("cascadelake", "") == common | {"avx512f", "avx512bw",
                                                                "avx512vnni"}
    assert target.code_features("alderlake", "") >= common | {"avxvnni"}
    assert target.code_features("znver4", "-sse4a") == icelake | {"avx512bf16"}
    assert "avx512f" in target.code_features("haswell", "+avx512f")


def test_features_and_tuning_are_appended(monkeypatch):
    with target.compiling_for("skylake-avx512", "+prefer-256-bit"):
        assert target.target_cpu() == ("skylake-avx512", "+prefer-256-bit")
        assert target.target_vector_isa() == "avx512"        # the ISA, not the width
        narrow = target.assembly(_saxpy_module("narrow"))
    with target.compiling_for("skylake-avx512", "-prefer-256-bit"):
        wide = target.assembly(_saxpy_module("wide"))
    assert "zmm" in wide and "zmm" not in narrow and "ymm" in narrow
    monkeypatch.setenv(target.CPU_ENV, "host")
    monkeypatch.setenv(target.FEATURES_ENV, "+prefer-256-bit")
    target._forget_target()
    try:
        assert target.target_cpu()[1].endswith(",+prefer-256-bit")   # not measured then
    finally:
        monkeypatch.undo()
        target._forget_target()


def test_an_unknown_cpu_name_is_an_error():
    with pytest.raises(ValueError, match="TRACEJIT_CPU='haswel' is not a CPU LLVM knows"):
        with target.compiling_for("haswel"):
            pass
    assert os.environ.get(target.CPU_ENV) != "haswel"        # restored


@pytest.mark.parametrize("host,cpu,missing", [
    ("haswell", "skylake-avx512", "avx512bw, avx512f"),
    ("znver4", "sapphirerapids", "amx-bf16, amx-int8, amx-tile, avx512fp16, avxvnni"),
    ("sapphirerapids", "znver4", "sse4a"),
    ("x86-64", "haswell", "avx, avx2, bmi, bmi2, f16c, fma, lzcnt, popcnt")])
def test_code_for_a_cpu_the_host_lacks_is_refused_at_load(monkeypatch, host, cpu, missing):
    from tracejit.codegen_cpu.host import cache
    from tracejit.codegen_cpu.host.tile_state import tile_features
    features = ",".join(f"+{f}" for f in target.code_features(host, "") | tile_features(host, ""))
    monkeypatch.setattr(target, "host_cpu", lambda: (host, features))
    with target.compiling_for(cpu):
        asm = target.assembly(_saxpy_module("inspect"))           # inspecting is fine
        assert "vmul" in asm or "vfmadd" in asm
        assert target.missing_features() == missing.split(", ")
        message = f"{cpu}: its code may use {missing}, which this host \\({host}\\) lacks"
        with pytest.raises(RuntimeError, match=message):
            target.compile_module(_saxpy_module("refused"))
        with pytest.raises(RuntimeError, match=message):
            cache.load_object(b"never loaded")
    with target.compiling_for(host):
        assert target.missing_features() == []
        target.compile_module(_saxpy_module("runs"))


def test_compile_accepts_an_optimized_moduleref_and_keeps_engines():
    ref = target.optimize(target.parse(_saxpy_module("again")))
    assert isinstance(ref, llvm.ModuleRef)
    before = len(target._ENGINES)
    engine, addrs = target.compile_module(ref)
    assert len(target._ENGINES) == before + 1 and target._ENGINES[-1] is engine
    _, addrs2 = target.compile_module(_saxpy_module("loose"), keep_alive=False)
    assert len(target._ENGINES) == before + 1 and "loose" in addrs2


def test_parse_rejects_invalid_ir():
    with pytest.raises(RuntimeError):
        target.parse("define i32 @f() {\n  ret i64 0\n}\n")


def test_compiles_from_threads():
    errors = []

    def work(k):
        try:
            _, addrs = target.compile_module(_saxpy_module(f"t{k}"))
            assert addrs[f"t{k}"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("value,flags", [
    (None, ("reassoc",)), ("1", ("reassoc",)),
    ("on", ("reassoc",)), ("0", ()), ("off", ()), ("", ()),
    ("reassoc, nsz", ("reassoc", "nsz")), ("fast", ("fast",)),
])
def test_fast_math_flags(monkeypatch, value, flags):
    if value is None:
        monkeypatch.delenv("TRACEJIT_FASTMATH", raising=False)
    else:
        monkeypatch.setenv("TRACEJIT_FASTMATH", value)
    assert target.fast_math_flags() == flags


def test_fast_math_flags_reject_unknown(monkeypatch):
    monkeypatch.setenv("TRACEJIT_FASTMATH", "reassoc,bogus")
    with pytest.raises(ValueError, match="bogus"):
        target.fast_math_flags()


def test_default_fast_math_keeps_nan_and_inf():
    """The default flags compile a NaN/inf test that survives O3."""
    mod = target.new_module("nan")
    fn = ir.Function(mod, ir.FunctionType(ir.IntType(32), [F32]), "isnan")
    b = ir.IRBuilder(fn.append_basic_block())
    x = b.fadd(fn.args[0], ir.Constant(F32, 0.0), flags=target.DEFAULT_FAST_MATH)
    b.ret(b.zext(b.fcmp_unordered("uno", x, x), ir.IntType(32)))
    _, addrs = target.compile_module(mod)
    f = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_float)(addrs["isnan"])
    assert f(float("nan")) == 1 and f(1.0) == 0 and f(float("inf")) == 0
