"""Eager mode: functions called outside jit on concrete values run at once and return
tracejit Arrays that NumPy accepts; their errors name the user's line, the op and shapes."""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest

import tracejit as tj


def line_of(marker: str) -> int:
    """The line number of this file's line containing ``marker``."""
    with open(__file__) as source:
        return next(number for number, text in enumerate(source, start=1)
                    if marker in text and "line_of(" not in text)


def test_eager_results_are_arrays_numpy_accepts():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = tj.tanh(x) * 2.0
    assert isinstance(out, tj.Array) and isinstance(out, tj.Tensor)
    as_numpy = np.asarray(out)
    assert type(as_numpy) is np.ndarray and as_numpy.dtype == np.float32
    np.testing.assert_allclose(as_numpy, np.tanh(x) * 2, rtol=1e-6)
    assert type(out.numpy()) is np.ndarray
    np.testing.assert_array_equal(out.numpy(), as_numpy)
    assert np.asarray(out, dtype=np.float64).dtype == np.float64
    copy = np.array(out, copy=True)
    copy[0, 0] = 99.0
    assert float(out[0, 0]) == 0.0
    assert float(np.sum(out)) == pytest.approx(float(np.sum(np.tanh(x) * 2)), rel=1e-6)
    assert type(np.exp(out)) is np.ndarray                 # ufuncs take Arrays through __array__
    np.testing.assert_allclose(np.concatenate([out, x]), np.concatenate([as_numpy, x]))
    assert out.tolist() == as_numpy.tolist()


def test_scalar_conversions_repr_and_format():
    s = tj.reduce_sum(np.array([1.25, 1.25], np.float32))
    assert s.shape == () and s.dtype == tj.float32
    assert float(s) == 2.5 and int(s) == 2 and bool(s) and s.item() == 2.5
    assert f"{s:.3f}" == "2.500"
    assert range(5)[tj.constant(np.int32(3))] == 3            # __index__
    assert repr(s) == "Array(2.5, dtype=float32)"
    assert repr(tj.add(1, 2)) == "Array(3, dtype=int32, weak)"
    text = repr(tj.constant(np.arange(4).reshape(2, 2)))
    assert text.startswith("Array([[0, 1],") and text.endswith("dtype=int64)")
    assert "bfloat16" in repr(tj.cast([1.0], tj.bfloat16))
    assert np.asarray(tj.cast([1.0], tj.bfloat16)).dtype == ml_dtypes.bfloat16


def test_iterating_an_eager_array():
    x = np.arange(6, dtype=np.int32).reshape(3, 2)
    rows = list(tj.constant(x))
    assert len(rows) == 3 and all(isinstance(r, tj.Array) for r in rows)
    for row, expected in zip(rows, x, strict=True):
        np.testing.assert_array_equal(row, expected)
    assert [int(v) for v in tj.range(4)] == [0, 1, 2, 3]
    a, b = tj.constant(np.array([1.0, 2.0], np.float32))
    assert (float(a), float(b)) == (1.0, 2.0)
    assert list(tj.zeros((0, 3))) == []
    scalar = tj.constant(np.float32(1.0))
    with pytest.raises(TypeError, match="0-d"):
        len(scalar)
    with pytest.raises(TypeError):
        iter(scalar).__next__()


def test_eager_ops_leave_inputs_unchanged_and_mix_with_jit():
    x = np.arange(4, dtype=np.float32)
    before = x.copy()
    tj.reverse(x, [0])
    tj.reshape(x, (2, 2))
    np.testing.assert_array_equal(x, before)
    f = tj.jit(lambda a, b: a * b + 1.0)
    eager = tj.constant(x) * 2.0
    jitted = f(eager, eager)                                  # eager Arrays into jit
    assert isinstance(jitted, tj.Array)
    np.testing.assert_array_equal(tj.sqrt(jitted - 1.0), 2 * x)   # jit results eagerly


def test_eager_python_scalars():
    out = tj.multiply(3, 4)
    assert isinstance(out, tj.Array) and int(out) == 12 and out.weak
    assert float(tj.exp(0.0)) == 1.0 and tj.exp(0).dtype == tj.float32


def test_eager_errors_name_the_users_file_and_line():
    with pytest.raises(tj.ShapeError) as info:
        tj.add(np.ones(3), np.ones(4))    # MARK-add
    err = info.value
    assert err.location.file == __file__ and err.location.line == line_of("# MARK-add")
    assert err.location.function == "test_eager_errors_name_the_users_file_and_line"
    assert f"{__file__}:{line_of('# MARK-add')}" in str(err)
    with pytest.raises(tj.ShapeError) as info:
        tj.constant(np.ones((2, 3))) @ np.ones((4, 5))    # MARK-matmul
    assert info.value.location.line == line_of("# MARK-matmul")
    with pytest.raises(tj.ParamError) as info:
        tj.reduce_sum(np.ones(3), axis=1)    # MARK-axis
    assert info.value.location.line == line_of("# MARK-axis")


def test_errors_inside_jit_name_the_line_in_the_jitted_function():
    def f(a, b):
        c = a + 1.0
        return c * b    # MARK-jit

    with pytest.raises(tj.ShapeError) as info:
        tj.jit(f)(np.ones(3, np.float32), np.ones(4, np.float32))
    assert info.value.location.file == __file__
    assert info.value.location.line == line_of("# MARK-jit")


@pytest.mark.parametrize("run, op, shapes", [
    (lambda: tj.add(np.ones(3), np.ones(4)), "add", ("[3]", "[4]")),
    (lambda: tj.constant(np.ones(3)) - np.ones((2, 4)), "sub", ("[3]", "[2, 4]")),
    (lambda: tj.constant(np.ones(3)) * np.ones((2, 4)), "mul", ("[3]", "[2, 4]")),
    (lambda: tj.matmul(np.ones((2, 3)), np.ones((4, 5))), "matmul", ("[2,3]", "[4,5]")),
    (lambda: tj.concat([np.ones((2, 3)), np.ones((3, 4))], 0), "concat", ("[2,3]", "[3,4]")),
    (lambda: tj.stack([np.ones(2), np.ones(3)]), "stack", ("[2]", "[3]")),
    (lambda: tj.reshape(np.ones((2, 3)), (4, 2)), "reshape", ("[2,3]", "[4, 2]")),
    (lambda: tj.where(np.ones(3, bool), np.ones(2), 1.0), "select", ("[3]", "[2]")),
    (lambda: tj.jit(lambda a, b: tj.maximum(a, b))(np.ones(3), np.ones(4)), "maximum",
     ("[3]", "[4]")),
])
def test_shape_mismatch_errors_name_the_op_and_both_shapes(run, op, shapes):
    with pytest.raises(tj.ShapeError) as info:
        run()
    message = str(info.value)
    assert message.startswith(f"{op}:"), message
    for shape in shapes:
        assert shape in message, (shape, message)
    assert info.value.location.file == __file__
    assert isinstance(info.value, ValueError)


def test_dtype_errors_are_type_errors():
    with pytest.raises(tj.DTypeError, match=re.escape("cannot convert str to a tensor")):
        tj.add(np.ones(2), "x")
    with pytest.raises(TypeError, match="complex"):
        tj.constant(np.ones(2, np.complex64)) + 1.0
