"""Every kind of GPU kernel compiles to PTX for sm_80 and sm_90 and passes ptxas; and
``tracejit ir --stage ptx`` prints modules ptxas takes one by one.

Both run in subprocesses with ``TRACEJIT_GPU=null``: this test process simulates CUDA
(tests/conftest.py), and the simulator replaces numba.cuda's compiler."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install "
                    "'tracejit[cuda-compiler]')")
if shutil.which("ptxas") is None:
    pytest.skip("ptxas is not on PATH (the CUDA toolkit's bin directory)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ, TRACEJIT_GPU="null", PYTHONPATH=str(ROOT))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return env


def test_every_kernel_kind_assembles_for_sm80_and_sm90():
    done = subprocess.run([sys.executable, "-m", "tests.codegen_cuda.ptx_check"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["lowering_errors"] == []
    assert {"elementwise", "reduction", "matmul", "movement", "nn"} <= set(report["kinds"])
    assert report["kernels"] > 100
    assert any(name.startswith("tj_rows_") for name in report["names"])
    assert any(name.startswith("tj_rows_serial_") for name in report["names"])
    for arch in ("sm_80", "sm_90"):
        assert report[arch]["failures"] == {}, (arch, report[arch]["failures"])
        assert report[arch]["passed"] == report["kernels"]


def test_cli_prints_one_whole_module_per_kernel(tmp_path):
    source = tmp_path / "model.py"
    source.write_text("import tracejit as tj\n\ndef f(x, w, b):\n"
                      "    return tj.tanh(x @ w + b).sum()\n")
    done = subprocess.run([sys.executable, "-m", "tracejit.cli", "ir", f"{source}:f",
                           "--arg", "f32[8,16]", "--arg", "f32[16,4]", "--arg", "f32[4]",
                           "--stage", "ptx", "--arch", "sm_80"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=_env(),
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = [m for m in re.split(r"^// ---- kernel .*\n(?://.*\n)*", done.stdout,
                                   flags=re.MULTILINE) if m.strip()]
    headers = re.findall(r"^// ---- kernel (\S+) \((\w+)\)", done.stdout, re.MULTILINE)
    assert [kind for _, kind in headers] == ["matmul", "elementwise", "reduction"]
    assert len(modules) == len(headers)
    for i, module in enumerate(modules):
        assert ".target sm_80" in module
        path = tmp_path / f"k{i}.ptx"
        path.write_text(module)
        result = subprocess.run(["ptxas", "-arch=sm_80", str(path), "-o",
                                 str(tmp_path / f"k{i}.cubin")], capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
