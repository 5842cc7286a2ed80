"""How a ring all-reduce cuts a list of arrays into buckets and chunks, and the exact
summation order it follows (the reference the ring's results equal bit for bit).

**Buckets.** The arrays are grouped by dtype; within a dtype they are laid end to end
in *reverse* list order (as PyTorch DDP does: a model's last layers' gradients come
first in the backward pass, so they go first) in one flat buffer, and that buffer is
cut into buckets of at most ``bucket_bytes`` each. An array larger than a bucket spans
several, so every bucket but a dtype's last has exactly the same size, which keeps the
pipeline of buckets even. Buckets go in the order their dtype first appears in the
reversed list.

**Chunks.** A ring of ``n`` workers cuts each bucket into ``n`` chunks as
``numpy.array_split`` does (the first ``size % n`` chunks one element longer).

**Summation order.** Chunk ``c`` of a bucket is summed in ring order starting at the
worker in ring position ``c``: ``((x[c] + x[c+1]) + x[c+2]) + ... + x[c-1]`` (positions
mod ``n``), in the arrays' own dtype; the mean divides that sum by ``n`` once.
:func:`reference_allreduce` computes exactly this in one process. With two workers
the order does not matter (``a + b == b + a`` in IEEE arithmetic), so the result is the
plain elementwise sum (and mean) of the two workers' arrays.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..ir.errors import TracejitError
from .wire import DTYPE_CODES

__all__ = ["Bucket", "BucketPlan", "AllReduceError", "chunk_bounds", "reference_allreduce",
           "REDUCIBLE_DTYPES"]

# The dtypes the wire carries, less bool (a sum of flags is not a flag).
REDUCIBLE_DTYPES = tuple(np.dtype(d.np_dtype) for d in DTYPE_CODES.values()
                         if np.dtype(d.np_dtype) != np.bool_)


class AllReduceError(TracejitError, RuntimeError):
    """A collective that cannot go on: arrays that cannot be reduced, or a message from a
    neighbour that does not fit the step (wrong step, bucket, chunk, shape or dtype)."""


@dataclass(frozen=True)
class Bucket:
    """``size`` elements of dtype group ``group``'s flat buffer, from ``start``."""

    index: int
    group: int
    dtype: np.dtype
    start: int
    size: int

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


@dataclass(frozen=True)
class _Group:
    dtype: np.dtype
    members: tuple[int, ...]        # array indices, in reverse list order
    offsets: tuple[int, ...]        # where each member starts in the flat buffer
    sizes: tuple[int, ...]          # each member's number of elements
    size: int


def chunk_bounds(size: int, n: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of the ``n`` chunks of a bucket of ``size`` elements."""
    base, extra = divmod(size, n)
    bounds, start = [], 0
    for i in range(n):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


class BucketPlan:
    """The buckets of arrays of ``shapes`` and ``dtypes`` at ``bucket_bytes`` a bucket.

    ``pack`` copies arrays into one flat buffer per dtype, ``bucket_view`` is a bucket's
    slice of those buffers, ``unpack`` gives each array back as a view of them.
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], dtypes: Sequence[np.dtype],
                 bucket_bytes: int):
        check_bucket_bytes(bucket_bytes)
        self.shapes = tuple(tuple(int(d) for d in s) for s in shapes)
        self.dtypes = tuple(np.dtype(d) for d in dtypes)
        self.bucket_bytes = bucket_bytes
        members: dict[np.dtype, list[int]] = {}
        for i in reversed(range(len(self.shapes))):
            members.setdefault(self.dtypes[i], []).append(i)
        groups, buckets = [], []
        for dtype, indices in members.items():
            offsets, sizes, size = [], [], 0
            for i in indices:
                offsets.append(size)
                sizes.append(int(np.prod(self.shapes[i], dtype=np.int64)))
                size += sizes[-1]
            group = len(groups)
            groups.append(_Group(dtype, tuple(indices), tuple(offsets), tuple(sizes), size))
            # NOTE: at least one element a bucket, whatever bucket_bytes says
            step = max(1, bucket_bytes // dtype.itemsize)
            for start in range(0, size, step):
                buckets.append(Bucket(len(buckets), group, dtype, start,
                                      min(step, size - start)))
        self.groups: tuple[_Group, ...] = tuple(groups)
        self.buckets: tuple[Bucket, ...] = tuple(buckets)
        text = ";".join(f"{d.str}{list(s)}" for s, d in zip(self.shapes, self.dtypes,
                                                            strict=True))
        # what every message carries, so that workers reducing different lists of arrays
        # are told so instead of meeting a shape mismatch somewhere later
        self.signature = f"{len(self.shapes)}:{zlib.crc32(text.encode()):08x}"
        self._pieces: dict[int, list[list[list[tuple[int, int, int, int]]]]] = {}

    @classmethod
    def of(cls, arrays: Sequence[np.ndarray], bucket_bytes: int) -> BucketPlan:
        return cls([a.shape for a in arrays], [a.dtype for a in arrays], bucket_bytes)

    @property
    def nbytes(self) -> int:
        return sum(g.size * g.dtype.itemsize for g in self.groups)

    def pack(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        buffers = []
        for group in self.groups:
            buffer = np.empty(group.size, group.dtype)
            for i, offset in zip(group.members, group.offsets, strict=True):
                array = arrays[i]
                buffer[offset:offset + array.size] = array.reshape(-1)
            buffers.append(buffer)
        return buffers

    def empty(self) -> list[np.ndarray]:
        return [np.empty(g.size, g.dtype) for g in self.groups]

    def bucket_view(self, buffers: Sequence[np.ndarray], bucket: Bucket) -> np.ndarray:
        return buffers[bucket.group][bucket.start:bucket.start + bucket.size]

    def chunk_pieces(self, n: int) -> list[list[list[tuple[int, int, int, int]]]]:
        """For a ring of ``n``: per bucket, per chunk, the pieces of arrays the chunk is
        made of, as ``(array index, start, stop in its flat form, start in the chunk)``
        (so the ring can read its own arrays in place instead of packing them first)."""
        found = self._pieces.get(n)
        if found is None:
            found = self._pieces[n] = [[self._pieces_of(b, lo, hi)
                                        for lo, hi in chunk_bounds(b.size, n)]
                                       for b in self.buckets]
        return found

    def _pieces_of(self, bucket: Bucket, lo: int, hi: int) -> list[tuple[int, int, int, int]]:
        group = self.groups[bucket.group]
        start, stop = bucket.start + lo, bucket.start + hi
        # NOTE: the last member starting at or before ``start``; members of no elements
        # share their successor's offset and are passed over
        k = bisect.bisect_right(group.offsets, start) - 1
        pieces = []
        while start < stop:
            first = group.offsets[k]
            take = min(stop, first + group.sizes[k]) - start
            if take > 0:
                pieces.append((group.members[k], start - first, start - first + take,
                               start - bucket.start - lo))
                start += take
            k += 1
        return pieces

    def unpack(self, buffers: Sequence[np.ndarray]) -> list[np.ndarray]:
        out: list = [None] * len(self.shapes)
        for group, buffer in zip(self.groups, buffers, strict=True):
            for i, offset, size in zip(group.members, group.offsets, group.sizes,
                                       strict=True):
                out[i] = buffer[offset:offset + size].reshape(self.shapes[i])
        return out


def check_bucket_bytes(bucket_bytes: object) -> int:
    if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, int) \
            or bucket_bytes < 1:
        raise ValueError(f"bucket_bytes must be a positive number of bytes, got "
                         f"{bucket_bytes!r}")
    return bucket_bytes


def checked_arrays(arrays: object, average: bool, what: str, *,
                   allow_bool: bool = False) -> list[np.ndarray]:
    """``arrays`` as a list of NumPy arrays the ring can reduce (or, with
    ``allow_bool``, pass on), or an error naming the first one that cannot be."""
    if isinstance(arrays, np.ndarray) or not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{what} takes a list of arrays, got {type(arrays).__name__}")
    out = []
    for i, value in enumerate(arrays):
        # NOTE: not ascontiguousarray, which makes a 0-d array 1-d
        array = np.asarray(value)
        if array.dtype not in REDUCIBLE_DTYPES and not (allow_bool and array.dtype == bool):
            raise AllReduceError(f"{what}: array {i} has dtype {array.dtype}; the ring "
                                 f"reduces {[str(d) for d in REDUCIBLE_DTYPES]}")
        if average and array.dtype.kind in "iu":
            raise AllReduceError(f"{what}: array {i} is {array.dtype}, which has no mean; "
                                 "pass average=False for a sum, or cast it to a float")
        out.append(array)
    return out


def reference_allreduce(per_worker: Sequence[Sequence[np.ndarray]], bucket_bytes: int,
                        average: bool = True) -> list[np.ndarray]:
    """What a ring of ``len(per_worker)`` workers computes, bit for bit, in one process
    (``per_worker[p]`` is the arrays of the worker in ring position ``p``): each chunk
    summed in ring order from its own position, as the module's docstring says."""
    n = len(per_worker)
    inputs = [checked_arrays(list(arrays), average, "reference_allreduce")
              for arrays in per_worker]
    plan = BucketPlan.of(inputs[0], bucket_bytes)
    for p, arrays in enumerate(inputs[1:], 1):
        if BucketPlan.of(arrays, bucket_bytes).signature != plan.signature:
            raise AllReduceError(f"reference_allreduce: worker {p}'s arrays differ in "
                                 "number, shapes or dtypes from worker 0's")
    packed = [plan.pack(arrays) for arrays in inputs]
    result = plan.empty()
    for bucket in plan.buckets:
        views = [plan.bucket_view(buffers, bucket) for buffers in packed]
        out = plan.bucket_view(result, bucket)
        for c, (lo, hi) in enumerate(chunk_bounds(bucket.size, n)):
            total = views[c][lo:hi].copy()
            for k in range(1, n):
                total = total + views[(c + k) % n][lo:hi]
            out[lo:hi] = total / n if average else total
    return plan.unpack(result)
