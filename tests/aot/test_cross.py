"""Cross-compiled builds: an aarch64 object checked with the ELF reader (and run under
qemu where qemu-aarch64 and an aarch64 C toolchain are installed), x86-64 CPU levels,
and the ELF reader against binutils."""

from __future__ import annotations

import platform
import shutil
import subprocess

import numpy as np
import pytest

import tracejit as tj
from tracejit.aot import read_elf
from tracejit.aot.elf import ET_DYN, ET_REL
from tracejit.aot.link import allowed_symbol
from tracejit.aot.targets import EM_AARCH64, EM_X86_64, parse_target

from .helpers import call_shared, compile_main, needs_cc, run_main, small_cnn

RNG = np.random.default_rng(7)
AARCH64_CC = shutil.which("aarch64-linux-gnu-gcc")
QEMU = shutil.which("qemu-aarch64")
API = {"run", "run_buffers", "num_args", "num_results", "arg_bytes", "result_bytes"}


def test_aarch64_object_passes_the_elf_check(tmp_path):
    library = tj.aot.compile(small_cnn(RNG), "f32[2,8,8,1]", out=tmp_path / "digits",
                             target="aarch64-linux-gnu")
    elf = read_elf(library.object.read_bytes())
    assert elf.file_type == ET_REL and elf.machine == EM_AARCH64 == 183
    assert {f"digits_{f}" for f in API} <= elf.exported()
    assert all(allowed_symbol(s) for s in elf.undefined())
    assert not any(name.startswith("digits_program") for name in elf.exported())
    if AARCH64_CC is None:
        assert library.shared is None and "aarch64-linux-gnu-gcc" in library.note
    else:
        shared = read_elf(library.shared.read_bytes())
        assert shared.file_type == ET_DYN and shared.machine == EM_AARCH64
        assert shared.exported() == {f"digits_{f}" for f in API}
    assert "aarch64-unknown-linux-gnu" in library.files["header"].read_text()


def test_android_and_a_named_core_are_targets(tmp_path):
    target = parse_target("aarch64-linux-android", cpu="cortex-a76")
    assert (target.triple, target.cpu) == ("aarch64-unknown-linux-android", "cortex-a76")
    library = tj.aot.compile(lambda x: tj.sigmoid(x) * x, "f32[16]", out=tmp_path / "swish",
                             target="aarch64-linux-android", cpu="cortex-a76")
    assert read_elf(library.object.read_bytes()).machine == EM_AARCH64
    assert library.shared is None       # no NDK here: the object only


@pytest.mark.skipif(QEMU is None or AARCH64_CC is None,
                    reason="needs qemu-aarch64 and aarch64-linux-gnu-gcc (Debian: qemu-user, "
                           "gcc-aarch64-linux-gnu)")
def test_aarch64_program_runs_under_qemu_and_matches_the_jit(tmp_path):
    cnn = small_cnn(RNG)
    x = RNG.random((2, 8, 8, 1), dtype=np.float32)
    library = tj.aot.compile(cnn, x, out=tmp_path / "digits", target="aarch64-linux-gnu")
    program = compile_main(library, compiler=AARCH64_CC, static=True)
    (got,) = run_main(program, [x], [np.zeros((2, 10), np.float32)], runner=[QEMU])
    np.testing.assert_allclose(got, np.asarray(cnn(x)), rtol=1e-5, atol=1e-6)


@needs_cc
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 CPU levels")
@pytest.mark.parametrize("level", ["x86-64-v2", "x86-64-v3", "x86-64-v4"])
def test_x86_64_levels(tmp_path, level):
    from tracejit.codegen_cpu.host.machine import code_features, host_cpu
    cnn = small_cnn(RNG)
    x = RNG.random((2, 8, 8, 1), dtype=np.float32)
    library = tj.aot.compile(cnn, x, out=tmp_path / "digits", target=level)
    assert read_elf(library.object.read_bytes()).machine == EM_X86_64
    needs = {"x86-64-v3": "avx2", "x86-64-v4": "avx512f"}.get(level)
    if needs is not None and needs not in code_features(*host_cpu()):
        pytest.skip(f"this CPU cannot run {level} code")
    status, (got,) = call_shared(library, [x])
    assert status == 0
    np.testing.assert_allclose(got, np.asarray(cnn(x)), rtol=1e-5, atol=1e-6)
    (by_main,) = run_main(compile_main(library), [x], [got])
    np.testing.assert_array_equal(by_main, got)


def test_unknown_targets_and_misplaced_cpus_are_clear_errors():
    with pytest.raises(ValueError, match="unknown target 'riscv64'.*aarch64-linux-gnu"):
        parse_target("riscv64")
    with pytest.raises(ValueError, match="CPU level already"):
        parse_target("x86-64-v3", cpu="znver4")
    with pytest.raises(ValueError, match="--cpu goes with a --target triple"):
        parse_target("host", cpu="cortex-a72")


@pytest.mark.skipif(shutil.which("nm") is None, reason="binutils' nm")
def test_the_elf_reader_agrees_with_nm(tmp_path):
    library = tj.aot.compile(small_cnn(RNG), "f32[1,8,8,1]", out=tmp_path / "m",
                             target="aarch64-linux-gnu", weights="file")
    text = subprocess.run(["nm", str(library.object)], capture_output=True, text=True,
                          check=True).stdout
    undefined = {line.split()[-1] for line in text.splitlines() if line.split()[-2] == "U"}
    exported = {line.split()[-1] for line in text.splitlines() if line.split()[-2] == "T"}
    elf = read_elf(library.object.read_bytes())
    assert elf.undefined() == undefined and elf.exported() == exported
    assert {"fopen", "fread", "aligned_alloc"} <= undefined
    with pytest.raises(ValueError, match="not an ELF file"):
        read_elf(b"\x7fELG" + bytes(60))
