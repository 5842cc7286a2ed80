"""W9 (the LSTM language model step) of the benchmark suite: its inputs' layout, and the
NumPy peer's hand-written backprop through time against finite differences of the plain
float64 statement of the model (NumPy is the reference the other peers are checked
against, so its gradients must be right)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import peer_numpy, workloads
from benchmarks.workloads import SIZES, make_inputs

TINY = {"seq": 3, "batch": 2, "hidden": 4, "vocab": 7, "layers": 2}


def test_w9_inputs_follow_the_documented_layout():
    for size in (SIZES["quick"]["W9"], SIZES["full"]["W9"]):
        inp = make_inputs("W9", size)
        h, v = size["hidden"], size["vocab"]
        shapes = [(v, h)] + [(2 * h, 4 * h), (4 * h,)] * size["layers"] + [(h, v), (v,)]
        assert [p.shape for p in inp["params"]] == shapes
        assert all(p.dtype == np.float32 and np.abs(p).max() <= 0.1 for p in inp["params"])
        assert inp["x"].shape == inp["y"].shape == (size["batch"], size["seq"])
        assert inp["x"].dtype == inp["y"].dtype == np.int32
        assert 0 <= inp["x"].min() and inp["y"].max() < v
        assert (inp["x"][:, 1:] == inp["y"][:, :-1]).all()     # y is x one step on
    again = make_inputs("W9", SIZES["full"]["W9"])     # fixed seeds: the same inputs
    assert all((a == b).all() for a, b in zip(inp["params"], again["params"], strict=True))
    assert (inp["x"] == again["x"]).all() and (inp["y"] == again["y"]).all()


def _numeric_gradient(params, x, y, layers, eps=1e-6):
    params = [p.astype(np.float64) for p in params]
    grads = []
    for p in params:
        g = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = workloads.lstm_lm_loss(params, x, y, layers)
            p[idx] = old - eps
            down = workloads.lstm_lm_loss(params, x, y, layers)
            p[idx] = old
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("clip", [5.0, 0.05])     # the norm here is about 0.5: off, on
def test_w9_numpy_step_is_loss_bptt_global_norm_clipping_and_sgd(monkeypatch, clip):
    monkeypatch.setattr(peer_numpy, "W9_CLIP_NORM", clip)
    inp = make_inputs("W9", TINY)
    params, x, y = inp["params"], inp["x"], inp["y"]
    grads = _numeric_gradient(params, x, y, TINY["layers"])
    norm = np.sqrt(sum(float((g * g).sum()) for g in grads))
    assert (norm > clip) == (clip < 1.0)
    factor = workloads.W9_LEARNING_RATE * clip / max(norm, clip)

    lm = peer_numpy.LSTMLM(params, x, y, TINY["layers"])
    loss = lm.step()
    assert loss == pytest.approx(workloads.lstm_lm_loss(params, x, y, TINY["layers"]),
                                 rel=1e-6)
    for before, after, g in zip(params, lm.params, grads, strict=True):
        update = before.astype(np.float64) - after
        np.testing.assert_allclose(update, factor * g, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("clip", [5.0, 0.01])     # off, on
def test_tracejit_w9_step_matches_the_numpy_peer(monkeypatch, clip):
    """tracejit's step (tj.scan, its gradient, clipping, SGD) updates the parameters as
    the hand-written NumPy step does."""
    from benchmarks import peer_tracejit
    monkeypatch.setattr(peer_numpy, "W9_CLIP_NORM", clip)
    monkeypatch.setattr(peer_tracejit, "W9_CLIP_NORM", clip)
    size = SIZES["quick"]["W9"]
    inp = make_inputs("W9", size)
    step = peer_tracejit.w9_step(size["layers"])
    theirs = peer_numpy.LSTMLM(inp["params"], inp["x"], inp["y"], size["layers"])
    params = [np.array(p) for p in inp["params"]]
    for _ in range(2):
        params, loss = step(params, inp["x"], inp["y"])
        assert float(loss) == pytest.approx(theirs.step(), rel=1e-5)
    for ours, want in zip(params, theirs.params, strict=True):
        np.testing.assert_allclose(np.asarray(ours), want, rtol=1e-4, atol=1e-6)


def test_w9_tf1_variant_is_the_same_step_as_the_jit_one():
    # the TF1 graph (dynamic_rnn over BasicLSTMCells with W9's weights in TF's gate
    # order) must start from W9's reference loss and update the weights exactly as
    # the tj.scan step does: their second losses agree too
    from benchmarks import peer_tracejit
    inp = make_inputs("W9", TINY)
    tf1_case = peer_tracejit.w9_tf1(inp, TINY)
    jit_case = peer_tracejit.w9(make_inputs("W9", TINY), TINY)
    first = float(tf1_case.run())
    np.testing.assert_allclose(first, workloads.lstm_lm_loss(inp["params"], inp["x"],
                                                             inp["y"], TINY["layers"]),
                               rtol=1e-5)
    np.testing.assert_allclose(first, float(jit_case.run()), rtol=1e-5)
    np.testing.assert_allclose(float(tf1_case.run()), float(jit_case.run()), rtol=1e-5)
