"""`tracejit ir` end to end, through click's runner."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tracejit.cli import main
from tracejit.ir.parser import parse_graph

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_ir_prints_parseable_traced_graph():
    result = run("ir", f"{EXAMPLES}/mlp.py:predict", "--arg", "f32[784,128]", "--arg", "f32[128]",
                 "--arg", "f32[128,10]", "--arg", "f32[10]", "--arg", "f32[32,784]")
    assert result.exit_code == 0, result.output
    assert "matmul" in result.output and "f32[32,10]" in result.output
    graph = parse_graph(result.output)
    assert [v.shape for v in graph.inputs][-1] == (32, 784)


def test_ir_static_argument(tmp_path):
    source = tmp_path / "prog.py"
    source.write_text("import tracejit as tj\n\ndef f(x, n):\n    return x * n\n")
    result = run("ir", f"{source}:f", "--arg", "i32[3]", "--static", "n=4")
    assert result.exit_code == 0, result.output
    assert "array(i32[], [4])" in result.output


def test_ir_bad_type_spec_and_target(tmp_path):
    result = CliRunner().invoke(main, ["ir", f"{EXAMPLES}/mlp.py:predict", "--arg", "f99[3]"])
    assert result.exit_code != 0 and "unsupported dtype" in result.output
    result = CliRunner().invoke(main, ["ir", f"{EXAMPLES}/mlp.py:nothing"])
    assert result.exit_code != 0 and "no function 'nothing'" in result.output
    result = CliRunner().invoke(main, ["ir", "missing.py:f"])
    assert result.exit_code != 0 and "no such file" in result.output


# ---- tracejit cache -------------------------------------------------------------------------


def _entry(folder, key: str) -> None:
    shard = folder / key[:2]
    shard.mkdir(parents=True, exist_ok=True)
    (shard / f"{key}.o").write_bytes(b"x" * 2048)
    (shard / f"{key}.json").write_text("{}")


def test_cache_info_and_clear(tmp_path, monkeypatch):
    from tracejit.codegen_cpu.host import cache_budget, tuning
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TRACEJIT_CACHE_MAX", "1G")
    tuning.forget()
    try:
        _entry(tmp_path, "ab12")
        _entry(tmp_path, "cd34")
        size = cache_budget.usage(tmp_path).bytes
        tuning.choose("demo/cli", {"a": lambda: None, "b": lambda: None}, "a")
        info = run("cache", "info")
        assert info.exit_code == 0, info.output
        assert f"compile cache: {tmp_path}" in info.output
        assert f"entries: 2, {size / 2 ** 20:.1f} MiB" in info.output
        assert "cap: 1024.0 MiB (TRACEJIT_CACHE_MAX)" in info.output
        assert "tuning record:" in info.output and "1 decisions" in info.output
        cleared = run("cache", "clear")
        assert cleared.exit_code == 0, cleared.output
        assert f"removed 2 entries ({size / 2 ** 20:.1f} MiB) from {tmp_path}" in cleared.output
        assert cache_budget.usage(tmp_path).entries == 0 and not tuning.decisions()
        assert "entries: 0, 0.0 MiB" in run("cache", "info").output
        monkeypatch.setenv("TRACEJIT_CACHE_MAX", "off")
        assert "cap: none" in run("cache", "info").output
    finally:
        tuning.forget()


def test_cache_info_with_a_bad_cap_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TRACEJIT_CACHE_MAX", "huge")
    bad = CliRunner().invoke(main, ["cache", "info"])
    assert bad.exit_code != 0 and "TRACEJIT_CACHE_MAX='huge'" in bad.output


def test_cache_commands_with_the_disk_cache_off(monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", "off")
    assert "off" in run("cache", "info").output
    assert "nothing on disk" in run("cache", "clear").output


def test_compat_report_counts_tensorflow_names_by_module():
    from click.testing import CliRunner

    from tracejit.cli import main
    result = CliRunner().invoke(main, ["compat-report"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "TensorFlow" in lines[0]
    errors = next(line for line in lines if line.split()[0] == "tf.errors")
    done, total = int(errors.split()[1]), int(errors.split()[3])
    assert total >= 30 and done >= total - 2
    assert lines[-1].split()[0] == "all"
    missing = CliRunner().invoke(main, ["compat-report", "--missing", "tf.nn"])
    assert missing.exit_code == 0 and "tf.nn.conv2d\n" not in missing.output
    bad = CliRunner().invoke(main, ["compat-report", "--missing", "tf.nope"])
    assert bad.exit_code != 0 and "no module 'tf.nope'" in bad.output


def test_ir_stages_lists_the_pipeline_and_every_stage_is_a_choice():
    from tracejit.codegen_cpu.pipeline import CPU_PASSES
    from tracejit.passes.pipeline import CLEANUP

    PIPELINE = CLEANUP + CPU_PASSES
    result = run("ir", "--stages")
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines()[:-1]]
    assert listed == ["traced", *(name for name, _ in PIPELINE)]
    mlp = [f"{EXAMPLES}/mlp.py:predict", "--arg", "f32[784,128]", "--arg", "f32[128]",
           "--arg", "f32[128,10]", "--arg", "f32[10]", "--arg", "f32[32,784]"]
    for name, _ in PIPELINE:   # each pass's stage prints (cli.py once imported a name
        result = run("ir", *mlp, "--stage", name)   # that did not exist: two choices)
        assert result.exit_code == 0, (name, result.output)
        assert "matmul" in result.output or "kernel" in result.output
    result = CliRunner().invoke(main, ["ir", *mlp, "--stage", "no_such_pass"])
    assert result.exit_code != 0 and "fuse_kernels" in result.output


def test_ir_partitioned_prints_the_stages_and_transfers(tmp_path, monkeypatch):
    source = tmp_path / "split.py"
    source.write_text("import tracejit as tj\n\ndef f(x, w):\n"
                      "    with tj.device('/cpu:1'):\n        h = tj.tanh(x @ w)\n"
                      "    return tj.reduce_sum(h)\n")
    args = ["ir", f"{source}:f", "--arg", "f32[4,3]", "--arg", "f32[3,2]",
            "--stage", "partitioned"]
    monkeypatch.setenv("TRACEJIT_CPU_DEVICES", "2")
    out = run(*args).output
    assert "# 2 stage(s) on 2 device(s); 1 transfer(s)" in out
    assert "send %d as /job:localhost/replica:0/task:0/device:CPU:1;" in out
    assert "<- recv /job:localhost/replica:0/task:0/device:CPU:1;" in out
    monkeypatch.setenv("TRACEJIT_CPU_DEVICES", "1")
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code != 0 and "no /device:CPU:1 in this process" in missing.output


def test_ir_optimized_stage_shows_loop_regions(tmp_path):
    source = tmp_path / "loop.py"
    source.write_text("import tracejit as tj\n\n"
                      "def f(w, x):\n"
                      "    return tj.fori_loop(0, 8, lambda i, v: v * tj.exp(w) + 1.0, x)\n")
    result = run("ir", f"{source}:f", "--arg", "f32[3]", "--arg", "f32[3]",
                 "--stage", "optimized")
    assert result.exit_code == 0, result.output
    graph = parse_graph(result.output)
    assert [e.op.name for e in graph.eqns] == ["exp", "scan"]      # exp(w) hoisted
    assert "func scan_body(" in result.output and "length=8" in result.output
