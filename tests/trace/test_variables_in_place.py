"""@jit updates captured variables in place (they are donated arguments of the
program) without ever changing an array the caller still holds."""

from __future__ import annotations

import numpy as np

import tracejit as tj


def _sgd(v):
    @tj.jit
    def step(g):
        v.assign_sub(0.5 * g)
        return tj.reduce_sum(v.read_value())
    return step


def test_an_unshared_variable_keeps_its_array():
    v = tj.Variable(np.ones(1000, np.float32))

    @tj.jit
    def step(g):
        v.assign_sub(0.5 * g)
    g = np.ones(1000, np.float32)
    step(g)
    where = id(v._value)
    for _ in range(3):
        step(g)
        assert id(v._value) == where           # written over, not replaced
    np.testing.assert_array_equal(v.numpy(), -1.0)


def test_a_new_value_made_beside_a_reduction_is_not_copied_each_step():
    # the update is fused with a sum that reads it, so it lands in a result array of
    # its own: the variable then alternates between the program's two pooled result
    # arrays (the old value is only read, so it is neither donated nor copied)
    v = tj.Variable(np.ones(1000, np.float32))
    step = _sgd(v)
    g = np.ones(1000, np.float32)
    arrays = set()
    for _ in range(6):
        step(g)
        arrays.add(id(v._value))
    assert len(arrays) <= 2
    np.testing.assert_array_equal(v.numpy(), -2.0)
    entry = next(iter(step._cache.values()))
    assert entry.donated == frozenset()


def test_an_array_the_caller_holds_never_changes():
    v = tj.Variable(np.ones(8, np.float32))
    step = _sgd(v)
    g = np.ones(8, np.float32)
    step(g)
    held = np.asarray(v)                        # the variable's own array
    read = v.read_value()                       # an Array over it
    total = step(g)
    np.testing.assert_array_equal(held, 0.5)
    np.testing.assert_array_equal(np.asarray(read), 0.5)
    np.testing.assert_array_equal(v.numpy(), 0.0)
    assert float(total) == 0.0


def test_a_read_only_value_is_copied_not_written():
    frozen = np.ones(4, np.float32)
    v = tj.Variable(frozen)
    v._value.flags.writeable = False            # say, restored from a memory map
    step = _sgd(v)
    step(np.ones(4, np.float32))
    step(np.ones(4, np.float32))
    np.testing.assert_array_equal(v.numpy(), 0.0)
    np.testing.assert_array_equal(frozen, 1.0)


def test_donated_arguments_are_updated_in_place():
    @tj.jit(donate_argnums=0)
    def sgd(params, grads):
        return [p - 0.5 * g for p, g in zip(params, grads, strict=True)]
    params = [np.ones(1000, np.float32), np.ones((3, 4), np.float32)]
    grads = [np.ones(1000, np.float32), np.full((3, 4), 4.0, np.float32)]
    new = sgd(params, grads)
    for p, n in zip(params, new, strict=True):
        assert np.shares_memory(np.asarray(n), p)           # the result is p's memory
    np.testing.assert_array_equal(np.asarray(new[0]), 0.5)
    np.testing.assert_array_equal(np.asarray(new[1]), -1.0)
    np.testing.assert_array_equal(grads[1], 4.0)            # not donated: untouched


def test_an_array_passed_twice_is_not_overwritten_under_its_other_use():
    @tj.jit(donate_argnames="w")
    def f(w, x):
        return w * 2.0 + x
    a = np.ones(4, np.float32)
    np.testing.assert_array_equal(np.asarray(f(a, a)), 3.0)
    np.testing.assert_array_equal(np.asarray(f(a, a)), 3.0)


def test_bad_donate_argnums_are_errors():
    import pytest
    with pytest.raises(ValueError, match="donate_argnums 3 is out of range"):
        tj.jit(lambda w: w, donate_argnums=3)
    with pytest.raises(ValueError, match=r"donate_argnames \['v'\] are not parameters"):
        tj.jit(lambda w: w, donate_argnames="v")
