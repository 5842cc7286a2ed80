"""examples/ptb_lstm_tf1.py, the PTB tutorial's language model with only the import
changed, on its tiny config: trained on text from a 30-word Markov chain (whose own
perplexity is 2.55, derived from its successor probabilities), the perplexity falls from
about the vocabulary's size (a model that knows nothing scores 30) to near the chain's."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_ptb_model_learns_the_chain(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    ptb = importlib.import_module("ptb_lstm_tf1")
    results = ptb.main(["--model", "tiny"])
    np.testing.assert_allclose(results["chain"], np.exp(-(0.6 * np.log(0.6) + 0.25 *
                                                          np.log(0.25) + 0.15 *
                                                          np.log(0.15))))
    assert len(results["train"]) == 6
    assert results["train"][0] > 15.0                  # about the vocabulary's 30
    assert results["valid"][-1] < 4.0 and results["test"] < 4.0
    assert results["valid"][-1] < results["valid"][2] < results["valid"][0]
    printed = capsys.readouterr().out
    assert "Epoch: 6 Learning rate: 0.250" in printed and "Test Perplexity" in printed


@pytest.mark.parametrize("rnn_mode", ["dynamic", "static"])
def test_the_tutorials_variables_are_shared_by_its_models(monkeypatch, rnn_mode):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    ptb = importlib.import_module("ptb_lstm_tf1")
    import tracejit.compat.v1 as tf
    with tf.Graph().as_default():
        config = ptb.TinyConfig()
        with tf.variable_scope("Model", reuse=None):
            ptb.PTBModel(is_training=True, config=config, rnn_mode=rnn_mode)
        with tf.variable_scope("Model", reuse=True):
            ptb.PTBModel(is_training=False, config=config, rnn_mode=rnn_mode)
        names = [v.name for v in tf.trainable_variables()]
    # the names TensorFlow's tutorial checkpoints have
    assert names == ["Model/embedding:0"] + [
        f"Model/RNN/multi_rnn_cell/cell_{k}/basic_lstm_cell/{v}:0"
        for k in range(2) for v in ("kernel", "bias")] + ["Model/softmax_w:0",
                                                           "Model/softmax_b:0"]
