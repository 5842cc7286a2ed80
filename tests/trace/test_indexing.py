"""``x[index]`` against NumPy: basic indexing (ints, slices with any steps, None, Ellipsis)
and advanced integer-array indexing, eagerly and inside ``@jit``, with index arrays both
captured as constants and passed as traced arguments; and the errors bad indices raise."""

from __future__ import annotations

import re

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracejit as tj

from .checks import FAST, arrays, assert_array, shapes


def check_index(x: np.ndarray, index) -> None:
    """``x[index]`` eagerly, under jit with the index arrays as constants, and under jit
    with the index arrays as traced arguments, all equal NumPy's ``x[index]``."""
    index = index if isinstance(index, tuple) else (index,)
    expected = x[tuple(np.asarray(i) if isinstance(i, list) else i for i in index)]
    assert_array(tj.constant(x)[index], expected)
    assert_array(tj.jit(lambda t: t[index])(x), expected)
    arrays_at = [k for k, i in enumerate(index) if isinstance(i, (np.ndarray, list))]
    if arrays_at:
        as_arrays = [tj.constant(index[k]) for k in arrays_at]
        assert_array(tj.constant(x)[_substitute(index, arrays_at, as_arrays)], expected)

        def traced(t, *idx):
            return t[_substitute(index, arrays_at, idx)]
        assert_array(tj.jit(traced)(x, *[np.asarray(index[k]) for k in arrays_at]), expected)


def _substitute(index, positions, values):
    out = list(index)
    for k, v in zip(positions, values, strict=True):
        out[k] = v
    return tuple(out)


@st.composite
def slices(draw, size):
    bound = st.none() | st.integers(-size - 2, size + 2)
    step = draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3]))
    return slice(draw(bound), draw(bound), step)


@st.composite
def mixed_indices(draw, shape, arrays_allowed=True):
    """Index tuples mixing ints, slices, None, at most one Ellipsis and integer arrays
    (lists or NumPy arrays, negative entries too) that broadcast to one shape."""
    ndim = len(shape)
    count = draw(st.integers(0, ndim))
    ellipsis_at = draw(st.none() | st.integers(0, count))
    if ellipsis_at is None:
        dims = list(range(count))
    else:
        dims = list(range(ellipsis_at)) + list(range(ndim - (count - ellipsis_at), ndim))
    batch = draw(shapes(max_dims=2, min_side=1, max_side=3))
    items = []
    for d in dims:
        size = shape[d]
        kinds = ["slice"] + (["int"] if size else []) + (["array"] * 2
                                                         if size and arrays_allowed else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            items.append(draw(slices(size)))
        else:
            # A suffix of the batch shape with some sides 1: these all broadcast together.
            suffix = batch[draw(st.integers(0, len(batch))):]
            idx_shape = tuple(1 if draw(st.booleans()) else side for side in suffix)
            dtype = draw(st.sampled_from([np.int32, np.int64]))
            array = draw(arrays(dtype, idx_shape, -size, size - 1))
            items.append(array.tolist() if array.ndim == 1 and draw(st.booleans()) else array)
    if ellipsis_at is not None:
        items.insert(ellipsis_at, Ellipsis)
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return tuple(items)


@FAST
@given(data=st.data())
def test_basic_indexing_matches_numpy(data):
    shape = data.draw(shapes(max_dims=4, max_side=4))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    check_index(x, index)


@FAST
@given(data=st.data())
def test_slices_with_any_start_stop_and_step(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=5))
    x = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    check_index(x, tuple(data.draw(slices(d)) for d in shape))


@FAST
@given(data=st.data())
def test_advanced_indexing_matches_numpy(data):
    shape = data.draw(shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) - 5
    index = data.draw(mixed_indices(shape))
    check_index(x, index)


@pytest.mark.parametrize("index", [
    [1, 0, -1],                                   # one array
    ([0, 1], [2, -1]),                            # adjacent arrays, leading
    (slice(None), [0, 1], [2, 3]),                # adjacent arrays after a slice
    ([[0], [1]], slice(None), [0, 3]),            # non-adjacent: batch dims go first
    (slice(None), 1, [2, 3]),                     # an int next to an array is advanced too
    ([1, 0], 1, [0, 2]),                          # array, int, array
    (1, slice(None), [0, 2]),                     # int, slice, array: non-adjacent
    (None, [1, 0], slice(1, None)),               # None before
    ([0, 1], None, [0, 1]),                       # None between arrays
    (slice(None), None, [0, 1], [0, 1]),
    (Ellipsis, [0, 3]),
    ([1], Ellipsis, [-1]),
    (np.array([], np.int64),),                    # empty index array
    (np.array([[0, 1], [1, 1]]), slice(1, None)),
    (np.array(1), slice(None), np.array([0, 2])),  # 0-d index arrays
])
def test_advanced_indexing_cases(index):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    check_index(x, index)


def test_an_ellipsis_for_no_axes_still_separates_index_arrays():
    x = np.arange(60, dtype=np.float32).reshape(5, 3, 4)
    check_index(x, (slice(None), [0, 1], Ellipsis, [0, 1]))      # NumPy: shape (2, 5)
    check_index(x, (slice(None), [0, 1], [0, 1], Ellipsis))      # adjacent: shape (5, 2)


def test_traced_scalar_index():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    f = tj.jit(lambda t, i: t[i] * 2.0)
    for i in range(3):
        assert_array(f(x, np.int32(i)), x[i] * 2)
    assert_array(tj.jit(lambda t, i: t[:, i])(x, np.int64(-1)), x[:, -1])
    assert f.cache_size == 1


def test_traced_out_of_range_indices_wrap_once_then_clamp():
    """Traced indices cannot be checked while tracing; they follow gather's documented rule."""
    x = np.arange(3, dtype=np.float32)
    got = tj.jit(lambda t, i: t[i])(x, np.array([-1, -3, 5, -10], np.int32))
    assert_array(got, np.array([2, 0, 2, 0], np.float32))


@pytest.mark.parametrize("index, message", [
    (5, "index 5 is out of bounds for axis 0 with size 2"),
    (-3, "index -3 is out of bounds for axis 0 with size 2"),
    ((slice(None), 3), "index 3 is out of bounds for axis 1 with size 3"),
    ((Ellipsis, -4), "index -4 is out of bounds for axis 1 with size 3"),
    ((0, 0, 0), "too many indices: 3 for a tensor of rank 2"),
    ((Ellipsis, 0, Ellipsis), "single ellipsis"),
    (([0, 2],), "index 2 is out of bounds for an axis of size 2"),
    ((slice(None), np.array([-4])), "index -4 is out of bounds for an axis of size 3"),
    (([0, 1], [0, 1, 2]), "cannot be broadcast"),
    (1.5, "unsupported index 1.5"),
    ("a", "unsupported index"),
    ((np.array([0.5]),), "must be integers"),
])
def test_bad_static_indices_raise_index_error(index, message):
    x = np.zeros((2, 3), np.float32)
    for run in (lambda: tj.constant(x)[index], lambda: tj.jit(lambda t: t[index])(x)):
        with pytest.raises(IndexError, match=re.escape(message)) as info:
            run()
        assert isinstance(info.value, tj.IndexingError)
        assert info.value.location.file == __file__


@pytest.mark.parametrize("mask", [np.array([True, False]), [True, False],
                                  tj.constant(np.array([True, False]))],
                         ids=["ndarray", "list", "Array"])
def test_bool_masks_raise_a_clear_error(mask):
    x = np.zeros((2, 3), np.float32)
    for run in (lambda: tj.constant(x)[mask], lambda: tj.jit(lambda t: t[mask])(x),
                lambda: tj.jit(lambda t, m: t[m])(x, np.asarray(mask))):
        with pytest.raises(tj.IndexingError, match="boolean mask.*tracejit.where"):
            run()
    with pytest.raises(tj.IndexingError, match="bool scalars"):
        tj.constant(x)[True]


def test_indexing_keeps_weak_type_and_dtype():
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    assert tj.constant(x)[1, ::-1].dtype == tj.int8
    assert (tj.constant(x)[0] + 1).dtype == tj.int8
    scalar = tj.add(1.0, 2.0)
    assert scalar[None].weak and scalar[None].shape == (1,)
    assert tj.constant(x)[...].shape == (2, 3)
    assert tj.constant(np.float32(3.0))[()].shape == ()
