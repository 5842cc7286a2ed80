"""A cost model of data-parallel training fitted to one run of benchmarks/distributed.py,
its projections to 8-256 workers on a 25 Gbit/s network, and the markdown section that
reports the run.

The model (one worker step; P parameter bytes, n workers, k ps shards of which the
fullest holds P_k bytes, B the network's bandwidth per direction and per host)::

    ps, asynchronous   T_a = t_c + w0 + 2P max(w1, 1/B) + s0 + s1 2 P_k
                       X_a = min(n / T_a, 1 / (s0 + s1 2 P_k), B / P_k)
                       efficiency = X_a t_c / n
    ps, synchronous    T_s = t_c + w0 + 2P max(w1, 1/B) + n max(s0 + s1 2 P_k, 2 P_k / B)
                             + e_W
                       efficiency = t_c / T_s
    ring all-reduce    T_r = t_c + h_W + 2 (n - 1) a_r + 2 (n - 1) / n P max(g_r, 1/B)
                       efficiency = t_c / T_r

  X_a is the whole job's worker steps per second: every step visits every shard, so
  the fullest shard's CPU and link bound it.

* ``t_c``: a worker's compute per step: the framework's step in one process, no
  cluster (the ``local`` row), one thread.
* ``s0, s1``: the ps's service time per worker step and per byte it moves (it handles
  one request at a time), measured inside the ps (dist_wire.PsRecorder) at 1 worker,
  fitted over W4 and W5: the ps serialization.
* ``w0, w1``: the worker's own cost of a step's exchange with the ps: ``w0`` its
  message latencies (requests per step, 2, times the probe's PING round trip), ``w1``
  per byte of both directions (copies, wire format, loopback): the slope, over W4 and
  W5, of the 1-worker asynchronous step minus ``t_c``, ``w0`` and the ps's service.
* ``e_W``: what a synchronous step adds to an asynchronous one at 1 worker, per
  workload (tokens, accumulator, the chief's TAKE and apply; with ``[train_op, loss]``
  fetched, tracejit also runs the forward pass once more for the loss).
* ``a_r, g_r``: the ring's latency per ring step (one message one way: half the
  probe's PING round trip) and its cost per byte a worker sends: the slope, over W4
  and W5, of the 2-worker ring step minus the 1-worker one minus 2 a_r
  (2 (n - 1) / n = 1 there). ``h_W``: the 1-worker ring step minus ``t_c`` (the
  ``DistributedOptimizer`` runs gradients and update as two programs).
* Bytes cross the network as a stream: a byte costs the larger of the software's
  per-byte cost measured on loopback and ``1 / B``, not both. Compute and
  communication do not overlap (none of the three modes overlaps them).
* With k shards, the variables are placed whole (``GreedyLoadBalancingStrategy``):
  W5's 12.8 MB fc1 weight stays on one shard; the "split" column spreads bytes evenly,
  as partitioned variables would.
"""

from __future__ import annotations

import statistics
from datetime import datetime

from .dist_graphs import PER_WORKER_BATCH, variable_bytes

NET_BYTES_PER_S = 25e9 / 8
nan = float("nan")
PROJECTED_WORKERS = (8, 64, 256)

__all__ = ["fit", "project", "markdown"]


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """y = a + b x by least squares, neither negative (a negative intercept or slope
    from two noisy points is set to zero and the other refitted)."""
    if not xs:
        return float("nan"), float("nan")
    if len(set(xs)) < 2:
        return 0.0, max(0.0, statistics.mean(ys) / statistics.mean(xs))
    mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
        sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    if a < 0:
        return 0.0, max(0.0, sum(x * y for x, y in zip(xs, ys, strict=True)) /
                        sum(x * x for x in xs))
    if b < 0:
        return max(0.0, my), 0.0
    return a, b


def fit_slope(xs: list[float], ys: list[float]) -> float:
    """b of y = b x by least squares (not negative; nan without points)."""
    if not xs:
        return float("nan")
    return max(0.0, sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs))


def _row(doc: dict, framework: str, workload: str, mode: str, n: int) -> dict | None:
    for row in doc["results"]:
        if (row["framework"], row["workload"], row["mode"], row["workers"]) == \
                (framework, workload, mode, n) and row["status"] == "ok":
            return row
    return None


def fit(doc: dict, framework: str = "tracejit") -> dict:
    """The model's constants (seconds, bytes) from ``doc``'s rows of ``framework``."""
    sizes = doc["settings"]["parameter_bytes"]
    c: dict = {"t_c": {}, "P": dict(sizes), "e": {}, "h": {}, "requests": 2.0}
    points: dict[str, tuple[list, list]] = {k: ([], []) for k in ("o", "s", "r")}

    def add(which: str, x: float, y: float) -> None:
        points[which][0].append(x)
        points[which][1].append(y)

    for workload, p in sizes.items():
        local = _row(doc, framework, workload, "local", 1)
        if local is None:
            continue
        t_c = c["t_c"][workload] = local["ms_per_step"] / 1e3
        a1, s1 = (_row(doc, framework, workload, m, 1) for m in ("async", "sync"))
        r1, r2 = (_row(doc, framework, workload, "allreduce", n) for n in (1, 2))
        if a1:
            add("o", 2 * p, a1["ms_per_step"] / 1e3 - t_c)
            c["requests"] = a1.get("requests_per_step", 2.0)
            if "ps_ms_per_worker_step" in a1:
                add("s", 2 * p, a1["ps_ms_per_worker_step"] / 1e3)
        if a1 and s1:
            c["e"][workload] = max(0.0, (s1["ms_per_step"] - a1["ms_per_step"]) / 1e3)
        if r1:
            c["h"][workload] = max(0.0, r1["ms_per_step"] / 1e3 - t_c)
            if r2:
                add("r", p, (r2["ms_per_step"] - r1["ms_per_step"]) / 1e3)
    # NOTE: the latencies come from the probe's PING round trip, measured directly; the
    # two workloads then only have to give each per-byte cost (a slope through that
    # intercept): an intercept fitted from two noisy points came out at zero or negative
    probe = doc.get("probe")
    c["ping"] = probe["ping_s"] if probe else 0.0
    c["s0"], c["s1"] = fit_line(*points["s"]) if points["s"][0] else (0.0, 0.0)
    c["w0"] = c["requests"] * c["ping"]
    c["w1"] = fit_slope(points["o"][0], [y - c["w0"] - c["s0"] - c["s1"] * x
                                         for x, y in zip(*points["o"], strict=True)])
    c["a_r"] = c["ping"] / 2        # a ring step is one message, one way
    c["g_r"] = fit_slope(points["r"][0], [y - 2 * c["a_r"] for y in points["r"][1]])
    if probe:
        for kind in ("write", "read"):
            a, b = fit_line([s for s, _ in probe[kind]], [t for _, t in probe[kind]])
            c[f"{kind}_latency"], c[f"{kind}_bytes_per_s"] = a, (1 / b if b else float("inf"))
    return c


def shard_bytes(workload: str, k: int, split: bool) -> float:
    """Bytes on the fullest of k ps shards: even when variables are split, else whole
    variables placed largest first on the emptiest shard (the greedy strategy)."""
    sizes = variable_bytes(workload)
    if split or k == 1:
        return sum(sizes) / k
    shards = [0] * k
    for size in sorted(sizes, reverse=True):
        shards[shards.index(min(shards))] += size
    return float(max(shards))


def step_time(c: dict, workload: str, n: int, mode: str, k: int = 1, split: bool = False,
              bandwidth: float = NET_BYTES_PER_S, compute: float | None = None) -> float:
    """A worker's seconds per step in ``mode`` at n workers; ``compute`` replaces t_c
    (workers that share cores compute slower)."""
    t_c = c["t_c"][workload] if compute is None else compute
    p = c["P"][workload]
    per_byte = 1 / bandwidth
    if mode == "allreduce":
        return t_c + c["h"].get(workload, nan) + 2 * (n - 1) * c["a_r"] + \
            2 * (n - 1) / n * p * max(c["g_r"], per_byte)
    pk = shard_bytes(workload, k, split)
    worker = c["w0"] + 2 * p * max(c["w1"], per_byte)
    service = c["s0"] + c["s1"] * 2 * pk
    if mode == "async":
        # NOTE: every worker step visits every shard, so the fullest shard's CPU and
        # link bound the worker steps per second of the whole job: past that, workers
        # queue at the ps and each one's step stretches to n / capacity
        capacity = min(1 / service if service > 0 else float("inf"), bandwidth / pk)
        return max(t_c + worker + service, n / capacity)
    # NOTE: in a synchronous step the n reads, then the n gradient sets, cross the
    # shard's link in two separate phases: 2 P_k per worker, not overlapped
    return t_c + worker + n * max(service, 2 * pk * per_byte) + c["e"].get(workload, nan)


def project(c: dict, workload: str, n: int, mode: str, k: int = 1, split: bool = False,
            bandwidth: float = NET_BYTES_PER_S) -> float:
    """Scaling efficiency (throughput / n x one worker's) of ``mode`` at n workers."""
    return c["t_c"][workload] / step_time(c, workload, n, mode, k, split, bandwidth)


def check_table(doc: dict, c: dict) -> str:
    """The model against this run's own multi-worker rows: loopback (no bandwidth
    term), and t_c stretched by n / cores where the workers outnumber the cores."""
    cores = doc["machine"].get("cpu_count") or 1
    lines = ["| workload | mode | workers | measured ms/step | model ms/step |",
             "|---|---|---|---|---|"]
    for row in doc["results"]:
        n, w = row["workers"], row["workload"]
        if row["framework"] != "tracejit" or row["status"] != "ok" or n < 2 or \
                row["mode"] == "local" or w not in c["t_c"]:
            continue
        model = step_time(c, w, n, row["mode"], bandwidth=float("inf"),
                          compute=c["t_c"][w] * max(1.0, n / cores))
        lines.append(f"| {w} | {row['mode']} | {n} | {_num(row['ms_per_step'])} | "
                     f"{_num(1e3 * model)} |")
    return "\n".join(lines)


# ---- the markdown section -------------------------------------------------------------------

def _num(value, digits: int = 3) -> str:
    if value is None or value != value:
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


def results_table(doc: dict) -> str:
    lines = ["| workload | framework | mode | workers | global steps/s | images/s | "
             "scaling | ms/step per worker | MB/worker-step (sent+recv) | minimum MB | "
             "× min | ps busy ms/worker-step |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in doc["results"]:
        head = f"| {row['workload']} | {row['framework']} | {row['mode']} | {row['workers']} |"
        if row["status"] != "ok":
            lines.append(f"{head} failed: {row.get('errors', ['?'])[-1][:120]} |" +
                         " |" * 7)
            continue
        local = _row(doc, row["framework"], row["workload"], "local", 1)
        scaling = (row["images_per_s"] / (row["workers"] * local["images_per_s"])
                   if local else None)
        total = (row["sent_per_step"] + row["received_per_step"]) / 1e6
        minimum = row["min_per_step"] / 1e6
        lines.append(
            f"{head} {_num(row['global_steps_per_s'])} | {_num(row['images_per_s'], 4)} | "
            f"{_num(scaling, 2)} | {_num(row['ms_per_step'])} | {_num(total)} | "
            f"{_num(minimum) if minimum else '0'} | "
            f"{_num(total / minimum, 3) if minimum else '–'} | "
            f"{_num(row.get('ps_ms_per_worker_step'))} |")
    return "\n".join(lines)


def constants_table(c: dict) -> str:
    ms = lambda s: f"{s * 1e3:.3g} ms"                          # noqa: E731
    per_gb = lambda s: f"{s * 1e9:.3g} s/GB ({1 / s / 1e9:.2g} GB/s)" if s else "0"  # noqa: E731
    rows = [(f"t_c {w}", ms(t), "one process, no cluster, 1 thread")
            for w, t in c["t_c"].items()]
    rows += [("w0", ms(c["w0"]), f"{c['requests']:.3g} requests × the PING round trip"),
             ("w1", per_gb(c["w1"]), "worker's cost per byte (both directions)"),
             ("s0", ms(c["s0"]), "ps service per worker step"),
             ("s1", per_gb(c["s1"]), "ps service per byte"),
             ("a_r", ms(c["a_r"]), "ring latency per ring step: PING / 2"),
             ("g_r", per_gb(c["g_r"]), "ring cost per byte sent")]
    rows += [(f"e {w}", ms(e), "sync's extra per step at 1 worker") for w, e in c["e"].items()]
    rows += [(f"h {w}", ms(h), "a 1-worker ring step minus t_c") for w, h in c["h"].items()]
    if "write_latency" in c:
        rows += [("probe: PING round trip", f"{c['ping'] * 1e6:.0f} µs", "tracejit wire"),
                 ("probe: WRITE", f"{c['write_latency'] * 1e6:.0f} µs + bytes at "
                  f"{c['write_bytes_per_s'] / 1e9:.2g} GB/s", "loopback, 4 KiB-16 MiB"),
                 ("probe: READ", f"{c['read_latency'] * 1e6:.0f} µs + bytes at "
                  f"{c['read_bytes_per_s'] / 1e9:.2g} GB/s", "loopback, 4 KiB-16 MiB")]
    rows.append(("B", "25 Gbit/s = 3.125 GB/s per direction", "projected network"))
    return "\n".join(["| constant | fitted | what |", "|---|---|---|",
                      *[f"| {a} | {b} | {w} |" for a, b, w in rows]])


def projection_table(c: dict) -> str:
    lines = ["| workload | workers | async 1 ps | async n/4 ps (whole vars / split) | "
             "sync 1 ps | sync n/4 ps (whole / split) | ring all-reduce |",
             "|---|---|---|---|---|---|---|"]
    pct = lambda e: f"{100 * e:.0f}%" if e == e else "–"   # noqa: E731
    for workload in c["t_c"]:
        for n in PROJECTED_WORKERS:
            k = max(1, n // 4)
            cells = [pct(project(c, workload, n, "async")),
                     f"{pct(project(c, workload, n, 'async', k))} / "
                     f"{pct(project(c, workload, n, 'async', k, True))}",
                     pct(project(c, workload, n, "sync")),
                     f"{pct(project(c, workload, n, 'sync', k))} / "
                     f"{pct(project(c, workload, n, 'sync', k, True))}",
                     pct(project(c, workload, n, "allreduce"))]
            lines.append(f"| {workload} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(doc: dict) -> str:
    m, s = doc["machine"], doc["settings"]
    day = datetime.fromisoformat(doc["started"]).strftime("%Y-%m-%d %H:%M UTC")
    load = doc.get("load", {})
    versions = ", ".join(f"{k} {v}" for k, v in s.get("versions", {}).items())
    out = [
        "## Benchmarks: data-parallel W4/W5", "",
        f"Measured {day} on {m['cpu']} ({m['cpu_id']}, {m['cpu_count']} cores"
        f"{', a VM' if m.get('virtual_machine') else ''}); {versions}. 1-minute load "
        f"{_num(load.get('before', [None])[0])} before, {_num(load.get('after', [None])[0])} "
        "after (other engineers share these cores: the figures are noisy).", "",
        f"`python -m benchmarks.distributed {s.get('command', '')}`: W4 (MLP 784-512-512-10, "
        f"batch {PER_WORKER_BATCH['W4']} per worker) and W5 (the TF tutorial CNN, batch "
        f"{PER_WORKER_BATCH['W5']} per worker), SGD, as TF1 graph code run by tracejit.compat.v1 "
        "and by TensorFlow's tf.compat.v1 (eager off, grpc `tf.train.Server`), every task a "
        "process on 127.0.0.1 with one thread. Each figure is the median of "
        f"{s['repeat']} runs. Global steps/s is the chief's global step over its timed "
        "steps, while every worker trains (an asynchronous global step is one worker's "
        "update; a synchronous or ring step is one update of all n); images/s are the "
        "images in applied updates; scaling = images/s ÷ (n × the local row's); ms/step "
        "is the median worker step; bytes are the kernel's TCP counts (`ss -tin`) per "
        "worker step, both directions, against the minimum (ps: P each way; ring: "
        "2(n-1)/n·P each way). "
        f"Steps fetch `{'[train_op, loss]' if s.get('fetch') == 'loss' else 'train_op'}`.",
        "", results_table(doc), ""]
    if doc.get("skipped"):
        out += [f"Not run: {k}: {v}" for k, v in doc["skipped"].items()] + [""]
    try:
        c = fit(doc)
    except (KeyError, ZeroDivisionError):
        return "\n".join(out)
    if not c["t_c"]:
        return "\n".join(out)
    doc_model = (__doc__ or "").split("::", 1)[1].split("\n\n  X_a is")[0]
    out += ["### Cost model", "",
            "Fitted to tracejit's rows above (formulas and assumptions: "
            "benchmarks/dist_model.py):", "", "```", doc_model.strip("\n"), "```", "",
            constants_table(c), "", "Projected scaling efficiency (throughput ÷ n × one "
            "worker alone) on a 25 Gbit/s network, tracejit's constants:", "",
            projection_table(c), "", "The model against this run's multi-worker rows "
            "(loopback: no bandwidth term; t_c × n / cores where workers outnumber the "
            f"{doc['machine'].get('cpu_count')} cores):", "", check_table(doc, c), ""]
    return "\n".join(out)
