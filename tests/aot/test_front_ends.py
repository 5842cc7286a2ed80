"""The ways into an ahead-of-time build: ``tracejit aot`` on the command line and
``tj.aot.compile_session`` for a TF1 graph (compared with ``Session.run``)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import tracejit as tj
import tracejit.compat.v1 as tf
from tracejit.cli import main

from .helpers import call_shared, needs_cc

RNG = np.random.default_rng(11)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent("""
        import numpy as np
        import tracejit as tj

        W = tj.Variable(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, name="W")

        def predict(x):
            return tj.nn.softmax(tj.nn.relu(x @ W))

        def scaled(x, factor):
            return x * factor
    """))
    return path


@needs_cc
def test_cli_builds_a_library_that_computes_the_function(model_file, tmp_path):
    out = tmp_path / "build" / "predict"
    result = CliRunner().invoke(main, ["aot", f"{model_file}:predict", "--arg", "f32[2,4]",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("predict.o", "predict.so", "predict.h", "main.c", "README"):
        assert f"wrote {out.parent / name}" in result.output
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    library = type("Built", (), {"shared": out.with_suffix(".so"), "name": "predict",
                                 "results": [tj.aot.Buffer("result", (2, 3), "float32", 4)]})
    status, (got,) = call_shared(library, [x])
    z = np.maximum(x.astype(np.float64) @ (np.arange(12).reshape(4, 3) / 10), 0)
    e = np.exp(z - z.max(axis=1, keepdims=True))    # by hand: softmax(relu(x @ W))
    assert status == 0
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), rtol=1e-5)


def test_cli_static_arguments_and_cross_targets(model_file, tmp_path):
    out = tmp_path / "scaled"
    result = CliRunner().invoke(main, ["aot", f"{model_file}:scaled", "--arg", "f32[5]",
                                       "--static", "factor=3.0", "--target",
                                       "aarch64-linux-gnu", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert tj.aot.read_elf(out.with_suffix(".o").read_bytes()).machine == 183


@pytest.mark.parametrize("args, message", [
    (["--arg", "f32[2,4"], "'f32[2,4' is not a type like f32[128,784]"),
    (["--arg", "q7[2]"], "q7"),
    (["--arg", "f32[2,4]", "--target", "mips"], "unknown target 'mips'"),
    (["--arg", "f32[2,4]", "--target", "x86-64-v3", "--cpu", "znver4"], "CPU level already"),
    ([], "give the type of each argument"),
])
def test_cli_bad_arguments_are_clear_errors(model_file, tmp_path, args, message):
    result = CliRunner().invoke(main, ["aot", f"{model_file}:predict", *args,
                                       "-o", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "p.o").exists()


def test_cli_a_missing_function_is_named(model_file, tmp_path):
    result = CliRunner().invoke(main, ["aot", f"{model_file}:nothing", "--arg", "f32[1]",
                                       "-o", str(tmp_path / "p")])
    assert result.exit_code == 2 and "has no function 'nothing'" in result.output


def _tf1_graph():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 6], name="features")
        w = tf.get_variable("w", initializer=RNG.standard_normal((6, 4)).astype(np.float32))
        b = tf.get_variable("b", initializer=RNG.standard_normal(4).astype(np.float32))
        logits = tf.nn.bias_add(tf.matmul(x, w), b, name="logits")
        probabilities = tf.nn.softmax(logits, name="probabilities")
        init = tf.global_variables_initializer()
    return graph, x, logits, probabilities, init


@needs_cc
def test_compile_session_matches_session_run(tmp_path):
    graph, x, logits, probabilities, init = _tf1_graph()
    batch = RNG.standard_normal((3, 6)).astype(np.float32)
    with tf.Session(graph=graph) as sess:
        sess.run(init)
        expected = sess.run([logits, probabilities], {x: batch})
        library = tj.aot.compile_session(sess, [logits, probabilities], {x: "f32[3,6]"},
                                         out=tmp_path / "classifier")
    assert [a.name for a in library.args] == ["features"]
    assert [r.name for r in library.results] == ["logits", "probabilities"]
    status, got = call_shared(library, [batch])
    assert status == 0
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_compile_session_errors(tmp_path):
    graph, x, logits, _, init = _tf1_graph()
    with tf.Session(graph=graph) as sess:
        with pytest.raises(tf.errors.FailedPreconditionError):
            tj.aot.compile_session(sess, logits, [x], out=tmp_path / "a")
        sess.run(init)
        with pytest.raises(ValueError, match=r"feed features:0 has shape \(\?, 6\): .*"
                                             r"feeds=\{features: 'f32\[1,6\]'\}"):
            tj.aot.compile_session(sess, logits, [x], out=tmp_path / "a")
        with pytest.raises(tf.errors.InvalidArgumentError, match="must feed a value"):
            tj.aot.compile_session(sess, logits, [], out=tmp_path / "a")


def test_a_graph_that_prints_cannot_be_built(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [2], name="x")
        y = tf.Print(x * 2.0, [x], "x is ")
    with tf.Session(graph=graph) as sess:
        with pytest.raises(tj.aot.LinkError, match="tj_host_callback .*tf.Print"):
            tj.aot.compile_session(sess, y, [x], out=tmp_path / "printer")
    assert not (tmp_path / "printer.o").exists()
