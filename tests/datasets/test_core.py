"""tracejit.data.Dataset for @jit programs: sources, transformations, element_spec,
map functions compiled once per signature, shuffle's buffer semantics, threads that end
with the iteration, and clear errors."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

import tracejit as tj
from tracejit.data import Dataset, TensorSpec, TextLineDataset


def _values(dataset):
    return [np.asarray(e).tolist() for e in dataset]


def test_tj_data_is_tracejit_data():
    import tracejit.data
    assert tj.data.Dataset is tracejit.data.Dataset is Dataset


def test_sources_and_element_spec():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    ds = Dataset.from_tensor_slices({"x": x, "label": np.array([1, 0, 1])})
    assert ds.element_spec == {"x": TensorSpec((2,), np.dtype(np.float32)),
                               "label": TensorSpec((), np.dtype(np.int64))}
    assert [e["x"].tolist() for e in ds] == x.tolist()
    assert Dataset.from_tensor_slices([1.0, 2.0]).element_spec.dtype == np.float32
    assert _values(Dataset.range(2, 8, 3)) == [2, 5]
    assert _values(Dataset.from_tensors([1, 2]).repeat(2)) == [[1, 2], [1, 2]]
    zipped = Dataset.zip((Dataset.range(3), Dataset.range(10, 12)))
    assert [(int(a), int(b)) for a, b in zipped] == [(0, 10), (1, 11)]
    assert _values(Dataset.range(3).concatenate(Dataset.range(7, 8))) == [0, 1, 2, 7]
    with pytest.raises(ValueError, match="same size in their first dimension"):
        Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))


def test_map_is_compiled_once_per_signature_and_keeps_structure():
    calls = []

    def scale(x, y):
        calls.append(1)             # runs while tracing only
        return {"x": x * 2.0, "y": y + 1}

    ds = Dataset.from_tensor_slices((np.arange(50, dtype=np.float32), np.arange(50)))
    mapped = ds.map(scale)
    assert mapped.element_spec == {"x": TensorSpec((), np.dtype(np.float32)),
                                   "y": TensorSpec((), np.dtype(np.int64))}
    traced_for_spec = len(calls)
    out = list(mapped)
    assert [e["x"].item() for e in out] == [2.0 * i for i in range(50)]
    assert [e["y"].item() for e in out] == list(range(1, 51))
    assert len(calls) - traced_for_spec == 1     # one compile for 50 elements
    assert mapped.node.function.jitted.cache_size == 1


def test_map_spec_of_varying_shapes_and_batches():
    ds = Dataset.from_generator(lambda: (np.ones(n, np.float32) for n in (2, 3)),
                                np.float32, [None])
    summed = ds.map(lambda v: (v * 3.0, tj.reduce_sum(v)))
    assert summed.element_spec == (TensorSpec((None,), np.dtype(np.float32)),
                                   TensorSpec((), np.dtype(np.float32)))
    assert [s.item() for _, s in summed] == [2.0, 3.0]
    assert Dataset.range(5).batch(2, drop_remainder=True).element_spec == \
        TensorSpec((2,), np.dtype(np.int64))


def test_parallel_map_keeps_order():
    def slow(v):
        time.sleep(0.002 * (int(v) % 3))
        return v * 10
    ds = Dataset.range(30).map(slow, num_parallel_calls=4, compile=False)
    assert _values(ds) == [10 * i for i in range(30)]
    compiled = Dataset.range(30).map(lambda v: v * 10, num_parallel_calls=tj.data.AUTOTUNE)
    assert _values(compiled) == [10 * i for i in range(30)]


def test_strings_run_as_python_and_errors_name_the_function(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"ab\ncd\r\n")
    upper = TextLineDataset(str(path)).map(lambda line: line.item().upper())
    assert [e.item() for e in upper] == [b"AB", b"CD"]

    def changes(v):
        return (v,) if int(v) == 0 else v
    with pytest.raises(TypeError, match="another structure"):
        list(Dataset.range(3).map(changes, compile=False))

    def dtype_changes(v):
        return np.float32(v) if int(v) == 0 else np.int64(v)
    with pytest.raises(TypeError, match="returned dtypes"):
        list(Dataset.range(3).map(dtype_changes, compile=False))
    with pytest.raises(TypeError, match="scalar boolean"):
        list(Dataset.range(3).filter(lambda v: v + 1))


def test_from_generator_checks_each_element():
    def gen():
        yield (1, [1.0, 2.0])
        yield (2, [1.0])
    ds = Dataset.from_generator(gen, (np.int32, np.float32), ((), (2,)))
    it = iter(ds)
    first = next(it)
    assert first[0].dtype == np.int32 and first[1].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"element 1 has shape \(1,\)"):
        next(it)
    with pytest.raises(TypeError, match="element 0 of the generator"):
        list(Dataset.from_generator(lambda: iter([1]), (np.int32, np.int32)))
    with pytest.raises(TypeError, match="cannot be converted to the declared dtype int32"):
        list(Dataset.from_generator(lambda: iter(["x"]), np.int32))
    with pytest.raises(TypeError, match="callable"):
        Dataset.from_generator(iter([1]), np.int32)


def test_batch_padded_batch_unbatch():
    ds = Dataset.from_generator(lambda: (["a"] * n for n in (1, 3, 2)), object, [None])
    padded = list(ds.padded_batch(2, padding_values=b"-"))
    assert padded[0].tolist() == [[b"a", b"-", b"-"], [b"a", b"a", b"a"]]
    assert padded[1].tolist() == [[b"a", b"a"]]
    numbers = Dataset.from_tensor_slices(np.arange(6).reshape(3, 2))
    assert _values(numbers.batch(2).unbatch()) == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="Cannot batch tensors with different shapes"):
        list(Dataset.from_generator(lambda: iter([[1], [1, 2]]), np.int64, [None]).batch(2))


def test_shuffle_buffer_semantics():
    n, k = 40, 5
    for seed in range(20):
        order = _values(Dataset.range(n).shuffle(k, seed=seed))
        assert sorted(order) == list(range(n))
        # an element is handed out only once it is in the buffer: at most k-1 ahead
        assert all(value <= position + k - 1 for position, value in enumerate(order))
    assert _values(Dataset.range(10).shuffle(1, seed=0)) == list(range(10))


def test_shuffle_orders_per_iteration():
    ds = Dataset.range(20).shuffle(20, seed=4)
    first, second = _values(ds), _values(ds)
    assert sorted(first) == sorted(second) == list(range(20)) and first != second
    assert _values(Dataset.range(20).shuffle(20, seed=4)) == first  # the seed repeats
    fixed = Dataset.range(20).shuffle(20, seed=4, reshuffle_each_iteration=False)
    assert _values(fixed) == _values(fixed)
    epochs = _values(Dataset.range(20).shuffle(20, seed=1).repeat(2))
    assert epochs[:20] != epochs[20:] and sorted(epochs[20:]) == list(range(20))


def test_take_skip_shard_cache_repeat():
    calls = []

    def gen():
        calls.append(1)
        yield from range(4)
    cached = Dataset.from_generator(gen, np.int64).cache()
    assert _values(cached.repeat(3)) == [0, 1, 2, 3] * 3
    assert len(calls) == 1
    assert _values(Dataset.range(10).skip(7)) == [7, 8, 9]
    assert _values(Dataset.range(10).take(2)) == [0, 1]
    assert _values(Dataset.range(10).shard(4, 3)) == [3, 7]
    assert _values(Dataset.range(0).repeat()) == []
    assert _values(Dataset.range(2).repeat().take(5)) == [0, 1, 0, 1, 0]


def test_interleave_and_flat_map():
    made = Dataset.range(4).interleave(
        lambda v: Dataset.from_tensors(v).repeat(2), cycle_length=2, block_length=1)
    assert _values(made) == [0, 1, 0, 1, 2, 3, 2, 3]
    assert made.element_spec == TensorSpec((), np.dtype(np.int64))
    assert _values(Dataset.range(1, 4).flat_map(lambda v: Dataset.range(int(v)))) == \
        [0, 0, 1, 0, 1, 2]
    with pytest.raises(TypeError, match="must return a Dataset"):
        list(Dataset.range(2).flat_map(lambda v: v))


def _new_threads(before):
    return [t for t in threading.enumerate() if t not in before]


def _threads_left(before, wait_s: float = 10.0):
    """The new threads still alive after a bounded wait: a stopped thread ends on its
    own time, a moment later on a loaded machine."""
    deadline = time.monotonic() + wait_s
    while _new_threads(before) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _new_threads(before)


def test_prefetch_threads_end_with_the_iteration():
    before = set(threading.enumerate())
    ds = Dataset.range(100).map(lambda v: v * 2, num_parallel_calls=2).prefetch(3)
    assert _values(ds) == [2 * i for i in range(100)]
    assert _threads_left(before) == []
    it = iter(ds)
    next(it)
    assert _new_threads(before)                 # running while the pass is open
    del it                                       # dropped mid-pass
    gc.collect()
    assert _threads_left(before) == []
    with iter(Dataset.range(10**9).prefetch(2)) as it:
        next(it)
    assert _threads_left(before) == []
    for i, _ in enumerate(Dataset.range(10**9).prefetch(1)):
        if i == 3:
            break
    gc.collect()
    assert _threads_left(before) == []


def test_prefetch_hands_on_errors_and_stops():
    before = set(threading.enumerate())

    def gen():
        yield 1
        raise RuntimeError("broken source")
    it = iter(Dataset.from_generator(gen, np.int64).prefetch(4))
    assert next(it).item() == 1
    with pytest.raises(RuntimeError, match="broken source"):
        next(it)
    it.close()
    assert _threads_left(before) == []


def test_jit_step_trains_on_a_dataset():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.25

    @tj.jit
    def step(w, b, xb, yb):
        def loss(w, b):
            return tj.reduce_mean(tj.square(xb @ w + b - yb))
        gw, gb = tj.grad(loss, argnums=(0, 1))(w, b)
        return w - 0.1 * gw, b - 0.1 * gb

    ds = Dataset.from_tensor_slices((x, y)).shuffle(64, seed=0).batch(16).repeat(30) \
        .prefetch(2)
    w, b = np.zeros(3, np.float32), np.float32(0.0)
    w_ref, b_ref = w.astype(np.float64), 0.0
    for xb, yb in ds:
        w, b = step(w, b, xb, yb)
        err = xb @ w_ref + b_ref - yb
        w_ref, b_ref = w_ref - 0.1 * 2 * xb.T @ err / len(xb), b_ref - 0.1 * 2 * err.mean()
    np.testing.assert_allclose(np.asarray(w), w_ref, atol=1e-4)
    np.testing.assert_allclose(np.asarray(w), [1.0, -2.0, 0.5], atol=1e-2)
    assert float(b) == pytest.approx(0.25, abs=1e-2)
    assert step.cache_size == 1
