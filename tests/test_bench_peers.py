"""The benchmark suite's plumbing for peers in other Pythons and for bfloat16 variants:
which Python runs a peer's child (TRACEJIT_<PEER>_PYTHON), that bfloat16 rows are
compared with tracejit's bfloat16 rows and checked with bfloat16's tolerance. None of it
needs PyTorch; the one test that runs PyTorch's bf16 variants runs only where a Python
with torch is named (TRACEJIT_TORCH_PYTHON) or this one has it."""

from __future__ import annotations

import importlib.util
import os
import stat
import sys

import numpy as np
import pytest

from benchmarks import child, harness, peer_tracejit, report, runner
from benchmarks.workloads import check_rtol, make_inputs


def test_each_peer_has_a_variable_naming_its_python():
    assert child.python_variable("torch") == "TRACEJIT_TORCH_PYTHON"
    # TensorFlow's is the name the input-pipeline benchmark and the TF tests already read
    assert child.python_variable("tensorflow") == "TRACEJIT_TF_PYTHON"
    assert child.python_variable("jax") == "TRACEJIT_JAX_PYTHON"


def test_a_peer_runs_here_when_its_library_is_here_else_where_its_variable_says(
        monkeypatch):
    installed = {"numpy"}
    monkeypatch.setattr(runner.importlib.util, "find_spec",
                        lambda name: object() if name in installed else None)
    monkeypatch.setenv("TRACEJIT_TORCH_PYTHON", "/venvs/torch/bin/python")
    monkeypatch.setenv("TRACEJIT_NUMPY_PYTHON", "/venvs/other/bin/python")
    monkeypatch.delenv("TRACEJIT_JAX_PYTHON", raising=False)
    assert runner.peer_python("numpy") == sys.executable     # here first
    assert runner.peer_python("torch") == "/venvs/torch/bin/python"
    assert runner.peer_python("jax") is None
    monkeypatch.setenv("TRACEJIT_JAX_PYTHON", "")            # set but empty: none
    assert runner.peer_python("jax") is None


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None,
                    reason="this Python has torch: the variable is not consulted")
def test_the_child_of_a_peer_missing_here_runs_under_the_named_python(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    python = tmp_path / "python"
    # A stand-in for another venv's Python: it notes its arguments and runs this Python,
    # which lacks torch, so the child reports it "not installed".
    python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {sys.executable} "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("TRACEJIT_TORCH_PYTHON", str(python))
    info, rows = runner.run_peer("torch", ["W3"], 1, "quick", 60.0, echo=lambda text: None)
    assert calls.read_text().split()[:4] == ["-m", "benchmarks.child", "--peer", "torch"]
    assert info["python"] == str(python)
    assert info["status"] == "not installed"
    assert "TRACEJIT_TORCH_PYTHON" in info["reason"]
    assert rows == []                   # a missing peer is one line of the summary
    doc = {"started": "2026-12-05T06:00:00+00:00", "settings": {"size": "quick", "repeat": 1},
           "machine": {"cpu": "cpu", "cpu_count": 2, "python": "3.11"},
           "load": {"before": [0.1], "after": [0.1], "quiet": True, "threshold": 0.5},
           "peers": [dict(info, status="ok", versions={"torch": "2.13.0"}, load=[0.1, 0.2])],
           "results": [], "workloads": {}}
    assert f"torch: torch 2.13.0 (load 0.10 -> 0.20), run by {python}" in report.summary(doc)


def _row(peer, variant, median, check, precision=None):
    return {"workload": "W3", "peer": peer, "variant": variant, "status": "ok",
            "median_s": median, "min_s": median, "max_s": median, "times_s": [median],
            "check": check, "style": None, "precision": precision}


def test_bf16_rows_are_compared_with_tracejits_bf16_and_checked_with_bf16s_tolerance():
    rows = [_row("tracejit", "tracejit", 0.010, 0.1),
            _row("tracejit", "tracejit bf16", 0.005, 0.1002, "bfloat16"),
            _row("numpy", "numpy", 0.020, 0.1),
            _row("torch", "torch eager", 0.030, 0.1002),                 # 2e-3 off: f32
            _row("torch", "torch eager bf16", 0.0025, 0.1002, "bfloat16"),
            _row("torch", "torch.compile bf16", 0.004, 0.105, "bfloat16")]   # 5% off
    runner.add_derived(rows, "full")
    by = {r["variant"]: r for r in rows}
    # float32 rows against tracejit's float32 even though its bf16 variant is faster
    assert by["numpy"]["ratio"] == pytest.approx(2.0)
    assert by["numpy"]["ratio_to"] == "tracejit"
    assert by["torch eager bf16"]["ratio"] == pytest.approx(0.5)
    assert by["torch eager bf16"]["ratio_to"] == "tracejit bf16"
    assert by["tracejit bf16"]["ratio"] == pytest.approx(1.0)
    assert [r["check_ok"] for r in rows] == [True, True, True, False, True, False]
    text = report.table({"results": rows, "workloads": {"W3": {"unit": "ms"}}})
    assert "| W3 | torch eager bf16 | 2.50 |" in text
    assert "ratio to tracejit bf16" in text
    assert text.count("CHECK MISMATCH") == 2


def test_without_numpy_bf16_checks_do_not_move_the_float32_reference():
    # The median of all five checks would be bf16's 1.003, 3e-3 from float32's value:
    # the float32 rows (tolerance 1e-3) would fail against it.
    rows = [_row("tracejit", "tracejit", 0.01, 1.0),
            _row("torch", "torch eager", 0.01, 1.0001),
            _row("tracejit", "tracejit bf16", 0.01, 1.003, "bfloat16"),
            _row("torch", "torch eager bf16", 0.01, 1.003, "bfloat16"),
            _row("torch", "torch.compile bf16", 0.01, 1.003, "bfloat16")]
    runner.add_derived(rows, "full")
    assert all(r["check_ok"] for r in rows)


def test_bf16_check_tolerance_covers_the_rounding_of_w3s_operands():
    assert check_rtol("W3", None) == 1e-3
    assert check_rtol("W3", "bfloat16") == 1e-2
    assert check_rtol("W5", "bfloat16") == 0.5         # dropout's own tolerance is wider
    bf16 = peer_tracejit.tj.bfloat16.np_dtype
    errors = []
    for n in (256, 1024):                                # the quick and the full size
        inp = make_inputs("W3", {"n": n})
        exact = np.mean(inp["a"].astype(np.float64) @ inp["b"].astype(np.float64))
        a, b = (inp[k].astype(bf16).astype(np.float64) for k in ("a", "b"))
        product = (a @ b).astype(np.float32)             # bfloat16 operands, exact sums
        for result in (product, product.astype(bf16)):   # a float32 or a bfloat16 result
            errors.append(abs(np.mean(result.astype(np.float64)) - exact) / abs(exact))
    # float32's tolerance would fail a correct bfloat16 product; bfloat16's has room
    assert max(errors) > check_rtol("W3", None)
    assert max(errors) < check_rtol("W3", "bfloat16") / 3


def test_tracejits_bf16_variants_say_so_in_their_results():
    assert set(peer_tracejit.VARIANTS["W3"]) == {"tracejit", "tracejit bf16"}
    assert set(peer_tracejit.VARIANTS["W5"]) == {"tracejit", "tracejit bf16"}
    size = {"n": 16}
    result = harness.run_variant("tracejit", "W3", "tracejit bf16",
                                 peer_tracejit.VARIANTS["W3"]["tracejit bf16"],
                                 make_inputs("W3", size), size, repeat=1)
    assert result.status == "ok", result.reason
    assert result.to_json()["precision"] == "bfloat16"
    plain = harness.run_variant("tracejit", "W3", "tracejit",
                                peer_tracejit.VARIANTS["W3"]["tracejit"],
                                make_inputs("W3", size), size, repeat=1)
    assert plain.to_json()["precision"] is None


def _torch_python() -> str | None:
    return runner.peer_python("torch")


@pytest.mark.skipif(_torch_python() is None,
                    reason="PyTorch is not installed (set TRACEJIT_TORCH_PYTHON to a Python "
                           "that has it)")
def test_torch_bf16_gemm_sits_beside_tracejits():
    doc = runner.run_suite(["W3"], ["torch"], repeat=1, size="quick", max_wait_s=0,
                           timeout_s=600, echo=lambda text: None)
    rows = {r["variant"]: r for r in doc["results"]}
    for name in ("torch eager bf16", "torch.compile bf16"):
        assert rows[name]["status"] == "ok", rows[name]["reason"]
        assert rows[name]["precision"] == "bfloat16"
        assert rows[name]["check_ok"]
        if rows["tracejit bf16"]["status"] == "ok":
            assert rows[name]["ratio_to"] == "tracejit bf16"
    assert rows["torch eager"]["ratio_to"] == "tracejit"
    assert os.path.isabs(next(p for p in doc["peers"] if p["peer"] == "torch")
                         .get("python", sys.executable))
