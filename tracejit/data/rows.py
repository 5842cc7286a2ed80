"""Row streams: the fast path of pipelines over arrays held in memory.

The elements of ``from_tensor_slices(arrays)`` -- and of its ``shuffle``, ``repeat``,
``take`` and ``skip`` -- are rows of those same arrays. Such a node can hand out *row
numbers*, a chunk (an int64 array) at a time (``row_chunks()``), and ``batch`` then
gathers a whole batch with one indexing per array, where the element path slices every
row on its own and stacks them (a batch of 32 8x8 images: ~130 us of Python on the
element path, a few us here, on the project's 2-core hosts -- CPU that a training step
running beside the pipeline would otherwise lose).

The rows come in exactly the order the element path gives, shuffles included: both
paths draw from a :class:`UniformStream` seeded alike, and the vectorized shuffle below
replays the buffered shuffle's picks (tests check the two paths element for element).
"""

from __future__ import annotations

import numpy as np

from . import structure as st

__all__ = ["CHUNK", "UniformStream", "row_table", "shuffled_rows", "batches_of_rows"]

CHUNK = 4096            # rows per chunk a source hands out
_BLOCK = 1024           # uniforms drawn per generator call


class UniformStream:
    """Uniform doubles in [0, 1) from ``rng``, drawn ``_BLOCK`` at a time, read one at a
    time (:meth:`next`) or many at once (:meth:`take`) from the same sequence."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.block = np.empty(0)
        self.values: list[float] = []
        self.at = 0

    def _refill(self) -> None:
        self.block = self.rng.random(_BLOCK)
        self.values = self.block.tolist()
        self.at = 0

    def next(self) -> float:
        if self.at == len(self.values):
            self._refill()
        value = self.values[self.at]
        self.at += 1
        return value

    def take(self, count: int) -> np.ndarray:
        parts = []
        while count:
            if self.at == len(self.values):
                self._refill()
            n = min(count, len(self.values) - self.at)
            parts.append(self.block[self.at:self.at + n])
            self.at += n
            count -= n
        return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else \
            np.empty(0)


def row_table(node):
    """``(treedef, arrays)`` when ``node``'s elements are rows of ``arrays`` and it can
    hand out their numbers (``node.row_chunks()``); None otherwise."""
    find = getattr(node, "row_table", None)
    return find() if find is not None else None


def shuffled_rows(chunks, buffer_size: int, uniforms: UniformStream):
    """The rows of ``chunks`` in the order ``Shuffle``'s element path hands them out:
    fill a buffer of ``buffer_size``; then each input row takes the place of a uniformly
    picked one, which goes out; at the end the buffer drains in random order."""
    buffer = np.empty(buffer_size, np.int64)
    held = 0
    for chunk in chunks:
        if held < buffer_size:
            n = min(buffer_size - held, len(chunk))
            buffer[held:held + n] = chunk[:n]
            held += n
            chunk = chunk[n:]
        if len(chunk):
            yield _replace_picked(buffer, chunk, uniforms)
    out = buffer[:held].tolist()
    for n in range(held, 0, -1):
        at = int(uniforms.next() * n)
        out[at], out[n - 1] = out[n - 1], out[at]
    yield np.array(out[::-1], np.int64)


def _replace_picked(buffer: np.ndarray, incoming: np.ndarray, uniforms: UniformStream):
    """Steady state, ``len(incoming)`` steps at once: step t picks slot ``p[t]``, hands
    out what the slot holds and puts ``incoming[t]`` there. A slot picked twice in the
    chunk hands out, the second time, the row the first time put there."""
    picks = (uniforms.take(len(incoming)) * len(buffer)).astype(np.int64)
    order = np.argsort(picks, kind="stable")      # by slot, then by step
    slots = picks[order]
    again = np.zeros(len(slots), bool)
    again[1:] = slots[1:] == slots[:-1]
    previous = np.empty(len(order), np.int64)     # the step before, in the same slot
    previous[0] = 0
    previous[1:] = order[:-1]
    out = np.empty(len(incoming), np.int64)
    out[order] = np.where(again, incoming[previous], buffer[slots])
    last = np.ones(len(slots), bool)
    last[:-1] = ~again[1:]
    buffer[slots[last]] = incoming[order[last]]
    return out


def batches_of_rows(table, chunks, size: int, drop_remainder: bool):
    """Batches of ``size`` rows of ``table`` (a smaller last one unless
    ``drop_remainder``), each gathered with one indexing per array."""
    treedef, arrays = table
    pending: list[np.ndarray] = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += len(chunk)
        if count < size:
            continue
        rows = np.concatenate(pending) if len(pending) > 1 else pending[0]
        whole = count - count % size
        for start in range(0, whole, size):
            picked = rows[start:start + size]
            yield st.unflatten(treedef, [array[picked] for array in arrays])
        pending, count = [rows[whole:]], count - whole
    if count and not drop_remainder:
        picked = np.concatenate(pending)
        yield st.unflatten(treedef, [array[picked] for array in arrays])
