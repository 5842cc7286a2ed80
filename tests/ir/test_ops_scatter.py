"""scatter_add against an independent loop, and its adjointness with gather."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracejit.ir import GraphBuilder, TensorType, interpret, ops
from tracejit.ir import dtypes as dt
from tracejit.ir.errors import ShapeError


def run(op, arrays, **params):
    b = GraphBuilder()
    ins = [b.add_input(TensorType(a.shape, dt.as_dtype(a.dtype))) for a in arrays]
    out = b.emit1(op, ins, params)
    return interpret(b.build([out]), arrays, check=True)[0]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), rows=st.integers(0, 6), width=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_scatter_add_accumulates_repeats(n, rows, width, seed):
    rng = np.random.default_rng(seed)
    operand = rng.normal(size=(n, width))
    idx = rng.integers(-n, n, size=rows).astype(np.int32)
    updates = rng.normal(size=(rows, width))
    expected = operand.copy()
    for r, i in enumerate(idx):
        expected[i % n] += updates[r]
    np.testing.assert_allclose(run(ops.SCATTER_ADD, [operand, idx, updates], axis=0), expected)


def test_scatter_add_is_the_adjoint_of_gather():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 2))
    idx = rng.integers(0, 7, size=(4, 5)).astype(np.int64)
    ct = rng.normal(size=(3, 4, 5, 2))
    gathered = run(ops.GATHER, [x, idx], axis=1)
    scattered = run(ops.SCATTER_ADD, [np.zeros_like(x), idx, ct], axis=1)
    # <gather(x), ct> == <x, scatter_add(0, ct)>
    assert np.isclose(np.sum(gathered * ct), np.sum(x * scattered))


def test_scatter_add_shape_errors_name_the_op():
    with pytest.raises(ShapeError, match="scatter_add: updates must be f32"):
        run(ops.SCATTER_ADD, [np.zeros((3, 2), np.float32), np.zeros(4, np.int32),
                              np.zeros((3, 2), np.float32)], axis=0)


def test_scatter_add_into_an_empty_axis_is_refused_as_gather_from_it_is():
    # An index cannot be clamped into an axis of size 0; the reference used to fail at
    # run time (np.add.at: index 0 is out of bounds) after the trace accepted it.
    with pytest.raises(ShapeError, match=r"scatter_add: cannot scatter .* empty axis 0"):
        run(ops.SCATTER_ADD, [np.zeros(0, np.float32), np.ones((), np.int8),
                              np.zeros((), np.float32)], axis=0)
    empty = run(ops.SCATTER_ADD, [np.zeros((0, 2), np.float32), np.zeros(0, np.int8),
                                  np.zeros((0, 2), np.float32)], axis=0)
    assert empty.shape == (0, 2)
