"""What a peer hands back per workload, how it is timed, and how results leave the process.

A peer module maps each workload to variants, each a builder ``f(inputs, size) -> Case``
(or ``Compile`` for W7). The harness warms the case up, times repeats with
``time.perf_counter`` and prints one JSON line per result on stdout, prefixed with
``MARKER`` so that whatever else a library prints there cannot be mistaken for a
result. The parent reads only those lines (JSON, never pickle).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARKER = "@@tracejit-bench@@ "
SCHEMA_VERSION = 1

# NOTE: a sample shorter than this is timed over a loop of calls and divided, so that
# perf_counter's resolution and the loop's own cost stay well below 1% of a figure.
MIN_SAMPLE_S = 0.02
MAX_INNER = 100_000


class NotSupported(Exception):
    """The peer cannot express this workload (yet); reported, not a failure."""


@dataclass
class Case:
    """One timed workload: ``run()`` does one unit of work and returns once the result is
    ready (blocking on asynchronous runtimes)."""

    run: Callable[[], Any]
    check: Callable[[Any], float] | None = None    # first output -> a number to compare
    style: str | None = None                       # W8: "session", "step" or "loop"
    note: str = ""
    # NOTE: None is the workload's own dtype (float32); "bfloat16" marks a variant whose
    # products compute on bfloat16 operands. Ratios and checks compare like with like.
    precision: str | None = None


@dataclass
class Compile:
    """W7: ``fresh()`` returns a new, never-compiled step; its first call compiles."""

    fresh: Callable[[], Callable[[], Any]]
    note: str = ""


@dataclass
class Result:
    workload: str
    peer: str
    variant: str
    status: str = "ok"          # ok | failed | not supported | not installed | n/a
    reason: str = ""
    times_s: list[float] = field(default_factory=list)
    inner: int = 1
    check: float | None = None
    style: str | None = None
    note: str = ""
    precision: str | None = None

    def to_json(self) -> dict:
        out = {"type": "result", **self.__dict__}
        if self.times_s:
            out.update(median_s=statistics.median(self.times_s), min_s=min(self.times_s),
                       max_s=max(self.times_s))
        return out


def error_reason(exc: BaseException) -> str:
    """``Type: first line of the message`` (tracejit puts the user's line on the last
    line of its messages, so the first line is the informative one)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:300]


def time_case(case: Case, repeat: int, warmup: int = 2) -> tuple[list[float], int, float | None]:
    """Warm up, pick the calls per sample, and time ``repeat`` samples.

    Returns (seconds per call for each sample, calls per sample, check value)."""
    first = case.run()
    # NOTE: checked at once: stateful variants (W4, W8) return buffers that later calls
    # overwrite.
    checked = None if case.check is None else float(case.check(first))
    started = time.perf_counter()
    for _ in range(max(warmup - 1, 1)):
        case.run()
    warm = (time.perf_counter() - started) / max(warmup - 1, 1)
    inner = 1 if warm >= MIN_SAMPLE_S else min(MAX_INNER, int(MIN_SAMPLE_S / max(warm, 1e-9)) + 1)
    run = case.run
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(inner):
            run()
        samples.append((time.perf_counter() - started) / inner)
    return samples, inner, checked


def time_compile(compile_case: Compile, repeat: int, warm_calls: int = 3) -> list[float]:
    """W7: for each repeat a fresh step; (first call) - (median of warm calls)."""
    samples = []
    for _ in range(repeat):
        step = compile_case.fresh()
        started = time.perf_counter()
        step()
        first = time.perf_counter() - started
        warm = []
        for _ in range(warm_calls):
            started = time.perf_counter()
            step()
            warm.append(time.perf_counter() - started)
        samples.append(first - statistics.median(warm))
    return samples


def emit(record: dict) -> None:
    sys.stdout.write(MARKER + json.dumps(record) + "\n")
    sys.stdout.flush()


def run_variant(peer: str, workload: str, variant: str, builder, inputs: dict, size: dict,
                repeat: int) -> Result:
    """Build and time one variant; any exception becomes a reported row, never a crash."""
    result = Result(workload, peer, variant)
    try:
        case = builder(inputs, size)
        if isinstance(case, Compile):
            result.note = case.note
            result.times_s = time_compile(case, repeat)
        else:
            result.note, result.style, result.precision = case.note, case.style, case.precision
            result.times_s, result.inner, result.check = time_case(case, repeat)
    except NotSupported as exc:
        result.status, result.reason = "not supported", str(exc)
    except Exception as exc:        # noqa: BLE001 - a peer's failure is a result
        result.status, result.reason = "failed", error_reason(exc)
        traceback.print_exc(file=sys.stderr)
    return result


def w7_repeats(repeat: int) -> int:
    # NOTE: a W7 sample recompiles the whole step (torch.compile takes ~15 s of it), so
    # W7 runs at most 3 repeats whatever --repeat says.
    return max(1, min(repeat, 3))


def w8_repeats(repeat: int) -> int:
    # NOTE: a W8 sample is already 1000 steps; 5 of them give a stable median.
    return max(1, min(repeat, 5))
