"""Ahead-of-time builds for this machine: the example program and the shared library
compute what the JIT computes (and, for the dense layer, what NumPy computes in float64),
depend on the C library and libm only, and export the C API and nothing else."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

import tracejit as tj
from tracejit.aot import read_elf
from tracejit.aot.link import ALLOWED_LIBRARIES, allowed_symbol

from .helpers import CC, call_shared, compile_main, needs_cc, run_main, small_cnn

pytestmark = needs_cc
RNG = np.random.default_rng(2016)
API = {"run", "run_buffers", "num_args", "num_results", "arg_bytes", "result_bytes"}


def dense_model():
    w = tj.Variable(RNG.standard_normal((16, 10)).astype(np.float32), name="w")
    b = tj.Variable(RNG.standard_normal(10).astype(np.float32), name="b")

    @tj.jit
    def classify(x):
        return tj.nn.softmax(tj.nn.relu(x @ w + b))

    return classify, w.numpy(), b.numpy()


def test_dense_layer_example_program_matches_jit_and_numpy(tmp_path):
    classify, w, b = dense_model()
    x = RNG.standard_normal((4, 16)).astype(np.float32)
    library = tj.aot.compile(classify, "f32[4,16]", out=tmp_path / "dense")
    assert {p.name for p in library.files.values()} == {
        "dense.o", "dense.so", "dense.h", "main.c", "README"}
    (got,) = run_main(compile_main(library), [x], [np.zeros((4, 10), np.float32)])
    np.testing.assert_allclose(got, np.asarray(classify(x)), rtol=1e-5, atol=1e-6)
    # float64 NumPy, by hand: softmax(relu(x @ w + b))
    z = np.maximum(x.astype(np.float64) @ w + b, 0.0)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_convolution_through_ctypes_matches_jit(tmp_path):
    cnn = small_cnn(RNG, channels=2, filters=8, classes=5)
    x = RNG.standard_normal((3, 8, 8, 2)).astype(np.float32)
    library = tj.aot.compile(cnn, x, out=tmp_path / "cnn")
    status, (got,) = call_shared(library, [x])
    assert status == 0
    np.testing.assert_allclose(got, np.asarray(cnn(x)), rtol=1e-5, atol=1e-5)
    lib = ctypes.CDLL(str(library.shared))
    for query in ("arg_bytes", "result_bytes"):
        getattr(lib, f"cnn_{query}").restype = ctypes.c_size_t
    assert lib.cnn_num_args() == 1 and lib.cnn_num_results() == 1
    assert lib.cnn_arg_bytes(0) == x.nbytes and lib.cnn_result_bytes(0) == 3 * 5 * 4
    assert lib.cnn_arg_bytes(1) == 0 and lib.cnn_result_bytes(-1) == 0
    header = library.files["header"].read_text()
    assert "int cnn_run(const float *x, float *result);" in header
    assert "#define CNN_ARG0_SHAPE {3, 8, 8, 2}" in header


def test_gradient_products_use_every_gemm_variant(tmp_path):
    """The gradients of a convolution and of a matmul need products with either operand
    transposed and accumulating ones (beta = 1): the AOT build's own gemm has them all."""
    def loss(w, v, x):
        y = tj.nn.relu(tj.nn.conv2d(x, w, strides=1, padding="SAME"))
        z = tj.reshape(y, (2, -1)) @ v
        return tj.reduce_sum(tj.tanh(z) ** 2)

    grads = tj.jit(tj.grad(loss, argnums=(0, 1, 2)))
    w = RNG.standard_normal((3, 3, 3, 4)).astype(np.float32)
    v = RNG.standard_normal((6 * 6 * 4, 7)).astype(np.float32) * 0.1
    x = RNG.standard_normal((2, 6, 6, 3)).astype(np.float32)
    library = tj.aot.compile(grads, w, v, x, out=tmp_path / "grads")
    status, got = call_shared(library, [w, v, x])
    assert status == 0
    for mine, jit in zip(got, grads(w, v, x), strict=True):
        np.testing.assert_allclose(mine, np.asarray(jit), rtol=1e-4, atol=1e-5)


def test_library_needs_only_libc_and_libm_and_exports_only_its_api(tmp_path):
    library = tj.aot.compile(small_cnn(RNG, channels=2), "f32[1,8,8,2]", out=tmp_path / "small")
    elf = read_elf(library.shared.read_bytes())
    assert set(elf.needed) <= ALLOWED_LIBRARIES
    assert all(allowed_symbol(s) for s in elf.undefined())
    assert elf.exported() == {f"small_{f}" for f in API}
    obj = read_elf(library.object.read_bytes())
    assert all(allowed_symbol(s) for s in obj.undefined())
    if shutil.which("readelf"):     # binutils agrees with our reader
        text = subprocess.run(["readelf", "-d", str(library.shared)], capture_output=True,
                              text=True, check=True).stdout
        needed = {line.split("[")[1].rstrip("]") for line in text.splitlines()
                  if "(NEEDED)" in line}
        assert needed == set(elf.needed)
    if shutil.which("ldd"):
        text = subprocess.run(["ldd", str(library.shared)], capture_output=True,
                              text=True).stdout
        libraries = {line.split()[0] for line in text.splitlines() if line.strip()}
        assert libraries - {"linux-vdso.so.1", "statically"} <= ALLOWED_LIBRARIES | {
            "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"}


def test_weights_baked_in_or_loaded_from_a_file(tmp_path):
    classify, w, _ = dense_model()
    x = RNG.standard_normal((4, 16)).astype(np.float32)
    expected = np.asarray(classify(x))
    embedded = tj.aot.compile(classify, x, out=tmp_path / "a" / "embedded")
    library = tj.aot.compile(classify, x, out=tmp_path / "b" / "filed", weights="file")
    weights = library.files["weights"]
    assert w.tobytes() not in library.object.read_bytes()
    assert w.tobytes() in weights.read_bytes()
    assert embedded.weights_bytes == library.weights_bytes >= w.nbytes
    (got,) = run_main(compile_main(library), [x], [expected], weights=weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    lib = ctypes.CDLL(str(library.shared))
    status, _ = call_shared(library, [x])
    assert status == -3             # FILED_ERROR_NO_WEIGHTS: nothing loaded yet
    assert lib.filed_load_weights(str(tmp_path / "nowhere").encode()) == -1
    assert lib.filed_load_weights(str(embedded.object).encode()) == -2
    data = weights.read_bytes()
    buffer = np.zeros(len(data) + 64, np.uint8)
    start = -buffer.ctypes.data % 64
    aligned = buffer[start:start + len(data)]
    aligned[:] = np.frombuffer(data, np.uint8)
    lib.filed_set_weights.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    assert lib.filed_set_weights(aligned.ctypes.data + 0, len(data) - 1) == -2
    assert lib.filed_set_weights(buffer[start + 1:].ctypes.data, len(data)) == -4
    assert lib.filed_set_weights(aligned.ctypes.data, len(data)) == 0
    outs = np.zeros_like(expected)
    assert lib.filed_run(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(outs.ctypes.data)) == 0
    np.testing.assert_allclose(outs, expected, rtol=1e-5, atol=1e-6)


def test_embedded_weights_are_data_of_the_object(tmp_path):
    """Weights too many for LLVM to fold into the code (it makes immediates of a small
    layer's) sit in the object as they are; with weights="file" they do not."""
    w = tj.Variable(RNG.standard_normal((64, 96)).astype(np.float32), name="w")
    f = tj.jit(lambda x: tj.tanh(x @ w))
    embedded = tj.aot.compile(f, "f32[8,64]", out=tmp_path / "a" / "big")
    filed = tj.aot.compile(f, "f32[8,64]", out=tmp_path / "b" / "big", weights="file")
    assert w.numpy().tobytes() in embedded.object.read_bytes()
    assert w.numpy().tobytes() not in filed.object.read_bytes()


def test_a_function_whose_results_read_a_variable_it_assigns_is_refused(tmp_path):
    counter = tj.Variable(np.float32(0), name="counter")

    @tj.jit
    def step(x):
        counter.assign_add(1.0)
        return x * counter

    with pytest.raises(tj.aot.FreezeError, match="assigns the variable.*counter"):
        tj.aot.compile(step, "f32[3]", out=tmp_path / "step")


@needs_cc
def test_an_assignment_no_result_reads_is_dropped(tmp_path):
    """As dropout's random counter in an inference graph: advanced, never read."""
    counter = tj.Variable(np.float32(5), name="counter")
    scale = tj.Variable(np.float32(3), name="scale")

    @tj.jit
    def step(x):
        counter.assign_add(1.0)
        return x * scale

    library = tj.aot.compile(step, "f32[3]", out=tmp_path / "step")
    status, (got,) = call_shared(library, [np.array([1, 2, 3], np.float32)])
    assert status == 0 and got.tolist() == [3.0, 6.0, 9.0]
    assert counter.numpy() == 5.0           # building ran nothing


def test_bad_arguments_get_clear_errors(tmp_path):
    classify, _, _ = dense_model()
    with pytest.raises(ValueError, match="not a type like f32"):
        tj.aot.compile(classify, "f32[4,16", out=tmp_path / "x")
    with pytest.raises(ValueError, match="unknown target 'sparc'"):
        tj.aot.compile(classify, "f32[4,16]", out=tmp_path / "x", target="sparc")
    with pytest.raises(ValueError, match="not a C identifier"):
        tj.aot.compile(classify, "f32[4,16]", out=tmp_path / "my-model")
    with pytest.raises(ValueError, match="weights='zip'"):
        tj.aot.compile(classify, "f32[4,16]", out=tmp_path / "x", weights="zip")


def test_cc_is_what_links(tmp_path):
    library = tj.aot.compile(dense_model()[0], "f32[1,16]", out=tmp_path / "linked")
    assert CC is not None and library.shared is not None and library.note == ""
    assert "linked with" in library.files["readme"].read_text()


def test_loops_conditions_and_other_dtypes(tmp_path):
    """A fori_loop and a cond compiled into the library; int32, float64 and bool
    buffers in the C API."""
    def f(x, n, y):
        shift = tj.cast(tj.reduce_sum(n), tj.float32)
        total = tj.fori_loop(0, 5, lambda i, acc: acc * 0.5 + shift, x)
        picked = tj.cond(tj.reduce_sum(total) > 0, lambda: total + 1.0, lambda: total - 1.0)
        return picked, n * 3, y > 0.5

    jitted = tj.jit(f)
    x = RNG.standard_normal(6).astype(np.float32)
    n = np.array([1, -2, 3], np.int32)
    y = RNG.random(4)
    library = tj.aot.compile(jitted, x, n, y, out=tmp_path / "mixed")
    assert [r.c_type for r in library.results] == ["float", "int32_t", "uint8_t"]
    assert ("int mixed_run(const float *x, const int32_t *n, const double *y, float *result0, "
            "int32_t *result1, uint8_t *result2);") in library.files["header"].read_text()
    status, got = call_shared(library, [x, n, y])
    assert status == 0
    for mine, jit in zip(got, jitted(x, n, y), strict=True):
        np.testing.assert_allclose(mine, np.asarray(jit), rtol=1e-6)
