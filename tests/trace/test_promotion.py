"""The dtype promotion lattice of ir/dtypes.py as users meet it: array with array, arrays
with weakly typed Python scalars, jit arguments that are Python scalars, and lists."""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest

import tracejit as tj

NAMES = ["bool", "u8", "i8", "i32", "i64", "f16", "bf16", "f32", "f64"]
# The join of two array dtypes, written out from the documented rules (upper triangle).
TABLE = """
        bool  u8    i8    i32   i64   f16   bf16  f32   f64
bool    bool  u8    i8    i32   i64   f16   bf16  f32   f64
u8      .     u8    i32   i32   i64   f16   bf16  f32   f64
i8      .     .     i8    i32   i64   f16   bf16  f32   f64
i32     .     .     .     i32   i64   f16   bf16  f32   f64
i64     .     .     .     .     i64   f16   bf16  f32   f64
f16     .     .     .     .     .     f16   f32   f32   f64
bf16    .     .     .     .     .     .     bf16  f32   f64
f32     .     .     .     .     .     .     .     f32   f64
f64     .     .     .     .     .     .     .     .     f64
"""


def _joins() -> dict[tuple[str, str], str]:
    rows = [line.split() for line in TABLE.strip().splitlines()[1:]]
    out = {}
    for row in rows:
        for col, cell in zip(NAMES, row[1:], strict=True):
            if cell != ".":
                out[row[0], col] = out[col, row[0]] = cell
    return out


JOINS = _joins()


def zeros(name, shape=(2,)):
    return np.zeros(shape, tj.as_dtype(name).np_dtype)


def join(x, y):
    """Promote two values the way every binary function does (``where`` accepts bools)."""
    return tj.where(True, x, y)


@pytest.mark.parametrize("a, b", list(itertools.combinations_with_replacement(NAMES, 2)))
def test_array_with_array_follows_the_lattice(a, b):
    expected = tj.as_dtype(JOINS[a, b])
    assert join(zeros(a), zeros(b)).dtype == expected
    assert join(zeros(b), zeros(a)).dtype == expected
    if a != "bool" or b != "bool":   # arithmetic on two bools is an error, as in TF
        assert tj.add(zeros(a), zeros(b)).dtype == expected
        got = tj.jit(lambda x, y: tj.maximum(x, y))(zeros(a), zeros(b, (3, 1)))
        assert got.dtype == expected and got.shape == (3, 2)
        assert not got.weak


def test_arithmetic_on_two_bools_is_an_error():
    with pytest.raises(tj.DTypeError, match="add.*bool"):
        tj.add(np.ones(2, bool), np.ones(2, bool))


def test_lattice_is_associative():
    for a, b, c in itertools.product(NAMES, repeat=3):
        assert JOINS[JOINS[a, b], c] == JOINS[a, JOINS[b, c]], (a, b, c)
        left = join(join(zeros(a), zeros(b)), zeros(c))
        right = join(zeros(a), join(zeros(b), zeros(c)))
        assert left.dtype == right.dtype == tj.as_dtype(JOINS[JOINS[a, b], c])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_weak_python_scalars(name, scalar):
    """A scalar takes the array's type when that is of its kind or higher; otherwise
    the default type of the scalar's kind (int32, float32)."""
    kind = tj.as_dtype(name).kind
    if isinstance(scalar, bool) or kind == "float":
        expected = name
    elif isinstance(scalar, int):
        expected = "i32" if kind == "bool" else name
    else:
        expected = "f32"
    if name == "bool" and isinstance(scalar, bool):
        results = [join(zeros(name), scalar), join(scalar, zeros(name)),
                   tj.jit(join)(zeros(name), scalar)]
    else:
        results = [tj.multiply(zeros(name), scalar), tj.multiply(scalar, zeros(name)),
                   tj.constant(zeros(name)) * scalar, scalar * tj.constant(zeros(name)),
                   tj.jit(lambda x: x * scalar)(zeros(name)),
                   tj.jit(lambda x, s: x * s)(zeros(name), scalar)]
    for got in results:
        assert got.dtype == tj.as_dtype(expected), (got.dtype, expected)
        assert not got.weak


def test_documented_examples():
    f32 = np.ones(3, np.float32)
    assert (tj.constant(f32) * 2.0).dtype == tj.float32
    assert tj.add(np.ones(3, np.int8), 1).dtype == tj.int8
    np.testing.assert_array_equal(tj.add(np.full(2, 127, np.int8), 1), [-128, -128])  # wraps
    assert tj.multiply(np.ones(3, np.int32), 2.5).dtype == tj.float32
    np.testing.assert_array_equal(tj.multiply(np.ones(2, np.int32), 2.5), [2.5, 2.5])
    assert tj.multiply(np.ones(3, np.int64), 2.5).dtype == tj.float32
    half = np.ones(2, np.float16)
    brain = np.ones(2, ml_dtypes.bfloat16)
    assert tj.add(half, brain).dtype == tj.float32
    assert tj.add(np.ones(2, np.uint8), np.ones(2, np.int8)).dtype == tj.int32
    assert tj.add(np.ones(2, bool), np.ones(2, np.int32)).dtype == tj.int32
    assert tj.add(np.ones(2, bool), 1).dtype == tj.int32
    assert join(np.ones(2, bool), True).dtype == tj.bool
    assert (tj.constant(half) * 0.5).dtype == tj.float16
    assert (tj.constant(brain) + 1).dtype == tj.bfloat16


def test_integer_true_division_gives_float32():
    for dtype in (np.int8, np.uint8, np.int32, np.int64, bool):
        assert tj.divide(np.arange(4).astype(dtype), np.full(4, 2).astype(dtype)).dtype \
            == tj.float32
    assert (tj.constant(np.arange(3)) / 2).dtype == tj.float32
    assert (7 / tj.constant(np.arange(1, 3, dtype=np.int8))).dtype == tj.float32
    np.testing.assert_allclose(tj.constant(np.array([1, 3], np.int32)) / 2, [0.5, 1.5])
    assert (tj.constant(np.ones(2, np.float64)) / 2).dtype == tj.float64
    assert tj.jit(lambda a, b: a / b)(3, 2).dtype == tj.float32


def test_two_python_scalars_stay_weak():
    for a, b, dtype in [(1, 2, tj.int32), (1, 2.0, tj.float32), (True, 2, tj.int32),
                        (True, False, tj.bool), (1.5, 2.5, tj.float32)]:
        got = join(a, b)
        assert got.dtype == dtype and got.weak and got.shape == ()
        # ...so the weak result still adapts to an array it meets later.
        assert tj.add(got, np.ones(2, np.float16)).dtype == tj.float16
        assert tj.add(got, np.ones(2, np.int8)).dtype == (
            tj.float32 if dtype == tj.float32 else tj.int8)
    assert tj.jit(lambda a, b: a * b)(2, 3.0).weak
    assert tj.jit(lambda a, b: a * b)(2, 3.0).dtype == tj.float32


def test_numpy_scalars_are_strongly_typed():
    """A NumPy scalar carries its dtype, like an array (JAX does the same)."""
    f32 = np.ones(2, np.float32)
    assert tj.multiply(f32, np.float64(2.0)).dtype == tj.float64
    assert (np.float64(2.0) * tj.constant(f32)).dtype == tj.float64
    assert tj.add(np.ones(2, np.int8), np.int32(1)).dtype == tj.int32
    assert tj.jit(lambda x, s: x * s)(f32, np.float64(2.0)).dtype == tj.float64
    assert not tj.jit(lambda s: s + 1)(np.float32(1.0)).weak


def test_jit_scalar_arguments_are_weak_in_the_graph_and_the_cache():
    f = tj.jit(lambda x, s: x * s)
    assert f(np.ones(2, np.float16), 3.0).dtype == tj.float16
    assert f(np.ones(2, np.int8), 3).dtype == tj.int8
    assert f(np.ones(2, np.int8), 3.0).dtype == tj.float32
    assert f(np.ones(2, np.int8), True).dtype == tj.int8
    assert f.cache_size == 4
    f(np.ones(2, np.int8), 4)                       # same signature: no retrace
    assert f.cache_size == 4
    f(np.ones(2, np.int8), np.int32(4))             # a strong int32 is a new signature
    assert f.cache_size == 5
    assert f(np.ones(2, np.int8), np.int32(4)).dtype == tj.int32
    graph = tj.make_ir(lambda x, s: x * s)(np.ones(2, np.float16), 2.0)
    # Python numbers enter at full precision and weakly typed, then meet float16.
    assert [str(v.type.dtype) for v in graph.inputs] == ["float16", "float64"]
    assert graph.outputs[0].type.dtype == tj.float16


@pytest.mark.parametrize("value, dtype", [
    ([1.0, 2.0], tj.float32), ([1, 2], tj.int32), ([True, False], tj.bool),
    ([1, 2.5], tj.float32), ([[1, 2], [3, 4]], tj.int32), ((1, 2), tj.int32),
    ([True, 2], tj.int32),
    ([[1.0], [2]], tj.float32),
])
def test_lists_convert_like_tensorflow(value, dtype):
    for got in (tj.constant(value), tj.convert_to_tensor(value), join(value, False),
                tj.jit(lambda: tj.constant(value))()):
        assert got.dtype == dtype, (got.dtype, dtype)
        np.testing.assert_array_equal(got, np.asarray(value))
        assert not got.weak


def test_lists_of_arrays_and_lists_in_jit():
    assert tj.add([1.0, 2.0], np.ones(2, np.float64)).dtype == tj.float64
    got = tj.jit(lambda x: tj.stack([x, 2 * x]) + [[1], [2]])(np.ones(2, np.int8))
    assert got.dtype == tj.int32   # a list of Python ints is a strong int32 tensor
    np.testing.assert_array_equal(got, [[2, 2], [4, 4]])


def test_cast_between_every_pair():
    values = np.array([0.0, 1.0, 2.75, 100.0])
    for a, b in itertools.product(NAMES, repeat=2):
        x = tj.cast(values.astype(tj.as_dtype(a).np_dtype), tj.as_dtype(b))
        assert x.dtype == tj.as_dtype(b)
    np.testing.assert_array_equal(tj.cast(np.array([-2.7, 2.7]), tj.int32), [-2, 2])
    np.testing.assert_array_equal(tj.cast(np.array([0.0, 0.5]), tj.bool), [False, True])


def test_python_floats_keep_their_precision_against_float64():
    x = np.zeros(2, np.float64)
    for got in (tj.add(x, 0.1), tj.constant(x) + 0.1, 0.1 + tj.constant(x),
                tj.jit(lambda a: a + 0.1)(x), tj.where(x > 0, x, 0.1)):
        assert got.dtype == tj.float64
        assert np.asarray(got)[0] == 0.1             # not float32(0.1) widened
    assert np.isfinite(np.asarray(tj.multiply(x + 1, 1e300))).all()
    assert np.asarray(tj.clip_by_value(x, 0.1, 0.2))[0] == 0.1


def test_python_float_jit_argument_keeps_its_precision():
    got = tj.jit(lambda a, s: a + s)(np.zeros(1, np.float64), 0.1)
    assert np.asarray(got)[0] == 0.1


def test_large_python_int_jit_argument():
    assert tj.add(np.zeros(1, np.int64), 2**40).dtype == tj.int64     # eager is fine
    got = tj.jit(lambda a, s: a + s)(np.zeros(1, np.int64), 2**40)
    assert np.asarray(got)[0] == 2**40
