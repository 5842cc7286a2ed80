"""Smoke tests of the benchmark suite (`tracejit bench`): the protocol, the JSON schema,
the table, and that failures become rows. Timings are never asserted (BENCHMARKS.md:
performance is measured by the suite, not by timed unit tests)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from benchmarks import child, harness, report, runner
from tracejit.cli import main

ROW_KEYS = {"workload", "peer", "variant", "status", "reason", "times_s"}


def test_bench_command_runs_tracejit_and_numpy_at_reduced_size(tmp_path):
    result = CliRunner().invoke(main, [
        "bench", "--only", "W2", "--peers", "numpy", "--quick", "--repeat", "2",
        "--max-wait", "0", "--results", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted(tmp_path.glob("bench-*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert doc["schema"] == harness.SCHEMA_VERSION
    assert {"started", "finished", "settings", "machine", "load", "peers", "workloads",
            "results"} <= set(doc)
    assert {"before", "after", "quiet", "threshold"} <= set(doc["load"])
    from tracejit.codegen_cpu.host import target
    machine = doc["machine"]
    assert machine["cpu"] and machine["llvm_host_cpu"] == target.host_cpu()[0]
    assert machine["compiled_for"] == target.target_cpu()[0]
    assert machine["cpu"] == runner.cpu_identity()["cpu"]
    assert machine["vector_isa"] in ("sse", "avx", "avx2", "avx512")
    assert isinstance(machine["tuning"], dict)
    assert f"— {machine['cpu']} (" in result.output
    assert (f"LLVM host CPU {machine['llvm_host_cpu']}, compiled for "
            f"{machine['compiled_for']}") in result.output
    assert [p["peer"] for p in doc["peers"]] == ["tracejit", "numpy"]
    rows = {r["peer"]: r for r in doc["results"]}
    assert set(rows) == {"tracejit", "numpy"}
    for row in rows.values():
        assert ROW_KEYS <= set(row)
        assert row["workload"] == "W2"
    numpy_row = rows["numpy"]
    assert numpy_row["status"] == "ok"
    assert len(numpy_row["times_s"]) == 2
    assert numpy_row["min"] <= numpy_row["median"] <= numpy_row["max"]
    if rows["tracejit"]["status"] == "ok":
        assert numpy_row["ratio"] > 0
        assert numpy_row["check_ok"] and rows["tracejit"]["check_ok"]
    assert "| W2 | numpy |" in result.output
    assert "peer/tracejit" in result.output
    assert "chart:" in result.output or "no chart" in result.output


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz
stepping\t: 2
flags\t\t: fpu sse2 avx2 hypervisor avx512f

processor\t: 1
model name\t: another core
"""


def test_the_cpu_is_read_as_lscpu_reads_it():
    assert runner.cpu_identity(CPUINFO) == {
        "cpu": "Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz",
        "cpu_id": "GenuineIntel family 6 model 207 stepping 2", "virtual_machine": True}
    bare = runner.cpu_identity("")          # no /proc/cpuinfo: platform's words
    assert bare["cpu"] and bare["cpu_id"] == "" and not bare["virtual_machine"]


def test_every_report_names_the_cpu_compiled_for(tmp_path):
    from tracejit.codegen_cpu.host import target
    with target.compiling_for("haswell", "+prefer-256-bit"):   # compiled, never run here
        machine = runner.machine()
    assert machine["llvm_host_cpu"] == target.host_cpu()[0]
    assert (machine["compiled_for"], machine["requested_cpu"]) == ("haswell", "haswell")
    assert machine["vector_isa"] == "avx2" and machine["prefer_256_bit"]
    doc = {"started": "2026-12-05T06:00:00+00:00", "settings": {"size": "quick", "repeat": 2},
           "machine": machine, "peers": [], "results": [], "workloads": {},
           "load": {"before": [0.1], "after": [0.2], "quiet": True, "threshold": 0.5}}
    text = report.summary(doc)
    assert f"— {machine['cpu']} (" in text
    assert (f"LLVM host CPU {machine['llvm_host_cpu']}, compiled for haswell "
            "(TRACEJIT_CPU=haswell) (avx2, 256-bit vectors preferred, features "
            "+prefer-256-bit)") in text
    saved = json.loads(report.write_json(doc, tmp_path).read_text())["machine"]
    assert {k: saved[k] for k in ("cpu", "cpu_id", "llvm_host_cpu", "compiled_for")} == {
        k: machine[k] for k in ("cpu", "cpu_id", "llvm_host_cpu", "compiled_for")}


def test_a_failing_variant_becomes_a_row_with_its_reason():
    def broken(inputs, size):
        raise ValueError("no such op\n  at user.py:3")
    row = harness.run_variant("numpy", "W1", "numpy", broken, {}, {}, repeat=1)
    assert row.status == "failed"
    assert row.reason == "ValueError: no such op"

    def unsupported(inputs, size):
        raise harness.NotSupported("not yet supported")
    row = harness.run_variant("tracejit", "W5", "tracejit", unsupported, {}, {}, repeat=1)
    assert (row.status, row.reason) == ("not supported", "not yet supported")


def test_a_missing_library_is_reported_as_not_installed(monkeypatch):
    def fail(name):
        raise ModuleNotFoundError("No module named 'jax'", name="jax")
    monkeypatch.setattr(child.importlib, "import_module", fail)
    module, (status, reason) = child._load("jax")
    assert module is None and status == "not installed" and "jax" in reason


def _row(peer, variant, median, check=None, style=None):
    return {"workload": "W8", "peer": peer, "variant": variant, "status": "ok",
            "median_s": median, "min_s": median, "max_s": median, "times_s": [median],
            "check": check, "style": style}


def test_ratios_compare_like_styles_and_checks_catch_wrong_results():
    rows = [_row("tracejit", "tracejit Session.run", 2.0, 0.1, "session"),
            _row("tracejit", "tracejit jit step", 1.0, 0.1, "step"),
            _row("numpy", "numpy step", 0.5, 0.1, "step"),
            _row("tensorflow", "tf1 Session.run", 4.0, 0.1, "session"),
            _row("numba", "numba loop", 0.01, 0.5, "loop")]
    runner.add_derived(rows, "full")
    ratio = {r["variant"]: r["ratio"] for r in rows}
    assert ratio["tf1 Session.run"] == pytest.approx(2.0)     # against tracejit's Session
    assert ratio["numpy step"] == pytest.approx(0.5)          # against tracejit's jit step
    assert ratio["numba loop"] == pytest.approx(0.01)         # no loop style: fastest
    assert [r["check_ok"] for r in rows] == [True, True, True, True, False]
    doc = {"results": rows, "workloads": {"W8": {"unit": "ms"}}}
    assert "CHECK MISMATCH" in report.table(doc)


def test_a_compile_time_below_the_noise_gets_no_ratio():
    rows = [dict(_row("tracejit", "tracejit", -0.01), workload="W7"),
            dict(_row("jax", "jax.jit", 0.3), workload="W7")]
    runner.add_derived(rows, "full")
    assert [r["ratio"] for r in rows] == [None, None]
    assert "below the noise" in rows[0]["note"]
