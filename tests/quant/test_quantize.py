"""Post-training int8 quantization (tracejit/quant): its numbers derived by hand, the
quantized program against a NumPy model of the same integer arithmetic, its error
against float32, new batch sizes, the weights' snapshot, the TF1 helper, misuse."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.ir import ops
from tracejit.quant import QuantizationError, activation_params, quantize_weights


def test_activation_params_by_hand():
    # [0, 1]: 255 steps of 1/255, 0 at the lowest level
    p = activation_params(0.0, 1.0)
    assert p.scale == pytest.approx(1 / 255, rel=1e-7) and p.zero_point == -128
    # [-1, 1]: zero point round(-128 + 1 / (2/255)) = round(-0.5) = 0 (ties to even)
    p = activation_params(-1.0, 1.0)
    assert p.scale == pytest.approx(2 / 255, rel=1e-7) and p.zero_point == 0
    # a range without 0 is widened to hold it: [2, 5] -> [0, 5]
    p = activation_params(2.0, 5.0)
    assert p.scale == pytest.approx(5 / 255, rel=1e-7) and p.zero_point == -128
    # [-3, -1] -> [-3, 0]: 0 is the top level
    p = activation_params(-3.0, -1.0)
    assert p.zero_point == 127 and p.quantize(np.float32([0.0, -3.0])).tolist() == [127, -128]
    assert activation_params(0.0, 0.0).scale == 1.0
    with pytest.raises(ValueError, match="non-finite"):
        activation_params(0.0, np.inf)


def test_weights_are_symmetric_per_output_channel():
    w = np.float32([[1.0, -2.0], [0.5, 4.0], [0.0, 0.0]])
    q, scales = quantize_weights(w)
    np.testing.assert_allclose(scales, [1 / 127, 4 / 127], rtol=1e-6)
    # -2 / (4/127) = -63.5 -> -64 and 0.5 / (1/127) = 63.5 -> 64: ties to even
    assert q.tolist() == [[127, -64], [64, 127], [0, 0]] and q.dtype == np.int8
    q, scales = quantize_weights(np.zeros((3, 2), np.float32))
    assert (q == 0).all() and (scales == 1).all()


def _conv_model(rng):
    w1 = tj.Variable(rng.normal(0, 0.5, (3, 3, 2, 4)).astype(np.float32))
    b1 = tj.Variable(rng.normal(0, 0.1, 4).astype(np.float32))
    w2 = tj.Variable(rng.normal(0, 0.3, (4 * 4 * 4, 5)).astype(np.float32))

    def f(x):
        h = tj.nn.relu(tj.nn.conv2d(x, w1, 1, "SAME") + b1)
        return tj.reshape(h, (-1, 64)) @ w2
    return f, (w1, b1, w2)


def _int8_model(x, w1, b1, w2, p1, p2):
    """The quantized program in NumPy: int8 operands, exact integer sums (the image
    padded with the zero point), the per-channel rescale, the float ops between."""
    q1, s1 = quantize_weights(w1)
    xq = p1.quantize(x).astype(np.int64)
    padded = np.pad(xq, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=p1.zero_point)
    acc = np.zeros(x.shape[:3] + (4,), np.int64)
    for i in range(3):
        for j in range(3):
            acc += np.einsum("nhwc,co->nhwo", padded[:, i:i + 4, j:j + 4], q1[i, j])
    acc -= p1.zero_point * q1.astype(np.int64).sum(axis=(0, 1, 2))
    h = np.maximum(acc.astype(np.float32) * np.float32(p1.scale) * s1 + b1, 0)
    q2, s2 = quantize_weights(w2)
    hq = p2.quantize(h.reshape(-1, 64)).astype(np.int64)
    acc2 = hq @ q2 - p2.zero_point * q2.astype(np.int64).sum(axis=0)
    return acc2.astype(np.float32) * np.float32(p2.scale) * s2


def test_the_int8_program_is_the_integer_arithmetic_and_close_to_float32():
    rng = np.random.default_rng(0)
    f, weights = _conv_model(rng)
    x = rng.uniform(-1, 1, (16, 4, 4, 2)).astype(np.float32)
    q = tj.quantize(f, [x[:8], x[8:]])
    sites = q.quantization.sites
    assert len(sites) == 2 and "conv2d" in sites[0].describe and "matmul" in sites[1].describe
    # calibration saw x in about [-1, 1] and the ReLU's output in [0, max]
    assert sites[0].low == pytest.approx(float(x.min())) and sites[1].low == 0.0
    got = np.asarray(q(x))
    want = _int8_model(x, *(np.asarray(w) for w in weights), sites[0].params,
                       sites[1].params)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    exact = np.asarray(f(x))
    assert np.abs(got - exact).max() < 0.03 * np.abs(exact).max()
    graph = q.compile_log[-1].graph
    names = {e.op.name for e in graph.eqns}
    assert {"int8_conv2d", "int8_matmul"} <= names and not names & {"conv2d", "matmul"}


def test_other_batch_sizes_and_the_weights_snapshot():
    rng = np.random.default_rng(1)
    f, (w1, _, _) = _conv_model(rng)
    x = rng.uniform(-1, 1, (12, 4, 4, 2)).astype(np.float32)
    q = tj.quantize(tj.jit(f), x)
    whole = np.asarray(q(x))
    np.testing.assert_array_equal(np.asarray(q(x[:5])), whole[:5])     # a new trace
    w1.assign(np.zeros((3, 3, 2, 4), np.float32))
    # the quantized function keeps the weights quantize saw, in every new trace too
    np.testing.assert_array_equal(np.asarray(q(x[:3])), whole[:3])
    assert not np.allclose(np.asarray(f(x)), whole, atol=0.05)       # the float one moved


def test_percentile_ranges_clip_outliers():
    rng = np.random.default_rng(2)
    w = tj.Variable(np.eye(3, dtype=np.float32))
    x = rng.normal(0, 1, (2000, 3)).astype(np.float32)
    x[0, 0] = 1000.0                                   # one outlier
    minmax = tj.quantize(lambda v: v @ w, x).quantization.sites[0]
    clipped = tj.quantize(lambda v: v @ w, x, method="percentile",
                          percentile=99.9).quantization.sites[0]
    assert minmax.high == 1000.0 and clipped.high < 5.0
    with pytest.raises(ValueError, match="unknown calibration method"):
        tj.quantize(lambda v: v @ w, x, method="entropy")


def test_misuse_is_reported():
    w = tj.Variable(np.ones((3, 2), np.float32))
    with pytest.raises(QuantizationError, match="calibration_data is empty"):
        tj.quantize(lambda v: v @ w, [])
    counter = tj.Variable(np.float32(0))

    def counts(v):
        counter.assign_add(1.0)
        return v @ w * counter
    with pytest.raises(QuantizationError, match="assigns the variable"):
        tj.quantize(counts, np.ones((4, 3), np.float32))


def test_a_tf1_graph_through_quantize_session():
    import tracejit.compat.v1 as tf
    rng = np.random.default_rng(3)
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 6, 6, 1], name="images")
        h = tf.layers.conv2d(x, 4, 3, padding="same", activation=tf.nn.relu)
        logits = tf.layers.dense(tf.reshape(h, [-1, 6 * 6 * 4]), 3)
        sess = tf.Session()
        sess.run(tf.global_variables_initializer())
    data = rng.uniform(0, 1, (20, 6, 6, 1)).astype(np.float32)
    q = tj.quantize_session(sess, [logits], [x], [{x: data[:10]}, {"images:0": data[10:]}])
    assert len(q.quantization.sites) == 2
    (got,) = q(data)
    want = sess.run(logits, {x: data})
    assert np.abs(np.asarray(got) - want).max() < 0.03 * np.abs(want).max()
    assert any(e.op is ops.INT8_CONV2D for e in q.compile_log[-1].graph.eqns)
    with pytest.raises(QuantizationError, match="does not feed images:0"):
        tj.quantize_session(sess, [logits], [x], [{}])


def test_docstring_examples():
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module("tracejit.quant.api"))
    assert result.attempted >= 8
    assert not result.failed


def test_the_int8_program_builds_ahead_of_time(tmp_path):
    """A quantized function is an ordinary program: tj.aot builds it into a library with
    its own 8-bit kernels (no runtime library), whose results are the JIT's."""
    import shutil
    import subprocess

    import tracejit.aot
    from tests.aot.helpers import call_shared, small_cnn
    rng = np.random.default_rng(5)
    cnn = small_cnn(rng)
    x = rng.uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)
    q = tj.quantize(cnn, x)
    library = tracejit.aot.compile(q, x[:2], out=tmp_path / "qcnn")
    status, (got,) = call_shared(library, [x[:2]])
    assert status == 0
    np.testing.assert_allclose(got, np.asarray(q(x[:2])), rtol=1e-5, atol=1e-6)
    assert b"tj_pk_gemm_" in library.object.read_bytes()   # the kernel, in the object
    if shutil.which("nm"):
        undefined = subprocess.run(["nm", "-u", str(library.shared)], capture_output=True,
                                   text=True, check=True).stdout
        assert "tj_pk_" not in undefined
