"""The graph-level half of the CPU backend on a stand-in lowering: buffers, results,
donation, the result pool and the Python entry (trampoline and ctypes)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tracejit.codegen_cpu.host.binding import CompiledProgram
from tracejit.codegen_cpu.host.entry_checks import trampoline_support
from tracejit.ir import interpret

from . import standin_lowering
from .conftest import ENTRIES, Builder, load_graph

pytestmark = pytest.mark.parametrize("entry", ENTRIES)


def _chain(n: int = 1000, steps: int = 6):
    b = Builder("chain")
    x, y = b.input(f"f32[{n}]", "x"), b.input(f"f32[{n}]", "y")
    t = x
    for _ in range(steps):                      # unfused: every op is its own kernel
        t = b("add", b("mul", t, y), x)
    return b.build([t])


def test_trampoline_is_available_here(entry):
    assert trampoline_support() is None
    prog = load_graph(_chain(), entry=entry)
    assert prog.entry == entry
    assert (type(prog.function).__name__ == "builtin_function_or_method") == (
        entry == "trampoline")


def test_chain_of_kernels_reuses_the_arena(entry):
    graph = _chain()
    prog = load_graph(graph, entry=entry)
    assert standin_lowering.lowered[-12:] == ["mul", "add"] * 6
    # 12 temporaries of 4000 bytes live at most two at a time (in place where they can).
    assert prog.layout.arena_bytes <= 2 * 4032
    rng = np.random.default_rng(0)
    x, y = (rng.normal(size=1000).astype(np.float32) for _ in range(2))
    for _ in range(3):                          # the reused arena gives the same answer
        (got,) = prog.function([x, y])
        np.testing.assert_array_equal(got, interpret(graph, [x, y])[0])


def test_calling_conventions(entry):
    prog = load_graph(_chain(16, 1), entry=entry)
    x, y = np.ones(16, np.float32), np.full(16, 2.0, np.float32)
    want = np.full(16, 3.0, np.float32)
    for result in (prog.function([x, y]), prog.function((x, y)), prog.function(x, y),
                   prog(x, y)):
        assert type(result) is list and len(result) == 1
        np.testing.assert_array_equal(result[0], want)


def test_results_never_alias_arguments_or_constants(entry):
    b = Builder("aliases")
    x = b.input("f32[5]", "x")
    c = b.const(np.arange(5.0))
    s = b("add", x, c)
    graph = b.build([x, c, s, s, x])
    prog = load_graph(graph, entry=entry)
    xa = np.full(5, 10.0, np.float32)
    results = prog.function([xa])
    assert all(r is not xa for r in results)
    assert len({id(r) for r in results}) == 5
    for got, want in zip(results, interpret(graph, [xa]), strict=True):
        np.testing.assert_array_equal(got, want)
    results[0][:] = -1
    results[1][:] = -1
    results[2][:] = -1
    np.testing.assert_array_equal(xa, 10.0)
    again = prog.function([xa])
    np.testing.assert_array_equal(again[1], np.arange(5.0))
    np.testing.assert_array_equal(again[3], 10.0 + np.arange(5.0))


def _sgd(n: int = 64):
    b = Builder("sgd")
    w, g = b.input(f"f32[{n}]", "w"), b.input(f"f32[{n}]", "g")
    return b.build([b("sub", w, b("mul", g, b.const(0.5)))])


def test_donated_argument_is_updated_in_place(entry):
    graph = _sgd()
    prog = load_graph(graph, donated={0}, entry=entry)
    assert prog.layout.results[0].alias == 0 and prog.layout.args[0].donated
    assert prog.layout.arena_bytes == 256       # g * 0.5; the constant needs none
    w, g = np.arange(64, dtype=np.float32), np.ones(64, np.float32)
    want = w - 0.5
    (out,) = prog.function([w, g])
    assert out is w
    np.testing.assert_array_equal(w, want)


def test_donated_argument_that_cannot_be_written_is_copied(entry):
    prog = load_graph(_sgd(), donated={0}, entry=entry)
    w, g = np.arange(64, dtype=np.float32), np.ones(64, np.float32)
    w.flags.writeable = False
    (out,) = prog.function([w, g])
    assert out is not w
    np.testing.assert_array_equal(w, np.arange(64))
    np.testing.assert_array_equal(out, np.arange(64) - 0.5)


def test_result_pool_reuses_only_arrays_nobody_holds(entry):
    prog = load_graph(_chain(8, 1), entry=entry)
    x, y = np.ones(8, np.float32), np.ones(8, np.float32)
    first = prog.function([x, y])[0]
    kept = id(first)
    second = prog.function([x, y])[0]
    assert second is not first
    del first
    third = prog.function([x, y])[0]
    if entry == "trampoline":                   # the pool's array came back
        assert id(third) == kept
    view = third[2:]
    del third
    fourth = prog.function([x * 5, y])[0]       # the view still holds the old array
    np.testing.assert_array_equal(view, 2.0)
    np.testing.assert_array_equal(fourth, 10.0)
    fourth.shape = (2, 4)                       # a reshaped array is not handed out again
    del fourth, second, view
    for _ in range(3):
        out = prog.function([x, y])[0]
        assert out.shape == (8,) and out.flags.writeable
        np.testing.assert_array_equal(out, 2.0)


def test_bad_arguments_raise_errors_naming_them(entry):
    prog = load_graph(_chain(16, 1), entry=entry)
    good = np.ones(16, np.float32)
    with pytest.raises(TypeError, match=r"'chain' takes 2 arrays \(x, y\), got 1"):
        prog.function([good])
    with pytest.raises(TypeError, match=r"takes 2 arrays .*got 3"):
        prog.function(good, good, good)
    with pytest.raises(TypeError, match=r"argument 1 \(`y`\) .* numpy.ndarray .* got list"):
        prog.function([good, [1.0] * 16])
    with pytest.raises(TypeError, match=r"argument 0 \(`x`\) .* dtype float32, got float64"):
        prog.function([good.astype(np.float64), good])
    with pytest.raises(ValueError, match=r"argument 1 \(`y`\) .* shape \[16\], got \[4, 4\]"):
        prog.function([good, good.reshape(4, 4)])
    np.testing.assert_array_equal(prog.function([good, good])[0], 2.0)   # still works


def test_awkward_arrays_are_copied_not_refused(entry):
    prog = load_graph(_chain(16, 1), entry=entry)
    y = np.ones(16, np.float32)
    strided = np.arange(32, dtype=np.float32)[::2]
    raw = np.zeros(16 * 4 + 1, np.uint8)[1:]
    misaligned = raw.view(np.float32)
    misaligned[:] = np.arange(16)
    assert not misaligned.flags.aligned
    swapped = np.arange(16, dtype=">f4")
    manual = np.arange(16).astype(np.dtype("<f4"))

    class Sub(np.ndarray):
        pass

    for x in (strided, misaligned, swapped, manual, np.arange(16, dtype=np.float32).view(Sub)):
        (got,) = prog.function([x, y])      # x * y + x with y = 1
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, 2 * np.asarray(x, np.float32))


def test_zero_size_and_scalar_values(entry):
    b = Builder("small")
    e, s = b.input("f32[0,3]", "e"), b.input("f64[]", "s")
    graph = b.build([b("add", e, e), b("mul", s, s), e])
    prog = load_graph(graph, entry=entry)
    results = prog.function([np.zeros((0, 3), np.float32), np.array(3.0)])
    assert [r.shape for r in results] == [(0, 3), (), (0, 3)]
    assert results[1] == 9.0 and results[1].dtype == np.float64
    scalars = prog.function([np.zeros((0, 3), np.float32), np.float64(2.0)])
    assert scalars[1] == 4.0
    assert prog.function([np.zeros((0, 3), np.float32), 5.0])[1] == 25.0


def test_calls_from_many_threads(entry):
    from concurrent.futures import ThreadPoolExecutor
    prog = load_graph(_chain(4096, 3), entry=entry)
    graph = _chain(4096, 3)

    def one(seed):
        rng = np.random.default_rng(seed)
        x, y = (rng.normal(size=4096).astype(np.float32) for _ in range(2))
        (got,) = prog.function([x, y])
        return np.array_equal(got, interpret(graph, [x, y])[0])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(one, range(64)))


def test_program_lives_as_long_as_its_function(entry):
    import gc
    import weakref
    prog = load_graph(_chain(16, 1), entry=entry)
    fn, ref = prog.function, weakref.ref(prog)
    del prog
    gc.collect()
    assert ref() is not None
    np.testing.assert_array_equal(fn(np.ones(16, np.float32), np.ones(16, np.float32))[0], 2)
    del fn
    gc.collect()
    assert ref() is None


def test_repr_and_layout_round_trip(entry):
    prog = load_graph(_sgd(), donated={0}, entry=entry)
    assert "sgd" in repr(prog) and entry in repr(prog)
    from tracejit.codegen_cpu.host.entry import Layout
    assert Layout.from_json(prog.layout.to_json()) == prog.layout
    assert isinstance(prog, CompiledProgram)


def test_the_gil_is_held_so_calls_are_serialized(entry):
    # NOTE: a second thread calling while the first is inside the program must see
    # consistent arena contents; counting overlaps proves the calls never interleave.
    prog = load_graph(_chain(1 << 16, 6), entry=entry)
    x = np.ones(1 << 16, np.float32)
    results, errors = [], []

    def worker():
        try:
            for _ in range(20):
                results.append(float(prog.function([x, x])[0][0]))
        except Exception as exc:       # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(results) == {7.0}
