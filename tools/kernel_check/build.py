"""Build ``kernel_check``: tracejit's packed 8-bit and bfloat16 kernels compiled for a
named CPU, linked with driver.c into one static program that checks them with no Python.

    python tools/kernel_check/build.py --cpu sapphirerapids --out build/kernel_check

It runs on a machine that has the CPU's instructions -- or on an emulator of it, which is
how the AVX-512 VNNI, AVX512-BF16 and AMX kernels were first run (docs/quantization.md).
Every kernel the CPU can run goes in (int8_kernels.available_variants, for a named CPU:
AMX included where LLVM compiles it), for each operand type it takes.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys

from tracejit.codegen_cpu.gemm import int8_kernels as kernels
from tracejit.codegen_cpu.host import target
from tracejit.ir import dtypes as dt

HERE = pathlib.Path(__file__).resolve().parent
OPERANDS = {dt.int8: "INT8", dt.uint8: "UINT8", dt.bfloat16: "BF16"}


def table(entries) -> str:
    """kernels.h: the functions' declarations and the table driver.c walks."""
    lines = ["/* written by tools/kernel_check/build.py */"]
    rows = []
    for v, dtype in entries:
        pack, gemm = kernels.pack_name(v, dtype), kernels.gemm_name(v, dtype)
        lines += [f"void {pack}(int64_t, int64_t, const void *, int64_t, int64_t, void *);",
                  f"void {gemm}(int64_t, int64_t, int64_t, const void *, int64_t, int64_t, "
                  f"const void *, void *, int64_t);"]
        rows.append(f'    {{"{v.name}", {OPERANDS[dtype]}, {int(v.tiles)}, {pack}, {gemm}}},')
    lines += ["static const struct kernel KERNELS[] = {", *rows, "};",
              f"#define N_KERNELS {len(rows)}"]
    return "\n".join(lines) + "\n"


def build(cpu: str, features: str, out: pathlib.Path, cc: str) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    with target.compiling_for(cpu, features):
        variants = kernels.available_variants()
        module = kernels.int8_kernel_module(target.new_module("kernel_check"), variants)
        (out / "kernels.o").write_bytes(target.emit_object(module))
    entries = [(v, dtype) for v in variants for dtype in OPERANDS if v.supports(dtype)]
    (out / "kernels.h").write_text(table(entries))
    shutil.copy(HERE / "driver.c", out / "driver.c")
    program = out / "kernel_check"
    subprocess.run([cc, "-O2", "-static", "-I", str(out), str(out / "driver.c"),
                    str(out / "kernels.o"), "-lm", "-o", str(program)], check=True)
    print(f"{program}: {', '.join(f'{v.name}/{d.name}' for v, d in entries)}")
    return program


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", required=True, help="an LLVM CPU name (sapphirerapids)")
    parser.add_argument("--features", default="", help="LLVM features to add (+avx512f,...)")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--cc", default="cc")
    args = parser.parse_args(argv)
    build(args.cpu, args.features, args.out, args.cc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
