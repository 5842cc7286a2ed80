"""Transformations: nodes (see sources.py) made from another node.

``map`` and ``filter`` apply an ``ElementFunction`` (functions.py); the rest follow
``tf.data``'s rules: ``batch`` stacks (an error names the component whose shapes
differ), ``padded_batch`` pads to the largest or the given shape, ``shuffle`` keeps a
buffer (fill it, hand out a uniformly chosen element, put the next input in its place),
``repeat`` runs its input again (an input with no elements ends it), ``interleave``
cycles over datasets made from input elements exactly as TensorFlow's kernel does.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np

from . import rows
from . import structure as st
from .functions import ElementFunction

__all__ = ["Map", "Filter", "Batch", "PaddedBatch", "Unbatch", "Shuffle", "Repeat", "Take",
           "Skip", "Shard", "Cache", "Interleave", "SameSpec"]


class SameSpec:
    """A transformation whose elements have its input's spec (asked for when needed:
    finding a map function's spec traces it)."""

    input = None

    @property
    def spec(self):
        return self.input.spec


class Map:
    """``function`` applied to every element, in order; with ``threads`` > 0 a pool of
    that many threads computes up to ``threads`` elements ahead."""

    def __init__(self, input, function: ElementFunction, threads: int = 0):
        self.input = input
        self.function = function
        self.threads = threads

    @cached_property
    def spec(self):
        return self.function.output_spec(self.input.spec)

    def elements(self):
        if not self.threads:
            for element in self.input.elements():
                yield self.function(element)
            return
        source = self.input.elements()
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tracejit-data-map")
        pending: collections.deque = collections.deque()
        try:
            for element in source:
                pending.append(pool.submit(self.function, element))
                if len(pending) > self.threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            # NOTE: without waiting: the thread closing this pipeline may be one of the
            # pool's own (the last to let go of a dropped session); the workers end once
            # their current call returns
            pool.shutdown(wait=False, cancel_futures=True)
            source.close()


class Filter(SameSpec):
    """The elements for which ``predicate`` gives a scalar True."""

    def __init__(self, input, predicate: ElementFunction):
        self.input = input
        self.predicate = predicate

    def elements(self):
        for element in self.input.elements():
            keep = self.predicate(element)
            if not (isinstance(keep, np.ndarray) and keep.dtype == np.bool_
                    and keep.shape == ()):
                raise TypeError(f"filter: the predicate {self.predicate.name} must return a "
                                "scalar boolean, got "
                                f"{st.spec_of(keep)}")
            if keep:
                yield element


def _batched(spec, size):
    return st.TensorSpec(None if spec.shape is None else (size,) + spec.shape, spec.dtype)


class Batch:
    """Consecutive elements stacked into batches of ``batch_size`` (the last one smaller,
    or dropped with ``drop_remainder``)."""

    def __init__(self, input, batch_size: int, drop_remainder: bool = False):
        self.input = input
        self.batch_size = _positive(batch_size, "batch_size")
        self.drop_remainder = bool(drop_remainder)

    @cached_property
    def spec(self):
        size = self.batch_size if self.drop_remainder else None
        return st.map_structure(lambda s: _batched(s, size), self.input.spec)

    def elements(self):
        table = rows.row_table(self.input)
        if table is not None and type(self) is Batch:
            yield from rows.batches_of_rows(table, self.input.row_chunks(), self.batch_size,
                                            self.drop_remainder)
            return
        source = self.input.elements()
        try:
            while True:
                group = list(itertools.islice(source, self.batch_size))
                if not group or (self.drop_remainder and len(group) < self.batch_size):
                    return
                yield self.combine(group)
        finally:
            source.close()

    def combine(self, group):
        treedef, first = st.flatten(group[0])
        columns = zip(first, *(st.flatten(e)[1] for e in group[1:]), strict=True) \
            if len(first) > 1 else [[first[0]] + [st.flatten(e)[1][0] for e in group[1:]]]
        out = []
        for index, column in enumerate(columns):
            try:
                # NOTE: np.stack checks the shapes itself (no Python loop per element
                # on the path every batch takes); TF's message is made only on failure
                out.append(np.stack(column))
            except ValueError:
                for i, part in enumerate(column):
                    if part.shape != column[0].shape:
                        raise st.ElementError(
                            f"Cannot batch tensors with different shapes in component "
                            f"{index}. First element had shape {list(column[0].shape)} "
                            f"and element {i} had shape {list(part.shape)}.") from None
                raise
        return st.unflatten(treedef, out)


class PaddedBatch(Batch):
    """Batches whose components are padded (with ``padding_values``, 0 or b"" by
    default) to ``padded_shapes``; a None dimension pads to the batch's longest."""

    def __init__(self, input, batch_size, padded_shapes=None, padding_values=None,
                 drop_remainder=False):
        super().__init__(input, batch_size, drop_remainder)
        self.padded_shapes = padded_shapes
        self.padding_values = padding_values
        self._resolved = None

    def _resolve(self, treedef, dtypes, ranks):
        """(shapes, values) per component, for elements of ``treedef``."""
        if self._resolved is not None and self._resolved[0] == treedef:
            return self._resolved[1:]
        if self.padded_shapes is None:
            if any(r is None for r in ranks):
                raise ValueError("padded_batch: padded_shapes is needed where a component's "
                                 "rank is unknown")
            shapes = [(None,) * r for r in ranks]
        else:
            shapes = [st.as_shape(s) for s in st.flatten_up_to(
                treedef, self.padded_shapes, "padded_batch: padded_shapes does not match "
                "the dataset's elements")]
        if self.padding_values is None:
            values = [np.array(b"", object) if d == st.STRING else np.zeros((), d)
                      for d in dtypes]
        else:
            values = [st.to_array(v, d) for v, d in zip(st.flatten_up_to(
                treedef, self.padding_values, "padded_batch: padding_values does not match "
                "the dataset's elements"), dtypes, strict=True)]
        for i, (shape, rank) in enumerate(zip(shapes, ranks, strict=True)):
            if rank is not None and shape is not None and len(shape) != rank:
                raise ValueError(f"padded_batch: the padded shape {list(shape)} of component "
                                 f"{i} does not have the rank of its elements ({rank})")
        self._resolved = (treedef, shapes, values)
        return shapes, values

    @cached_property
    def spec(self):
        size = self.batch_size if self.drop_remainder else None
        treedef, specs = st.flatten(self.input.spec)
        shapes, _ = self._resolve(treedef, [s.dtype for s in specs],
                                  [None if s.shape is None else len(s.shape) for s in specs])
        return st.unflatten(treedef, [st.TensorSpec((size,) + tuple(shape), s.dtype)
                                      for shape, s in zip(shapes, specs, strict=True)])

    def combine(self, group):
        treedef, first = st.flatten(group[0])
        shapes, values = self._resolve(treedef, [a.dtype for a in first],
                                       [a.ndim for a in first])
        columns = list(zip(*(st.flatten(e)[1] for e in group), strict=True))
        out = []
        for column, shape, value in zip(columns, shapes, values, strict=True):
            longest = np.max([p.shape for p in column], axis=0) if column[0].ndim else ()
            target = tuple(int(m) if d is None else d
                           for d, m in zip(shape, longest, strict=True))
            batch = np.full((len(column),) + target, value, dtype=column[0].dtype)
            for i, part in enumerate(column):
                if part.ndim != len(target) or any(
                        p > t for p, t in zip(part.shape, target, strict=True)):
                    raise st.ElementError("Attempted to pad to a smaller size than the input "
                                          "element.", data_loss=True)
                batch[(i,) + tuple(slice(0, n) for n in part.shape)] = part
            out.append(batch)
        return st.unflatten(treedef, out)


class Unbatch:
    """The rows of each element's components (which share their first dimension)."""

    def __init__(self, input):
        self.input = input

    @cached_property
    def spec(self):
        return st.map_structure(
            lambda s: st.TensorSpec(None if s.shape is None else s.shape[1:], s.dtype),
            self.input.spec)

    def elements(self):
        for element in self.input.elements():
            treedef, leaves = st.flatten(element)
            rows = {leaf.shape[0] if leaf.ndim else None for leaf in leaves}
            if None in rows or len(rows) != 1:
                raise st.ElementError("unbatch: every component needs the same first "
                                      f"dimension, got shapes {[a.shape for a in leaves]}")
            for i in range(rows.pop()):
                yield st.unflatten(treedef, [leaf[i, ...] for leaf in leaves])


class Shuffle(SameSpec):
    """TensorFlow's buffered shuffle. ``seed`` None: a fresh random seed; each iteration
    (epoch) draws a new order unless ``reshuffle_each_iteration`` is False."""

    def __init__(self, input, buffer_size: int, seed=None, reshuffle_each_iteration=None):
        self.input = input
        self.buffer_size = _positive(buffer_size, "buffer_size")
        self.seed = int(seed) if seed is not None else \
            int.from_bytes(os.urandom(8), "little")
        self.reshuffle = True if reshuffle_each_iteration is None else \
            bool(reshuffle_each_iteration)
        self._epochs = itertools.count()
        self._lock = threading.Lock()

    def _uniforms(self) -> rows.UniformStream:
        """The draws of one iteration (epoch)."""
        with self._lock:
            epoch = next(self._epochs) if self.reshuffle else 0
        return rows.UniformStream(np.random.default_rng([self.seed & (2**63 - 1), epoch]))

    def row_table(self):
        return rows.row_table(self.input)

    def row_chunks(self):
        yield from rows.shuffled_rows(self.input.row_chunks(), self.buffer_size,
                                      self._uniforms())

    def elements(self):
        uniforms = self._uniforms()
        buffer: list = []
        source = self.input.elements()
        try:
            for element in source:
                if len(buffer) < self.buffer_size:
                    buffer.append(element)
                    continue
                at = int(uniforms.next() * len(buffer))
                yield buffer[at]
                buffer[at] = element
            while buffer:
                at = int(uniforms.next() * len(buffer))
                buffer[at], buffer[-1] = buffer[-1], buffer[at]
                yield buffer.pop()
        finally:
            source.close()


class Repeat(SameSpec):
    """The input ``count`` times (None or -1: forever; an empty input ends at once)."""

    def __init__(self, input, count=None):
        self.input = input
        self.count = None if count is None or int(count) < 0 else int(count)

    def row_table(self):
        return rows.row_table(self.input)

    def row_chunks(self):
        yield from self._epochs(lambda: (c for c in self.input.row_chunks() if len(c)))

    def elements(self):
        yield from self._epochs(self.input.elements)

    def _epochs(self, iteration):
        epochs = itertools.count() if self.count is None else range(self.count)
        for _ in epochs:
            produced = False
            for item in iteration():
                produced = True
                yield item
            if not produced:
                return


class Take(SameSpec):
    def __init__(self, input, count):
        self.input, self.count = input, int(count)

    def row_table(self):
        return rows.row_table(self.input)

    def row_chunks(self):
        left = self.count
        if left == 0:
            return
        source = self.input.row_chunks()
        try:
            for chunk in source:
                if left < 0:
                    yield chunk
                    continue
                yield chunk[:left]
                left -= min(left, len(chunk))
                if left == 0:
                    # NOTE: not one chunk more: asking would start the input's next
                    # pass (a shuffle's next epoch), which the element path never does
                    return
        finally:
            source.close()

    def elements(self):
        source = self.input.elements()
        try:
            yield from (source if self.count < 0 else itertools.islice(source, self.count))
        finally:
            source.close()


class Skip(SameSpec):
    def __init__(self, input, count):
        self.input, self.count = input, int(count)

    def row_table(self):
        return rows.row_table(self.input)

    def row_chunks(self):
        left = self.count
        for chunk in self.input.row_chunks():
            if left < 0:
                continue
            yield chunk[left:]
            left = max(0, left - len(chunk))

    def elements(self):
        source = self.input.elements()
        if self.count < 0:
            for _ in source:
                pass
            return
        yield from itertools.islice(source, self.count, None)


class Shard(SameSpec):
    """Every ``num_shards``-th element, starting at ``index``."""

    def __init__(self, input, num_shards, index):
        num_shards, index = int(num_shards), int(index)
        if num_shards < 1 or not 0 <= index < num_shards:
            raise ValueError(f"shard: need num_shards >= 1 and 0 <= index < num_shards, got "
                             f"num_shards={num_shards}, index={index}")
        self.input = input
        self.num_shards, self.index = num_shards, index

    def elements(self):
        yield from itertools.islice(self.input.elements(), self.index, None, self.num_shards)


class Cache(SameSpec):
    """The input's elements, kept in memory by the first iteration that reaches the end;
    later iterations read them from there."""

    def __init__(self, input):
        self.input = input
        self.kept: list | None = None

    def elements(self):
        if self.kept is not None:
            yield from self.kept
            return
        seen = []
        for element in self.input.elements():
            seen.append(element)
            yield element
        if self.kept is None:
            self.kept = seen


class Interleave:
    """Elements of the datasets ``function`` makes from input elements: ``cycle_length``
    of them open at once, ``block_length`` elements from each in turn; an ended one is
    replaced, in its place of the cycle, by the next input element's dataset."""

    def __init__(self, input, function, cycle_length, block_length=1, spec_of_made=None):
        self.input = input
        self.function = function            # element -> a dataset (an iterable of elements)
        self.cycle_length = _positive(cycle_length, "cycle_length")
        self.block_length = _positive(block_length, "block_length")
        self.spec_of_made = spec_of_made    # () -> the element spec of the datasets made

    @cached_property
    def spec(self):
        if self.spec_of_made is None:
            raise ValueError("interleave: the element spec of the datasets the function "
                             "makes is not known")
        return self.spec_of_made()

    def elements(self):
        source = self.input.elements()
        slots: list = [None] * self.cycle_length
        open_count, index, block, input_done = 0, 0, 0, False
        try:
            while not input_done or open_count:
                current = slots[index]
                if current is not None:
                    try:
                        element = next(current)
                    except StopIteration:
                        slots[index] = None
                        open_count -= 1
                        index, block = (index + 1) % self.cycle_length, 0
                        continue
                    block += 1
                    if block == self.block_length:
                        index, block = (index + 1) % self.cycle_length, 0
                    yield element
                elif not input_done:
                    try:
                        element = next(source)
                    except StopIteration:
                        input_done = True
                        continue
                    slots[index] = iter(self.function(element))
                    open_count += 1
                else:
                    index, block = (index + 1) % self.cycle_length, 0
        finally:
            for slot in slots:
                close = getattr(slot, "close", None)
                if close is not None:
                    close()
            source.close()


def _positive(value, name: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return number
