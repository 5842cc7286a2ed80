"""Shape, movement and creation functions of the tracejit namespace, checked against
NumPy both eagerly and inside ``@tracejit.jit``, on shapes that include size 0 and scalars."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracejit as tj

from .checks import FAST, arrays, check, check_list, shapes


def draw_array(data, dtype=np.float32, **shape_kwargs):
    return data.draw(arrays(dtype, data.draw(shapes(**shape_kwargs))))


@FAST
@given(data=st.data())
def test_reshape_with_and_without_minus_one(data):
    x = draw_array(data)
    check(lambda t: tj.reshape(t, x.shape[::-1]), (x,), x.reshape(x.shape[::-1]))
    check(lambda t: tj.reshape(t, [-1]), (x,), x.reshape(-1))
    k = data.draw(st.integers(0, x.ndim))
    lead = math.prod(x.shape[:k])
    if lead:
        check(lambda t: tj.reshape(t, (lead, -1)), (x,), x.reshape(lead, -1))
    else:
        with pytest.raises(tj.ShapeError, match="reshape"):
            tj.reshape(x, (lead, -1))


def test_reshape_errors():
    with pytest.raises(tj.ShapeError, match=r"reshape.*\[2,3\].*|reshape.*6"):
        tj.reshape(np.ones((2, 3)), (4, 2))
    with pytest.raises(tj.ShapeError, match="at most one -1"):
        tj.reshape(np.ones((2, 3)), (-1, -1))


@FAST
@given(data=st.data())
def test_transpose_expand_dims_squeeze(data):
    x = draw_array(data, min_side=1, max_side=2)
    perm = data.draw(st.permutations(range(x.ndim)))
    check(lambda t: tj.transpose(t, perm), (x,), np.transpose(x, perm))
    check(tj.transpose, (x,), x.T)
    axis = data.draw(st.integers(-x.ndim - 1, x.ndim))
    check(lambda t: tj.expand_dims(t, axis), (x,), np.expand_dims(x, axis))
    check(tj.squeeze, (x,), np.squeeze(x))
    ones = [a for a, d in enumerate(x.shape) if d == 1]
    if ones:
        axis = data.draw(st.sampled_from(ones)) - data.draw(st.sampled_from([0, x.ndim]))
        check(lambda t: tj.squeeze(t, axis), (x,), np.squeeze(x, axis))
        check(lambda t: tj.squeeze(t, [axis]), (x,), np.squeeze(x, axis))


def test_squeeze_of_a_dimension_that_is_not_one_fails():
    with pytest.raises(tj.TracejitError, match="squeeze"):
        tj.squeeze(np.ones((2, 3)), 0)


@FAST
@given(data=st.data())
def test_concat_stack_unstack_split(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(data.draw(st.integers(1, 3))):
        part_shape = list(shape)
        part_shape[axis] = data.draw(st.integers(0, 3))
        parts.append(data.draw(arrays(np.float32, tuple(part_shape))))
    check(lambda *ts: tj.concat(list(ts), axis), parts, np.concatenate(parts, axis))
    check(lambda *ts: tj.concatenate(ts, axis=axis), parts, np.concatenate(parts, axis))
    same = [data.draw(arrays(np.int32, shape)) for _ in range(len(parts))]
    stack_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check(lambda *ts: tj.stack(ts, stack_axis), same, np.stack(same, stack_axis))
    x = same[0]
    check_list(lambda t: tj.unstack(t, axis=axis), (x,), list(np.moveaxis(x, axis, 0)))
    num = data.draw(st.sampled_from([d for d in (1, 2, 3) if x.shape[axis] % d == 0]))
    check_list(lambda t: tj.split(t, num, axis), (x,), np.split(x, num, axis))
    cut = data.draw(st.integers(0, x.shape[axis]))
    sizes = [cut, x.shape[axis] - cut]
    check_list(lambda t: tj.split(t, sizes, axis=axis), (x,), np.split(x, [cut], axis))
    check_list(lambda t: tj.split(t, [cut, -1], axis), (x,), np.split(x, [cut], axis))


def test_concat_stack_unstack_split_errors():
    with pytest.raises(tj.TracejitError, match="concat"):
        tj.concat([np.ones((2, 3)), np.ones((3, 3))], 1)
    with pytest.raises(tj.ParamError, match="stack: needs at least one tensor"):
        tj.stack([])
    with pytest.raises(tj.ParamError, match="concat: needs at least one tensor"):
        tj.concat([], 0)
    with pytest.raises(tj.ShapeError, match="divisible"):
        tj.split(np.ones(5), 2)
    with pytest.raises(tj.ShapeError, match=r"size_splits \[2, 2\] do not add up"):
        tj.split(np.ones(5), [2, 2])
    with pytest.raises(tj.ParamError, match="axis 2 is out of range"):
        tj.split(np.ones((2, 4)), 2, axis=2)
    with pytest.raises(tj.ParamError, match="axis -3 is out of range"):
        tj.unstack(np.ones((2, 4)), axis=-3)
    with pytest.raises(tj.ParamError, match="rank 0"):
        tj.unstack(np.float32(1.0))
    with pytest.raises(tj.ShapeError, match="num=3"):
        tj.unstack(np.ones((2, 4)), num=3)


@FAST
@given(data=st.data())
def test_pad_tile_reverse(data):
    x = draw_array(data, dtype=data.draw(st.sampled_from([np.float32, np.int32])))
    paddings = [[data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))] for _ in x.shape]
    fill = data.draw(st.integers(-3, 3))
    if x.ndim:   # np.pad does not take a scalar's empty paddings
        check(lambda t: tj.pad(t, paddings), (x,), np.pad(x, paddings))
        check(lambda t: tj.pad(t, paddings, constant_values=fill), (x,),
              np.pad(x, paddings, constant_values=fill))
    else:
        check(lambda t: tj.pad(t, []), (x,), x)
    reps = [data.draw(st.integers(0, 2)) for _ in x.shape]
    check(lambda t: tj.tile(t, reps), (x,), np.tile(x, reps))
    axes = data.draw(st.lists(st.integers(0, max(x.ndim - 1, 0)), unique=True,
                              max_size=x.ndim))
    check(lambda t: tj.reverse(t, axes), (x,), np.flip(x, tuple(axes)))


@FAST
@given(data=st.data())
def test_gather_take_one_hot(data):
    x = draw_array(data, min_dims=1, min_side=1)
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    idx_shape = data.draw(shapes(max_dims=2))
    idx = data.draw(arrays(np.int32, idx_shape, 0, x.shape[axis] - 1))
    check(lambda t, i: tj.gather(t, i, axis=axis), (x, idx), np.take(x, idx, axis))
    check(lambda t: tj.gather(t, idx, axis), (x,), np.take(x, idx, axis))
    flat = data.draw(arrays(np.int64, idx_shape, 0, x.size - 1))
    check(tj.take, (x, flat), np.take(x, flat))
    depth = data.draw(st.integers(1, 4))
    labels = data.draw(arrays(np.int32, idx_shape, -1, depth))   # -1 and depth: all off
    hot = (labels[..., None] == np.arange(depth)).astype(np.float32)
    check(lambda i: tj.one_hot(i, depth), (labels,), hot)
    oh_axis = data.draw(st.integers(-labels.ndim - 1, labels.ndim))
    check(lambda i: tj.one_hot(i, depth, on_value=5, off_value=-1, axis=oh_axis, dtype=tj.int32),
          (labels,), np.moveaxis(np.where(hot > 0, 5, -1).astype(np.int32), -1, oh_axis))


def test_gather_rejects_float_indices():
    with pytest.raises(tj.ParamError, match="integers"):
        tj.gather(np.ones(3), np.array([0.0]))


@FAST
@given(data=st.data())
def test_slice_and_strided_slice(data):
    x = draw_array(data, min_dims=1)
    begin = [data.draw(st.integers(0, d)) for d in x.shape]
    size = [data.draw(st.sampled_from([-1, d - b])) for b, d in zip(begin, x.shape, strict=True)]
    expected = x[tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size,
                                                                                strict=True))]
    check(lambda t: tj.slice(t, begin, size), (x,), expected)
    ends = [data.draw(st.integers(-d - 1, d + 1)) for d in x.shape]
    starts = [data.draw(st.integers(-d - 1, d + 1)) for d in x.shape]
    strides = [data.draw(st.sampled_from([1, 2, -1, -2])) for _ in x.shape]
    index = tuple(slice(b, e, s) for b, e, s in zip(starts, ends, strides, strict=True))
    check(lambda t: tj.strided_slice(t, starts, ends, strides), (x,), x[index])


@pytest.mark.parametrize("args, kwargs, expected", [
    ((5,), {}, np.arange(5, dtype=np.int32)),
    ((2, 9, 3), {}, np.arange(2, 9, 3, dtype=np.int32)),
    ((5, 0, -2), {}, np.arange(5, 0, -2, dtype=np.int32)),
    ((3, 3), {}, np.arange(3, 3, dtype=np.int32)),
    ((0.0, 1.0, 0.25), {}, np.arange(0, 1, 0.25, dtype=np.float32)),
    ((1, 2.5), {}, np.arange(1, 2.5, dtype=np.float32)),
    ((4,), {"dtype": tj.float64}, np.arange(4, dtype=np.float64)),
    ((6,), {"dtype": tj.int64}, np.arange(6, dtype=np.int64)),
])
def test_range(args, kwargs, expected):
    check(lambda: tj.range(*args, **kwargs), (), expected)
    check(lambda: tj.arange(*args, **kwargs), (), expected)


@pytest.mark.parametrize("start, stop, num", [(0.0, 1.0, 5), (-2.0, 3.0, 11), (1.0, 1.0, 3),
                                              (2.0, 4.0, 1), (0.0, 1.0, 0)])
def test_linspace(start, stop, num):
    check(lambda: tj.linspace(start, stop, num), (),
          np.linspace(start, stop, num, dtype=np.float32), rtol=1e-6)


def test_creation_functions():
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    check(lambda: tj.zeros((2, 3)), (), np.zeros((2, 3), np.float32))
    check(lambda: tj.zeros([0, 4], tj.int32), (), np.zeros((0, 4), np.int32))
    check(lambda: tj.ones(3, dtype=np.float64), (), np.ones(3))
    check(lambda: tj.ones((), tj.bool), (), np.ones((), bool))
    check(lambda: tj.fill([2, 2], 7), (), np.full((2, 2), 7, np.int32))
    check(lambda: tj.fill((3,), 0.5), (), np.full(3, 0.5, np.float32))
    check(lambda t: tj.fill((2, 3), t[0, 1]), (x,), np.full((2, 3), 1))
    check(tj.zeros_like, (x,), np.zeros_like(x))
    check(tj.ones_like, (x,), np.ones_like(x))
    check(lambda t: tj.zeros_like(t, dtype=tj.float32), (x,), np.zeros((2, 3), np.float32))
    check(lambda t: tj.ones_like(t, tj.bool), (x,), np.ones((2, 3), bool))


@pytest.mark.parametrize("value, kwargs, expected", [
    (1.5, {}, np.float32(1.5)),
    (3, {}, np.int32(3)),
    (True, {}, np.bool_(True)),
    ([[1, 2], [3, 4]], {}, np.array([[1, 2], [3, 4]], np.int32)),
    ([1.0, 2.0], {"dtype": tj.float64}, np.array([1.0, 2.0])),
    ([1, 2], {"dtype": "float16"}, np.array([1, 2], np.float16)),
    (np.arange(3, dtype=np.int64), {}, np.arange(3, dtype=np.int64)),
    (np.arange(4.0), {"dtype": tj.int32}, np.arange(4, dtype=np.int32)),
    (2.0, {"shape": (2, 3)}, np.full((2, 3), 2.0, np.float32)),
    (7, {"shape": [0]}, np.zeros(0, np.int32)),
    ([1, 2, 3, 4, 5, 6], {"shape": (3, 2)}, np.arange(1, 7, dtype=np.int32).reshape(3, 2)),
])
def test_constant(value, kwargs, expected):
    check(lambda: tj.constant(value, **kwargs), (), expected)
    check(lambda: tj.convert_to_tensor(value, **kwargs), (), expected)


def test_convert_to_tensor_stacks_lists_of_traced_values():
    x = np.arange(3, dtype=np.float32)
    check(lambda t: tj.convert_to_tensor([t[2], t[0]]), (x,), np.array([2, 0], np.float32))
    check(lambda t: tj.constant([[t[1], 5.0]], dtype=tj.float64), (x,), np.array([[1, 5.0]]))
    check(lambda t: tj.constant((t[0], t[1]), shape=(2, 1)), (x,), x[:2, None])


def test_shape_size_rank():
    for x in (np.ones((2, 0, 3)), np.float32(1.0), np.ones(4, np.int8)):
        check(tj.shape, (x,), np.array(x.shape, np.int32))
        check(lambda t: tj.shape(t, out_type=tj.int64), (x,), np.array(x.shape, np.int64))
        check(tj.size, (x,), np.int32(x.size))
        check(tj.rank, (x,), np.int32(x.ndim))


def test_identity_broadcast_to_and_stop_gradient():
    x = np.arange(3, dtype=np.float32)
    check(tj.identity, (x,), x)
    check(tj.stop_gradient, (x,), x)
    check(lambda t: tj.broadcast_to(t, (2, 3)), (x,), np.broadcast_to(x, (2, 3)))
    check(lambda t: tj.add_n([t, t, 1.0]), (x,), 2 * x + 1)
    check(lambda t: tj.squared_difference(t, 1.0), (x,), (x - 1) ** 2)
    check(lambda t: tj.reduce_logsumexp(t), (x,), np.log(np.exp(x).sum()), rtol=1e-6)
