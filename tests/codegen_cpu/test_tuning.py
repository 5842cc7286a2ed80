"""The tuning record: measured choices, remembered per host, forced, or rebuilt."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import tracejit as tj
from tracejit.codegen_cpu.gemm import choice as gemm_choice
from tracejit.codegen_cpu.gemm.tiles import tile_gemm_exists
from tracejit.codegen_cpu.host import target, tuning, vector_choice
from tracejit.ir import dtypes as dt


@pytest.fixture
def record(tmp_path, monkeypatch):
    """A fresh tuning record in a temporary cache folder."""
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(tuning.TUNE_ENV, raising=False)
    monkeypatch.delenv(gemm_choice.GEMM_ENV, raising=False)
    tuning.forget()
    yield tuning.record_path()
    tuning.forget()


class Counting:
    """A candidate that takes ``seconds`` a run and counts its runs."""

    def __init__(self, seconds: float):
        self.seconds, self.runs = seconds, 0

    def __call__(self):
        self.runs += 1
        time.sleep(self.seconds)


def test_the_fastest_candidate_wins_and_is_written_down(record):
    slow, fast = Counting(0.004), Counting(0.0)
    assert tuning.choose("demo/a", {"slow": slow, "fast": fast}, "slow") == "fast"
    assert slow.runs >= 2 and fast.runs >= 2            # a warm-up and a timed run each
    stored = json.loads(record.read_text())
    assert stored["decisions"]["demo/a"]["choice"] == "fast"
    assert set(stored["decisions"]["demo/a"]["seconds"]) == {"slow", "fast"}
    assert stored["host"]["cpu"]


def test_a_remembered_choice_is_not_measured_again_even_by_another_process(record):
    first = {"x": Counting(0.003), "y": Counting(0.0)}
    assert tuning.choose("demo/b", first, "x") == "y"
    # A new process: nothing in memory, the file on disk.
    tuning.reload()
    again = {"x": Counting(0.0), "y": Counting(0.003)}
    assert tuning.choose("demo/b", again, "x") == "y"
    assert again["x"].runs == again["y"].runs == 0


def test_forcing_and_turning_tuning_off_measure_nothing(record, monkeypatch):
    a, b = Counting(0.0), Counting(0.0)
    assert tuning.choose("demo/c", {"a": a, "b": b}, "a", force="b") == "b"
    monkeypatch.setenv(tuning.TUNE_ENV, "off")
    assert tuning.choose("demo/c", {"a": a, "b": b}, "b") == "b"
    assert a.runs == b.runs == 0 and not record.exists()
    with pytest.raises(ValueError, match="unknown choice 'z'"):
        tuning.choose("demo/c", {"a": a, "b": b}, "a", force="z")


@pytest.mark.parametrize("garbage", ["{not json", '{"format": 99, "decisions": {}}', "[]"])
def test_a_corrupt_record_is_rebuilt_with_a_warning(record, garbage):
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(garbage)
    with pytest.warns(RuntimeWarning, match="tuning record"):
        assert tuning.choose("demo/d", {"p": Counting(0.002), "q": Counting(0.0)}, "p") == "q"
    assert json.loads(record.read_text())["decisions"]["demo/d"]["choice"] == "q"


def test_gemm_environment_forces_the_kernel(record, monkeypatch):
    monkeypatch.setenv(gemm_choice.GEMM_ENV, "blas")
    assert not gemm_choice.use_tiles(dt.float32, 256, 256, 256, False)
    monkeypatch.setenv(gemm_choice.GEMM_ENV, "tiles")
    assert gemm_choice.use_tiles(dt.float32, 256, 256, 256, False) == tile_gemm_exists(
        dt.float32)
    assert not gemm_choice.use_tiles(dt.int32, 256, 256, 256, False)
    monkeypatch.setenv(gemm_choice.GEMM_ENV, "fastest")
    with pytest.raises(ValueError, match="TRACEJIT_GEMM='fastest'"):
        gemm_choice.use_tiles(dt.float32, 256, 256, 256, False)
    assert not record.exists()


@pytest.mark.skipif(not tile_gemm_exists(dt.float32), reason="one candidate without AVX-512")
def test_a_matmul_measures_its_class_once_and_computes_right(record):
    a = np.random.default_rng(1).standard_normal((96, 200)).astype(np.float32)
    b = np.random.default_rng(2).standard_normal((200, 160)).astype(np.float32)
    f = tj.jit(lambda x, y: x @ y)
    np.testing.assert_allclose(np.asarray(f(a, b)), a @ b, rtol=2e-4, atol=2e-4)
    keys = [k for k in tuning.decisions() if k.startswith("gemm/float32/N/")]
    assert len(keys) == 1 and tuning.decisions()[keys[0]]["choice"] in ("blas", "tiles")
    g = tj.jit(lambda x, y: (x @ y) * 2.0)      # same class: no new decision
    np.testing.assert_allclose(np.asarray(g(a, b)), 2 * (a @ b), rtol=2e-4, atol=2e-4)
    assert [k for k in tuning.decisions() if k.startswith("gemm/")] == keys


def test_vector_width_is_forced_measured_or_left_to_llvm(record, monkeypatch):
    cpu, features = target.host_cpu()
    avx512 = features.replace("-avx512f", "+avx512f")
    monkeypatch.setenv(vector_choice.VECTOR_ENV, "256")
    assert vector_choice.prefer_256_feature(cpu, avx512) == "+prefer-256-bit"
    monkeypatch.setenv(vector_choice.VECTOR_ENV, "512")
    assert vector_choice.prefer_256_feature(cpu, avx512) == "-prefer-256-bit"
    assert vector_choice.prefer_256_feature("haswell", "+avx2,-avx512f") == ""
    monkeypatch.setenv(vector_choice.VECTOR_ENV, "1024")
    with pytest.raises(ValueError, match="TRACEJIT_VECTOR_BITS"):
        vector_choice.prefer_256_feature(cpu, avx512)
    monkeypatch.delenv(vector_choice.VECTOR_ENV)
    monkeypatch.setenv(tuning.TUNE_ENV, "off")
    assert vector_choice.prefer_256_feature(cpu, avx512) == ""
    assert not record.exists()


@pytest.mark.skipif("+avx512f" not in target.host_cpu()[1].split(","),
                    reason="the probe runs both ways on AVX-512 hosts only")
def test_vector_width_measured_once_per_host(record):
    cpu, features = target.host_cpu()
    feature = vector_choice.prefer_256_feature(cpu, features)
    assert feature in ("+prefer-256-bit", "-prefer-256-bit")
    entry = tuning.decisions()[f"vector_bits/{cpu}"]
    assert set(entry["seconds"]) == {"512", "256"}
    assert feature == ("-prefer-256-bit" if entry["choice"] == "512" else "+prefer-256-bit")
