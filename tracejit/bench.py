"""``tracejit bench``: run the benchmark suite (W1-W9, ../shared/BENCHMARKS.md) with
tracejit and every installed peer, print the table, write JSON and a PNG chart.

The suite itself lives in the source tree's ``benchmarks/`` package (it is not part of
the installed library: it imports the peers, which tracejit never needs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def _load_suite():
    """Import benchmarks.runner and benchmarks.report from the source checkout."""
    if not (_SOURCE_ROOT / "benchmarks" / "runner.py").is_file():
        raise click.ClickException(
            f"the benchmark suite is not in {_SOURCE_ROOT}: `tracejit bench` runs from a "
            "source checkout (pip install -e .)")
    if str(_SOURCE_ROOT) not in sys.path:
        sys.path.insert(0, str(_SOURCE_ROOT))
    from benchmarks import report, runner
    from benchmarks.workloads import WORKLOADS
    return runner, report, WORKLOADS


def _split(value: str | None, known, what: str) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in known]
    if unknown:
        raise click.BadParameter(f"unknown {what} {', '.join(unknown)}; choose from "
                                 f"{', '.join(known)}")
    return items


@click.command("bench")
@click.option("--only", metavar="W1,W3", help="Run only these workloads (default: W1-W10).")
@click.option("--peers", metavar="numpy,jax,...",
              help="Peers to run beside tracejit (default: all; missing ones are reported).")
@click.option("--repeat", type=click.IntRange(1), default=10, show_default=True,
              help="Timed repeats per workload (W7 runs at most 3, W8 at most 5).")
@click.option("--quick", is_flag=True, help="Reduced sizes: a fast look, not comparable "
                                            "with full-size figures.")
@click.option("--max-wait", type=click.FloatRange(0), default=60.0, show_default=True,
              help="Seconds to wait for a quiet machine (1-minute load) before measuring.")
@click.option("--timeout", type=click.FloatRange(1), default=1800.0, show_default=True,
              help="Seconds one peer's process may run before it is stopped.")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results"), show_default=True,
              help="Folder for the JSON results and the PNG chart.")
@click.option("--no-chart", is_flag=True, help="Skip the PNG chart.")
def bench_command(only, peers, repeat, quick, max_wait, timeout, results_dir, no_chart):
    """Run the benchmark suite: tracejit and the peers side by side, one process each.

    The ratio column is peer / tracejit: above 1 means tracejit is faster."""
    runner, report, workloads_table = _load_suite()
    workloads = _split(only and only.upper(), list(workloads_table), "workloads") or \
        list(workloads_table)
    peer_list = _split(peers, ["tracejit", *runner.PEERS], "peers")
    peer_list = runner.PEERS if peer_list is None else [p for p in peer_list if p != "tracejit"]
    doc = runner.run_suite(workloads, peer_list, repeat=repeat,
                           size="quick" if quick else "full", max_wait_s=max_wait,
                           timeout_s=timeout, echo=lambda text: click.echo(text, err=True))
    json_path = report.write_json(doc, results_dir)
    click.echo("")
    click.echo(report.summary(doc))
    click.echo("")
    click.echo(report.table(doc))
    click.echo("")
    click.echo(f"results: {json_path}")
    if not no_chart:
        chart, why = report.write_chart(doc, results_dir)
        click.echo(f"chart: {chart}" if chart else why)
