"""The GPU caching allocator (codegen_cuda/memory.py), run on numba's CUDA simulator.

The simulator replaces ``numba.cuda`` for the whole process, chosen when numba.cuda is
first imported (``NUMBA_ENABLE_CUDASIM=1``). Turning it on from here would change every
later test of the run: real-GPU and PTX tests would find the simulator (and
``TRACEJIT_GPU=cuda`` refuses to run beside it). So the device tests run in this process
only when it already simulates; otherwise :func:`test_in_a_simulator_process` runs this
file again in a child process with the simulator on, and the in-process copies skip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tracejit.codegen_cuda.memory import (
    LARGE_ROUND,
    CachingAllocator,
    size_class,
    storage_dtype,
)
from tracejit.ir import dtypes
from tracejit.ir.errors import DTypeError, ShapeError
from tracejit.runtime.device import Buffer, Device, UnsupportedOnDevice

SIM_ENV = "NUMBA_ENABLE_CUDASIM"
HAS_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None


def _simulating() -> bool:
    """Whether numba.cuda is (or will be, when first imported) the simulator."""
    loaded = sys.modules.get("numba.cuda")
    if loaded is not None:
        return loaded.stream.__module__.startswith("numba.cuda.simulator")
    return os.environ.get(SIM_ENV, "0") not in ("", "0")


IN_PROCESS = HAS_NUMBA_CUDA and _simulating()


@pytest.mark.skipif(not HAS_NUMBA_CUDA, reason="numba-cuda is not installed")
@pytest.mark.skipif(IN_PROCESS, reason="this process simulates: the tests run here")
def test_in_a_simulator_process():
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, SIM_ENV: "1", "TRACEJIT_GPU": "sim"}
    child = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__).resolve()), "-o", "addopts=",
         "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stdout[-6000:] + child.stderr[-3000:]
    # everything but this test itself ran in the child
    assert re.search(r"\b\d+ passed, 1 skipped\b", child.stdout), child.stdout[-2000:]


@pytest.fixture
def cuda():
    if not HAS_NUMBA_CUDA:
        pytest.skip("numba-cuda is not installed")
    if not IN_PROCESS:
        pytest.skip("runs in the simulator child process (test_in_a_simulator_process)")
    from numba import cuda
    return cuda


SHAPES = [(), (0,), (2, 0, 3), (7,), (3, 5), (300, 7)]


class FakeGPU(Device):
    kind = "gpu"
    name = "/gpu:0"


@pytest.fixture
def gpu(cuda):
    return FakeGPU()


@pytest.fixture
def alloc(gpu, cuda):
    return CachingAllocator(gpu, cuda, cuda.stream())


def _sample(shape, dtype) -> np.ndarray:
    rng = np.random.default_rng(sum(shape) + dtype.bits)
    values = rng.standard_normal(shape) * 50
    if dtype.is_bool:
        return values > 0
    return values.astype(dtype.np_dtype)


def test_size_classes():
    assert size_class(0) == size_class(1) == size_class(512) == 512
    assert size_class(513) == 1024
    assert size_class(1 << 20) == 1 << 20                   # 1 MiB is still "small"
    assert size_class((1 << 20) + 1) == 2 << 20
    assert size_class(5 << 20) == 6 << 20
    assert size_class(6 << 20) == 6 << 20
    assert LARGE_ROUND == 2 << 20


def test_storage_dtypes():
    assert storage_dtype(dtypes.bool_) == np.uint8
    assert storage_dtype(dtypes.bfloat16) == np.uint16
    assert storage_dtype(dtypes.float16) == np.float16
    for dt in (dtypes.int8, dtypes.uint8, dtypes.int32, dtypes.int64, dtypes.float32,
               dtypes.float64):
        assert storage_dtype(dt) == dt.np_dtype
    assert storage_dtype("f32") == np.float32


@pytest.mark.parametrize("dtype", dtypes.ALL_DTYPES, ids=str)
def test_alloc_gives_flat_storage_of_exact_size(alloc, gpu, dtype):
    for shape in SHAPES:
        buf = alloc.alloc(shape, dtype)
        count = int(np.prod(shape))
        assert (buf.device, buf.shape, buf.dtype) == (gpu, shape, dtype)
        assert tuple(buf.storage.shape) == (count,)
        assert buf.storage.dtype == storage_dtype(dtype)
        alloc.free(buf)


def test_negative_shape_is_an_error(alloc):
    with pytest.raises(ShapeError):
        alloc.alloc((2, -1), dtypes.float32)


def test_freed_blocks_are_reused(alloc):
    a = alloc.alloc((100,), dtypes.float32)           # 400 bytes: the 512 class
    assert alloc.stats()["misses"] == 1
    alloc.free(a)
    b = alloc.alloc((3, 7), dtypes.int64)             # 168 bytes: the same class
    stats = alloc.stats()
    assert (stats["hits"], stats["misses"]) == (1, 1)
    c = alloc.alloc((100,), dtypes.float32)           # the block is taken: a new one
    assert alloc.stats()["misses"] == 2
    d = alloc.alloc((1000,), dtypes.float32)          # another class: a miss
    alloc.free(d)
    e = alloc.alloc((1024,), dtypes.float32)          # 4096 bytes, the same class as d
    stats = alloc.stats()
    assert (stats["hits"], stats["misses"]) == (2, 3)
    for buf in (b, c, e):
        alloc.free(buf)


def test_stats_count_bytes(alloc):
    a = alloc.alloc((10,), dtypes.float32)
    b = alloc.alloc((300_000,), dtypes.float32)        # 1.2 MB -> 2 MiB
    stats = alloc.stats()
    assert stats["allocated_bytes"] == 512 + (2 << 20) == stats["peak_bytes"]
    assert stats["cached_bytes"] == 0
    assert stats["live_buffers"] == 2
    alloc.free(b)
    stats = alloc.stats()
    assert stats["allocated_bytes"] == 512
    assert stats["cached_bytes"] == 2 << 20
    assert stats["peak_bytes"] == 512 + (2 << 20)
    alloc.free(a)
    alloc.empty_cache()
    stats = alloc.stats()
    assert stats["allocated_bytes"] == stats["cached_bytes"] == stats["pinned_bytes"] == 0
    assert stats["peak_bytes"] == 512 + (2 << 20)
    alloc.alloc((10,), dtypes.float32)
    assert alloc.stats()["misses"] == 3                # the cache was emptied


def test_free_twice_and_empty_tensors_are_harmless(alloc):
    a = alloc.alloc((4,), dtypes.float32)
    alloc.free(a)
    alloc.free(a)
    assert alloc.stats()["cached_bytes"] == 512
    b = alloc.alloc((4,), dtypes.float32)             # the block now belongs to b
    alloc.free(a)                                      # a's stale free must not take it
    assert alloc.stats()["allocated_bytes"] == 512
    alloc.free(b)
    empty = alloc.alloc((0, 3), dtypes.float32)
    alloc.free(empty)
    assert alloc.stats()["misses"] == 1


@pytest.mark.parametrize("dtype", dtypes.ALL_DTYPES, ids=str)
def test_round_trip(alloc, dtype):
    for shape in SHAPES:
        x = _sample(shape, dtype)
        buf = alloc.to_device(x)
        assert (buf.shape, buf.dtype) == (shape, dtype)
        y = alloc.to_host(buf)
        assert y.dtype == dtype.np_dtype and y.shape == shape
        np.testing.assert_array_equal(y, x)
        z = alloc.to_host(alloc.copy(buf))
        assert z.dtype == dtype.np_dtype and z.shape == shape
        np.testing.assert_array_equal(z, x)
        alloc.free(buf)


def test_bfloat16_bits_survive(alloc):
    bits = np.array([0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC1, 0x0001, 0x3F80], np.uint16)
    x = bits.view(dtypes.bfloat16.np_dtype)
    y = alloc.to_host(alloc.to_device(x))
    np.testing.assert_array_equal(y.view(np.uint16), bits)


def test_strided_input(alloc):
    x = np.arange(48, dtype=np.float64).reshape(6, 8)[::2, 1::3]
    np.testing.assert_array_equal(alloc.to_host(alloc.to_device(x)), x)
    flags = np.zeros((4, 6), bool)
    flags[::2, ::3] = True
    np.testing.assert_array_equal(alloc.to_host(alloc.to_device(flags.T)), flags.T)


def test_copies_are_independent(alloc):
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    buf = alloc.to_device(x)
    x[:] = -1                                          # the upload copied the data
    out = alloc.to_host(buf)
    np.testing.assert_array_equal(out, np.arange(12).reshape(3, 4))
    out[:] = 7                                         # the caller owns what it got
    np.testing.assert_array_equal(alloc.to_host(buf), np.arange(12).reshape(3, 4))
    dup = alloc.copy(buf)
    alloc.upload_into(buf, np.zeros((3, 4), np.int32))
    np.testing.assert_array_equal(alloc.to_host(buf), 0)
    np.testing.assert_array_equal(alloc.to_host(dup), np.arange(12).reshape(3, 4))


def test_upload_into_checks_shape_and_dtype(alloc):
    buf = alloc.alloc((2, 3), dtypes.float32)
    with pytest.raises(ShapeError):
        alloc.upload_into(buf, np.zeros((3, 2), np.float32))
    with pytest.raises(DTypeError):
        alloc.upload_into(buf, np.zeros((2, 3), np.float64))


def test_unsupported_dtype_leaves_nothing_allocated(alloc):
    with pytest.raises(TypeError):
        alloc.to_device(np.zeros(3, np.complex64))
    assert alloc.stats()["allocated_bytes"] == 0


def test_buffers_of_another_device_are_refused(alloc):
    other = FakeGPU()
    foreign = other.allocator.to_device(np.zeros(3, np.float32))
    for call in (alloc.free, alloc.to_host, alloc.copy):
        with pytest.raises(UnsupportedOnDevice):
            call(foreign)
    with pytest.raises(UnsupportedOnDevice):
        alloc.upload_into(foreign, np.zeros(3, np.float32))


def test_program_storage_of_another_shape_is_read(alloc, gpu, cuda):
    # a program may hand back storage shaped (or typed) its own way
    storage = cuda.to_device(np.array([[True, False], [False, True]]))
    buf = Buffer(gpu, (2, 2), dtypes.bool_, storage)
    np.testing.assert_array_equal(alloc.to_host(buf), np.eye(2, dtype=bool))
    np.testing.assert_array_equal(alloc.to_host(alloc.copy(buf)), np.eye(2, dtype=bool))
    alloc.free(buf)                                    # not ours: left to the collector


def test_pinned_staging_is_cached_up_to_its_limit(gpu, cuda):
    small = CachingAllocator(gpu, cuda, None, pinned_cache_bytes=4096)
    small.to_device(np.zeros(100, np.float32))
    assert small.stats()["pinned_bytes"] == 512
    small.to_device(np.ones(100, np.float32))          # the same staging buffer again
    assert small.stats()["pinned_bytes"] == 512
    big = np.arange(5000, dtype=np.float32)            # 20 kB: over the limit
    np.testing.assert_array_equal(small.to_host(small.to_device(big)), big)
    assert small.stats()["pinned_bytes"] == 512


def test_threads_share_one_allocator(alloc):
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            for _ in range(20):
                x = rng.standard_normal(int(rng.integers(1, 400))).astype(np.float32)
                buf = alloc.to_device(x)
                np.testing.assert_array_equal(alloc.to_host(buf), x)
                alloc.free(buf)
        except Exception as exc:       # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stats = alloc.stats()
    assert stats["allocated_bytes"] == stats["live_buffers"] == 0
    assert stats["hits"] + stats["misses"] == 80
