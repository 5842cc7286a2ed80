"""The compile cache (memory and disk) and the executor's fallback, on the stand-in lowering."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tracejit.codegen_cpu.host import cache_budget, target
from tracejit.codegen_cpu.host.cache import Artifact, ProgramCache, program_key
from tracejit.codegen_cpu.host.executor import CpuExecutor
from tracejit.codegen_cpu.host.program import Unsupported
from tracejit.ir.printer import print_graph

from . import standin_lowering
from .conftest import Builder

ROOT = Path(__file__).resolve().parents[2]


def _graph(scale=2.0, name="scaled", n=8):
    b = Builder(name)
    x = b.input(f"f32[{n}]", "x")
    return b.build([b("add", b("mul", x, b.const(scale)), x)])


def _big_constant_graph(n=2000):
    b = Builder("offset")
    x = b.input(f"f32[{n}]", "x")
    return b.build([b("add", x, b.const(np.arange(n)))])    # too big to fold into a kernel


def test_key_depends_on_graph_constants_donation_and_settings(monkeypatch):
    monkeypatch.delenv("TRACEJIT_FASTMATH", raising=False)
    text = print_graph(_graph())
    key = program_key(text)
    assert key == program_key(print_graph(_graph()))
    assert key != program_key(print_graph(_graph(3.0)))
    assert key != program_key(text, donated={0})
    monkeypatch.setenv("TRACEJIT_FASTMATH", "0")
    assert key != program_key(text)
    monkeypatch.delenv("TRACEJIT_FASTMATH")
    monkeypatch.setenv("TRACEJIT_LOG", "compiles")      # does not change code
    assert key == program_key(text)


def test_executor_compiles_once_per_graph(standin):
    first = standin.compile(_graph())
    assert standin.compile(_graph()) is first           # a loaded program is shared
    x = np.arange(8, dtype=np.float32)
    np.testing.assert_array_equal(first([x])[0], 3 * x)
    assert standin.cache.hits == {"miss": 1}
    del first
    import gc
    gc.collect()
    again = standin.compile(_graph())                   # reloaded from memory
    np.testing.assert_array_equal(again([x])[0], 3 * x)
    assert standin.cache.hits == {"miss": 1, "memory": 1}


def test_disk_round_trip_and_corrupt_entries(tmp_path):
    ex = CpuExecutor(cache=ProgramCache(tmp_path), lowering=standin_lowering)
    ex.compile(_big_constant_graph())
    (meta,) = tmp_path.glob("*/*.json")
    fresh = ProgramCache(tmp_path)
    key = meta.stem
    found = fresh.get(key)
    assert isinstance(found, Artifact) and found.consts and fresh.hits == {"disk": 1}
    program = CpuExecutor(cache=fresh, lowering=standin_lowering).load(found).function
    x = np.arange(2000, dtype=np.float32)
    np.testing.assert_array_equal(program([x])[0], 2 * x)
    obj = meta.with_suffix(".o")
    data = obj.read_bytes()
    obj.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # a flipped byte: digest mismatch
    assert ProgramCache(tmp_path).get(key) is None
    meta.write_text("{not json")
    assert ProgramCache(tmp_path).get(key) is None
    meta.write_text(json.dumps({"key": "another"}))
    assert ProgramCache(tmp_path).get(key) is None


_CHILD = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, sys.argv[1])
    from tests.codegen_cpu import standin_lowering as L
    from tests.codegen_cpu.test_cache import _graph
    from tracejit.codegen_cpu.host.executor import CpuExecutor
    ex = CpuExecutor(lowering=L)
    out = ex.compile(_graph())([np.arange(8, dtype=np.float32)])[0]
    print(dict(ex.cache.hits), L.lowered, out.tolist())
""")


def test_second_process_loads_from_disk(tmp_path):
    env = dict(os.environ, TRACEJIT_CACHE_DIR=str(tmp_path))

    def child():
        done = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    want = str([3.0 * i for i in range(8)])
    assert child() == f"{{'miss': 1}} ['kernel'] {want}"
    assert child() == f"{{'disk': 1}} [] {want}"        # nothing lowered or compiled


def test_unsupported_op_falls_back_to_the_interpreter(standin, caplog, monkeypatch):
    b = Builder("with_exp")
    x = b.input("f32[4]", "x")
    graph = b.build([b("exp", b("sub", b("gather", x, b.const([0, 1], "i32"), axis=0),
                                b.const(1.0)))])
    x_value = np.arange(4, dtype=np.float32)
    with caplog.at_level(logging.INFO, logger="tracejit.codegen_cpu"):
        program = standin.compile(graph)
        standin.compile(_graph(name="other").replace(eqns=graph.eqns, inputs=graph.inputs,
                                                    outputs=graph.outputs))
    np.testing.assert_allclose(program([x_value])[0], np.exp(x_value[:2] - 1), rtol=1e-6)
    assert sum("reference interpreter" in r.message for r in caplog.records) == 1
    assert standin.fallbacks["gather"] == 2
    monkeypatch.setenv("TRACEJIT_CPU_STRICT", "1")
    with pytest.raises(Unsupported, match="gather"):
        CpuExecutor(cache=ProgramCache(None), lowering=standin_lowering).compile(graph)


def test_run_op_compiles_each_signature_once(standin):
    from tracejit.ir import ops
    from tracejit.ir.core import Params
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)
    for _ in range(3):
        (out,) = standin.run_op(ops.OPS["add"], [a, b], Params())
        np.testing.assert_array_equal(out, a + 1)
    assert standin.cache.hits == {"miss": 1}
    (out,) = standin.run_op(ops.OPS["add"], [a[:, :2], b[:, :2]], Params())
    np.testing.assert_array_equal(out, a[:, :2] + 1)
    assert standin.cache.hits == {"miss": 2}


def test_clear_caches_makes_the_next_compile_compile(monkeypatch):
    import numpy as np

    import tracejit as tj
    from tracejit.runtime.registry import get_device
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", "off")
    cpu = get_device("cpu").compiler
    x = np.ones(3, np.float32)
    tj.jit(lambda x: x * 5.0 - 2.0)(x)
    tj.clear_caches()
    misses = cpu.cache.hits["miss"]
    tj.jit(lambda x: x * 5.0 - 2.0)(x)
    assert cpu.cache.hits["miss"] == misses + 1


def test_the_key_covers_every_source_that_shapes_a_program():
    # A stale program from before a change to the memory planner once returned one
    # variable's array as another's; the passes and the IR are part of the key.
    import tracejit
    from tracejit.codegen_cpu.host.cache import key_sources
    package = Path(tracejit.__file__).resolve().parent
    names = {p.relative_to(package).as_posix() for p in key_sources()}
    assert {"passes/memory.py", "passes/fuse.py", "ir/opdef.py", "codegen_cpu/host/program.py",
            "codegen_cpu/host/entry.py", "codegen_cpu/kernels/table.py",
            "codegen_cpu/device.py"} <= names


def test_the_key_names_the_cpu_compiled_for():
    text = print_graph(_graph())
    host = program_key(text)
    with target.compiling_for("haswell"):
        haswell = program_key(text)
        with target.compiling_for("haswell", "+prefer-256-bit"):
            assert program_key(text) != haswell
    with target.compiling_for("znver4"):
        assert program_key(text) not in (host, haswell)
    assert program_key(text) == host


# ---- the size cap (cache_budget.py) --------------------------------------------------------


def make_entry(folder: Path, key: str, used: float, *, complete: bool = True) -> None:
    """An entry of 3000 bytes of object code, last used at ``used`` (its .json's mtime);
    ``complete=False``: its writer has not written the .json yet."""
    shard = folder / key[:2]
    shard.mkdir(parents=True, exist_ok=True)
    (shard / f"{key}.o").write_bytes(b"x" * 3000)
    os.utime(shard / f"{key}.o", (used, used))
    if complete:
        (shard / f"{key}.json").write_text("{}")
        os.utime(shard / f"{key}.json", (used, used))


def _keys(folder: Path) -> list[str]:
    return sorted({p.stem for p in folder.glob("*/*") if not p.name.startswith(".")})


@pytest.mark.parametrize("text,size", [
    ("300M", 300 * 2 ** 20), ("1.5G", int(1.5 * 2 ** 30)), ("64k", 65536), ("4096", 4096),
    ("2MiB", 2 * 2 ** 20), (" 1 GB ", 2 ** 30), ("off", None), ("0", None)])
def test_cap_sizes_parse(text, size):
    assert cache_budget.parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1G", "12Q", "1.2.3M", "M"])
def test_a_bad_cap_is_an_error_naming_the_variable(monkeypatch, tmp_path, bad):
    monkeypatch.setenv(cache_budget.LIMIT_ENV, bad)
    with pytest.raises(ValueError, match=f"TRACEJIT_CACHE_MAX={bad!r}: expected a size"):
        cache_budget.size_limit()
    with pytest.raises(ValueError, match="TRACEJIT_CACHE_MAX"):   # not silently uncapped
        ProgramCache(tmp_path).put("ab" * 32, Artifact(b"obj", None, b""))
    monkeypatch.delenv(cache_budget.LIMIT_ENV)
    assert cache_budget.size_limit() == cache_budget.DEFAULT_LIMIT


def test_least_recently_used_entries_are_evicted_first(tmp_path):
    now = time.time()
    for i, key in enumerate(["aa01", "bb02", "cc03", "dd04", "ee05"]):
        make_entry(tmp_path, key, now - 1000 + i)               # aa01 is the oldest
    cache_budget.mark_used(tmp_path / "aa" / "aa01.json")        # ... until a hit
    used = cache_budget.usage(tmp_path)
    entry = used.bytes // 5                                      # blocks: filesystem's own
    assert used.entries == 5 and entry >= 3000
    # A cap of 4 entries trims to 80% of it: 3 entries stay, the two oldest go.
    assert cache_budget.evict(tmp_path, 4 * entry) == 2 * entry
    assert _keys(tmp_path) == ["aa01", "dd04", "ee05"]
    assert not (tmp_path / "bb" / "bb02.o").exists()
    assert cache_budget.evict(tmp_path, 4 * entry) == 0          # under the cap: nothing
    assert cache_budget.evict(tmp_path, None) == 0


def test_an_entry_being_written_counts_from_its_own_age(tmp_path):
    now = time.time()
    make_entry(tmp_path, "aa01", now - 50)
    make_entry(tmp_path, "bb02", now - 40)
    make_entry(tmp_path, "cc03", now, complete=False)            # a writer is at work
    make_entry(tmp_path, "dd04", now - 3600 * 24, complete=False)   # its writer died
    entry = cache_budget.usage(tmp_path).bytes // 4
    cache_budget.evict(tmp_path, 3 * entry)                      # keep 2.4 entries
    assert _keys(tmp_path) == ["bb02", "cc03"]


def test_a_reader_racing_an_eviction_gets_a_miss(tmp_path, monkeypatch):
    writer = ProgramCache(tmp_path)
    key = "cd" * 32
    writer.put(key, Artifact(b"object code", None, b"constants"))
    read_bytes = Path.read_bytes

    def evicted_meanwhile(path):
        if path.suffix == ".o":              # the reader has the .json, not yet the rest
            cache_budget.evict(tmp_path, 1)
        return read_bytes(path)
    monkeypatch.setattr(Path, "read_bytes", evicted_meanwhile)
    reader = ProgramCache(tmp_path)
    assert reader.get(key) is None and reader.hits == {"miss": 1}
    monkeypatch.undo()
    assert _keys(tmp_path) == [] and ProgramCache(tmp_path).get(key) is None


def test_the_program_cache_stays_under_its_cap(tmp_path, monkeypatch):
    probe = tmp_path / "probe"
    ProgramCache(probe).put("ff" * 32, Artifact(os.urandom(3000), None, b""))
    entry = cache_budget.usage(probe).bytes
    cache = ProgramCache(tmp_path / "cache")
    monkeypatch.setenv(cache_budget.LIMIT_ENV, str(10 * entry))
    for i in range(40):
        cache.put(f"{i:02x}" + "0" * 62, Artifact(os.urandom(3000), None, b""))
        cache.clear_memory()                 # a hit from disk marks the entry used
        cache.get(f"{0:02x}" + "0" * 62)                         # the first stays in use
        assert cache_budget.usage(tmp_path / "cache").bytes <= 10 * entry
    cache.clear_memory()
    for i in (0, 38, 39):
        assert cache.get(f"{i:02x}" + "0" * 62) is not None      # used, or recent
    assert cache.get(f"{20:02x}" + "0" * 62) is None             # evicted


def test_writes_scan_the_folder_only_when_the_estimate_says_so(tmp_path, monkeypatch):
    scans = []
    evict = cache_budget.evict
    monkeypatch.setattr(cache_budget, "evict", lambda *a: scans.append(1) or evict(*a))
    monkeypatch.setenv(cache_budget.LIMIT_ENV, "1G")
    for process in range(3):                 # three processes, one after another
        cache = ProgramCache(tmp_path)
        for i in range(20):
            cache.put(f"{process}{i:02x}" + "0" * 61, Artifact(os.urandom(100), None, b""))
    assert len(scans) == 1                    # the folder's first write: nothing recorded
    estimate, lines, _ = cache_budget._estimate(tmp_path)
    assert lines == 59 and estimate == cache_budget.usage(tmp_path).bytes
    monkeypatch.setenv(cache_budget.LIMIT_ENV, str(estimate))   # the next write is over
    ProgramCache(tmp_path).put("ff" * 32, Artifact(os.urandom(100), None, b""))
    assert len(scans) == 2 and cache_budget.usage(tmp_path).bytes <= estimate
