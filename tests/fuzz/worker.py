"""A fuzz worker: reads tasks, one JSON object a line, on stdin; answers each with one
JSON line on stdout. Run by the runner as ``python -m tests.fuzz.worker``; it may be
killed at any time (that is how a hang ends).

A task is ``{"seed": s, "index": i, "max_steps": n}`` (generate and check program i of
seed s) or ``{"source": text, "seed": s}`` (check a rendered program, as the minimizer
does). The answer is check.py's outcome plus ``"source"`` for failures.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    # NOTE: the answers own stdout; anything else printed (a warning, a stray print in
    # the compiler) goes to stderr, which the runner keeps for crash reports.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    from .check import check_source
    from .generate import generate
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        if "source" in task:
            source = task["source"]
        else:
            source = generate(task["seed"], task["index"], task.get("max_steps", 8)).source()
        try:
            result = check_source(source, task.get("seed", 0), task.get("placed", False),
                                  task.get("device"))
        except Exception as exc:        # a program the generator should not have made
            result = {"status": "invalid", "detail": f"{type(exc).__name__}: {exc}"}
        if result["status"] != "ok":
            result["source"] = source
        out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
