"""Issue 16's benchmark: W4 and W5 trained data-parallel over 1, 2 and 4 worker
processes on 127.0.0.1, with tracejit's cluster runtime and with TensorFlow's own
``tf.train.Server`` (gRPC) running the same TF1 graph.

    python -m benchmarks.distributed                          # everything, 3 runs each
    python -m benchmarks.distributed --workloads W4 --workers 1,2 --modes async --peers none
    python -m benchmarks.distributed --peer-python /path/to/venv-with-tensorflow/bin/python

Modes: ``async`` (1 ps, each worker applies its own gradients), ``sync`` (1 ps,
``SyncReplicasOptimizer``), ``allreduce`` (no ps: tracejit's ring all-reduce with the
Horovod-like ``DistributedOptimizer``; tracejit only). Each framework also runs the
step in one process without a cluster (``local``): the compute the workers repeat, and
the cost model's per-step compute time.

Per configuration it reports the global steps per second (from the chief's global
step, while every worker trains) and the images per second in applied updates, the
workers' calls per second over the window in which all were in their timed steps, the
per-worker ms per step (median over the timed steps), the bytes on the wire per worker
step counted by the kernel (dist_wire.py) against the minimum, and how busy a tracejit
ps was; each figure is the median over ``--repeat`` runs. A cost model fitted to these
figures projects the scaling to 8-256 workers (dist_model.py). The JSON of the run
goes to ``--results`` and the markdown section to ``--markdown``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from .dist_graphs import PER_WORKER_BATCH, parameter_bytes
from .dist_launch import Config, LaunchError, launch, run_probe
from .runner import cpu_identity

MODES = ["async", "sync", "allreduce"]
PEERS = ["tensorflow"]
# (warm-up, timed) steps per worker: enough that a run's window spans a few seconds
STEPS = {"W4": (5, 40), "W5": (3, 15)}
CONFIG_TIMEOUT_S = 600.0


def allreduce_missing() -> str:
    """Why the ring all-reduce rows cannot run ('' when they can)."""
    try:
        from tracejit.cluster.allreduce import RingAllReduce  # noqa: F401
        from tracejit.cluster.replicated import DistributedOptimizer  # noqa: F401
    except ImportError as exc:
        return f"tracejit has no ring all-reduce here ({exc})"
    return ""


def peer_version(python: str) -> tuple[str, str]:
    """(TensorFlow's version under ``python``, '') or ('', why it cannot run there)."""
    try:
        done = subprocess.run([python, "-c", "import tensorflow; print(tensorflow.__version__)"],
                              capture_output=True,
                              text=True, timeout=300,
                              env=dict(os.environ, CUDA_VISIBLE_DEVICES="",
                                       TF_CPP_MIN_LOG_LEVEL="3"))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", f"{python}: {exc}"
    if done.returncode != 0:
        return "", (f"{python} cannot import tensorflow (pass --peer-python): "
                    f"{done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return done.stdout.strip().splitlines()[-1], ""


def plan(workloads, workers, modes, frameworks) -> list[list[Config]]:
    """Groups of configurations that differ only in framework, in the order they run:
    the runs of a group alternate between its frameworks (tracejit, TensorFlow,
    tracejit, ...), so that a busy stretch of the shared machine does not fall on one
    framework's runs only."""
    groups = []
    for workload in workloads:
        groups.append([Config(f, workload, "local", 1) for f in frameworks])
        for n in workers:
            for mode in modes:
                groups.append([Config(f, workload, mode, n) for f in frameworks
                               if mode != "allreduce" or f == "tracejit"])
    return groups


# ---- one run's figures ----------------------------------------------------------------------

def _overlap(start: float, length: float, lo: float, hi: float) -> float:
    return max(0.0, min(start + length, hi) - max(start, lo))


def minimum_bytes(cfg: Config) -> tuple[float, float]:
    """(sent, received) per worker step that no implementation can go below: a ps
    worker sends its gradients and receives the variables (P each way); a ring worker
    sends and receives 2 (n - 1) / n of P."""
    p = parameter_bytes(cfg.workload)
    if cfg.mode in ("async", "sync"):
        return float(p), float(p)
    if cfg.mode == "allreduce":
        share = 2 * (cfg.workers - 1) / cfg.workers * p
        return share, share
    return 0.0, 0.0


def summarize(cfg: Config, raw: dict) -> dict:
    """The figures of one run. The workers' calls per second are counted in the window
    where every worker was in its timed steps, each step weighted by the part of it
    inside; the applied rate comes from the global step."""
    workers = raw["workers"]
    lo = max(w["steps"][0][0] for w in workers)
    hi = min(w["steps"][-1][0] + w["steps"][-1][1] for w in workers)
    if hi <= lo:            # no common window (a tiny run): each worker's own time
        lo = min(w["steps"][0][0] for w in workers)
        hi = max(w["steps"][-1][0] + w["steps"][-1][1] for w in workers)
    count = sum(_overlap(wall, dt, lo, hi) / dt for w in workers for wall, dt in w["steps"]
                if dt > 0)
    window = hi - lo
    rate = count / window if window > 0 else float("nan")
    durations = [dt for w in workers for _, dt in w["steps"]]
    timed = sum(len(w["steps"]) for w in workers)
    sent = sum(w["after"]["tcp"][0] - w["before"]["tcp"][0] for w in workers) / timed
    received = sum(w["after"]["tcp"][1] - w["before"]["tcp"][1] for w in workers) / timed
    min_sent, min_received = minimum_bytes(cfg)
    # Applied work, from the chief's global step over its timed steps (every worker
    # trains through all of them, dist_task.step_until): an asynchronous global step is
    # one worker's update, a synchronous or ring step one of every worker's.
    chief = workers[0]
    per_global = 1 if cfg.mode in ("async", "local") else cfg.workers
    global_rate = (chief["global_step"][1] - chief["global_step"][0]) / chief["timed_s"]
    out = {"worker_steps_per_s": rate, "global_steps_per_s": global_rate,
           "images_per_s": global_rate * per_global * PER_WORKER_BATCH[cfg.workload],
           "applied_fraction": global_rate * per_global / rate if rate > 0 else None,
           "ms_per_step": 1e3 * statistics.median(durations),
           "sent_per_step": sent, "received_per_step": received,
           "min_per_step": min_sent + min_received,
           "loss": [statistics.mean(w["loss_first"] for w in workers),
                    statistics.mean(w["loss_last"] for w in workers)],
           "window_s": window}
    # the chief of a sync run does more than the others: its bytes, apart
    out["chief_per_step"] = sum(chief["after"]["tcp"][i] - chief["before"]["tcp"][i]
                                for i in (0, 1)) / len(chief["steps"])
    own = [w["after"].get(k) for w in workers for k in ("connections", "ring")
           if w["after"].get(k) is not None]
    if own:                 # tracejit's own count of the same bytes, as a cross-check
        own_before = [w["before"][k] for w in workers for k in ("connections", "ring")
                      if w["after"].get(k) is not None]
        out["tracejit_counted_per_step"] = sum(
            a[0] + a[1] - b[0] - b[1] for a, b in zip(own, own_before, strict=True)) / timed
    requests = [w["after"]["requests"] - w["before"]["requests"] for w in workers
                if "requests" in w["after"]]
    if requests:
        out["requests_per_step"] = sum(requests) / timed
    if raw.get("ps"):
        busy = sum(_overlap(start, dur, lo, hi) for start, dur, _ in raw["ps"]["requests"])
        out["ps_busy_fraction"] = busy / window if window > 0 else float("nan")
        out["ps_ms_per_worker_step"] = 1e3 * busy / count if count else float("nan")
    return out


def combine(runs: list[dict]) -> dict:
    """The median over runs of every figure; ``spread`` keeps the min and max of
    images/s."""
    if not runs:
        return {}
    out = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)):
            values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
            out[key] = statistics.median(values)
        else:
            out[key] = value
    rates = [r["images_per_s"] for r in runs]
    out["spread"] = [min(rates), max(rates)]
    out["runs"] = len(runs)
    return out


# ---- the whole benchmark --------------------------------------------------------------------

def run_benchmark(workloads=("W4", "W5"), workers=(1, 2, 4), modes=tuple(MODES),
                  peers=tuple(PEERS), repeat: int = 3, steps: int | None = None,
                  warmup: int | None = None, peer_python: str | None = None,
                  fetch: str = "loss", probe: bool = True,
                  timeout_s: float = CONFIG_TIMEOUT_S,
                  echo: Callable[[str], None] = print) -> dict:
    """Run every configuration ``repeat`` times; returns the results document."""
    started = datetime.now(timezone.utc)
    python = sys.executable
    peer_python = peer_python or python
    skipped: dict[str, str] = {}
    modes = list(modes)
    if "allreduce" in modes and (why := allreduce_missing()):
        skipped["allreduce"] = why
        modes.remove("allreduce")
    frameworks = ["tracejit"]
    versions = {"python": sys.version.split()[0]}
    for peer in peers:
        version, why = peer_version(peer_python)
        if why:
            skipped[peer] = why
        else:
            frameworks.append(peer)
            versions[peer] = version
    for what, why in skipped.items():
        echo(f"skipping {what}: {why}")
    load = {"before": list(os.getloadavg())}
    doc = {"started": started.isoformat(timespec="seconds"), "machine": machine_info(),
           "settings": {"workloads": list(workloads), "workers": list(workers),
                        "modes": modes, "frameworks": frameworks, "repeat": repeat,
                        "fetch": fetch, "batch": dict(PER_WORKER_BATCH),
                        "versions": versions, "command": " ".join(sys.argv[1:]),
                        "parameter_bytes": {w: parameter_bytes(w) for w in workloads}},
           "skipped": skipped, "results": []}
    if probe:
        echo("probe: tracejit message latency and loopback bandwidth")
        try:
            doc["probe"] = run_probe(python)
        except LaunchError as exc:
            echo(f"  probe failed: {exc}")
    for group in plan(workloads, workers, modes, frameworks):
        tried = {cfg: ([], [], []) for cfg in group}        # runs, errors, loads
        for _ in range(repeat):
            for cfg in group:
                runs, errors, loads = tried[cfg]
                loads.append(round(os.getloadavg()[0], 2))
                t0 = time.monotonic()
                warm, timed = STEPS[cfg.workload]
                try:
                    raw = launch(cfg, python if cfg.framework == "tracejit" else peer_python,
                                 timed if steps is None else steps,
                                 warm if warmup is None else warmup, timeout_s,
                                 extra=("--fetch", fetch))
                    runs.append(summarize(cfg, raw))
                    said = (f"{runs[-1]['images_per_s']:.0f} images/s, "
                            f"{runs[-1]['ms_per_step']:.1f} ms/step")
                except (LaunchError, KeyError, ValueError, OSError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    said = f"failed: {errors[-1]}"
                echo(f"  {cfg.name}: {said} ({time.monotonic() - t0:.0f} s, "
                     f"load {loads[-1]})")
        for cfg, (runs, errors, loads) in tried.items():
            row = {"framework": cfg.framework, "workload": cfg.workload, "mode": cfg.mode,
                   "workers": cfg.workers, "load": loads, **combine(runs)}
            if errors:
                row["errors"] = errors
            row["status"] = "ok" if runs else "failed"
            doc["results"].append(row)
    load["after"] = list(os.getloadavg())
    doc["load"] = load
    doc["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return doc


def machine_info() -> dict:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                      if ln.startswith("Model name")), "")
    except (OSError, subprocess.TimeoutExpired):
        model = ""
    info = cpu_identity()
    return {"cpu": model or info["cpu"], "cpu_id": info["cpu_id"],
            "virtual_machine": info["virtual_machine"], "cpu_count": os.cpu_count()}


def parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.distributed",
                                description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="W4,W5")
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--peers", default="tensorflow", help="tensorflow, or none")
    p.add_argument("--peer-python", default=None,
                   help="the Python that has tensorflow (default: this one)")
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    p.add_argument("--steps", type=int, default=None, help="timed steps per worker")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per worker")
    p.add_argument("--fetch", choices=["loss", "train"], default="loss")
    p.add_argument("--timeout", type=float, default=CONFIG_TIMEOUT_S,
                   help="seconds one run of a configuration may take")
    p.add_argument("--results", default="results", help="folder for the JSON")
    p.add_argument("--markdown", default=None, help="write the markdown section here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from .dist_model import markdown
    args = parse(argv)
    items = lambda text: [t.strip() for t in text.split(",") if t.strip()]  # noqa: E731
    unknown = [w for w in items(args.workloads) if w not in STEPS] + \
        [m for m in items(args.modes) if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown workloads or modes: {unknown}")
    peers = [] if args.peers in ("", "none") else items(args.peers)
    doc = run_benchmark(items(args.workloads), [int(n) for n in items(args.workers)],
                        items(args.modes), peers, args.repeat, args.steps, args.warmup,
                        args.peer_python, args.fetch, timeout_s=args.timeout,
                        echo=lambda text: print(text, file=sys.stderr, flush=True))
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"distributed-{doc['started'].replace(':', '')}.json"
    path.write_text(json.dumps(doc, indent=1))
    text = markdown(doc)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(f"results: {path}", file=sys.stderr)
    return 0 if all(r["status"] == "ok" for r in doc["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
