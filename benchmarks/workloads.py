"""The nine workloads of BENCHMARKS.md: sizes, inputs and derived metrics.

Every peer builds its inputs here from the same fixed seeds, so all peers compute the
same numbers and their results can be cross-checked (``check`` in each result).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F32 = np.float32


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    unit: str           # how the figure is shown: "ms", "us" or "s"
    check_rtol: float   # how closely a peer's check value must match NumPy's


WORKLOADS: dict[str, Workload] = {w.id: w for w in [
    Workload("W1", "fused elementwise tanh(a*x+b)*sigmoid(x)+x*x", "ms", 1e-3),
    Workload("W2", "reduction sum(x*x - 0.5*x)", "ms", 1e-3),
    Workload("W3", "GEMM f32", "ms", 1e-3),
    Workload("W4", "MLP train step 784-512-512-10", "ms", 1e-3),
    # NOTE: dropout masks come from each peer's own RNG, so W5 losses agree only roughly.
    Workload("W5", "CNN train step (TF tutorial net)", "ms", 0.5),
    Workload("W6", "dispatch f(x)=x+1 on 16 f32", "us", 1e-6),
    Workload("W7", "compile: first W4 step minus a warm one", "s", 0.0),
    Workload("W8", "TF1 linear regression, per 1000 steps", "ms", 0.02),
    Workload("W9", "recurrent LM train step: 2-layer LSTM, BPTT, clipped SGD", "ms", 1e-4),
    # NOTE: int8 logits differ from float32's by the quantization error: mean |logit|
    # agrees within a few percent.
    Workload("W10", "CNN inference (W5's net, trained weights absent): f32 vs int8", "ms",
             0.05),
]}

# NOTE: a bfloat16 variant's check value (W3: the product's mean) differs from float32's
# by its operands' rounding (8 significant bits, unit roundoff 2**-8 = 0.0039), whoever
# computes it: up to 2.6e-3 for these inputs (256^3 with a float32 result; 0.2e-3 to
# 1.1e-3 otherwise), more than float32's 1e-3. 1e-2 passes that and still catches a
# wrong product (a transposed or partly computed one is off by far more).
PRECISION_CHECK_RTOL = {"bfloat16": 1e-2}


def check_rtol(workload: str, precision: str | None) -> float:
    """How closely a result of this precision (None: the workload's own float32) must
    match NumPy's check value."""
    return max(WORKLOADS[workload].check_rtol, PRECISION_CHECK_RTOL.get(precision, 0.0))


# Full sizes are BENCHMARKS.md's; --quick shrinks them so the whole suite takes a minute
# or two (and the smoke test seconds). The figures are then not comparable to the anchors.
SIZES = {
    "full": {"W1": {"n": 1 << 24}, "W2": {"n": 1 << 24}, "W3": {"n": 1024},
             "W4": {"batch": 128}, "W5": {"batch": 64}, "W6": {"n": 16},
             "W7": {"batch": 128}, "W8": {"steps": 1000, "batch": 100},
             "W9": {"seq": 35, "batch": 20, "hidden": 256, "vocab": 1000, "layers": 2},
             "W10": {"batch": 64}},
    "quick": {"W1": {"n": 1 << 20}, "W2": {"n": 1 << 20}, "W3": {"n": 256},
              "W4": {"batch": 32}, "W5": {"batch": 8}, "W6": {"n": 16},
              "W7": {"batch": 32}, "W8": {"steps": 200, "batch": 100},
              "W9": {"seq": 10, "batch": 4, "hidden": 32, "vocab": 50, "layers": 2},
              "W10": {"batch": 8}},
}

MLP_DIMS = (784, 512, 512, 10)
LEARNING_RATE = 0.01
W8_LEARNING_RATE = 0.5      # the 2016 slides' linear regression
DROPOUT_KEEP = 0.5
# W9: the PTB tutorial's small config (learning rate 1.0, max_grad_norm 5, init_scale 0.1).
W9_LEARNING_RATE = 1.0
W9_CLIP_NORM = 5.0
W9_INIT_SCALE = 0.1


def _rng(workload: str) -> np.random.Generator:
    # NOTE: one seed per workload (not one stream for all), so --only W3 gives W3 the
    # same inputs as a full run does.
    return np.random.default_rng(2016 + int(workload[1:]))


def _one_hot(rng: np.random.Generator, batch: int, classes: int = 10) -> np.ndarray:
    return np.eye(classes, dtype=F32)[rng.integers(0, classes, batch)]


def _normal(rng, shape, scale=1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(F32)


def mlp_params(rng: np.random.Generator) -> list[np.ndarray]:
    """[w1, b1, w2, b2, w3, b3], He-initialized, so a step's loss is well defined."""
    params = []
    for fan_in, fan_out in zip(MLP_DIMS[:-1], MLP_DIMS[1:], strict=True):
        params += [_normal(rng, (fan_in, fan_out), np.sqrt(2.0 / fan_in)),
                   np.zeros(fan_out, F32)]
    return params


def cnn_params(rng: np.random.Generator) -> list[np.ndarray]:
    """[conv1 HWIO, b, conv2 HWIO, b, fc1, b, fc2, b] of the TF tutorial's net.

    He-initialized rather than the tutorial's std 0.1: the first loss is then near ln 10
    for every peer, whatever its dropout mask, so the losses can be cross-checked."""
    shapes = [(5, 5, 1, 32), (5, 5, 32, 64), (7 * 7 * 64, 1024), (1024, 10)]
    params = []
    for shape in shapes:
        fan_in = int(np.prod(shape[:-1]))
        params += [_normal(rng, shape, np.sqrt(2.0 / fan_in)), np.zeros(shape[-1], F32)]
    return params


def lstm_lm_params(rng: np.random.Generator, size: dict) -> list[np.ndarray]:
    """W9's parameters, a flat list in this order (every peer relies on it):

    - ``embedding`` [vocab, hidden];
    - per layer l = 0, 1, ...: ``w_l`` [2*hidden, 4*hidden] and ``b_l`` [4*hidden];
      rows 0:hidden multiply the layer's input (the embedding, or the layer below's h),
      rows hidden:2*hidden the layer's own h of the previous step; the columns are the
      four gates in the order i, f, g, o (hidden columns each), so that
      ``z = [x, h] @ w_l + b_l`` and ``i, f, g, o = split(z, 4)``;
    - ``softmax_w`` [hidden, vocab], ``softmax_b`` [vocab].

    The cell, the same for every peer (no forget-gate bias is added: b_l is all there is,
    as in the PTB tutorial's ``forget_bias=0.0``)::

        c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
        h' = sigmoid(o) * tanh(c')

    Every parameter, biases included, is uniform in [-0.1, 0.1) like the tutorial's
    ``init_scale``; h and c start at zero in each step."""
    hidden, vocab = size["hidden"], size["vocab"]
    shapes = [(vocab, hidden)]
    for _ in range(size["layers"]):
        shapes += [(2 * hidden, 4 * hidden), (4 * hidden,)]
    shapes += [(hidden, vocab), (vocab,)]
    return [rng.uniform(-W9_INIT_SCALE, W9_INIT_SCALE, shape).astype(F32) for shape in shapes]


def lstm_lm_loss(params: list[np.ndarray], x: np.ndarray, y: np.ndarray,
                 layers: int) -> float:
    """W9's loss (forward only, float64): the plain statement of the model that the peers'
    first losses can be checked against."""
    params = [p.astype(np.float64) for p in params]
    embedding, softmax_w, softmax_b = params[0], params[-2], params[-1]
    hidden = embedding.shape[1]
    inputs = embedding[x.T]                  # [seq, batch, hidden], time-major
    for layer in range(layers):
        w, b = params[1 + 2 * layer], params[2 + 2 * layer]
        h = np.zeros(inputs.shape[1:])
        c = np.zeros_like(h)
        outputs = []
        for x_t in inputs:
            i, f, g, o = np.split(np.concatenate([x_t, h], axis=1) @ w + b, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            outputs.append(h)
        inputs = np.stack(outputs)
    logits = inputs.reshape(-1, hidden) @ softmax_w + softmax_b
    logits -= logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(logits)), y.T.reshape(-1)].mean())


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def make_inputs(workload: str, size: dict) -> dict:
    """The inputs of one workload at one size, as float32 NumPy arrays (W9's token ids:
    int32 [batch, seq])."""
    rng = _rng(workload)
    if workload in ("W1", "W2"):
        n = size["n"]
        inputs = {"x": _normal(rng, n)}
        if workload == "W1":
            inputs["a"] = _normal(rng, n)
            inputs["b"] = _normal(rng, n)
        return inputs
    if workload == "W3":
        n = size["n"]
        return {"a": _normal(rng, (n, n)), "b": _normal(rng, (n, n))}
    if workload in ("W4", "W7"):
        batch = size["batch"]
        rng = _rng("W4")    # W7 compiles exactly W4's step
        params = mlp_params(rng)
        return {"params": params, "x": _normal(rng, (batch, MLP_DIMS[0])),
                "y": _one_hot(rng, batch)}
    if workload in ("W5", "W10"):
        batch = size["batch"]
        params = cnn_params(rng)
        x = rng.random((batch, 28, 28, 1)).astype(F32)     # NHWC, pixels in [0, 1)
        return {"params": params, "x": x, "y": _one_hot(rng, batch)}
    if workload == "W6":
        return {"x": _normal(rng, size["n"])}
    if workload == "W8":
        steps, batch = size["steps"], size["batch"]
        x = rng.random((steps, batch)).astype(F32)
        y = (0.1 * x + 0.3 + rng.normal(0.0, 0.01, (steps, batch))).astype(F32)
        return {"x": x, "y": y}
    if workload == "W9":
        # A token stream [batch, seq + 1]: y is x shifted by one step, as in PTB.
        params = lstm_lm_params(rng, size)
        tokens = rng.integers(0, size["vocab"], (size["batch"], size["seq"] + 1), np.int32)
        return {"params": params, "x": tokens[:, :-1].copy(), "y": tokens[:, 1:].copy()}
    raise KeyError(f"unknown workload {workload!r}")


def figure(workload: str, seconds: float, size: dict) -> float:
    """The shown figure (in the workload's unit) for a measured time in seconds."""
    if workload == "W8":
        seconds *= 1000.0 / size["steps"]     # always "per 1000 steps"
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[WORKLOADS[workload].unit]
    return seconds * scale


def throughput(workload: str, seconds: float, size: dict) -> str:
    """The secondary metric of BENCHMARKS.md (GB/s for W1, GFLOP/s for W3), or ''."""
    if seconds <= 0:
        return ""
    if workload == "W1":
        return f"{4 * 4 * size['n'] / seconds / 1e9:.1f} GB/s"     # 3 reads + 1 write
    if workload == "W3":
        return f"{2 * size['n'] ** 3 / seconds / 1e9:.0f} GFLOP/s"
    return ""
