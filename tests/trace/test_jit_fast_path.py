"""@jit's native fast path: the executor's dispatcher as a function's ``__call__``.

Every call it takes must give what the Python path gives, and every call it does not
take (new signatures, keywords, weak or non-array arguments) must reach the Python path
with the same results and errors as before."""

from __future__ import annotations

import gc
import sys
import types
import weakref

import numpy as np
import pytest

import tracejit as tj
from tracejit.ir.errors import DTypeError
from tracejit.trace.jit import JitFunction
from tracejit.trace.values import Array


def _fast(f) -> bool:
    return isinstance(type(f).__dict__.get("__call__"), types.BuiltinFunctionType)


def vec(n=16, value=1.0):
    return np.full(n, value, np.float32)


def test_a_compiled_function_gets_a_native_call_that_agrees_with_python():
    f = tj.jit(lambda x, y: tj.tanh(x) * y + 1.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 5)).astype(np.float32), rng.normal(size=(2, 5)).astype(np.float32)
    first = f(x, y)                 # compiles, through Python
    assert _fast(f) and isinstance(f, JitFunction)
    second = f(x, y)                # native
    assert type(second) is Array and second.weak is False
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    np.testing.assert_allclose(np.asarray(second), np.tanh(x) * y + 1.0, rtol=1e-6)
    assert f.cache_size == 1


def test_tuples_lists_and_weak_results_come_back_as_the_python_path_makes_them():
    pair = tj.jit(lambda x: (x + 1.0, 3.0))
    listed = tj.jit(lambda x: [x * 2.0, x - 1.0])
    x = vec(4)
    for f in (pair, listed):
        slow = f(x)
        fast = f(x)
        assert _fast(f) and type(fast) is type(slow)
        assert [a.weak for a in fast] == [a.weak for a in slow]
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert pair(x)[1].weak is True and float(pair(x)[1]) == 3.0


def test_a_result_is_never_overwritten_by_a_later_call():
    f = tj.jit(lambda x: x + 1.0)
    f(vec())
    kept = f(vec(value=1.0))
    raw = np.asarray(f(vec(value=5.0)))
    again = f(vec(value=7.0))
    np.testing.assert_array_equal(np.asarray(kept), 2.0)
    np.testing.assert_array_equal(raw, 6.0)
    np.testing.assert_array_equal(np.asarray(again), 8.0)


def test_calls_the_native_path_does_not_take_still_work():
    f = tj.jit(lambda x, scale=2.0: x * scale)
    x = vec(3)
    f(x)
    assert _fast(f)
    np.testing.assert_array_equal(np.asarray(f(x, scale=3.0)), 3.0)          # keywords
    np.testing.assert_array_equal(np.asarray(f(x, 4.0)), 4.0)                # a number
    np.testing.assert_array_equal(np.asarray(f(x[::-1].copy()[::1])), 2.0)   # a copy is fine
    strided = np.arange(6, dtype=np.float32)[::2]                             # not contiguous
    np.testing.assert_array_equal(np.asarray(f(strided)), [0.0, 4.0, 8.0])
    np.testing.assert_array_equal(np.asarray(f(f(x))), 4.0)                  # an Array
    np.testing.assert_array_equal(np.asarray(f(Array(x, weak=True))), 2.0)   # a weak one
    np.testing.assert_array_equal(np.asarray(f(vec(5))), 2.0)                # a new shape
    assert f.compile_log[-1].reason.startswith("argument `x` changed shape")
    with pytest.raises(DTypeError, match="argument `x` of <lambda> is a str"):
        f("seven")
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        f(x, bogus=1)
    np.testing.assert_array_equal(np.asarray(f(x)), 2.0)


def test_the_fast_path_follows_the_signature_last_used():
    f = tj.jit(lambda x: x * 3.0)
    small, big = vec(2), vec(9)
    f(small)
    f(big)
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(f(small)), 3.0)
        np.testing.assert_array_equal(np.asarray(f(big)), 3.0)
    assert f.cache_size == 2 and _fast(f)


def test_changing_the_executor_drops_the_fast_path():
    f = tj.jit(lambda x: x - 1.0)
    f(vec())
    assert _fast(f)
    with tj.settings(executor="interpreter"):
        assert not _fast(f)
        np.testing.assert_array_equal(np.asarray(f(vec())), 0.0)
        assert not _fast(f)         # the interpreter has no dispatcher
    f(vec())
    assert _fast(f) and f.cache_size == 2
    f.clear_cache()
    assert not _fast(f)
    np.testing.assert_array_equal(np.asarray(f(vec())), 0.0)


def test_functions_that_capture_variables_keep_the_python_path():
    v = tj.Variable(np.zeros(4, np.float32))

    @tj.jit
    def bump(x):
        v.assign_add(x)
        return v.read_value() * 1.0
    bump(vec(4))
    bump(vec(4))
    assert not _fast(bump)
    np.testing.assert_array_equal(np.asarray(v.numpy()), 2.0)


def test_native_calls_leak_no_references():
    f = tj.jit(lambda x: (x + 1.0, x * 2.0))
    x = vec()
    f(x)
    before = sys.getrefcount(x)
    results = [f(x) for _ in range(200)]
    assert sys.getrefcount(x) == before
    last = results[-1][0]
    counts = sys.getrefcount(last), sys.getrefcount(last.value)
    assert counts == (3, 2)
    probe = weakref.ref(last.value)         # the last result's array is not pooled
    del results, last
    gc.collect()
    assert probe() is None
