"""Several CPU devices in one process (TRACEJIT_CPU_DEVICES), named by device strings,
each with its own buffers and programs; tj.devices() lists them."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.runtime.device import UnsupportedOnDevice
from tracejit.runtime.devices import DeviceError
from tracejit.runtime.registry import CPU_DEVICES_ENV, get_device

CANONICAL = "/job:localhost/replica:0/task:0/device:CPU:{}"


@pytest.fixture
def three(monkeypatch):
    monkeypatch.setenv(CPU_DEVICES_ENV, "3")


def test_one_cpu_device_by_default(monkeypatch, no_gpu):
    monkeypatch.delenv(CPU_DEVICES_ENV, raising=False)
    (only,) = tj.devices()
    assert only is get_device("cpu") is get_device("/cpu:0") is get_device("/device:CPU:0")
    assert str(only.spec) == CANONICAL.format(0)


def test_every_spelling_names_the_same_device(three, no_gpu):
    listed = tj.devices()
    assert [str(d.spec) for d in listed] == [CANONICAL.format(i) for i in range(3)]
    assert [d.name for d in listed] == ["cpu", "cpu:1", "cpu:2"]
    for spelling in ("/cpu:2", "/device:CPU:2", "/job:localhost/replica:0/task:0/cpu:2",
                     CANONICAL.format(2), "cpu:2"):
        assert get_device(spelling) is listed[2], spelling


def test_each_device_has_its_own_buffers_and_programs(three):
    first, last = get_device("/cpu:1"), get_device("/cpu:2")
    buffer = last.put(np.arange(4.0))
    np.testing.assert_array_equal(last.get(buffer), np.arange(4.0))
    with pytest.raises(UnsupportedOnDevice, match="cpu:2"):
        first.get(buffer)
    f = tj.jit(lambda x: tj.exp(x) * 2.0 + 1.0, executor="/cpu:2")
    x = np.linspace(-1, 1, 7, dtype=np.float32)
    np.testing.assert_allclose(np.asarray(f(x)), np.exp(x) * 2.0 + 1.0, rtol=1e-6)
    assert last.compiler is not get_device("cpu").compiler


def test_a_device_this_process_lacks_is_a_clear_error(three, no_gpu):
    with pytest.raises(DeviceError, match=r"no /device:CPU:3 .*TRACEJIT_CPU_DEVICES=3") as err:
        get_device("/cpu:3")
    assert err.value.location is not None and err.value.location.file == __file__
    with pytest.raises(DeviceError, match="no .device:GPU:0 .*has no GPU"):
        get_device("/gpu:0")
    with pytest.raises(DeviceError, match="not a device of this process"):
        get_device("/job:worker/task:1/cpu:0")
    with pytest.raises(DeviceError, match="bad device string"):
        get_device("/cpu:one")


def test_a_bad_device_count_names_the_variable(monkeypatch):
    monkeypatch.setenv(CPU_DEVICES_ENV, "two")
    with pytest.raises(DeviceError, match="TRACEJIT_CPU_DEVICES='two'"):
        tj.devices()
