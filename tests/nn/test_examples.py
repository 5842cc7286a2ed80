"""The digits CNN examples, cut to two epochs (the TF1 one's second at its fine-tuning
rate, through its learning-rate schedule): the progress bar shows loss, accuracy and
steps/s, a checkpoint in TensorFlow's format holds every variable inference needs,
loading it back (``--restore``) gives the same test accuracy, and TensorBoard reads the
logs they write."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import tracejit.compat.v1 as tf

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None

pytestmark = pytest.mark.skipif(not HAVE_SKLEARN,
                                reason="scikit-learn (pip install -e .[demo]) is absent")


@pytest.fixture
def examples(monkeypatch):
    # NOTE: cnn_digits_jit imports cnn_digits by its bare name, as when run as a script.
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return lambda name: importlib.import_module(name)


def _check_output(out: str, steps: int) -> None:
    bar = out.split("\r")[-1].splitlines()[0]
    assert re.search(rf"step\s+{steps}/{steps} loss \d+\.\d{{4}} acc\s+\d+\.\d\d% "
                     r"\s*\d+\.\d steps/s", bar), bar
    assert re.search(r"test accuracy: \d+\.\d\d% on 359 images", out)


@pytest.mark.parametrize("name", ["cnn_digits", "cnn_digits_jit"])
def test_short_training_saves_weights_that_load_back(name, examples, tmp_path, capsys):
    module = examples(name)
    logdir = tmp_path / "logs"
    accuracy = module.main(["--epochs", "2", "--fine-tune-epochs", "1", "--seed", "1",
                            "--logdir", str(logdir)])
    _check_output(capsys.readouterr().out, 2 * (1438 // 32))
    assert accuracy > 0.8                       # far from trained, far from chance

    reader = tf.train.load_checkpoint(str(logdir))
    names = reader.names()
    assert all(np.isfinite(reader.get_tensor(k)).all() for k in names)
    if name == "cnn_digits":
        # tf.train.Saver saves tf.global_variables(), which hold Adam's state too, as in
        # TensorFlow: m and v for each of the 8 trainable variables, beta1/2_power, and
        # the global step the learning-rate schedule reads
        adam = [k for k in names if "/Adam" in k or k.endswith("_power")]
        assert len(adam) == 18, adam
        params = [k for k in names if k not in adam and k != "global_step"]
        assert sum("moving_mean" in k for k in names) == 2, names
        assert tf.train.latest_checkpoint(str(logdir)).endswith("model.ckpt-88")
    else:
        params = [k for k in names if k != "save_counter"]
    assert len(params) == 12, names

    acc = event_accumulator.EventAccumulator(str(logdir))
    acc.Reload()
    assert {"loss", "accuracy", "test_accuracy"} <= set(acc.Tags()["scalars"])
    if name == "cnn_digits":
        assert len(acc.Tags()["histograms"]) == 8 and acc.Graph() is not None
        assert [e.step for e in acc.Scalars("loss")] == list(range(0, 88, 20))

    restored = module.main(["--restore", str(logdir)])
    assert "weights from" in capsys.readouterr().out
    assert restored == pytest.approx(accuracy, abs=1e-6)


def test_the_2016_deep_mnist_script_trains_with_only_the_import_changed(examples, capsys):
    # dropout with a fed keep_prob, a reshape sized by tf.shape(x)[0], the hand-written
    # cross-entropy with reduction_indices, InteractiveSession, run() and eval()
    accuracy = examples("deep_mnist_tf1").main(["--steps", "300", "--seed", "1"])
    out = capsys.readouterr().out
    assert "step 200, training accuracy" in out and "test accuracy" in out
    assert accuracy > 0.9
