"""Arguments and edge cases that gave a different answer compiled than NumPy, or an
unclear error (issue 10, group 6): each gives NumPy's answer or an error naming the
argument."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import tracejit as tj
from tracejit.ir.errors import DTypeError

EXECUTORS = [None, "interpreter"]


@tj.jit
def doubled(x):
    return x * 2.0


def run(f, *args, executor=None):
    return np.asarray(tj.jit(f, executor=executor)(*args))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sign_of_zeros_and_nan_is_numpys(executor):
    x = np.array([-0.0, 0.0, -3.0, 2.0, np.nan, -np.inf], np.float32)
    got = run(tj.sign, x, executor=executor)
    want = np.sign(x)
    np.testing.assert_array_equal(got, want)
    assert not np.signbit(got[:2]).any()        # np.sign(-0.0) is +0.0


@pytest.mark.parametrize("executor", EXECUTORS)
def test_softmax_and_logsumexp_over_an_empty_axis(executor):
    x = np.zeros((3, 0), np.float32)
    assert run(lambda v: tj.nn.softmax(v, axis=1), x, executor=executor).shape == (3, 0)
    assert run(lambda v: tj.nn.log_softmax(v, axis=1), x, executor=executor).shape == (3, 0)
    np.testing.assert_array_equal(
        run(lambda v: tj.reduce_logsumexp(v, axis=1), x, executor=executor),
        np.full(3, -np.inf, np.float32))
    np.testing.assert_array_equal(
        run(lambda v: tj.reduce_logsumexp(v, axis=0), x, executor=executor),
        np.zeros(0, np.float32))


def test_softmax_of_a_row_with_inf_is_nan_as_in_tensorflow():
    x = np.array([[np.inf, 1.0], [0.0, 1.0]], np.float32)
    got = run(lambda v: tj.nn.softmax(v), x)
    assert np.isnan(got[0]).all()
    np.testing.assert_allclose(got[1], np.exp([0, 1]) / np.exp([0, 1]).sum(), rtol=1e-6)
    np.testing.assert_array_equal(run(lambda v: tj.reduce_logsumexp(v, axis=1), x)[0],
                                  np.float32(np.inf))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_byte_swapped_arrays_compute_like_native_ones(executor):
    x = np.arange(6, dtype=">f4").reshape(2, 3)
    got = run(lambda v: tj.tanh(v) + v, x, executor=executor)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.tanh(x) + x, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(tj.tanh(x)), np.tanh(x), rtol=1e-6)   # eager


def test_memmap_arguments_are_arrays(tmp_path):
    mm = np.memmap(tmp_path / "x.bin", dtype=np.float32, mode="w+", shape=(4,))
    mm[:] = [1, 2, 3, 4]
    np.testing.assert_array_equal(np.asarray(doubled(mm)), [2, 4, 6, 8])
    np.testing.assert_array_equal(np.asarray(tj.negative(mm)), [-1, -2, -3, -4])


def test_a_python_int_beyond_int64_is_a_clear_error_naming_the_argument():
    f = tj.jit(lambda x, big: x * big)
    with pytest.raises(DTypeError, match=r"argument `big` .* Python int 2361183241434822606848"):
        f(np.ones(2, np.float32), 2**71)
    with pytest.raises(DTypeError, match="outside the int64 range"):
        tj.add(np.ones(2, np.float32), 2**71)
    assert np.asarray(f(np.ones(2, np.float32), 2**40)).tolist() == [2.0**40] * 2


def test_jitted_module_level_functions_pickle_by_reference():
    doubled(np.ones(3, np.float32))
    again = pickle.loads(pickle.dumps(doubled))
    assert again is doubled
    wrapped = tj.jit(_halved)
    copy = pickle.loads(pickle.dumps(wrapped))
    assert copy is not wrapped and copy.fun is _halved
    np.testing.assert_array_equal(np.asarray(copy(np.ones(2, np.float32))), [0.5, 0.5])


def _halved(x):
    return x * 0.5


def test_pickling_a_jitted_lambda_says_why_not():
    with pytest.raises(TypeError, match="module-level function"):
        pickle.dumps(tj.jit(lambda x: x))
