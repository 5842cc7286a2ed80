"""random_bits: Threefry-2x32-20 answer vectors, an independent pure-Python Threefry,
determinism, and the statistics of the bits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tracejit.ir import OPS, Tag
from tracejit.ir import dtypes as dt
from tracejit.ir.errors import DTypeError, ShapeError
from tracejit.ir.ops_random import threefry2x32

from .op_examples import T, infer, run_op

RANDOM_BITS = OPS["random_bits"]
M32 = 0xFFFFFFFF

# Known-answer vectors of Threefry-2x32 with 20 rounds, from the Random123 test suite
# (also checked by JAX): (key, counter) -> output words.
KNOWN_ANSWERS = [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((M32, M32), (M32, M32), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def python_threefry(key, counter):
    """Threefry-2x32-20 written directly from the paper, on Python ints."""
    rotations = (13, 15, 26, 6, 17, 29, 16, 24)
    schedule = (key[0], key[1], key[0] ^ key[1] ^ 0x1BD11BDA)
    x = [(counter[0] + schedule[0]) & M32, (counter[1] + schedule[1]) & M32]
    for block in range(5):
        for r in rotations[4 * (block % 2):4 * (block % 2) + 4]:
            x[0] = (x[0] + x[1]) & M32
            x[1] = (((x[1] << r) | (x[1] >> (32 - r))) & M32) ^ x[0]
        x[0] = (x[0] + schedule[(block + 1) % 3]) & M32
        x[1] = (x[1] + schedule[(block + 2) % 3] + block + 1) & M32
    return tuple(x)


def bits(key, shape) -> np.ndarray:
    key = np.array([k - (1 << 32) if k >= 1 << 31 else k for k in key], np.int32)
    return run_op(RANDOM_BITS, [key], {"shape": shape})


@pytest.mark.parametrize("key, counter, expected", KNOWN_ANSWERS)
def test_known_answers(key, counter, expected):
    assert python_threefry(key, counter) == expected
    x0, x1 = threefry2x32(key, np.uint32([counter[0]]), np.uint32([counter[1]]))
    assert (int(x0[0]), int(x1[0])) == expected


def test_op_gives_word_zero_of_the_flat_index():
    got = bits((0, 0), (2,)).view(np.uint32)
    assert int(got[0]) == 0x6B200159
    assert int(got[1]) == python_threefry((0, 0), (1, 0))[0]


@settings(max_examples=25, deadline=None)
@given(key=st.tuples(st.integers(0, M32), st.integers(0, M32)),
       shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
def test_matches_python_threefry(key, shape):
    got = bits(key, shape)
    assert got.dtype == np.int32 and got.shape == shape
    flat = got.reshape(-1).view(np.uint32)
    assert [int(v) for v in flat] == [python_threefry(key, (i, 0))[0]
                                      for i in range(flat.size)]


def test_counter_high_word_is_index_shifted():
    # Index 2**32 + 5 would be counter (5, 1); check the pure function's word split.
    lo, hi = np.uint32([5]), np.uint32([1])
    assert int(threefry2x32((7, 9), lo, hi)[0][0]) == python_threefry((7, 9), (5, 1))[0]


def test_deterministic_and_shape_is_only_a_view_of_the_stream():
    a = bits((123, 456), (3, 4))
    np.testing.assert_array_equal(a, bits((123, 456), (3, 4)))
    np.testing.assert_array_equal(a.reshape(-1), bits((123, 456), (12,)))
    np.testing.assert_array_equal(a.reshape(-1), bits((123, 456), (20,))[:12])


SAMPLES = 100_000


def _bit_matrix(words: np.ndarray) -> np.ndarray:
    return (words.view(np.uint32)[:, None] >> np.arange(32, dtype=np.uint32)) & 1


def test_bits_are_uniform():
    words = bits((42, 7), (SAMPLES,))
    ones = _bit_matrix(words).mean(axis=0)
    # Each bit is Bernoulli(1/2): standard error 0.0016 over 1e5 draws; allow ~6 sigma.
    assert np.all(np.abs(ones - 0.5) < 0.01), ones
    # Bytes spread evenly over 256 values: chi-square with 255 degrees of freedom has
    # mean 255 and standard deviation about 22.6.
    counts = np.bincount(words.view(np.uint8), minlength=256)
    expected = words.size * 4 / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 255 + 6 * 22.6, chi2
    fractions = words.view(np.uint32) / 2.0**32
    assert abs(fractions.mean() - 0.5) < 0.005


@pytest.mark.parametrize("other", [(0, 1), (1, 0), (1, 1), (M32, 0)])
def test_neighbouring_keys_are_independent(other):
    base = _bit_matrix(bits((0, 0), (SAMPLES // 4,)))
    near = _bit_matrix(bits(other, (SAMPLES // 4,)))
    agreement = (base == near).mean()      # 1/2 for independent streams
    assert abs(agreement - 0.5) < 0.005, agreement
    r = np.corrcoef(base.reshape(-1), near.reshape(-1))[0, 1]
    assert abs(r) < 0.01, r


def test_neighbouring_indices_decorrelate():
    words = bits((3, 3), (SAMPLES,)).view(np.uint32).astype(np.float64)
    r = np.corrcoef(words[:-1], words[1:])[0, 1]
    assert abs(r) < 0.02, r


def test_key_type_is_checked():
    with pytest.raises(DTypeError, match=r"^random_bits: .*u8\[2\]"):
        infer(RANDOM_BITS, [T((2,), dt.uint8)], {"shape": (3,)})
    with pytest.raises(ShapeError, match=r"^random_bits: .*i32\[3\]"):
        infer(RANDOM_BITS, [T((3,), dt.int32)], {"shape": (3,)})
    assert infer(RANDOM_BITS, [T((2,), dt.int32)], {"shape": (0, 2)}) == T((0, 2), dt.int32)
    # Pure given its key: it may be folded, deduplicated and fused.
    assert RANDOM_BITS.has(Tag.RANDOM) and not RANDOM_BITS.has(Tag.STATEFUL)
