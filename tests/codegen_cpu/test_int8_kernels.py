"""The packed kernels (gemm/int8_tiles.py, int8_kernels.py) called directly, and the ops
int8_matmul / int8_conv2d through the CPU backend, against exact NumPy sums; the
bfloat16 kernels against float64 sums.

Every variant this host can run is run here: the x86 ``pmaddwd`` kernels of its widths,
the portable one, and the VNNI, AVX512-BF16 and AMX kernels where the host has them. The
VNNI kernels' byte-quad layout (A offset by 128, the column corrections) runs with the
quad step written in plain IR (``dot="generic"``), and the AMX kernels' tiles (panel,
padding, edges) with the tile instructions computed in plain IR (``dot="amx-emulated"``);
the instructions themselves are checked in the assembly, compiled for CPUs that have
them (this host may not)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ir.op_examples import T
from tracejit.codegen_cpu.gemm import int8_kernels as kernels
from tracejit.codegen_cpu.gemm.int8_tiles import Variant, packed_bytes
from tracejit.codegen_cpu.host import target
from tracejit.ir import GraphBuilder, interpret, ops
from tracejit.ir import dtypes as dt
from tracejit.passes import optimize
from tracejit.runtime.registry import get_device

_PACK = ctypes.CFUNCTYPE(None, *([ctypes.c_int64] * 2), ctypes.c_void_p, ctypes.c_int64,
                         ctypes.c_int64, ctypes.c_void_p)
_GEMM = ctypes.CFUNCTYPE(None, *([ctypes.c_int64] * 3), ctypes.c_void_p, ctypes.c_int64,
                         ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)

# what this host runs: the x86 kernels its target has, the portable ones, and the VNNI
# layout with its step in plain IR
QUADS = [Variant("quads8", group=4, lanes=8, rows=6, vectors=2),
         Variant("quads16", group=4, lanes=16, rows=6, vectors=4)]


# the AMX kernels' frame with each tile instruction in plain IR
EMULATED_TILES = [Variant("amx_emulated_i8", group=4, lanes=16, rows=32, vectors=2,
                          dot="amx-emulated"),
                  Variant("amx_emulated_bf16", group=2, lanes=16, rows=32, vectors=2,
                          dot="amx-emulated", operands="bfloat16")]


def _runnable() -> list[Variant]:
    here = kernels.available_variants()
    return [kernels.VARIANTS["generic4"], Variant("generic8", 2, 8, 3, 2), *QUADS,
            kernels.VARIANTS["bf16pairs4"], kernels.VARIANTS["bf16pairs8"], *EMULATED_TILES,
            *(v for v in here if v.name not in ("generic4", "bf16pairs4", "bf16pairs8"))]


@pytest.fixture(scope="module")
def compiled():
    variants = _runnable()
    module = kernels.int8_kernel_module(target.new_module("int8_test"), variants)
    engine, addresses = target.compile_module(module)
    yield {v.name: v for v in variants}, addresses
    del engine


def _operands(rng, dtype, shape):
    info = np.iinfo(dtype.np_dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype.np_dtype)


@pytest.mark.parametrize("name", [v.name for v in _runnable() if v.operands == "int8"])
@pytest.mark.parametrize("dtype", [dt.int8, dt.uint8])
def test_every_variant_sums_exactly(compiled, name, dtype):
    variants, addresses = compiled
    v = variants[name]
    if not v.supports(dtype):
        pytest.skip("byte quads through vpdpbusd take int8 operands only")
    pack = _PACK(addresses[kernels.pack_name(v, dtype)])
    gemm = _GEMM(addresses[kernels.gemm_name(v, dtype)])
    rng = np.random.default_rng(7)
    # row and column remainders of every tile, odd k (a partial group), empty sizes,
    # extreme values (every product -128 * -128 or 255 * 255)
    # (AMX tiles: 32 x 32 sums, k in blocks of 64; 64 x 64 x 128 is whole tiles only)
    for m, n, k in [(1, 1, 1), (7, 13, 3), (13, 33, 17), (25, 64, 288), (3, 10, 1030),
                    (64, 64, 128), (70, 40, 65), (0, 5, 5), (4, 0, 3), (4, 5, 0)]:
        a, b = _operands(rng, dtype, (m, k)), _operands(rng, dtype, (k, n))
        want = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)
        packed = np.zeros(packed_bytes(v, k, n), np.uint8)
        for a_t, b_t in ((False, False), (True, True)):
            # transposed operands through the strides; C's rows wider than n (ldc)
            bs = np.ascontiguousarray(b.T) if b_t else b
            a_s = np.ascontiguousarray(a.T) if a_t else a
            pack(k, n, bs.ctypes.data, 1 if b_t else n, k if b_t else 1, packed.ctypes.data)
            c = np.full((m, n + 3), -5, np.int32)
            gemm(m, n, k, a_s.ctypes.data, 1 if a_t else k, m if a_t else 1,
                 packed.ctypes.data, c.ctypes.data, n + 3)
            np.testing.assert_array_equal(c[:, :n], want, err_msg=f"{m}x{n}x{k} {a_t}")
            assert (c[:, n:] == -5).all()       # nothing stored past the row's n
    extreme = np.full((9, 40), dtype.np_dtype.type(np.iinfo(dtype.np_dtype).min
                                                   if dtype is dt.int8 else 255))
    packed = np.zeros(packed_bytes(v, 40, 9), np.uint8)
    pack(40, 9, extreme.T.copy().ctypes.data, 9, 1, packed.ctypes.data)
    c = np.zeros((9, 9), np.int32)
    gemm(9, 9, 40, extreme.ctypes.data, 40, 1, packed.ctypes.data, c.ctypes.data, 9)
    np.testing.assert_array_equal(c, extreme.astype(np.int64) @ extreme.T.astype(np.int64))


@pytest.mark.parametrize("name", [v.name for v in _runnable() if v.operands == "bfloat16"])
def test_bfloat16_kernels_sum_in_float32(compiled, name):
    variants, addresses = compiled
    v = variants[name]
    pack = _PACK(addresses[kernels.pack_name(v, dt.bfloat16)])
    gemm = _GEMM(addresses[kernels.gemm_name(v, dt.bfloat16)])
    rng = np.random.default_rng(8)
    for m, n, k in [(1, 1, 1), (7, 13, 3), (13, 33, 17), (25, 64, 288), (64, 32, 64),
                    (33, 40, 70), (0, 5, 5), (4, 5, 0)]:
        a = rng.normal(size=(m, k)).astype(dt.bfloat16.np_dtype)
        b = rng.normal(size=(k, n)).astype(dt.bfloat16.np_dtype)
        packed = np.zeros(packed_bytes(v, k, n), np.uint8)
        pack(k, n, b.ctypes.data, n, 1, packed.ctypes.data)
        c = np.full((m, n + 2), -5.0, np.float32)
        gemm(m, n, k, a.ctypes.data, k, 1, packed.ctypes.data, c.ctypes.data, n + 2)
        want = a.astype(np.float64) @ b.astype(np.float64)      # products of bf16 exact
        np.testing.assert_allclose(c[:, :n], want, rtol=1e-5, atol=1e-5 * max(1, k))
        assert (c[:, n:] == -5.0).all()


@pytest.mark.parametrize("cpu", ["cooperlake", "znver4", "sapphirerapids"])
def test_the_bfloat16_kernel_uses_vdpbf16ps_where_the_cpu_has_it(cpu):
    import re
    with target.compiling_for(cpu):
        assert "bf16dot16" in [v.name for v in kernels.available_variants()]
        asm = target.assembly(kernels.int8_kernel_module(target.new_module("bf16"),
                                                         [kernels.VARIANTS["bf16dot16"]]))
    assert re.search(r"vdpbf16ps\s.*%zmm", asm)


@pytest.mark.parametrize("variant", [kernels.VARIANTS["bf16pairs8"], EMULATED_TILES[1]],
                         ids=lambda v: v.name)
def test_a_bfloat16_matmul_through_the_kernel(monkeypatch, variant):
    """The code a bfloat16 product gets when the host measured a bfloat16 kernel faster
    (AVX512-BF16 and AMX-BF16 hosts), forced here with the portable kernel and the tile
    kernel's emulation: lowered (not read from the compile cache), it calls the kernel,
    and the bias add is its epilogue."""
    import ctypes as c

    from tracejit.codegen_cpu.gemm import blas
    from tracejit.codegen_cpu.kernels.table import lower_equation
    from tracejit.codegen_cpu.pipeline import CPU_PASSES
    here = kernels.available_variants()
    if variant not in here:
        monkeypatch.setattr(kernels, "available_variants", lambda: [*here, variant])
    monkeypatch.setattr(blas, "choose_bf16_variant", lambda m, n, k: variant)
    b = GraphBuilder("bf16mm")
    x, w = b.add_input(T((2, 37, 64), dt.bfloat16)), b.add_input(T((24, 64), dt.bfloat16))
    bias = b.add_input(T((24,), dt.bfloat16))
    y = b.emit1(ops.ADD, [b.emit1(ops.MATMUL, [x, w], {"transpose_b": True}), bias])
    graph = b.build([y])
    (kernel,) = optimize(graph, device_passes=CPU_PASSES).eqns
    module = target.new_module("bf16mm")
    lower_equation(module, kernel, "bf16mm")
    assert f"tj_pk_gemm_{variant.name}_bf16" in str(module)
    _, addresses = target.compile_module(module)
    rng = np.random.default_rng(9)
    args = [rng.normal(size=v.shape).astype(dt.bfloat16.np_dtype) for v in graph.inputs]
    out = np.zeros(y.shape, dt.bfloat16.np_dtype)
    buffers = (c.c_void_p * 4)(out.ctypes.data, *(a.ctypes.data for a in args))
    c.CFUNCTYPE(None, c.c_void_p)(addresses["bf16mm"])(c.addressof(buffers))
    want = interpret(graph, args)[0].astype(np.float64)
    # float32 sums in another order: at most one bfloat16 rounding step apart
    np.testing.assert_allclose(out.astype(np.float64), want, rtol=2 ** -7, atol=1e-6)


@pytest.mark.parametrize("cpu, lanes, instruction", [
    ("cascadelake", 16, r"vpdpbusd\s.*%zmm"), ("alderlake", 8, r"\{vex\}\s*vpdpbusd"),
    ("znver4", 16, r"vpdpbusd\s.*%zmm")])
def test_vnni_kernels_use_vpdpbusd_where_the_cpu_has_it(cpu, lanes, instruction):
    import re
    with target.compiling_for(cpu):
        names = [v.name for v in kernels.available_variants()]
        assert f"vnni{lanes}" in names, names
        v = kernels.VARIANTS[f"vnni{lanes}"]
        asm = target.assembly(kernels.int8_kernel_module(target.new_module("vnni"), [v]))
    assert re.search(instruction, asm)


def test_variants_follow_the_target():
    import re
    def int8_names():
        return [v.name for v in kernels.available_variants() if v.operands == "int8"]
    with target.compiling_for("haswell"):
        assert int8_names() == ["pairs8"]
        asm = target.assembly(kernels.int8_kernel_module(
            target.new_module("h"), [kernels.VARIANTS["pairs8"]]))
        assert re.search(r"vpmaddwd\s.*%ymm", asm) and "vpmulld" not in asm
    with target.compiling_for("skylake-avx512"):
        assert int8_names() == ["pairs16"]
    with target.compiling_for("x86-64"):
        assert int8_names() == ["pairs4"]
    with target.compiling_for("cascadelake"):
        assert int8_names() == ["pairs16", "vnni16"]
        # with VNNI, LLVM folds the pairs' pmaddwd and add into vpdpwssd
        asm = target.assembly(kernels.int8_kernel_module(
            target.new_module("c"), [kernels.VARIANTS["pairs16"]]))
        assert re.search(r"vpdpwssd\s.*%zmm", asm)


def test_a_forced_kernel_the_target_lacks_is_an_error(monkeypatch):
    monkeypatch.setenv(kernels.INT8_GEMM_ENV, "vnni")
    with target.compiling_for("haswell"):
        with pytest.raises(RuntimeError, match="TRACEJIT_INT8_GEMM=vnni, but the compile "
                                               "target has no such kernel"):
            kernels.choose_variant(dt.int8, 64, 64, 64)
    monkeypatch.setenv(kernels.INT8_GEMM_ENV, "pairs")
    with target.compiling_for("cascadelake"):
        assert kernels.choose_variant(dt.int8, 64, 64, 64).name == "pairs16"
    monkeypatch.setenv(kernels.INT8_GEMM_ENV, "amx")
    with target.compiling_for("cascadelake"):
        with pytest.raises(RuntimeError, match="TRACEJIT_INT8_GEMM=amx, but the compile "
                                               "target has no such kernel"):
            kernels.choose_variant(dt.uint8, 64, 64, 64)
    with target.compiling_for("sapphirerapids"):
        # (an AMX host whose Linux refused the tile state has no tile kernels)
        if "amx-int8" in target.target_tile_features():
            assert kernels.choose_variant(dt.uint8, 64, 64, 64).name == "amx_i8"
        else:
            with pytest.raises(RuntimeError, match="TRACEJIT_INT8_GEMM=amx"):
                kernels.choose_variant(dt.uint8, 64, 64, 64)
    monkeypatch.setenv(kernels.INT8_GEMM_ENV, "fast")
    with pytest.raises(ValueError, match="expected pairs, vnni, amx or auto"):
        kernels.choose_variant(dt.int8, 64, 64, 64)


@pytest.mark.parametrize("cpu, has_tiles", [("sapphirerapids", True), ("graniterapids", True),
                                            ("cascadelake", False), ("znver4", False)])
def test_amx_kernels_use_the_tile_instructions_where_the_cpu_has_them(cpu, has_tiles):
    import re
    with target.compiling_for(cpu):
        names = [v.name for v in kernels.available_variants()]
        # where this host itself has AMX, only with Linux's permission (test_tile_state.py)
        usable = has_tiles and bool(target.target_tile_features())
        assert ("amx_i8" in names, "amx_bf16" in names) == (usable, usable), names
        if not has_tiles:
            return
        module = kernels.int8_kernel_module(
            target.new_module("amx"), [kernels.VARIANTS["amx_i8"], kernels.VARIANTS["amx_bf16"]])
        asm = target.assembly(module)
    # the configuration, then in the k loop tiles of A and B and the products into the
    # four tiles of sums; the state released at the end
    for instruction in ("ldtilecfg", "tilezero", "tileloadd", "tdpbssd", "tdpbuud",
                        "tdpbf16ps", "tilestored", "tilerelease"):
        assert re.search(rf"\b{instruction}\s", asm), instruction
    products = re.findall(r"\btdpbssd\s+%tmm([0-7]), %tmm([0-7]), %tmm([0-7])", asm)
    assert {(int(c), int(a), int(b)) for b, a, c in products} == {
        (4, 0, 2), (5, 0, 3), (6, 1, 2), (7, 1, 3)}


def test_the_tile_kernels_rows_per_work_item():
    from tracejit.codegen_cpu.gemm.int8_gemm import ROW_BLOCK, row_block
    assert row_block(kernels.VARIANTS["pairs8"]) == ROW_BLOCK == 48
    assert row_block(kernels.VARIANTS["amx_i8"]) == 64         # whole tiles of 32 rows


@pytest.mark.parametrize("op, types, params", [
    (ops.INT8_MATMUL, [T((150, 200), dt.int8), T((200, 70), dt.int8)], {}),   # threaded
    (ops.INT8_MATMUL, [T((2, 1, 20, 30), dt.uint8), T((4, 7, 20), dt.uint8)],
     {"transpose_a": True, "transpose_b": True}),
    (ops.INT8_CONV2D, [T((2, 9, 7, 5), dt.uint8), T((2, 3, 5, 6), dt.uint8)],
     {"strides": (2, 1), "pads": (0, 1, 2, 0), "dilations": (1, 2), "pad_value": 255}),
])
def test_the_ops_through_the_tile_kernel(monkeypatch, op, types, params):
    """The code an AMX host gets for the ops (TRACEJIT_INT8_GEMM=amx), with the tile
    instructions emulated: lowered (not from the compile cache), calling the tile
    kernel, equal to the reference."""
    import ctypes as c

    from tracejit.codegen_cpu.kernels.table import lower_equation
    here = kernels.available_variants()
    monkeypatch.setattr(kernels, "available_variants", lambda: [*here, EMULATED_TILES[0]])
    monkeypatch.setenv(kernels.INT8_GEMM_ENV, "amx")
    b = GraphBuilder(op.name)
    ins = [b.add_input(t) for t in types]
    graph = b.build([b.emit1(op, ins, params)])
    module = target.new_module("amx_op")
    lower_equation(module, graph.eqns[0], "amx_op")
    assert f"tj_pk_gemm_amx_emulated_i8_{types[0].dtype.short}" in str(module)
    engine, addresses = target.compile_module(module)
    rng = np.random.default_rng(4)
    args = [_operands(rng, t.dtype, t.shape) for t in types]
    out = np.zeros(graph.outputs[0].shape, np.int32)
    buffers = (c.c_void_p * 3)(out.ctypes.data, *(a.ctypes.data for a in args))
    c.CFUNCTYPE(None, c.c_void_p)(addresses["amx_op"])(c.addressof(buffers))
    np.testing.assert_array_equal(out, interpret(graph, args)[0])
    del engine


def _run_cpu(graph, args):
    device = get_device("cpu")
    return device.host_program(device.compile(graph), graph)(args)


@pytest.mark.parametrize("op, types, params", [
    # threaded blocks of pixels, padding with a zero point
    (ops.INT8_CONV2D, [T((16, 8, 8, 32), dt.int8), T((3, 3, 32, 64), dt.int8)],
     {"pads": (1, 1, 1, 1), "pad_value": -3}),
    (ops.INT8_CONV2D, [T((3, 9, 7, 5), dt.uint8), T((2, 3, 5, 6), dt.uint8)],
     {"strides": (2, 1), "pads": (0, 1, 2, 0), "dilations": (1, 2), "pad_value": 255}),
    (ops.INT8_CONV2D, [T((4, 8, 8, 16), dt.uint8), T((1, 1, 16, 8), dt.uint8)], {}),
    (ops.INT8_MATMUL, [T((300, 200), dt.int8), T((200, 70), dt.int8)], {}),  # threaded
    (ops.INT8_MATMUL, [T((3, 30, 20), dt.int8), T((3, 20, 7), dt.int8)], {}),  # batched B
    (ops.INT8_MATMUL, [T((2, 1, 20, 30), dt.uint8), T((4, 7, 20), dt.uint8)],
     {"transpose_a": True, "transpose_b": True}),
])
def test_the_ops_on_the_cpu(op, types, params):
    b = GraphBuilder(op.name)
    ins = [b.add_input(t) for t in types]
    graph = b.build([b.emit1(op, ins, params)])
    rng = np.random.default_rng(3)
    args = [_operands(rng, t.dtype, t.shape) for t in types]
    np.testing.assert_array_equal(_run_cpu(graph, args)[0], interpret(graph, args)[0])


def test_requantization_fuses_into_the_products_epilogue():
    """int32 sums -> float32, per-column scale and bias, ReLU, the next layer's int8: one
    matmul_epilogue kernel around int8_matmul, equal to the reference."""
    b = GraphBuilder("dense")
    x, w = b.add_input(T((37, 64), dt.int8)), b.add_input(T((64, 24), dt.int8))
    scale, bias = b.add_input(T((24,), dt.float32)), b.add_input(T((24,), dt.float32))
    acc = b.emit1(ops.INT8_MATMUL, [x, w])
    y = b.emit1(ops.ADD, [b.emit1(ops.MUL, [b.emit1(ops.CAST, [acc], {"dtype": dt.float32}),
                                            scale]), bias])
    y = b.emit1(ops.RELU, [y])
    q = b.emit1(ops.CAST, [b.emit1(ops.CLIP, [b.emit1(ops.ROUND, [y]), _const(b, -128.0),
                                              _const(b, 127.0)])], {"dtype": dt.int8})
    graph = b.build([q, y])
    from tracejit.codegen_cpu.pipeline import CPU_PASSES
    fused = optimize(graph, device_passes=CPU_PASSES)
    kernel_bodies = [e.params["body"] for e in fused.eqns if e.op is ops.KERNEL
                     and e.params["kind"] == "matmul_epilogue"]
    assert len(kernel_bodies) == 1
    assert any(e.op is ops.INT8_MATMUL for e in kernel_bodies[0].eqns)
    rng = np.random.default_rng(5)
    args = [_operands(rng, dt.int8, (37, 64)), _operands(rng, dt.int8, (64, 24)),
            rng.uniform(0.001, 0.01, 24).astype(np.float32),
            rng.uniform(-20, 20, 24).astype(np.float32)]
    got, want = _run_cpu(graph, args), interpret(graph, args)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def _const(b, value):
    from tracejit.ir import ConstValue
    return b.emit1(ops.CONSTANT, [], {"value": ConstValue(np.float32(value))})


@pytest.mark.parametrize("isa, variant", [("avx2", "pairs8"), ("neon", "generic4")])
def test_standalone_code_carries_its_own_kernels(isa, variant):
    """Ahead-of-time code links no runtime library: the kernels are the module's own
    (internal), the variant follows the target's ISA; the avx2 build runs here."""
    import ctypes as c

    from tracejit.codegen_cpu.host.standalone import standalone_code
    from tracejit.codegen_cpu.kernels.table import lower_equation
    b = GraphBuilder("conv")
    ins = [b.add_input(T((2, 6, 6, 3), dt.int8)), b.add_input(T((3, 3, 3, 5), dt.int8))]
    graph = b.build([b.emit1(ops.INT8_CONV2D, ins, {"pads": (1, 1, 1, 1), "pad_value": 9})])
    module = target.new_module("standalone_int8")
    with standalone_code(isa):
        lower_equation(module, graph.eqns[0], "conv")
    text = str(module)
    assert f'define internal void @"tj_pk_gemm_{variant}_i8"' in text, text[:2000]
    assert "declare void @\"tj_pk" not in text
    if isa != "avx2":
        return
    _, addresses = target.compile_module(module)
    rng = np.random.default_rng(6)
    args = [_operands(rng, dt.int8, v.shape) for v in graph.inputs]
    out = np.zeros(graph.outputs[0].shape, np.int32)
    buffers = (c.c_void_p * 3)(out.ctypes.data, *(a.ctypes.data for a in args))
    c.CFUNCTYPE(None, c.c_void_p)(addresses["conv"])(c.addressof(buffers))
    np.testing.assert_array_equal(out, interpret(graph, args)[0])


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_the_tile_kernels_frame_on_random_products(compiled, data):
    """Random sizes (around the 32-row, 32-column and 64-byte tile edges), strides and
    operands through the AMX kernels' frame (tile instructions in plain IR): equal to
    exact NumPy sums for int8 and uint8, within float32 rounding for bfloat16."""
    variants, addresses = compiled
    dtype = data.draw(st.sampled_from([dt.int8, dt.uint8, dt.bfloat16]), label="dtype")
    v = variants["amx_emulated_bf16" if dtype is dt.bfloat16 else "amx_emulated_i8"]
    m, n = (data.draw(st.integers(0, 70), label=label) for label in ("m", "n"))
    k = data.draw(st.integers(0, 200), label="k")
    a_t, b_t = (data.draw(st.booleans(), label=label) for label in ("a_t", "b_t"))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    if dtype is dt.bfloat16:
        a, b = (rng.normal(size=s).astype(dt.bfloat16.np_dtype) for s in ((m, k), (k, n)))
    else:
        a, b = _operands(rng, dtype, (m, k)), _operands(rng, dtype, (k, n))
    pack = _PACK(addresses[kernels.pack_name(v, dtype)])
    gemm = _GEMM(addresses[kernels.gemm_name(v, dtype)])
    packed = np.zeros(packed_bytes(v, k, n), np.uint8)
    bs = np.ascontiguousarray(b.T) if b_t else b
    a_s = np.ascontiguousarray(a.T) if a_t else a
    pack(k, n, bs.ctypes.data, 1 if b_t else n, k if b_t else 1, packed.ctypes.data)
    c = np.full((m, n + 1), -5, np.float32 if dtype is dt.bfloat16 else np.int32)
    gemm(m, n, k, a_s.ctypes.data, 1 if a_t else k, m if a_t else 1, packed.ctypes.data,
         c.ctypes.data, n + 1)
    want = a.astype(np.float64) @ b.astype(np.float64)
    if dtype is dt.bfloat16:
        np.testing.assert_allclose(c[:, :n], want, rtol=1e-5, atol=1e-5 * max(1, k))
    else:
        np.testing.assert_array_equal(c[:, :n], want.astype(np.int64).astype(np.int32))
    assert (c[:, n:] == -5).all()
