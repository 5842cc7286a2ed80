"""The digits CNN examples, cut to two epochs (the TF1 one's second at its fine-tuning
rate, through its learning-rate schedule): the progress bar shows loss, accuracy and
steps/s, the weights are saved with every variable inference needs, and loading them
back (``--restore``) gives the same test accuracy."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

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
    out_file = tmp_path / "weights.npz"
    accuracy = module.main(["--epochs", "2", "--fine-tune-epochs", "1", "--seed", "1",
                            "--out", str(out_file)])
    _check_output(capsys.readouterr().out, 2 * (1438 // 32))
    assert accuracy > 0.8                       # far from trained, far from chance

    with np.load(out_file) as saved:
        names = sorted(saved.files)
        assert all(np.isfinite(saved[k]).all() for k in names)
    # the TF1 example also saves its global step (its learning-rate schedule reads it)
    model = [k for k in names if k != "global_step"]
    # the TF1 example saves tf.global_variables(), which hold Adam's state too, as in
    # TensorFlow: m and v for each of the 8 trainable variables, and beta1/2_power
    adam = [k for k in model if "/Adam" in k or k.endswith("_power")]
    assert len(adam) == (18 if name == "cnn_digits" else 0), adam
    params = [k for k in model if k not in adam]
    assert len(params) == 12 and sum("moving_mean" in k for k in names) == 2, names
    assert ("global_step" in names) == (name == "cnn_digits")

    restored = module.main(["--restore", str(out_file)])
    assert "weights from" in capsys.readouterr().out
    assert restored == pytest.approx(accuracy, abs=1e-6)


def test_the_2016_deep_mnist_script_trains_with_only_the_import_changed(examples, capsys):
    # dropout with a fed keep_prob, a reshape sized by tf.shape(x)[0], the hand-written
    # cross-entropy with reduction_indices, InteractiveSession, run() and eval()
    accuracy = examples("deep_mnist_tf1").main(["--steps", "300", "--seed", "1"])
    out = capsys.readouterr().out
    assert "step 200, training accuracy" in out and "test accuracy" in out
    assert accuracy > 0.9
