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
