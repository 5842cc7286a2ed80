"""The eight workloads of BENCHMARKS.md: sizes, inputs and derived metrics.

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
]}

# Full sizes are BENCHMARKS.md's; --quick shrinks them so the whole suite takes a minute
# or two (and the smoke test seconds). The figures are then not comparable to the anchors.
SIZES = {
    "full": {"W1": {"n": 1 << 24}, "W2": {"n": 1 << 24}, "W3": {"n": 1024},
             "W4": {"batch": 128}, "W5": {"batch": 64}, "W6": {"n": 16},
             "W7": {"batch": 128}, "W8": {"steps": 1000, "batch": 100}},
    "quick": {"W1": {"n": 1 << 20}, "W2": {"n": 1 << 20}, "W3": {"n": 256},
              "W4": {"batch": 32}, "W5": {"batch": 8}, "W6": {"n": 16},
              "W7": {"batch": 32}, "W8": {"steps": 200, "batch": 100}},
}

MLP_DIMS = (784, 512, 512, 10)
LEARNING_RATE = 0.01
W8_LEARNING_RATE = 0.5      # the 2016 slides' linear regression
DROPOUT_KEEP = 0.5


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


def make_inputs(workload: str, size: dict) -> dict:
    """The inputs of one workload at one size, as float32 NumPy arrays."""
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
    if workload == "W5":
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
