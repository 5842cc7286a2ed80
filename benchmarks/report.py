"""Turn a results document (see runner.run_suite) into a Markdown table, a JSON file and a
PNG chart. Files are named by the run's start time, so runs never overwrite each other."""

from __future__ import annotations

import json
import math
from pathlib import Path


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _row_cells(row: dict, unit: str) -> list[str]:
    name = row["variant"]
    if row["status"] != "ok":
        return [row["workload"], name, f"{row['status']}: {row.get('reason', '')}".rstrip(": "),
                "", "", "", "", "", ""]
    ratio = row.get("ratio")
    notes = [row.get("note", "")]
    if row.get("precision") and ratio is not None and row["peer"] != "tracejit":
        notes.append(f"ratio to {row['ratio_to']}")     # like with like: bf16 to bf16
    if row.get("check_ok") is False:
        notes.insert(0, f"CHECK MISMATCH ({row['check']:.6g})")
    return [row["workload"], name, _number(row["median"]), _number(row["min"]),
            _number(row["max"]), unit, row.get("throughput", ""),
            "" if ratio is None else _number(ratio), "; ".join(n for n in notes if n)]


def table(doc: dict) -> str:
    """The results as a Markdown table: median, min, max, and peer / tracejit (>1 means
    tracejit is faster)."""
    header = ["id", "peer", "median", "min", "max", "unit", "throughput", "peer/tracejit",
              "note"]
    lines = ["| " + " | ".join(header) + " |",
             "|---|---|--:|--:|--:|---|---|--:|---|"]
    for row in doc["results"]:
        unit = doc["workloads"][row["workload"]]["unit"]
        cells = [c.replace("|", "/") for c in _row_cells(row, unit)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(doc: dict) -> str:
    """The lines that go above the table: when, where, how loaded, which peers."""
    load = doc["load"]
    settings = doc["settings"]
    m = doc["machine"]
    about_cpu = ", ".join(filter(None, [m.get("cpu_id"), f"{m['cpu_count']} cores",
                                        "virtual machine" if m.get("virtual_machine") else ""]))
    requested = m.get("requested_cpu", "host")
    lines = [
        f"tracejit bench, {doc['started']} — {m['cpu']} ({about_cpu}), Python {m['python']}",
        f"LLVM host CPU {m.get('llvm_host_cpu', '?')}, compiled for "
        f"{m.get('compiled_for', '?')}"
        + (f" (TRACEJIT_CPU={requested})" if requested != "host" else "")
        + f" ({m.get('vector_isa', '?')}"
        + (", 256-bit vectors preferred" if m.get("prefer_256_bit") else "")
        + (f", features {m['extra_features']}" if m.get("extra_features") else "") + ")",
        f"size {settings['size']}, median of {settings['repeat']} repeats "
        "(W7 at most 3, W8 at most 5); figures per call, W8 per 1000 steps",
        f"load average (1 min) before {load['before'][0]:.2f}, after {load['after'][0]:.2f}"
        + ("" if load["quiet"] else f" — NOT quiet (wanted < {load['threshold']:.2f})"),
    ]
    for info in doc["peers"]:
        if info["status"] == "ok":
            versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
            load = info.get("load")
            lines.append(f"  {info['peer']}: {versions}" +
                         (f" (load {load[0]:.2f} -> {load[1]:.2f})" if load else "") +
                         (f", run by {info['python']}" if info.get("python") else ""))
        else:
            lines.append(f"  {info['peer']}: {info['status']} — {info.get('reason', '')}")
    return "\n".join(lines)


def stem(doc: dict) -> str:
    return "bench-" + doc["started"].replace(":", "").replace("-", "").replace("+0000", "Z")


def write_json(doc: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem(doc)}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def write_chart(doc: dict, folder: Path) -> tuple[Path | None, str]:
    """A bar chart per workload (median, min-max whiskers, log scale). matplotlib is an
    optional extra: without it, returns (None, why)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "no chart: matplotlib is not installed (pip install -e '.[plot]')"
    def plotted(row, workload):
        # NOTE: a W7 figure at or below zero (compiling cheaper than the noise) has no bar.
        return row["workload"] == workload and row["status"] == "ok" and row["median"] > 0
    workloads = [w for w in doc["workloads"] if any(plotted(r, w) for r in doc["results"])]
    if not workloads:
        return None, "no chart: no workload produced a figure"
    cols = 2 if len(workloads) > 1 else 1
    rows_n = math.ceil(len(workloads) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(7 * cols, 0.5 + 2.6 * rows_n),
                             squeeze=False)
    for ax in axes.flat[len(workloads):]:
        ax.set_visible(False)
    for ax, workload in zip(axes.flat, workloads, strict=False):
        rows = [r for r in doc["results"] if plotted(r, workload)]
        medians = [r["median"] for r in rows]
        lows = [max(r["min"], r["median"] / 10) for r in rows]     # log axes need > 0
        errors = [[m - lo for m, lo in zip(medians, lows, strict=True)],
                  [r["max"] - r["median"] for r in rows]]
        colors = ["tab:orange" if r["peer"] == "tracejit" else "tab:blue" for r in rows]
        ax.barh(range(len(rows)), medians, xerr=errors, color=colors, capsize=2)
        ax.set_yticks(range(len(rows)), [r["variant"] for r in rows], fontsize=7)
        ax.invert_yaxis()
        low, high = min(lows), max(r["max"] for r in rows)
        if high > 20 * low:
            # NOTE: peers differ by orders of magnitude; a log axis keeps all bars readable
            # (bars need a left edge above zero on it).
            ax.set_xscale("log")
            ax.set_xlim(low / 3, high * 3)
        else:
            ax.set_xlim(0, high * 1.15)
        for i, value in enumerate(medians):
            ax.text(rows[i]["max"], i, "  " + _number(value), va="center", fontsize=7)
        info = doc["workloads"][workload]
        ax.set_title(f"{workload}: {info['title']} ({info['unit']}, lower is better)",
                     fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(f"tracejit bench {doc['started']} (orange: tracejit)", fontsize=9)
    fig.tight_layout()
    path = folder / f"{stem(doc)}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path, ""
