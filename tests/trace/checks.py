"""Helpers shared by the front-end tests: run a function eagerly and under ``@jit`` and
compare both with a NumPy reference; hypothesis strategies for small arrays."""

from __future__ import annotations

import os

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import tracejit as tj

# NOTE: modest by default to keep the suite fast; TRACEJIT_TEST_EXAMPLES=500 digs deeper.
FAST = settings(max_examples=int(os.environ.get("TRACEJIT_TEST_EXAMPLES", "15")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def check(fn, args, expected, *, dtype=None, rtol=1e-6, atol=1e-6, wrap=False):
    """``fn(*args)`` run eagerly and under jit; both equal ``expected`` in value and dtype.
    ``wrap`` makes the eager arguments tracejit Arrays (needed for Python operators)."""
    eager_args = [tj.constant(a) if wrap and isinstance(a, np.ndarray) else a for a in args]
    expected = np.asarray(expected)
    dtype = tj.as_dtype(expected.dtype if dtype is None else dtype)
    for got in (fn(*eager_args), tj.jit(fn)(*args)):
        assert_array(got, expected, dtype, rtol=rtol, atol=atol)


def assert_array(got, expected, dtype=None, *, rtol=1e-6, atol=1e-6):
    """``got`` is a tracejit Array equal to ``expected`` with dtype ``dtype``."""
    expected = np.asarray(expected)
    dtype = tj.as_dtype(expected.dtype if dtype is None else dtype)
    assert isinstance(got, tj.Array), type(got)
    assert got.dtype == dtype, (got.dtype, dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if dtype.is_float:
        np.testing.assert_allclose(np.asarray(got, np.float64), expected.astype(np.float64),
                                   rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(np.asarray(got), expected)


def check_list(fn, args, expected, **kwargs):
    """Like ``check`` for functions returning a list of tensors."""
    for got in (fn(*args), tj.jit(fn)(*args)):
        assert isinstance(got, list) and len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert_array(g, e, **kwargs)


def arrays(dtype, shape, lo=-5, hi=5):
    """Arrays of ``dtype`` and ``shape`` with elements in [lo, hi]."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        elements = st.booleans()
    elif dtype.kind in "iu":
        elements = st.integers(max(lo, 0) if dtype.kind == "u" else lo, hi)
    else:
        elements = st.floats(lo, hi).map(dtype.type)
    return hnp.arrays(dtype, shape, elements=elements)


def shapes(min_dims=0, max_dims=3, min_side=0, max_side=3):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)
