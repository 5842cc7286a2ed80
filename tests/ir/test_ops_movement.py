"""Movement ops × every dtype, bit for bit, against element-by-element loop references
(each output index mapped to its input index by hand, never by the NumPy call the
implementation uses)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tracejit.ir import OPS
from tracejit.ir import dtypes as dt
from tracejit.ir.errors import DTypeError, ParamError, ShapeError

from .op_examples import T, assert_same_bits, infer, random_array, run_op

ALL = dt.ALL_DTYPES
SETTINGS = settings(max_examples=25, deadline=None)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
seeds = st.integers(0, 2**32 - 1)
each_dtype = pytest.mark.parametrize("dtype", ALL, ids=str)


def build(shape, dtype, element) -> np.ndarray:
    """The array whose value at each index is ``element(index)``."""
    out = np.empty(shape, dtype)
    for index in np.ndindex(*shape):
        out[index] = element(index)
    return out


def arr(seed, shape, dtype):
    return random_array(np.random.default_rng(seed), shape, dtype, specials=True)


def subset(data, n):
    return tuple(sorted(data.draw(st.sets(st.integers(0, n - 1))))) if n else ()


@each_dtype
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_reshape(dtype, shape, seed, data):
    size = math.prod(shape)
    if size == 0:
        target = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))
        target[data.draw(st.integers(0, len(target) - 1))] = 0
    else:
        target = [1] * data.draw(st.integers(1, 4))
        n, p = size, 2
        while n > 1:                     # deal the prime factors out to random axes
            while n % p == 0:
                target[data.draw(st.integers(0, len(target) - 1))] *= p
                n //= p
            p += 1
    x = arr(seed, shape, dtype)
    flat = [x[i] for i in np.ndindex(*shape)]
    order = {index: k for k, index in enumerate(np.ndindex(*target))}
    got = run_op(OPS["reshape"], [x], {"shape": tuple(target)})
    assert_same_bits(got, build(tuple(target), x.dtype, lambda i: flat[order[i]]))


@each_dtype
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_transpose(dtype, shape, seed, data):
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    x = arr(seed, shape, dtype)
    inverse = [perm.index(a) for a in range(len(shape))]
    got = run_op(OPS["transpose"], [x], {"perm": perm})
    want = build(tuple(shape[p] for p in perm), x.dtype,
                 lambda i: x[tuple(i[inverse[a]] for a in range(len(shape)))])
    assert_same_bits(got, want)


@each_dtype
@SETTINGS
@given(target=shapes, seed=seeds, data=st.data())
def test_broadcast_to(dtype, target, seed, data):
    suffix = target[data.draw(st.integers(0, len(target))):]
    shape = tuple(1 if data.draw(st.booleans()) else d for d in suffix)
    x = arr(seed, shape, dtype)
    lead = len(target) - len(shape)
    got = run_op(OPS["broadcast_to"], [x], {"shape": target})
    want = build(target, x.dtype, lambda i: x[tuple(0 if d == 1 else i[lead + a]
                                                    for a, d in enumerate(shape))])
    assert_same_bits(got, want)


@each_dtype
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_expand_dims_and_squeeze(dtype, shape, seed, data):
    ndim = len(shape) + data.draw(st.integers(0, 2))
    axes = tuple(sorted(data.draw(st.permutations(range(ndim)))[:ndim - len(shape)]))
    x = arr(seed, shape, dtype)
    got = run_op(OPS["expand_dims"], [x], {"axes": axes})
    out_shape = list(shape)
    for a in axes:
        out_shape.insert(a, 1)
    keep = [a for a in range(ndim) if a not in axes]
    want = build(tuple(out_shape), x.dtype, lambda i: x[tuple(i[a] for a in keep)])
    assert_same_bits(got, want)
    # squeeze undoes it (and may drop size-1 axes that were there before).
    ones = [a for a, d in enumerate(out_shape) if d == 1]
    drop = tuple(sorted(set(axes) | set(data.draw(st.sets(st.sampled_from(ones))) if ones
                                        else set())))
    back = run_op(OPS["squeeze"], [got], {"axes": drop})
    assert_same_bits(back, x.reshape([d for a, d in enumerate(out_shape) if a not in drop]))


@each_dtype
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_slice(dtype, shape, seed, data):
    starts, limits, strides = [], [], []
    for d in shape:
        lo = data.draw(st.integers(0, d))
        starts.append(lo)
        limits.append(data.draw(st.integers(lo, d)))
        strides.append(data.draw(st.integers(1, 3)))
    x = arr(seed, shape, dtype)
    got = run_op(OPS["slice"], [x], {"starts": starts, "limits": limits, "strides": strides})
    out_shape = tuple(-(-(h - lo) // s) for lo, h, s in zip(starts, limits, strides, strict=True))
    want = build(out_shape, x.dtype, lambda i: x[tuple(lo + k * s for k, lo, s
                                                      in zip(i, starts, strides, strict=True))])
    assert_same_bits(got, want)


@each_dtype
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_reverse(dtype, shape, seed, data):
    axes = subset(data, len(shape))
    x = arr(seed, shape, dtype)
    got = run_op(OPS["reverse"], [x], {"axes": axes})
    want = build(shape, x.dtype, lambda i: x[tuple(shape[a] - 1 - k if a in axes else k
                                                   for a, k in enumerate(i))])
    assert_same_bits(got, want)


@each_dtype
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3), seed=seeds,
       data=st.data())
def test_concat(dtype, shape, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    xs = [arr(seed + k, shape[:axis] + (n,) + shape[axis + 1:], dtype)
          for k, n in enumerate(sizes)]
    got = run_op(OPS["concat"], xs, {"axis": axis})
    owner = [(k, j) for k, n in enumerate(sizes) for j in range(n)]   # output row -> source
    out_shape = shape[:axis] + (sum(sizes),) + shape[axis + 1:]

    def element(i):
        k, j = owner[i[axis]]
        return xs[k][i[:axis] + (j,) + i[axis + 1:]]
    assert_same_bits(got, build(out_shape, xs[0].dtype, element))


@each_dtype
@SETTINGS
@given(shape=shapes, seed=seeds, count=st.integers(1, 3), data=st.data())
def test_stack(dtype, shape, seed, count, data):
    axis = data.draw(st.integers(0, len(shape)))
    xs = [arr(seed + k, shape, dtype) for k in range(count)]
    got = run_op(OPS["stack"], xs, {"axis": axis})
    out_shape = shape[:axis] + (count,) + shape[axis:]
    want = build(out_shape, xs[0].dtype, lambda i: xs[i[axis]][i[:axis] + i[axis + 1:]])
    assert_same_bits(got, want)


@each_dtype
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_pad(dtype, shape, seed, data):
    low = [data.draw(st.integers(0, 2)) for _ in shape]
    high = [data.draw(st.integers(0, 2)) for _ in shape]
    x, value = arr(seed, shape, dtype), arr(seed + 1, (), dtype)
    got = run_op(OPS["pad"], [x, value], {"low": low, "high": high})
    out_shape = tuple(lo + d + hi for lo, d, hi in zip(low, shape, high, strict=True))

    def element(i):
        inner = tuple(k - lo for k, lo in zip(i, low, strict=True))
        return x[inner] if all(0 <= k < d for k, d in zip(inner, shape, strict=True)) else value
    assert_same_bits(got, build(out_shape, x.dtype, element))


@each_dtype
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_tile(dtype, shape, seed, data):
    reps = [data.draw(st.integers(0, 3)) for _ in shape]
    x = arr(seed, shape, dtype)
    got = run_op(OPS["tile"], [x], {"reps": reps})
    out_shape = tuple(d * r for d, r in zip(shape, reps, strict=True))
    assert_same_bits(got, build(out_shape, x.dtype,
                                lambda i: x[tuple(k % d for k, d in zip(i, shape, strict=True))]))


@each_dtype
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds,
       idx_shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
       idx_dtype=st.sampled_from(dt.INT_DTYPES), data=st.data())
def test_gather(dtype, shape, seed, idx_shape, idx_dtype, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    rng = np.random.default_rng(seed)
    # Indices in [-n-2, n+2): in range, wrapping once, and out of range on both sides.
    idx = rng.integers(-n - 2, n + 2, size=idx_shape)
    idx = (idx % 256 if idx_dtype is dt.uint8 else idx).astype(idx_dtype.np_dtype)
    x = arr(seed, shape, dtype)
    got = run_op(OPS["gather"], [x, idx], {"axis": axis})
    out_shape = shape[:axis] + idx_shape + shape[axis + 1:]

    def element(i):
        k = int(idx[i[axis:axis + len(idx_shape)]])
        k = min(max(k + n if k < 0 else k, 0), n - 1)    # wrap once, then clamp
        return x[i[:axis] + (k,) + i[axis + len(idx_shape):]]
    assert_same_bits(got, build(out_shape, x.dtype, element))


@each_dtype
@SETTINGS
@given(idx_shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
       seed=seeds, depth=st.integers(0, 4), idx_dtype=st.sampled_from(dt.INT_DTYPES),
       data=st.data())
def test_one_hot(dtype, idx_shape, seed, depth, idx_dtype, data):
    axis = data.draw(st.sampled_from([-1, *range(len(idx_shape) + 1)]))
    rng = np.random.default_rng(seed)
    idx = rng.integers(-2, depth + 2, size=idx_shape)
    idx = (idx % 256 if idx_dtype is dt.uint8 else idx).astype(idx_dtype.np_dtype)
    on, off = arr(seed, (), dtype), arr(seed + 1, (), dtype)
    got = run_op(OPS["one_hot"], [idx, on, off], {"depth": depth, "axis": axis,
                                                  "dtype": dtype})
    at = len(idx_shape) if axis == -1 else axis
    out_shape = idx_shape[:at] + (depth,) + idx_shape[at:]
    want = build(out_shape, on.dtype,
                 lambda i: on if int(idx[i[:at] + i[at + 1:]]) == i[at] else off)
    assert_same_bits(got, want)


def test_results_are_fresh_arrays():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for name, params in [("reshape", {"shape": (6,)}), ("transpose", {"perm": (1, 0)}),
                         ("broadcast_to", {"shape": (2, 2, 3)}), ("reverse", {"axes": (0,)}),
                         ("slice", {"starts": (0, 0), "limits": (2, 3), "strides": (1, 1)})]:
        out = run_op(OPS[name], [x], params)
        assert out.flags.writeable and not np.shares_memory(out, x), name


# ---- errors ------------------------------------------------------------------------------

F = dt.float32
ERRORS = [
    ("reshape", [T((2, 3), F)], {"shape": (4,)}, ShapeError, r"f32\[2,3\].*\[4\]"),
    ("reshape", [T((2, 3), F)], {"shape": (-1,)}, ParamError, r"-1"),
    ("transpose", [T((2, 3), F)], {"perm": (0, 0)}, ParamError, r"\[0, 0\].*f32\[2,3\]"),
    ("broadcast_to", [T((3,), F)], {"shape": (4,)}, ShapeError, r"f32\[3\] to \[4\]"),
    ("broadcast_to", [T((2, 3), F)], {"shape": (3,)}, ShapeError, r"f32\[2,3\]"),
    ("expand_dims", [T((2,), F)], {"axes": (-1,)}, ParamError, r"\[-1\].*\[1\]"),
    ("squeeze", [T((1, 3), F)], {"axes": (1,)}, ShapeError, r"\[1\] of f32\[1,3\]"),
    ("slice", [T((4,), F)], {"starts": (1,), "limits": (5,), "strides": (1,)}, ParamError,
     r"limit 5.*f32\[4\]"),
    ("slice", [T((4,), F)], {"starts": (3,), "limits": (1,), "strides": (1,)}, ParamError,
     r"start 3"),
    ("slice", [T((4,), F)], {"starts": (0,), "limits": (4,), "strides": (0,)}, ParamError,
     r"positive"),
    ("slice", [T((4, 4), F)], {"starts": (0,), "limits": (4,), "strides": (1,)}, ParamError,
     r"f32\[4,4\]"),
    ("reverse", [T((2,), F)], {"axes": (1,)}, ParamError, r"axis 1 is out of range"),
    ("concat", [T((2, 3), F), T((2, 4), F)], {"axis": 0}, ShapeError,
     r"f32\[2,3\], f32\[2,4\]"),
    ("concat", [T((2,), F), T((2, 1), F)], {"axis": 0}, ShapeError, r"one rank"),
    ("concat", [T((2,), F), T((2,), dt.int32)], {"axis": 0}, DTypeError, r"i32\[2\]"),
    ("concat", [T((), F)], {"axis": 0}, ParamError, r"out of range"),
    ("stack", [T((2,), F), T((3,), F)], {"axis": 0}, ShapeError, r"f32\[2\], f32\[3\]"),
    ("stack", [T((2,), F)], {"axis": 2}, ParamError, r"out of range"),
    ("pad", [T((2,), F), T((1,), F)], {"low": (0,), "high": (0,)}, ShapeError,
     r"0-d.*f32\[1\]"),
    ("pad", [T((2,), F), T((), dt.float64)], {"low": (0,), "high": (0,)}, DTypeError,
     r"f64\[\]"),
    ("pad", [T((2,), F), T((), F)], {"low": (-1,), "high": (0,)}, ParamError, r"\[-1\]"),
    ("tile", [T((2, 3), F)], {"reps": (2,)}, ParamError, r"f32\[2,3\]"),
    ("gather", [T((3,), F), T((2,), F)], {"axis": 0}, DTypeError, r"integer.*f32\[2\]"),
    ("gather", [T((0, 2), F), T((1,), dt.int32)], {"axis": 0}, ShapeError,
     r"empty axis 0 of f32\[0,2\]"),
    ("gather", [T((3,), F), T((2,), dt.int32)], {"axis": -1}, ParamError, r"\[-1\]"),
    ("one_hot", [T((2,), dt.int32), T((), F), T((), dt.float64)], {"depth": 3, "dtype": F},
     DTypeError, r"off_value.*f64\[\]"),
    ("one_hot", [T((2,), dt.int32), T((2,), F), T((), F)], {"depth": 3, "dtype": F},
     ShapeError, r"on_value.*f32\[2\]"),
    ("one_hot", [T((2,), F), T((), F), T((), F)], {"depth": 3, "dtype": F}, DTypeError,
     r"integer"),
    ("one_hot", [T((2,), dt.int32), T((), F), T((), F)], {"depth": 3, "dtype": F,
                                                          "axis": 2}, ParamError, r"axis 2"),
]


@pytest.mark.parametrize("name, types, params, error, pattern", ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_the_op_and_shapes(name, types, params, error, pattern):
    with pytest.raises(error, match=rf"^{name}: .*{pattern}"):
        infer(OPS[name], types, params)


def test_empty_gather_is_allowed():
    assert infer(OPS["gather"], [T((0, 2), F), T((0,), dt.int8)], {"axis": 0}) == \
        T((0, 2), F)
    got = run_op(OPS["gather"], [np.zeros((0, 2), np.float32), np.zeros((0,), np.int8)],
                 {"axis": 0})
    assert got.shape == (0, 2)
