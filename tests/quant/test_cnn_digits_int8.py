"""The digits CNN demo quantized (examples/cnn_digits_int8.py): trained for two epochs,
then calibrated on 400 training images; int8 loses at most half a point of test
accuracy. And a quantized program read back from the compile cache in a fresh process
finds its 8-bit kernels (they are loaded on demand, not by the lowering that never ran
there)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                    reason="scikit-learn (pip install -e .[demo]) is absent")
def test_the_quantized_demo_keeps_its_accuracy(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    demo = importlib.import_module("cnn_digits_int8")
    float_accuracy, int8_accuracy = demo.main(["--epochs", "2", "--seed", "1",
                                               "--repeats", "0"])
    out = capsys.readouterr().out
    assert "4 product(s) in int8" in out
    assert float_accuracy > 0.9
    assert int8_accuracy >= float_accuracy - 0.005


_PROGRAM = """
import numpy as np, tracejit as tj
w = tj.Variable(np.arange(-12, 12, dtype=np.float32).reshape(3, 2, 2, 2) / 10)
f = lambda x: tj.nn.conv2d(x, w, 1, "SAME")
x = np.linspace(-1, 1, 2 * 5 * 5 * 2, dtype=np.float32).reshape(2, 5, 5, 2)
q = tj.quantize(f, x)
print(float(np.abs(np.asarray(q(x)) - np.asarray(f(x))).max()))
"""


def test_a_cached_int8_program_runs_in_a_fresh_process(tmp_path):
    env = {**os.environ, "TRACEJIT_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", _PROGRAM], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
        assert float(run.stdout.split()[-1]) < 0.05
    assert runs[0].stdout == runs[1].stdout
