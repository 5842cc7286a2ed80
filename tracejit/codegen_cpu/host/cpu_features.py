"""Which instruction-set features code for a CPU may use, read off LLVM's code.

llvmlite cannot list the features LLVM gives a named CPU (``TRACEJIT_CPU=znver4``), and
code that uses one the host lacks stops the process with an illegal instruction. So
:func:`features_in` compiles one small function per feature whose instructions LLVM
picks by itself from plain IR, as it does for tracejit's kernels, and looks for them in
the assembly; target.py compares the result with the host's features.

Each probe is (IR type, body computing ``%w`` from the loaded ``%v`` and ``%u``, a
pattern the assembly matches exactly when the target has the feature). Features LLVM
does not emit unasked from such IR (AMX, ...) are not probed. VNNI is: LLVM folds an
int16 multiply-add of pairs (``pmaddwd``) and the add after it into ``vpdpwssd``, and
the 8-bit kernels (gemm/int8_tiles.py) write exactly that IR.

>>> import llvmlite.binding as llvm
>>> llvm.initialize_native_target(); llvm.initialize_native_asmprinter()
>>> tm = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
...     cpu="haswell", features="", opt=3)
>>> sorted(features_in(lambda text: tm.emit_assembly(llvm.parse_assembly(text))))
['avx', 'avx2', 'bmi', 'bmi2', 'f16c', 'fma', 'lzcnt', 'popcnt']
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["PROBES", "features_in", "probe_source"]

# NOTE: checked on x86-64, sandybridge, haswell, skylake-avx512, icelake-server,
# rocketlake, sapphirerapids, znver3-5 and bdver4 (tests/codegen_cpu/test_target.py).
# AMD's SSE4A is among them: znver4 code for a max reduction used insertq, and stopped
# an Intel host with an illegal instruction.

def _pairs_probe(lanes: int) -> str:
    """IR adding the products of ``%v``'s and ``%u``'s int16 pairs to ``%v`` seen as
    ``lanes`` int32 lanes (the shape of the 8-bit kernels' step)."""
    pairs = 2 * lanes
    lines = []
    for first in (0, 1):
        picks = "<" + ", ".join(f"i32 {2 * i + first}" for i in range(lanes)) + ">"
        for operand in ("v", "u"):
            lines += [f"%{operand}{first} = shufflevector <{pairs} x i16> %{operand}, "
                      f"<{pairs} x i16> poison, <{lanes} x i32> {picks}",
                      f"%{operand}{first}x = sext <{lanes} x i16> %{operand}{first} to "
                      f"<{lanes} x i32>"]
        lines.append(f"%m{first} = mul <{lanes} x i32> %v{first}x, %u{first}x")
    lines += [f"%s = add <{lanes} x i32> %m0, %m1",
              f"%acc = bitcast <{pairs} x i16> %v to <{lanes} x i32>",
              f"%t = add <{lanes} x i32> %acc, %s",
              f"%w = bitcast <{lanes} x i32> %t to <{pairs} x i16>"]
    return "\n  ".join(lines)


PROBES: dict[str, tuple[str, str, str]] = {
    "popcnt": ("i64", "%w = call i64 @llvm.ctpop.i64(i64 %v)", r"\bpopcntq"),
    "lzcnt": ("i64", "%w = call i64 @llvm.ctlz.i64(i64 %v, i1 false)", r"\blzcntq"),
    "bmi": ("i64", "%x = xor i64 %v, -1\n  %w = and i64 %x, %u", r"\bandnq"),
    "bmi2": ("i64", "%x = shl i64 %v, %u\n  %w = xor i64 %x, %u", r"\bshlxq"),
    "sse4a": ("<16 x i8>", "%w = shufflevector <16 x i8> %v, <16 x i8> %u, <16 x i32> <i32 0, "
              "i32 16, i32 2, i32 3, i32 4, i32 5, i32 6, i32 7, i32 poison, i32 poison, "
              "i32 poison, i32 poison, i32 poison, i32 poison, i32 poison, i32 poison>",
              r"\binsertq"),
    "xop": ("<4 x i32>", "%w = call <4 x i32> @llvm.fshl.v4i32(<4 x i32> %v, <4 x i32> %v, "
            "<4 x i32> %u)", r"\bvprotd"),
    "avx": ("<8 x float>", "%w = fadd <8 x float> %v, %u", r"vaddps\s.*%ymm"),
    "avx2": ("<8 x i32>", "%w = mul <8 x i32> %v, %u", r"vpmulld\s.*%ymm"),
    "fma": ("<8 x float>", "%w = call <8 x float> @llvm.fma.v8f32(<8 x float> %v, "
            "<8 x float> %u, <8 x float> %v)", r"vfmadd"),
    "f16c": ("<8 x half>", "%x = fpext <8 x half> %v to <8 x float>\n"
             "  %y = fadd <8 x float> %x, %x\n  %w = fptrunc <8 x float> %y to <8 x half>",
             r"vcvtph2ps"),
    "avx512f": ("<16 x float>", "%w = fadd <16 x float> %v, %u", r"%zmm"),
    "avx512bw": ("<64 x i8>", "%w = add <64 x i8> %v, %u", r"vpaddb\s.*%zmm"),
    "avx512fp16": ("<32 x half>", "%w = fadd <32 x half> %v, %u", r"vaddph"),
    "avx512bf16": ("<16 x bfloat>", "%x = fpext <16 x bfloat> %v to <16 x float>\n"
                   "  %y = fadd <16 x float> %x, %x\n"
                   "  %w = fptrunc <16 x float> %y to <16 x bfloat>", r"vcvtneps2bf16"),
    "avx512vpopcntdq": ("<16 x i32>", "%w = call <16 x i32> @llvm.ctpop.v16i32(<16 x i32> %v)",
                        r"vpopcntd"),
    "avx512bitalg": ("<64 x i8>", "%w = call <64 x i8> @llvm.ctpop.v64i8(<64 x i8> %v)",
                     r"vpopcntb"),
    # sum of products of int16 pairs added to int32 lanes: vpdpwssd with VNNI; AVX-VNNI's
    # VEX form prints as "{vex} vpdpwssd", AVX-512 VNNI's (zmm) without it.
    "avx512vnni": ("<32 x i16>", _pairs_probe(16), r"vpdpwssd\s.*%zmm"),
    "avxvnni": ("<16 x i16>", _pairs_probe(8), r"\{vex\}\s*vpdpwssd"),
    "gfni": ("<64 x i8>", "%w = call <64 x i8> @llvm.bitreverse.v64i8(<64 x i8> %v)",
             r"gf2p8affine"),
}


def probe_source(ty: str, body: str) -> str:
    """A function ``probe(ptr %p, ptr %q)`` that loads two ``ty`` values, computes
    ``%w`` by ``body`` and stores it."""
    return (f"define void @probe(ptr %p, ptr %q) {{\n  %v = load {ty}, ptr %p, align 64\n"
            f"  %u = load {ty}, ptr %q, align 64\n  {body}\n"
            f"  store {ty} %w, ptr %p, align 64\n  ret void\n}}")


def features_in(emit_assembly: Callable[[str], str]) -> frozenset[str]:
    """The probed features whose instructions appear in the target's code;
    ``emit_assembly(ir_text)`` compiles one probe for the target."""
    return frozenset(name for name, (ty, body, pattern) in PROBES.items()
                     if re.search(pattern, emit_assembly(probe_source(ty, body))))
