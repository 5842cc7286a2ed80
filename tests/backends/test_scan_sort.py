"""cumsum, cumprod and top_k on every device against the reference interpreter, on the
inputs where the op's definition matters: ties (the lower index first), NaN (above every
number), -0.0 against 0.0, integers that wrap, halves, reversed and exclusive scans,
lines along every axis, and rows long and many enough for the CPU's threads."""

from __future__ import annotations

import numpy as np
import pytest

from tracejit.ir import OPS, GraphBuilder, interpret
from tracejit.ir import dtypes as dt
from tracejit.runtime.device import CAN_RUN
from tracejit.runtime.registry import device_names, get_device

from ..ir.op_examples import T

DEVICES = [d for d in device_names() if CAN_RUN in get_device(d).capabilities]


@pytest.fixture(autouse=True)
def strict(monkeypatch):
    monkeypatch.setenv("TRACEJIT_CPU_STRICT", "1")


def run_both(device_name, name, x, **params):
    b = GraphBuilder(name)
    outs = b.emit(OPS[name], [b.add_input(T(x.shape, dt.as_dtype(x.dtype)))], params)
    graph = b.build(list(outs))
    device = get_device(device_name)
    got = device.host_program(device.compile(graph), graph)([x])
    return [np.asarray(g) for g in got], interpret(graph, [x])


def same_bits(got, want):
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes(), (g, w)


TIES = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, -0.0, 0.0],
                 [np.nan, -1.0, np.inf, np.nan, 0.0, -np.inf, -0.0]], np.float32)


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_top_k_orders_ties_nan_and_signed_zeros_like_the_reference(device_name, descending,
                                                                   dtype):
    x = TIES.astype(dtype)
    got, want = run_both(device_name, "top_k", x, k=7, descending=descending)
    same_bits(got, want)
    # the definition itself, on the first row: ties by index, -0.0 == 0.0
    order = [[1, 2, 4, 3, 0, 5, 6], [0, 3, 2, 4, 6, 1, 5]] if descending else \
        [[5, 6, 0, 3, 1, 2, 4], [5, 1, 4, 6, 2, 0, 3]]
    assert got[1].tolist() == order


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.int64])
def test_top_k_of_integers_at_their_extremes(device_name, dtype):
    info = np.iinfo(dtype)
    x = np.array([[3, info.min, info.max, 0, info.max, 1]], dtype)
    for descending in (True, False):
        got, want = run_both(device_name, "top_k", x, k=4, descending=descending)
        same_bits(got, want)


@pytest.mark.parametrize("device_name", DEVICES)
def test_top_k_of_many_rows(device_name):
    rng = np.random.default_rng(1)
    x = rng.integers(-20, 20, (3, 37, 50)).astype(np.float32)     # many ties
    got, want = run_both(device_name, "top_k", x, k=5)
    same_bits(got, want)


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_scans_along_every_axis_in_every_direction(device_name, name, axis):
    rng = np.random.default_rng(axis)
    x = rng.uniform(0.5, 1.5, (3, 4, 5)).astype(np.float32)
    for exclusive in (False, True):
        for reverse in (False, True):
            got, want = run_both(device_name, name, x, axis=axis, exclusive=exclusive,
                                 reverse=reverse)
            same_bits(got, want)


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.float16,
                                   "bfloat16"])
def test_scans_wrap_integers_and_round_halves_once(device_name, dtype):
    rng = np.random.default_rng(2)
    x = rng.integers(-100 if dtype != np.uint8 else 0, 100, (2, 40))
    x = x.astype(dt.as_dtype(dtype).np_dtype)
    for name in ("cumsum", "cumprod"):
        got, want = run_both(device_name, name, x, axis=1, reverse=True)
        same_bits(got, want)


@pytest.mark.parametrize("device_name", DEVICES)
def test_long_scans_use_the_threads_and_match(device_name):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 3000)).astype(np.float32)
    got, want = run_both(device_name, "cumsum", x, axis=1)
    same_bits(got, want)
    got, want = run_both(device_name, "cumsum", x, axis=0, exclusive=True)
    same_bits(got, want)


def test_reference_values_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    cumsum, cumprod = OPS["cumsum"], OPS["cumprod"]

    def ev(op, **p):
        return op.evaluate([x], op.make_params(p))[0].tolist()
    assert ev(cumsum, axis=1) == [[1, 3, 6], [4, 9, 15]]
    assert ev(cumsum, axis=1, exclusive=True, reverse=True) == [[5, 3, 0], [11, 6, 0]]
    assert ev(cumprod, axis=0, exclusive=True) == [[1, 1, 1], [1, 2, 3]]
    assert ev(cumprod, axis=1, reverse=True) == [[6, 6, 3], [120, 30, 6]]
    wrapped = cumsum.evaluate([np.array([2**31 - 1, 1], np.int32)],
                              cumsum.make_params({"axis": 0}))[0]
    assert wrapped.tolist() == [2**31 - 1, -2**31]
