"""The fuzzer's command line (run from the repository root):

    python -m tests.fuzz run -n 100000 --seed 1 --workers 2   # what `make fuzz` runs
    python -m tests.fuzz repro --seed 1 --index 42            # one program, in a worker
    python -m tests.fuzz show --seed 1 --index 42             # its source only
    python -m tests.fuzz minimize --seed 1 --index 42         # shrink a failing program
    python -m tests.fuzz check program.py                     # a saved program's source

Exit status 1 when any program failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .generate import generate
from .runner import FAILURES, Session, report, run_programs, worker_env


def _progress(total: int):
    last = [0.0]
    tty = sys.stderr.isatty()

    def show(summary) -> None:
        now = time.monotonic()
        if now - last[0] < (0.5 if tty else 10.0) and summary.programs < total:
            return
        last[0] = now
        end = "\r" if tty and summary.programs < total else "\n"
        sys.stderr.write(f"[{summary.programs}/{total}] {summary.line()}\x1b[K{end}"
                         if tty else f"[{summary.programs}/{total}] {summary.line()}{end}")
        sys.stderr.flush()
    return show


def cmd_run(a) -> int:
    indices = range(a.start, a.start + a.n)
    print(f"fuzz: {a.n} programs of seed {a.seed} (indices {a.start}..{a.start + a.n - 1}), "
          f"{a.workers} workers, {a.deadline:.0f} s deadline each", file=sys.stderr)
    summary = run_programs(a.seed, indices, workers=a.workers, deadline=a.deadline,
                           max_steps=a.max_steps, progress=_progress(a.n), placed=a.placed,
                           device=a.device)
    for outcome in summary.failures:
        print(report(outcome))
    print(f"fuzz summary: {summary.line()}")
    return 0 if summary.ok else 1


def _session_check(a, source: str):
    session = Session(a.deadline, worker_env(a.placed, a.device))
    try:
        return session.check({"source": source, "seed": a.seed, "placed": a.placed,
                              "device": a.device})
    finally:
        session.close()


def cmd_repro(a) -> int:
    program = generate(a.seed, a.index, a.max_steps)
    outcome = _session_check(a, program.source())
    outcome.task = {"seed": a.seed, "index": a.index, "max_steps": a.max_steps,
                    "placed": a.placed, "device": a.device}
    outcome.source = program.source()
    if outcome.status == "ok":
        print(program.source())
        print(f"# seed={a.seed} index={a.index}: compiled and reference agree")
        return 0
    print(report(outcome))
    return 1


def cmd_show(a) -> int:
    print(generate(a.seed, a.index, a.max_steps).source(), end="")
    return 0


def cmd_minimize(a) -> int:
    from .minimize import minimize
    program = generate(a.seed, a.index, a.max_steps)
    outcome = _session_check(a, program.source())
    if outcome.status not in FAILURES:
        print(f"seed={a.seed} index={a.index} does not fail ({outcome.status})")
        return 0
    print(f"seed={a.seed} index={a.index}: {outcome.status}; shrinking", file=sys.stderr)
    small = minimize(program, outcome.status, deadline=a.deadline,
                     log=lambda m: print(m, file=sys.stderr))
    final = _session_check(a, small.source())
    final.task, final.source = {"source": small.source()}, small.source()
    print(report(final))
    return 1


def cmd_check(a) -> int:
    with open(a.file) as fh:
        source = fh.read()
    outcome = _session_check(a, source)
    if outcome.status == "ok":
        print(f"{a.file}: compiled and reference agree")
        return 0
    print(report(outcome))
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, one: bool):
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--max-steps", type=int, default=8, help="ops per program at most")
        p.add_argument("--deadline", type=float, default=20.0,
                       help="seconds a program may take before it counts as a hang")
        p.add_argument("--placed", action="store_true",
                       help="pin the compiled program's steps at random over three CPU "
                            "devices (TRACEJIT_CPU_DEVICES=3)")
        p.add_argument("--device", default=None,
                       help="compile for this device instead of the CPU: gpu runs the "
                            "CUDA backend on numba's simulator (TRACEJIT_GPU=sim)")
        if one:
            p.add_argument("--index", type=int, required=True)

    run = sub.add_parser("run", help="check many programs in parallel workers")
    common(run, False)
    run.add_argument("-n", type=int, default=1000)
    run.add_argument("--start", type=int, default=0, help="first program index")
    run.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    run.set_defaults(fn=cmd_run)
    for name, fn, text in (("repro", cmd_repro, "check one program and print it"),
                           ("show", cmd_show, "print one program's source"),
                           ("minimize", cmd_minimize, "shrink a failing program")):
        p = sub.add_parser(name, help=text)
        common(p, True)
        p.set_defaults(fn=fn)
    check = sub.add_parser("check", help="check a program saved from a report")
    common(check, False)
    check.add_argument("file")
    check.set_defaults(fn=cmd_check)
    a = parser.parse_args(argv)
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
