"""The demo's ahead-of-time part (examples/aot_digits.py) on a checkpoint of the digits
CNN: the C program it compiles prints a digit, the library agrees with the session on
every test image, and the aarch64 object passes its check. The weights are the
network's initial ones (training is cnn_digits.py's test): what is checked is that the
library computes what the session computes."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

import tracejit.compat.v1 as tf

from .helpers import needs_cc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = [needs_cc, pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason="scikit-learn (pip install -e .[demo]) is absent")]


def test_demo_builds_the_digits_cnn_and_classifies_from_c(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    cnn_digits = importlib.import_module("cnn_digits")
    aot_digits = importlib.import_module("aot_digits")
    tf.reset_default_graph()
    tf.set_random_seed(3)
    cnn_digits.build_graph(1e-3, 1)
    (tmp_path / "ckpt").mkdir()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        tf.train.Saver().save(sess, str(tmp_path / "ckpt" / "model.ckpt"))

    assert aot_digits.main(["--restore", str(tmp_path / "ckpt"),
                            "--out", str(tmp_path / "build")]) == 0
    out = capsys.readouterr().out
    for i, label in enumerate([5, 9, 2]):
        assert re.search(rf"C program on test image {i} \(label {label}\): digit: \d "
                         r"\(probability [01]\.\d{3}\)", out), out
    assert "it agrees with the session on 100.00%" in out
    assert re.search(r"digits\.so: \d+ KiB with 590 KiB of float32 weights", out), out
    assert re.search(r"aarch64: .*ELF machine 183 \(AArch64\), exports digits_run.*: "
                     r"checked", out), out
    assert (tmp_path / "build" / "classify_digit").exists()
