"""A TF1 program using Saver, FileWriter with merged summaries and MonitoredTrainingSession
runs with only the import changed (tf1_training_program.py), gives TensorFlow's results
(recorded from TensorFlow 2.21 running the same file), and its checkpoints load in
TensorFlow (checked where TensorFlow is installed)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

PROGRAM = Path(__file__).with_name("tf1_training_program.py")

# `USE_TENSORFLOW=1 python tf1_training_program.py DIR` with TensorFlow 2.21 (CPU)
TENSORFLOW_RESULT = {"w": [0.9398553371429443, -1.8291057348251343, 0.5640409588813782],
                     "b": [0.20691588521003723], "step": 30, "loss": 0.002762370277196169}
# the summaries of the loss TensorFlow's run wrote at steps 1 and 26 (read with the
# EventAccumulator); the steps between depend on TensorFlow's racy "stale" global step
# read, tracejit's are the documented schedule (1, 6, 11, ...)
TENSORFLOW_LOSS_AT = {1: 0.466981, 26: 0.005776}


def _run(logdir, python=sys.executable, **env) -> dict:
    done = subprocess.run([python, str(PROGRAM), str(logdir)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tensorflow_python() -> str | None:
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    return os.environ.get("TRACEJIT_TF_PYTHON")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("tf1_program")
    return logdir, _run(logdir)


def test_gives_tensorflows_results(trained):
    _, result = trained
    assert result["step"] == TENSORFLOW_RESULT["step"]
    for key in ("w", "b", "loss"):
        np.testing.assert_allclose(result[key], TENSORFLOW_RESULT[key], rtol=2e-5, err_msg=key)


def test_writes_tensorflows_checkpoints_and_summaries(trained):
    logdir, _ = trained
    names = sorted(p.name for p in logdir.glob("model.ckpt-*.index"))
    assert names == [f"model.ckpt-{s}.index" for s in (0, 10, 20, 30)]
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0})
    acc.Reload()
    losses = {e.step: e.value for e in acc.Scalars("loss")}
    assert sorted(losses) == [1, 6, 11, 16, 21, 26]
    for at, value in TENSORFLOW_LOSS_AT.items():
        assert losses[at] == pytest.approx(value, abs=2e-6)
    assert [h.histogram_value.num for h in acc.Histograms("weights")] == [3.0] * 6
    assert acc.Graph() is not None
    assert 'name: "linear/w"' in (logdir / "graph.pbtxt").read_text()
    manual = event_accumulator.EventAccumulator(str(logdir / "manual"))
    manual.Reload()
    assert [e.step for e in manual.Scalars("loss")] == [0, 10, 20]


def test_tensorflow_restores_the_checkpoints_tracejit_wrote(trained):
    python = _tensorflow_python()
    if python is None:
        pytest.skip("TensorFlow is not installed (set TRACEJIT_TF_PYTHON to a Python that "
                    "has it to run this check)")
    logdir, result = trained
    in_tensorflow = _run(logdir, python, USE_TENSORFLOW="1", RESTORE_ONLY="1")
    assert in_tensorflow["step"] == result["step"]
    np.testing.assert_array_equal(in_tensorflow["w"], result["w"])
    np.testing.assert_array_equal(in_tensorflow["b"], result["b"])
