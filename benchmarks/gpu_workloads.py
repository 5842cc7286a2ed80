"""W1-W5 of BENCHMARKS.md on one GPU: tracejit (``jit`` executor ``gpu``), PyTorch (cuda)
and JAX (gpu) when importable, plus the device-to-device copy bandwidth W1 is judged by.

    TRACEJIT_GPU=cuda python -m benchmarks.gpu_workloads [--runs 20] [--only W1,W3]
    TRACEJIT_GPU=sim python -m benchmarks.gpu_workloads --tiny     # smoke run, no GPU

Each figure is the median of ``--runs`` timed calls after ``--warmup`` calls, each call
synchronized (the device's stream for tracejit, ``torch.cuda.synchronize``,
``block_until_ready``). For W1-W3 tracejit's inputs are committed to the GPU
(``tj.device_put``) and its results stay there, as the peers' do; W4's functional step
keeps its parameters on the GPU from step to step; W5 reuses the CPU benchmark's step
with its Variables made under ``tj.device("/gpu:0")``, so they live and are updated in
GPU memory (the batch crosses per call). ``--tiny`` runs W1-W3
at toy sizes (W4 and W5 have fixed layer sizes far too big for numba's simulator).
Writes ``$OUT/gpu_results.json`` and ``.md`` when ``OUT`` is set (or ``--out DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

from benchmarks.workloads import (  # noqa: E402
    DROPOUT_KEEP,
    LEARNING_RATE,
    SIZES,
    WORKLOADS,
    make_inputs,
    throughput,
)

TINY = {"W1": {"n": 256}, "W2": {"n": 256}, "W3": {"n": 8}}


def _median_seconds(fn, runs: int, warmup: int) -> tuple[float, object]:
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


# ---- tracejit -----------------------------------------------------------------------------

def tracejit_cases(inp, wid):
    import tracejit as tj
    from benchmarks import peer_tracejit
    from tracejit import config
    from tracejit.runtime.registry import get_device
    gpu = get_device("/gpu:0")
    resident = {"W1": ("a", "b", "x"), "W2": ("x",), "W3": ("a", "b")}.get(wid)
    if resident is not None:
        # W1-W3: the inputs live on the GPU (tj.device_put), as the peers' do, and the
        # results stay there (DeviceValues): the timed call is the kernels alone
        fn = {"W1": lambda a, b, x: tj.tanh(a * x + b) * (1.0 / (1.0 + tj.exp(-x))) + x * x,
              "W2": lambda x: tj.reduce_sum(x * x - 0.5 * x),
              "W3": lambda a, b: a @ b}[wid]
        jitted = tj.jit(fn)
        args = [tj.device_put(inp[name], "/gpu:0") for name in resident]

        def run():
            out = jitted(*args)
            gpu.synchronize()
            return out
        return run
    if wid == "W4":
        # the functional MLP step: parameters and batch committed to the GPU, the new
        # parameters returned there and fed back -- nothing crosses per step but the loss
        step = peer_tracejit._mlp_step()
        state = {"params": [tj.device_put(p, "/gpu:0") for p in inp["params"]]}
        x, y = tj.device_put(inp["x"], "/gpu:0"), tj.device_put(inp["y"], "/gpu:0")

        def train():
            loss, state["params"] = step(state["params"], x, y)
            return np.asarray(loss)
        return train
    # NOTE: W5 reuses the CPU benchmark's step; made under tj.device("/gpu:0") its
    # Variables live in GPU memory and are updated there (only the batch crosses)
    config.executor = "gpu"
    with tj.device("/gpu:0"):
        case = getattr(peer_tracejit, wid.lower())(inp, None)
    return lambda: np.asarray(case.run())


# ---- PyTorch --------------------------------------------------------------------------------

def torch_case(inp, wid):
    import torch
    import torch.nn.functional as F
    dev = torch.device("cuda")
    t = {k: torch.from_numpy(v).to(dev) for k, v in inp.items() if isinstance(v, np.ndarray)}
    sync = torch.cuda.synchronize
    if wid == "W1":
        a, b, x = t["a"], t["b"], t["x"]
        def fn():
            y = torch.tanh(a * x + b) * torch.sigmoid(x) + x * x
            sync()
            return y
    elif wid == "W2":
        x = t["x"]
        def fn():
            y = torch.sum(x * x - 0.5 * x)
            sync()
            return y
    elif wid == "W3":
        a, b = t["a"], t["b"]
        def fn():
            y = a @ b
            sync()
            return y
    elif wid == "W4":
        params = [torch.from_numpy(p).to(dev).requires_grad_() for p in inp["params"]]
        x, y = t["x"], t["y"]
        def fn():
            w1, b1, w2, b2, w3, b3 = params
            h = torch.relu(torch.relu(x @ w1 + b1) @ w2 + b2)
            loss = F.cross_entropy(h @ w3 + b3, y)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(LEARNING_RATE * g)
            sync()
            return loss
    elif wid == "W5":
        params = []
        for p in inp["params"]:
            p = torch.from_numpy(p).to(dev)
            if p.dim() == 4:
                p = p.permute(3, 2, 0, 1).contiguous()   # HWIO -> OIHW
            params.append(p.requires_grad_())
        x = t["x"].permute(0, 3, 1, 2).contiguous()
        y = t["y"]
        def fn():
            c1, cb1, c2, cb2, f1, fb1, f2, fb2 = params
            h = F.max_pool2d(torch.relu(F.conv2d(x, c1, cb1, padding=2)), 2)
            h = F.max_pool2d(torch.relu(F.conv2d(h, c2, cb2, padding=2)), 2)
            h = h.permute(0, 2, 3, 1).reshape(-1, 7 * 7 * 64)   # NHWC order, as f1's rows
            h = F.dropout(torch.relu(h @ f1 + fb1), 1.0 - DROPOUT_KEEP)
            loss = F.cross_entropy(h @ f2 + fb2, y)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(LEARNING_RATE * g)
            sync()
            return loss
    return lambda: fn().detach().cpu().numpy() if wid in ("W4", "W5") else fn()


# ---- JAX ------------------------------------------------------------------------------------

def jax_case(inp, wid):
    import jax
    import jax.numpy as jnp
    dev = jax.devices("gpu")[0]
    put = lambda v: jax.device_put(v, dev)  # noqa: E731
    if wid == "W1":
        f = jax.jit(lambda a, b, x: jnp.tanh(a * x + b) * jax.nn.sigmoid(x) + x * x)
        args = [put(inp[k]) for k in ("a", "b", "x")]
        return lambda: f(*args).block_until_ready()
    if wid == "W2":
        f = jax.jit(lambda x: jnp.sum(x * x - 0.5 * x))
        x = put(inp["x"])
        return lambda: f(x).block_until_ready()
    if wid == "W3":
        f = jax.jit(lambda a, b: a @ b)
        a, b = put(inp["a"]), put(inp["b"])
        return lambda: f(a, b).block_until_ready()

    def xent(logits, y):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=1))

    if wid == "W4":
        def loss_fn(params, x, y):
            w1, b1, w2, b2, w3, b3 = params
            h = jax.nn.relu(jax.nn.relu(x @ w1 + b1) @ w2 + b2)
            return xent(h @ w3 + b3, y)
    else:
        def conv_pool(h, w, b):
            h = jax.lax.conv_general_dilated(h, w, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = jax.nn.relu(h + b)
            return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1),
                                         (1, 2, 2, 1), "SAME")

        def loss_fn(params, x, y, key):
            c1, cb1, c2, cb2, f1, fb1, f2, fb2 = params
            h = conv_pool(conv_pool(x, c1, cb1), c2, cb2).reshape(-1, 7 * 7 * 64)
            h = jax.nn.relu(h @ f1 + fb1)
            keep = jax.random.bernoulli(key, DROPOUT_KEEP, h.shape)
            h = jnp.where(keep, h / DROPOUT_KEEP, 0.0)
            return xent(h @ f2 + fb2, y)

    @jax.jit
    def step(params, *rest):
        loss, grads = jax.value_and_grad(loss_fn)(params, *rest)
        return loss, [p - LEARNING_RATE * g for p, g in zip(params, grads, strict=True)]

    state = {"params": [put(p) for p in inp["params"]], "key": jax.random.PRNGKey(0)}
    x, y = put(inp["x"]), put(inp["y"])

    def run():
        rest = (x, y)
        if wid == "W5":
            state["key"], sub = jax.random.split(state["key"])
            rest = (x, y, sub)
        loss, state["params"] = step(state["params"], *rest)
        return loss.block_until_ready()
    return run


# ---- copy bandwidth ---------------------------------------------------------------------

def copy_bandwidth(nbytes: int, runs: int) -> dict | None:
    """Device-to-device copy, GB/s counting bytes read + written (as W1's 3 reads + 1
    write are counted)."""
    try:
        import torch
        if torch.cuda.is_available():
            src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda")
            dst = torch.empty_like(src)

            def fn():
                dst.copy_(src)
                torch.cuda.synchronize()
            seconds, _ = _median_seconds(fn, runs, 3)
            return {"via": "torch", "bytes": nbytes, "ms": seconds * 1e3,
                    "gbps": 2 * nbytes / seconds / 1e9}
    except ImportError:
        pass
    try:
        from tracejit.codegen_cuda.mode import cuda_module, gpu_mode
        if gpu_mode() != "cuda":
            return None
        cuda = cuda_module()
        src = cuda.device_array(nbytes // 4, np.float32)
        dst = cuda.device_array(nbytes // 4, np.float32)

        def fn():
            dst.copy_to_device(src)
            cuda.synchronize()
        seconds, _ = _median_seconds(fn, runs, 3)
        return {"via": "numba.cuda", "bytes": nbytes, "ms": seconds * 1e3,
                "gbps": 2 * nbytes / seconds / 1e9}
    except Exception as exc:   # noqa: BLE001 -- a missing figure, not a failed run
        print(f"copy bandwidth: {exc}", file=sys.stderr)
        return None


def _peers():
    found = {"tracejit": tracejit_cases}
    try:
        import torch
        if torch.cuda.is_available():
            found["torch"] = torch_case
    except ImportError:
        pass
    try:
        import jax
        if any(d.platform == "gpu" for d in jax.devices()):
            found["jax"] = jax_case
    except Exception:   # noqa: BLE001 -- no jax, or jax without a GPU backend
        pass
    return found


def _markdown(results: dict) -> str:
    peers = results["peers"]
    lines = [f"GPU workloads ({results['mode']}, {results['device']}, median of "
             f"{results['runs']} runs)", "",
             "| " + " | ".join(["workload", *(f"{p} ms" for p in peers),
                                *(f"tracejit/{p}" for p in peers if p != "tracejit"),
                                "note"]) + " |",
             "|" + "---|" * (2 + len(peers) + len(peers) - 1)]
    for wid, row in results["workloads"].items():
        cells = [f"{row[p]['ms']:.4g}" if p in row and "ms" in row[p]
                 else row.get(p, {}).get("error", "-")[:40] for p in peers]
        ratios = []
        for p in peers:
            if p == "tracejit":
                continue
            tj_ms, p_ms = row.get("tracejit", {}).get("ms"), row.get(p, {}).get("ms")
            ratios.append(f"{tj_ms / p_ms:.2f}x" if tj_ms and p_ms else "-")
        lines.append(f"| {wid} | " + " | ".join(cells + ratios) + f" | {row.get('note', '')} |")
    bw = results.get("copy_bandwidth")
    if bw:
        lines += ["", f"device-to-device copy ({bw['via']}, {bw['bytes'] >> 20} MiB): "
                  f"{bw['gbps']:.0f} GB/s (read + write)"]
    lines += ["", "Every framework's inputs, parameters and results stay on the GPU (W5: "
              "tracejit's batch crosses per call, its Variables live on the GPU)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy sizes, W1-W3 (simulator)")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated, e.g. W1,W3")
    parser.add_argument("--out", default=os.environ.get("OUT") or None)
    args = parser.parse_args(argv)

    from tracejit.codegen_cuda.mode import gpu_mode
    mode = gpu_mode()
    if mode not in ("cuda", "sim"):
        raise SystemExit(f"no runnable GPU (TRACEJIT_GPU resolves to {mode!r}); "
                         "set TRACEJIT_GPU=cuda, or sim with --tiny")
    sizes = TINY if args.tiny else {w: SIZES["full"][w] for w in ("W1", "W2", "W3", "W4",
                                                                  "W5")}
    wanted = args.only.split(",") if args.only else list(sizes)
    runs = args.runs or (3 if args.tiny else 20)
    warmup = 1 if args.tiny else args.warmup
    peers = _peers() if mode == "cuda" else {"tracejit": tracejit_cases}
    device = "numba CUDA simulator"
    if mode == "cuda":
        try:
            from tracejit.codegen_cuda.mode import cuda_module
            device = cuda_module().get_current_device().name
            device = device.decode() if isinstance(device, bytes) else str(device)
        except Exception as exc:   # noqa: BLE001
            device = f"GPU ({exc})"
    results = {"mode": mode, "device": device, "runs": runs, "warmup": warmup,
               "peers": list(peers), "sizes": {w: sizes[w] for w in wanted if w in sizes},
               "workloads": {}}
    for wid in wanted:
        if wid not in sizes:
            print(f"{wid}: not in this run's sizes; skipped", file=sys.stderr)
            continue
        inp = make_inputs(wid, sizes[wid])
        row = results["workloads"].setdefault(wid, {"title": WORKLOADS[wid].title})
        for name, build in peers.items():
            try:
                seconds, out = _median_seconds(build(inp, wid), runs, warmup)
                check = float(np.mean(np.asarray(out, dtype=np.float64)))
                row[name] = {"ms": seconds * 1e3, "check": check,
                             "throughput": throughput(wid, seconds, sizes[wid])}
            except Exception as exc:   # noqa: BLE001 -- one peer's failure is a result too
                row[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            print(f"{wid} {name}: {row[name]}", flush=True)
    if mode == "cuda" and "W1" in results["workloads"]:
        n = sizes["W1"]["n"]
        bw = copy_bandwidth(4 * n, runs)
        results["copy_bandwidth"] = bw
        w1 = results["workloads"]["W1"]
        for name in peers:
            if bw and "ms" in w1.get(name, {}):
                gbps = 16 * n / (w1[name]["ms"] / 1e3) / 1e9
                w1[name]["pct_of_copy_bw"] = round(100 * gbps / bw["gbps"], 1)
        w1["note"] = "% of copy bw: " + ", ".join(
            f"{p} {w1[p]['pct_of_copy_bw']}%" for p in peers
            if "pct_of_copy_bw" in w1.get(p, {}))
    markdown = _markdown(results)
    print(markdown)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_results.json").write_text(json.dumps(results, indent=1, default=str))
        (out / "gpu_results.md").write_text(markdown)
    return results


if __name__ == "__main__":
    main()
