"""Device memory of a GPU device: a caching allocator in the manner of PyTorch's.

Why a cache: ``cuMemAlloc``/``cuMemFree`` are slow (a free synchronizes the device), and
a training step allocates and frees the same sizes every iteration. So freed blocks are
kept on a free list per *size class* and handed out again; the driver is asked only on a
miss. Size classes follow PyTorch's caching allocator: a request is rounded up to a
multiple of 512 bytes up to 1 MiB, and to a multiple of 2 MiB above, so slightly
different shapes share blocks and the lists stay few.

A buffer's ``storage`` is a FLAT (1-D) device array of :func:`storage_dtype` with exactly
``prod(shape)`` elements, carved as a view of the start of a raw ``uint8`` block, so
kernels see an ordinary contiguous array of the element type. Empty tensors take no
block: their storage is numba's zero-length array (a NULL pointer no kernel reads).

Host->device copies go through pinned (page-locked) staging buffers, because only a copy
from pinned memory is truly asynchronous; the staging buffers are cached too, keyed by
the same size classes.

Works with the real ``numba.cuda`` (DeviceNDArray) and with its simulator (FakeCUDAArray,
``NUMBA_ENABLE_CUDASIM=1``): only slicing, ``view``, ``reshape``, ``copy_to_device``,
``copy_to_host``, ``device_array``, ``pinned_array``, ``event`` and streams are used,
which both provide.

Example (``device`` a GPU Device; under the simulator as on a GPU)::

    alloc = CachingAllocator(device, numba.cuda, numba.cuda.stream())
    buf = alloc.to_device(np.arange(6, dtype=np.float32).reshape(2, 3))
    alloc.to_host(buf)          # array([[0., 1., 2.], [3., 4., 5.]], dtype=float32)
    alloc.free(buf)             # its 512-byte block serves the next small request
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir.dtypes import DType, as_dtype
from ..ir.errors import DTypeError, ShapeError
from ..runtime.device import Buffer, UnsupportedOnDevice

__all__ = ["storage_dtype", "size_class", "CachingAllocator", "SMALL_SIZE", "SMALL_ROUND",
           "LARGE_ROUND", "PINNED_CACHE_BYTES"]

SMALL_SIZE = 1 << 20          # requests up to this size are "small"
SMALL_ROUND = 512             # small requests round up to a multiple of this
LARGE_ROUND = 2 << 20         # larger ones to a multiple of this
PINNED_CACHE_BYTES = 64 << 20  # pinned staging memory kept for reuse, at most


def storage_dtype(dtype: DType) -> np.dtype:
    """How an IR dtype is kept in device memory.

    bool is one byte (``uint8``) because kernels load and store bytes, not NumPy's
    bool; bfloat16 is its raw 16 bits (``uint16``) because numba has no array type for
    ml_dtypes' bfloat16 (kernels convert the bits themselves). Everything else is its own
    NumPy dtype (float16 included: numba-cuda has an ``f2`` array type).
    """
    dtype = as_dtype(dtype)
    if dtype.is_bool:
        return np.dtype(np.uint8)
    if dtype.name == "bfloat16":
        return np.dtype(np.uint16)
    return np.dtype(dtype.np_dtype)


def size_class(nbytes: int) -> int:
    """The block size a request of ``nbytes`` is served from (at least 512 bytes)."""
    nbytes = max(int(nbytes), 1)
    if nbytes <= SMALL_SIZE:
        return -(-nbytes // SMALL_ROUND) * SMALL_ROUND
    return -(-nbytes // LARGE_ROUND) * LARGE_ROUND


class CachingAllocator:
    """The :class:`~tracejit.runtime.device.Allocator` of a GPU device.

    ``cuda`` is the imported ``numba.cuda`` module (real or the simulator); ``stream``
    a ``cuda.stream()``, or None for the default stream. Every copy this allocator makes
    is queued on that one stream, and so must every kernel that uses its buffers.

    NOTE: that single stream is what makes reuse safe without events: a block freed
    while a kernel that reads it is still queued goes back on a free list at once, and
    its next owner's work is queued on the same stream, so it runs after that kernel
    (the same argument PyTorch's allocator makes per stream). Work on another stream
    would need an event per block; there is none here.

    Thread-safe: the free lists, the table of live buffers and the counters are guarded
    by one lock; copies run outside it.
    """

    def __init__(self, device, cuda, stream=None, *, pinned_cache_bytes: int =
                 PINNED_CACHE_BYTES):
        self.device = device
        self._cuda = cuda
        self._stream = stream
        # numba spells "the default stream" as 0 (synchronous copies)
        self._stream_arg = stream if stream is not None else 0
        self._lock = threading.RLock()
        self._free: dict[int, list[Any]] = {}            # size class -> raw blocks
        # id(storage) -> (storage, block, size class); the storage is held so that its
        # id cannot be reused by another object while the buffer is live
        self._live: dict[int, tuple[Any, Any, int]] = {}
        self._pinned: dict[int, deque] = {}              # size class -> (host, event)
        self._pinned_cached = 0
        self._pinned_limit = int(pinned_cache_bytes)
        self._allocated = self._cached = self._peak = 0
        self._hits = self._misses = 0

    # ---- device blocks ------------------------------------------------------------------

    def _check(self, buffer: Buffer) -> None:
        if buffer.device is not self.device:
            raise UnsupportedOnDevice(
                f"a buffer of {getattr(buffer.device, 'name', buffer.device)} given to "
                f"{getattr(self.device, 'name', self.device)}'s allocator")

    def _new_block(self, nbytes: int):
        try:
            return self._cuda.device_array(nbytes, dtype=np.uint8, stream=self._stream_arg)
        except Exception:
            # NOTE: out of memory (or anything else): give the cached blocks back to the
            # driver and try once more, as PyTorch does; numba frees its pending
            # deallocations itself when an allocation fails.
            if not self._cached:
                raise
            self.synchronize()       # a freed block may still be read by queued work
            self._release_cached()
            return self._cuda.device_array(nbytes, dtype=np.uint8, stream=self._stream_arg)

    def alloc(self, shape: Sequence[int], dtype) -> Buffer:
        """An uninitialized buffer: a cached block if one of its size class is free."""
        dtype = as_dtype(dtype)
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ShapeError(f"negative dimension in shape {shape}")
        count = int(np.prod(shape, dtype=np.int64))
        sdt = storage_dtype(dtype)
        if count == 0:
            storage = self._cuda.device_array(0, dtype=sdt, stream=self._stream_arg)
            return Buffer(self.device, shape, dtype, storage)
        nbytes = count * sdt.itemsize
        cls = size_class(nbytes)
        with self._lock:
            free = self._free.get(cls)
            if free:
                block = free.pop()
                self._cached -= cls
                self._hits += 1
            else:
                block = self._new_block(cls)
                self._misses += 1
            storage = block[:nbytes].view(sdt)
            self._live[id(storage)] = (storage, block, cls)
            self._allocated += cls
            self._peak = max(self._peak, self._allocated)
        return Buffer(self.device, shape, dtype, storage)

    def free(self, buffer: Buffer) -> None:
        """Put the buffer's block back on its size class's free list.

        Storage this allocator did not carve (an empty tensor's, a program's own array,
        a buffer freed already) is left to the garbage collector, as HostAllocator
        leaves every array: freeing twice is harmless.

        NOTE: the storage is recognized by identity, so a program must hand back the very
        object :meth:`alloc` gave it, not a reshape or view of it: such a block would stay
        counted as allocated (``stats()["live_buffers"]`` shows it). Identity rather than
        the device address is what makes a stale second free harmless: the address of a
        freed block soon belongs to another buffer.
        """
        self._check(buffer)
        with self._lock:
            entry = self._live.pop(id(buffer.storage), None)
            if entry is None:
                return
            _, block, cls = entry
            self._free.setdefault(cls, []).append(block)
            self._allocated -= cls
            self._cached += cls

    def _release_cached(self) -> None:
        with self._lock:
            self._free.clear()
            self._cached = 0
        try:
            # numba queues frees; ask it to do them now so the driver sees the memory
            self._cuda.current_context().deallocations.clear()
        except AttributeError:       # the simulator has no deallocation queue
            pass

    def empty_cache(self) -> None:
        """Give every free block and cached staging buffer back to the driver."""
        # NOTE: a freed block may still be read by queued work; wait for it first.
        self.synchronize()
        with self._lock:
            self._pinned.clear()
            self._pinned_cached = 0
        self._release_cached()

    def synchronize(self) -> None:
        """Wait until all work queued on this allocator's stream has finished."""
        if self._stream is not None:
            self._stream.synchronize()
        else:
            self._cuda.synchronize()

    def stats(self) -> dict:
        """Bytes (in whole size-class blocks) and cache counters:

        ``allocated_bytes`` held by live buffers, ``cached_bytes`` on the free lists,
        ``peak_bytes`` the most ever allocated at once, ``hits``/``misses`` allocations
        served from the cache / from the driver, ``pinned_bytes`` staging memory kept,
        ``live_buffers`` buffers allocated and not freed.
        """
        with self._lock:
            return {"allocated_bytes": self._allocated, "cached_bytes": self._cached,
                    "peak_bytes": self._peak, "hits": self._hits, "misses": self._misses,
                    "pinned_bytes": self._pinned_cached, "live_buffers": len(self._live)}

    # ---- pinned staging -----------------------------------------------------------------

    def _take_staging(self, nbytes: int):
        cls = size_class(nbytes)
        with self._lock:
            pool = self._pinned.get(cls)
            host, event = pool.popleft() if pool else (None, None)
            if host is not None:
                self._pinned_cached -= cls
        if event is not None:
            # NOTE: the copy that last read this buffer may still be in flight; the
            # oldest entry is taken, so this rarely waits.
            event.synchronize()
        if host is None:
            host = self._cuda.pinned_array(cls, dtype=np.uint8)
        return host, cls

    def _give_staging(self, host, cls: int) -> None:
        """Called after the asynchronous copy out of ``host`` was queued: an event
        marks when the buffer may be written again."""
        event = self._new_event()
        event.record(self._stream_arg)
        with self._lock:
            if self._pinned_cached + cls <= self._pinned_limit:
                self._pinned.setdefault(cls, deque()).append((host, event))
                self._pinned_cached += cls
                return
        # NOTE: not cached: page-locked memory must not be released under a running DMA
        event.synchronize()

    def _new_event(self):
        try:
            return self._cuda.event(timing=False)
        except TypeError:            # the simulator's Event takes no arguments
            return self._cuda.event()

    # ---- copies -------------------------------------------------------------------------

    @staticmethod
    def _flat(storage, sdt: np.dtype, count: int):
        """``storage`` as the flat array of the storage dtype that copies expect (a
        program may hand back storage of another shape or of the IR's NumPy dtype)."""
        if storage.dtype != sdt:
            storage = storage.view(sdt)
        if tuple(storage.shape) != (count,):
            storage = storage.reshape(count)
        return storage

    def to_device(self, array) -> Buffer:
        """Copy host data in (asynchronous on the stream). The caller may change or drop
        ``array`` as soon as this returns: its data was copied to staging first."""
        array = np.asarray(array)
        buffer = self.alloc(array.shape, as_dtype(array.dtype))
        try:
            self.upload_into(buffer, array)
        except BaseException:
            self.free(buffer)
            raise
        return buffer

    def upload_into(self, buffer: Buffer, array) -> None:
        """Overwrite ``buffer`` with ``array`` (same shape and dtype), asynchronously."""
        self._check(buffer)
        array = np.asarray(array)
        if tuple(array.shape) != buffer.shape:
            raise ShapeError(f"cannot copy an array of shape {array.shape} into a buffer "
                             f"of shape {buffer.shape}")
        if as_dtype(array.dtype) is not buffer.dtype:
            raise DTypeError(f"cannot copy {array.dtype} data into a {buffer.dtype} "
                             "buffer")
        count = array.size
        if count == 0:
            return
        sdt = storage_dtype(buffer.dtype)
        nbytes = count * sdt.itemsize
        host, cls = self._take_staging(nbytes)
        try:
            staging = host[:nbytes].view(sdt)
            # bool -> uint8 and bfloat16 -> uint16 have equal itemsizes, so the view is
            # valid for any strides; copyto gathers a strided array in one pass
            source = array if array.dtype == sdt else array.view(sdt)
            np.copyto(staging.reshape(array.shape), source, casting="no")
            target = self._flat(buffer.storage, sdt, count)
            target.copy_to_device(staging, stream=self._stream_arg)
        finally:
            self._give_staging(host, cls)

    def to_host(self, buffer: Buffer) -> np.ndarray:
        """Copy the data out (waits for the stream) to an array the caller owns, of the
        IR dtype's NumPy dtype (bool, ml_dtypes' bfloat16) and the buffer's shape."""
        self._check(buffer)
        sdt = storage_dtype(buffer.dtype)
        count = int(np.prod(buffer.shape, dtype=np.int64))
        out = np.empty(count, dtype=sdt)
        if count:
            source = self._flat(buffer.storage, sdt, count)
            source.copy_to_host(out, stream=self._stream_arg)
            self.synchronize()
        return out.view(buffer.dtype.np_dtype).reshape(buffer.shape)

    def copy(self, buffer: Buffer) -> Buffer:
        """A second buffer holding the same data (a device-to-device copy on the
        stream)."""
        self._check(buffer)
        new = self.alloc(buffer.shape, buffer.dtype)
        sdt = storage_dtype(buffer.dtype)
        count = int(np.prod(buffer.shape, dtype=np.int64))
        if count:
            target = self._flat(new.storage, sdt, count)
            target.copy_to_device(self._flat(buffer.storage, sdt, count),
                                  stream=self._stream_arg)
        return new
