"""PyTorch as its experts use it, in two variants: eager (``inference_mode`` for the
forward-only workloads; ``nn.Module`` + ``loss.backward()`` + ``optim.SGD`` for training)
and ``torch.compile`` of the same functions and modules. W3 and W5 also in bfloat16
(`` bf16``), beside tracejit's: W3 on ``torch.bfloat16`` operands, W5's forward under
``torch.autocast`` with float32 master weights -- the policy of tracejit's
``mixed_bfloat16``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .harness import Case, Compile
from .workloads import (
    DROPOUT_KEEP,
    LEARNING_RATE,
    W8_LEARNING_RATE,
    W9_CLIP_NORM,
    W9_LEARNING_RATE,
)

EAGER, COMPILED = "torch eager", "torch.compile"
BF16 = " bf16"      # the suffix of the bfloat16 variants' names


def versions() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads()}


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _mean(out) -> float:
    return float(out.double().mean())


def _maybe_compile(fn, variant):
    return torch.compile(fn) if variant == COMPILED else fn


def _inference(fn, variant, *args, check=_mean):
    fn = _maybe_compile(fn, variant)

    def run():
        with torch.inference_mode():
            return fn(*args)
    return Case(run, check=check)


def _fused(a, b, x):
    return torch.tanh(a * x + b) * (1.0 / (1.0 + torch.exp(-x))) + x * x


def _reduction(x):
    return torch.sum(x * x - 0.5 * x)


def _add_one(x):
    return x + 1.0


def _mlp(params) -> nn.Module:
    w1, b1, w2, b2, w3, b3 = params
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
    with torch.no_grad():
        for layer, (w, b) in zip(model[::2], [(w1, b1), (w2, b2), (w3, b3)], strict=True):
            layer.weight.copy_(_t(w.T))     # torch keeps Linear weights as (out, in)
            layer.bias.copy_(_t(b))
    return model


class TutorialCNN(nn.Module):
    def __init__(self, params):
        super().__init__()
        c1, cb1, c2, cb2, f1, fb1, f2, fb2 = params
        self.conv1 = nn.Conv2d(1, 32, 5, padding="same")
        self.conv2 = nn.Conv2d(32, 64, 5, padding="same")
        self.fc1 = nn.Linear(7 * 7 * 64, 1024)
        self.fc2 = nn.Linear(1024, 10)
        self.dropout = nn.Dropout(1.0 - DROPOUT_KEEP)
        with torch.no_grad():
            for layer, w, b in [(self.conv1, c1.transpose(3, 2, 0, 1), cb1),   # HWIO -> OIHW
                                (self.conv2, c2.transpose(3, 2, 0, 1), cb2),
                                (self.fc1, f1.T, fb1), (self.fc2, f2.T, fb2)]:
                layer.weight.copy_(_t(w))
                layer.bias.copy_(_t(b))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def _autocast(forward, dtype):
    """``forward`` under ``torch.autocast``: its products on ``dtype`` operands, the
    parameters kept in float32 (master weights that the optimizer updates); the logits
    come back in float32 for the loss, as tracejit's mixed policy casts them."""
    def run(x):
        with torch.autocast("cpu", dtype=dtype):
            return forward(x).float()
    return run


def _trainer(model: nn.Module, x, y, variant, lr=LEARNING_RATE, autocast=None):
    """One SGD step per call: forward, softmax cross-entropy, backward, update; the
    forward under ``torch.autocast(dtype=autocast)`` when given (backward outside it, as
    PyTorch's AMP recipe has it)."""
    model.train()
    forward = _maybe_compile(model, variant)
    if autocast is not None:
        forward = _autocast(forward, autocast)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def run():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)    # y: one-hot probabilities
        loss.backward()
        optimizer.step()
        return loss.detach()
    return run


def _variants(builder, suffix=""):
    return {EAGER + suffix: lambda inp, size: builder(inp, size, EAGER),
            COMPILED + suffix: lambda inp, size: builder(inp, size, COMPILED)}


def w1(inp, size, variant):
    return _inference(_fused, variant, _t(inp["a"]), _t(inp["b"]), _t(inp["x"]))


def w2(inp, size, variant):
    return _inference(_reduction, variant, _t(inp["x"]), check=float)


def w3(inp, size, variant):
    return _inference(torch.matmul, variant, _t(inp["a"]), _t(inp["b"]))


def w3_bf16(inp, size, variant):
    a, b = (_t(inp[k]).to(torch.bfloat16) for k in ("a", "b"))    # rounded to nearest
    case = _inference(torch.matmul, variant, a, b)
    case.note, case.precision = "operands in bfloat16", "bfloat16"
    return case


def w4(inp, size, variant):
    run = _trainer(_mlp(inp["params"]), _t(inp["x"]), _t(inp["y"]), variant)
    return Case(run, check=float)


def _w5_step(inp, variant, autocast=None):
    torch.manual_seed(0)
    x = _t(inp["x"].transpose(0, 3, 1, 2))      # NHWC -> NCHW
    return _trainer(TutorialCNN(inp["params"]), x, _t(inp["y"]), variant, autocast=autocast)


def w5(inp, size, variant):
    return Case(_w5_step(inp, variant), check=float)


def w5_bf16(inp, size, variant):
    return Case(_w5_step(inp, variant, autocast=torch.bfloat16), check=float,
                note="torch.autocast bfloat16, float32 weights", precision="bfloat16")


def w6(inp, size, variant):
    return _inference(_add_one, variant, _t(inp["x"]), check=lambda out: float(out.sum()))


def w7(inp, size):
    x, y = _t(inp["x"]), _t(inp["y"])

    # NOTE: inductor keeps compiled graphs on disk too (FX graph and autograd caches);
    # a cold compile is what W7 measures, as it does for every other peer.
    import torch._inductor.config as inductor_config
    inductor_config.force_disable_caches = True

    def fresh():
        torch._dynamo.reset()       # forget every compiled graph: the next call compiles
        return _trainer(_mlp(inp["params"]), x, y, COMPILED)
    return Compile(fresh, note="forward and backward of the compiled module")


class LinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.w * x + self.b


def w8(inp, size, variant):
    model = LinearRegression()
    forward = _maybe_compile(model, variant)
    optimizer = torch.optim.SGD(model.parameters(), lr=W8_LEARNING_RATE)
    xs, ys = _t(inp["x"]), _t(inp["y"])

    def run():
        for i in range(xs.shape[0]):
            optimizer.zero_grad(set_to_none=True)
            loss = F.mse_loss(forward(xs[i]), ys[i])
            loss.backward()
            optimizer.step()
        return float(model.w.detach())
    return Case(run, check=float, style="step")


class LSTMLM(nn.Module):
    """W9's model (layout and cell: workloads.lstm_lm_params) as torch modules.

    nn.LSTM keeps per layer weight_ih [4h, in] and weight_hh [4h, h], gates in our order
    i, f, g, o, and two biases added together: our b_l goes to bias_ih, and bias_hh stays
    zero and frozen (trained, it would get b_l's gradient a second time: a doubled update
    and a larger global norm)."""

    def __init__(self, params, layers):
        super().__init__()
        emb, *cells, softmax_w, softmax_b = params
        vocab, hidden = emb.shape
        self.embedding = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers)     # time-major
        self.softmax = nn.Linear(hidden, vocab)
        with torch.no_grad():
            self.embedding.weight.copy_(_t(emb))
            for layer, (w, b) in enumerate(zip(cells[::2], cells[1::2], strict=True)):
                getattr(self.lstm, f"weight_ih_l{layer}").copy_(_t(w[:hidden].T))
                getattr(self.lstm, f"weight_hh_l{layer}").copy_(_t(w[hidden:].T))
                getattr(self.lstm, f"bias_ih_l{layer}").copy_(_t(b))
                getattr(self.lstm, f"bias_hh_l{layer}").zero_().requires_grad_(False)
            self.softmax.weight.copy_(_t(softmax_w.T))
            self.softmax.bias.copy_(_t(softmax_b))

    def forward(self, x):
        h, _ = self.lstm(self.embedding(x))     # zero initial state
        return self.softmax(h)


def w9(inp, size, variant):
    note = ""
    if variant == COMPILED:
        # NOTE: by default dynamo will not trace nn.LSTM and runs the whole forward
        # eagerly (no graph at all); allow_rnn unrolls the LSTM over the sequence into one
        # graph (inductor then takes about a minute on this machine). Only RNN modules
        # read the flag, so the other workloads are unaffected.
        torch._dynamo.config.allow_rnn = True
        note = "dynamo allow_rnn: LSTM unrolled over the sequence"
    model = LSTMLM(inp["params"], size["layers"])
    forward = _maybe_compile(model, variant)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=W9_LEARNING_RATE)
    x = _t(inp["x"].T).long()                   # [seq, batch]
    y = _t(inp["y"].T).long().reshape(-1)

    def run():
        optimizer.zero_grad(set_to_none=True)
        logits = forward(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y)
        loss.backward()
        nn.utils.clip_grad_norm_(params, W9_CLIP_NORM)
        optimizer.step()
        return loss.detach()
    return Case(run, check=float, note=note)


VARIANTS = {
    "W1": _variants(w1),
    "W2": _variants(w2),
    "W3": {**_variants(w3), **_variants(w3_bf16, BF16)},
    "W4": _variants(w4),
    "W5": {**_variants(w5), **_variants(w5_bf16, BF16)},
    "W6": _variants(w6),
    "W7": {COMPILED: w7},
    "W8": {f"{EAGER} step": lambda inp, size: w8(inp, size, EAGER),
           f"{COMPILED} step": lambda inp, size: w8(inp, size, COMPILED)},
    "W9": _variants(w9),
}
