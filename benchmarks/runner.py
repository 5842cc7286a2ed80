"""The parent process of a benchmark run.

It waits (bounded) for a quiet machine, then starts one ``benchmarks.child`` process per
peer, one after another, reads their JSON lines, fills in what a crashed or missing peer
could not say, and adds the ratio peer / tracejit and a cross-check of each result.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from .child import PEERS as PEER_MODULES
from .child import python_variable
from .harness import MARKER, SCHEMA_VERSION
from .workloads import SIZES, WORKLOADS, check_rtol, figure, throughput

ROOT = Path(__file__).resolve().parent.parent
PEERS = ["numpy", "numba", "jax", "torch", "tensorflow"]
POLL_S = 2.0


def quiet_threshold() -> float:
    # NOTE: on 2 cores a 1-minute load of 0.5 means another process took a quarter of
    # the machine; more than that and the parallel peers (OpenMP, numba) lose their
    # spinning threads and figures jump by 10-100x.
    return max(0.5, 0.25 * (os.cpu_count() or 1))


def wait_for_quiet(max_wait_s: float, echo: Callable[[str], None]) -> dict:
    """Poll the 1-minute load average until it is below the threshold, at most max_wait_s."""
    threshold = quiet_threshold()
    started = time.monotonic()
    before = os.getloadavg()
    load = before
    announced = False
    while load[0] >= threshold and time.monotonic() - started < max_wait_s:
        if not announced:
            echo(f"waiting up to {max_wait_s:.0f} s for a quiet machine "
                 f"(load {load[0]:.2f}, want < {threshold:.2f})")
            announced = True
        time.sleep(min(POLL_S, max(0.0, max_wait_s - (time.monotonic() - started))))
        load = os.getloadavg()
    quiet = load[0] < threshold
    if not quiet:
        echo(f"the machine is still busy (load {load[0]:.2f}); measuring anyway, "
             "figures will be noisy")
    return {"threshold": threshold, "initial": list(before), "before": list(load),
            "waited_s": round(time.monotonic() - started, 1), "quiet": quiet}


def cpu_identity(cpuinfo: str | None = None) -> dict:
    """What ``lscpu`` says of the CPU, read from /proc/cpuinfo: model name, vendor,
    family/model/stepping, and whether a hypervisor is in between."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break                   # the first processor describes them all
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    ident = " ".join(f"{label} {fields[key]}" for key, label in
                     (("cpu family", "family"), ("model", "model"), ("stepping", "stepping"))
                     if key in fields)
    return {"cpu": fields.get("model name") or platform.processor() or platform.machine(),
            "cpu_id": " ".join(filter(None, [fields.get("vendor_id"), ident])),
            "virtual_machine": "hypervisor" in fields.get("flags", "").split()}


def machine() -> dict:
    from tracejit.codegen_cpu.host import target, tuning
    compiled_for, features = target.target_cpu()
    # NOTE: the model name alone does not say what the code was tuned for: KVM reports
    # Intel Xeons as "Intel(R) Xeon(R) Processor" (and a Sapphire Rapids-class host with
    # Rocket Lake's model number), and which kernels won here is a property of this host
    # (docs/tuning.md).
    return {"platform": platform.platform(), **cpu_identity(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "llvm_host_cpu": target.host_cpu()[0], "compiled_for": compiled_for,
            "requested_cpu": os.environ.get(target.CPU_ENV, "").strip() or "host",
            "extra_features": os.environ.get(target.FEATURES_ENV, "").strip(),
            "vector_isa": target.target_vector_isa(),
            "prefer_256_bit": "+prefer-256-bit" in features.split(","),
            "tuning": tuning.decisions()}


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def peer_python(peer: str) -> str | None:
    """The Python that runs a peer's child: this one when it can import the peer's
    library, else the one its variable names (``child.python_variable``: PyTorch or
    TensorFlow kept in a virtual environment of their own), else None."""
    library = PEER_MODULES[peer][1]
    if importlib.util.find_spec(library) is not None:
        return sys.executable
    return os.environ.get(python_variable(peer)) or None


def run_peer(peer: str, workloads: list[str], repeat: int, size: str, timeout_s: float,
             echo: Callable[[str], None]) -> tuple[dict, list[dict]]:
    """Run one peer's child process; returns (peer record, result rows)."""
    # NOTE: with no Python that has the library, this one runs the child, which reports
    # "not installed" as a row of the table.
    python = peer_python(peer) or sys.executable
    command = [python, "-m", "benchmarks.child", "--peer", peer,
               "--only", ",".join(workloads), "--repeat", str(repeat), "--size", size]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    info: dict = {"peer": peer, "status": "failed", "reason": "no answer"}
    rows: list[dict] = []
    with tempfile.TemporaryFile("w+") as stderr:
        # NOTE: a session of its own, so that a timeout also ends the helpers a peer
        # started (torch.compile's compile workers), not only the child.
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=stderr, text=True, bufsize=1, start_new_session=True)
        timed_out = threading.Event()

        def stop():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        def on_timeout():
            timed_out.set()
            stop()
        timer = threading.Timer(timeout_s, on_timeout)
        timer.start()
        try:
            for line in proc.stdout:
                if not line.startswith(MARKER):
                    continue        # a library's own output on stdout
                try:
                    record = json.loads(line[len(MARKER):])
                except json.JSONDecodeError:
                    continue
                if record.get("type") == "peer":
                    info = {k: v for k, v in record.items() if k != "type"}
                    if python != sys.executable:
                        info["python"] = python
                    if info["status"] != "ok":
                        echo(f"  {peer}: {info['reason']}")
                elif record.get("type") == "result":
                    rows.append(record)
                    echo("  " + progress_line(record, size))
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:     # interrupted (Ctrl-C): leave no child behind
                stop()
                proc.wait()
        stderr.seek(0)
        err_tail = _last_line(stderr.read())
    if proc.returncode != 0:
        why = (f"timed out after {timeout_s:.0f} s" if timed_out.is_set()
               else f"exit code {proc.returncode}: {err_tail}")
        done = {r["workload"] for r in rows}
        missing = [w for w in workloads if w not in done]
        if missing or info.get("status") != "ok":
            info.update(status="failed", reason=why)
        else:   # e.g. a crash while the library shuts down: the results stand
            info["reason"] = f"all results in, then {why}"
        for workload in missing:
            rows.append({"type": "result", "workload": workload, "peer": peer,
                         "variant": peer, "status": "failed", "reason": why, "times_s": []})
    return info, rows


def progress_line(row: dict, size: str) -> str:
    name = f"{row['workload']} {row['variant']}"
    if row["status"] != "ok":
        return f"{name}: {row['status']}: {row['reason']}"
    unit = WORKLOADS[row["workload"]].unit
    value = figure(row["workload"], row["median_s"], SIZES[size][row["workload"]])
    return f"{name}: {value:.4g} {unit}"


def add_derived(rows: list[dict], size: str) -> None:
    """Figures in each workload's unit, throughput, the ratio to tracejit, the check."""
    for row in rows:
        if row["status"] != "ok":
            continue
        dims = SIZES[size][row["workload"]]
        for key in ("median", "min", "max"):
            row[key] = figure(row["workload"], row[f"{key}_s"], dims)
        row["throughput"] = throughput(row["workload"], row["median_s"], dims)
    for workload in WORKLOADS:
        ok = [r for r in rows if r["workload"] == workload and r["status"] == "ok"]
        ours = [r for r in ok if r["peer"] == "tracejit"]
        for row in ok:
            ref = _reference(row, ours)
            # NOTE: W7 is a difference of two timings; when compiling costs less than a
            # warm call varies, it can come out at or below zero, and no ratio means much.
            meaningful = ref is not None and ref["median_s"] > 0 and row["median_s"] > 0
            row["ratio"] = row["median_s"] / ref["median_s"] if meaningful else None
            row["ratio_to"] = ref["variant"] if meaningful else None
            if row["median_s"] <= 0:
                row["note"] = "; ".join(filter(None, [
                    row.get("note"), "below the noise: warm calls vary more than this"]))
        _cross_check(ok)


def _reference(row: dict, ours: list[dict]) -> dict | None:
    """The tracejit row a row's ratio is taken to: tracejit's fastest of the same
    precision (bfloat16 against bfloat16, float32 against float32), and of the same style
    where tracejit has it (W8: Session.run against Session.run)."""
    alike = [r for r in ours if r.get("precision") == row.get("precision")]
    same_style = [r for r in alike if r.get("style") and r.get("style") == row.get("style")]
    return min(same_style or alike, key=lambda r: r["median_s"], default=None)


def _cross_check(rows: list[dict]) -> None:
    """Compare each row's check value with NumPy's (else the median of the rows in the
    workload's own precision), within the workload's tolerance for the row's precision:
    a fast but wrong implementation must not pass unnoticed."""
    checked = [r for r in rows if r.get("check") is not None]
    if not checked:
        return
    # NOTE: bfloat16 rows are off by their rounding; they must not pull the reference.
    full = [r for r in checked if r.get("precision") is None] or checked
    numpy = [r["check"] for r in full if r["peer"] == "numpy"]
    reference = numpy[0] if numpy else statistics.median(r["check"] for r in full)
    for row in rows:
        if row.get("check") is not None:
            scale = max(abs(reference), 1e-6)
            rtol = check_rtol(row["workload"], row.get("precision"))
            row["check_ok"] = abs(row["check"] - reference) <= rtol * scale


def run_suite(workloads: list[str], peers: list[str], repeat: int = 10, size: str = "full",
              max_wait_s: float = 60.0, timeout_s: float = 1800.0,
              echo: Callable[[str], None] = print) -> dict:
    """Run tracejit and the peers on the workloads; returns the results document."""
    started = datetime.now(timezone.utc)
    load = wait_for_quiet(max_wait_s, echo)
    peer_infos, rows = [], []
    for peer in ["tracejit", *[p for p in peers if p != "tracejit"]]:
        echo(f"{peer}:")
        load_before = os.getloadavg()[0]
        info, peer_rows = run_peer(peer, workloads, repeat, size, timeout_s, echo)
        # NOTE: per peer too: other jobs come and go during a long run, and a busy
        # stretch shows up as one peer's outliers.
        info["load"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        peer_infos.append(info)
        rows += peer_rows
    load["after"] = list(os.getloadavg())
    add_derived(rows, size)
    order = {w: i for i, w in enumerate(WORKLOADS)}
    rows.sort(key=lambda r: order[r["workload"]])     # stable: peers keep their run order
    for row in rows:
        row.pop("type", None)
    return {"schema": SCHEMA_VERSION, "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": {"workloads": workloads, "peers": peers, "repeat": repeat,
                         "size": size, "sizes": {w: SIZES[size][w] for w in workloads}},
            "machine": machine(), "load": load, "peers": peer_infos,
            "workloads": {w: {"title": WORKLOADS[w].title, "unit": WORKLOADS[w].unit}
                          for w in workloads},
            "results": rows}
