"""The compile cache's size cap (least-recently-used eviction) and ``tracejit cache``."""

from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner

from tracejit.cli import main
from tracejit.codegen_cpu import cache_budget, tuning
from tracejit.codegen_cpu.cache import Artifact, ProgramCache


def make_entry(folder, key: str, size: int, used: float) -> None:
    shard = folder / key[:2]
    shard.mkdir(parents=True, exist_ok=True)
    (shard / f"{key}.o").write_bytes(b"x" * size)
    (shard / f"{key}.json").write_text("{}")
    os.utime(shard / f"{key}.json", (used, used))


@pytest.mark.parametrize("text,size", [("300M", 300 * 2 ** 20), ("1.5G", int(1.5 * 2 ** 30)),
                                       ("64k", 65536), ("4096", 4096), ("2MiB", 2 * 2 ** 20),
                                       ("off", None), ("0", None)])
def test_sizes_parse(text, size):
    assert cache_budget.parse_size(text) == size


def test_a_bad_cap_names_the_variable(monkeypatch):
    monkeypatch.setenv(cache_budget.LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match="TRACEJIT_CACHE_MAX='lots'"):
        cache_budget.size_limit()
    monkeypatch.delenv(cache_budget.LIMIT_ENV)
    assert cache_budget.size_limit() == cache_budget.DEFAULT_LIMIT


def test_least_recently_used_entries_go_first(tmp_path):
    now = time.time()
    for i, key in enumerate(["aa01", "bb02", "cc03", "dd04", "ee05"]):
        make_entry(tmp_path, key, 1000, now - 100 + i)       # aa01 is the oldest
    cache_budget.mark_used(tmp_path / "aa" / "aa01.json")     # ... until a hit
    assert cache_budget.usage(tmp_path) == cache_budget.Usage(5, 5 * 1002)
    freed = cache_budget.evict(tmp_path, 4000)                # keep at most 3200 bytes
    assert freed == 2 * 1002
    left = sorted(p.stem for p in tmp_path.glob("*/*.json"))
    assert left == ["aa01", "dd04", "ee05"]
    assert not (tmp_path / "bb" / "bb02.o").exists()
    assert cache_budget.evict(tmp_path, 4000) == 0            # under the cap: nothing
    assert cache_budget.evict(tmp_path, None) == 0


def test_the_program_cache_stays_under_its_cap(tmp_path, monkeypatch):
    monkeypatch.setenv(cache_budget.LIMIT_ENV, "40K")
    monkeypatch.setattr(cache_budget, "CHECK_EVERY", 4)
    cache = ProgramCache(tmp_path)
    for i in range(40):
        cache.put(f"{i:02x}" + "0" * 62, Artifact(os.urandom(3000), None, b""))
    assert cache_budget.usage(tmp_path).bytes <= 40 * 1024 + 4 * 3100
    newest = f"{39:02x}" + "0" * 62
    cache.clear_memory()
    assert cache.get(newest) is not None                      # recent entries survive


def test_cache_info_and_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(cache_budget.LIMIT_ENV, "1G")
    tuning.forget()
    make_entry(tmp_path, "ab12", 2048, time.time())
    tuning.choose("demo/cli", {"a": lambda: None, "b": lambda: time.sleep(0.001)}, "a")
    runner = CliRunner()
    info = runner.invoke(main, ["cache", "info"])
    assert info.exit_code == 0, info.output
    assert str(tmp_path) in info.output and "entries: 1" in info.output
    assert "cap: 1024.0 MiB" in info.output and "1 decisions" in info.output
    cleared = runner.invoke(main, ["cache", "clear"])
    assert cleared.exit_code == 0, cleared.output
    assert "removed 1 entries" in cleared.output
    assert cache_budget.usage(tmp_path).entries == 0 and not tuning.decisions()
    monkeypatch.setenv(cache_budget.LIMIT_ENV, "huge")
    bad = runner.invoke(main, ["cache", "info"])
    assert bad.exit_code != 0 and "TRACEJIT_CACHE_MAX='huge'" in bad.output
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", "off")
    assert "off" in runner.invoke(main, ["cache", "info"]).output
    tuning.forget()
