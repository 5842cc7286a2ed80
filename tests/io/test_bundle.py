"""TensorFlow's checkpoint format: the golden checkpoint TensorFlow 2.21 wrote
(tests/data/tf_checkpoint, made by make_golden.py there) read back tensor by tensor,
rewritten byte for byte, and the table, wire and checksum layers on their own."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracejit.io import bundle, table, wire
from tracejit.io.bundle import BundleError, BundleReader, BundleWriter, Entry, slice_key
from tracejit.io.crc import crc32c_of, masked, masked_crc32c, unmasked

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "tf_checkpoint"
PREFIX = str(GOLDEN / "model-42")


@pytest.fixture(scope="module")
def expected():
    with np.load(GOLDEN / "expected.npz") as saved:
        return {name: saved[name] for name in saved.files}


def test_golden_names_and_values(expected):
    reader = BundleReader(PREFIX)
    assert reader.names() == sorted(expected)
    dtypes = {"dense/kernel": np.float32, "dense/bias": np.float64, "counts": np.int32,
              "big_ints": np.int64, "mask": np.bool_, "half": np.float16, "bytes": np.uint8,
              "small_ints": np.int8, "scalar": np.float32, "large": np.float32,
              "global_step": np.int64, "part": np.float32, "brain": bundle.TF_DTYPES[14]}
    for name, dtype in dtypes.items():
        value = reader.get(name)
        assert value.dtype == np.dtype(dtype), name
        assert value.shape == np.shape(expected[name]), name
        np.testing.assert_array_equal(value.astype(np.float64),
                                      np.asarray(expected[name]).astype(np.float64), name)


def test_golden_partitioned_variable_lists_its_slices():
    entry = BundleReader(PREFIX).entry("part")
    assert entry.shape == (200, 3)
    assert entry.slices == (((0, 67), (0, 3)), ((67, 67), (0, 3)), ((134, 66), (0, 3)))


def test_rewriting_the_golden_tensors_gives_tensorflows_bytes(tmp_path):
    reader = BundleReader(PREFIX)
    prefix = str(tmp_path / "model-42")
    with BundleWriter(prefix) as writer:
        for name in reader.names():
            entry = reader.entry(name)
            if not entry.slices:
                writer.add(name, reader.get(name))
                continue
            whole = reader.get(name)
            for extents in entry.slices:
                region = tuple(slice(s, s + n) for s, n in extents)
                writer.add_slice(name, entry.shape, [s for s, _ in extents], whole[region])
    for suffix in (".index", ".data-00000-of-00001"):
        assert Path(prefix + suffix).read_bytes() == Path(PREFIX + suffix).read_bytes(), suffix


def test_slice_keys_match_tensorflows_order_preserving_code():
    # bytes read off the golden index: "part", rank 2, (0, 67) and (0, 3)
    assert slice_key("part", [(0, 67), (0, 3)]) == \
        b"\x00part\x00\x01\x01\x02\x80\xc0\x43\x80\x83"


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**62), 2**62), st.integers(-(2**62), 2**62))
def test_signed_number_code_sorts_as_the_numbers(a, b):
    code_a, code_b = slice_key("x", [(a, 1)]), slice_key("x", [(b, 1)])
    assert (code_a < code_b) == (a < b) and (code_a == code_b) == (a == b)


def test_corrupt_data_names_the_tensor(tmp_path):
    target = tmp_path / "model-42"
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(PREFIX + suffix, str(target) + suffix)
    entry = BundleReader(str(target)).entry("dense/kernel")
    data = bytearray((tmp_path / "model-42.data-00000-of-00001").read_bytes())
    data[entry.offset + 5] ^= 0x40
    (tmp_path / "model-42.data-00000-of-00001").write_bytes(bytes(data))
    reader = BundleReader(str(target))
    with pytest.raises(BundleError, match="dense/kernel: checksum mismatch"):
        reader.get("dense/kernel")
    assert reader.get("dense/bias").shape == (5,)      # the others still read


def test_corrupt_or_truncated_index_is_a_clear_error(tmp_path):
    data = Path(PREFIX + ".index").read_bytes()
    (tmp_path / "flipped.index").write_bytes(data[:40] + bytes([data[40] ^ 1]) + data[41:])
    with pytest.raises(BundleError, match="checksum"):
        BundleReader(str(tmp_path / "flipped"))
    (tmp_path / "short.index").write_bytes(data[:-3])
    with pytest.raises(BundleError, match="magic|short"):
        BundleReader(str(tmp_path / "short"))
    with pytest.raises(BundleError, match="does not exist"):
        BundleReader(str(tmp_path / "absent"))


def test_missing_name_and_unreadable_dtype(tmp_path):
    reader = BundleReader(PREFIX)
    with pytest.raises(BundleError, match="Key nope not found"):
        reader.get("nope")
    assert Entry(7, (2,)).dtype_name == "string"
    with pytest.raises(BundleError, match="cannot be saved"):
        with BundleWriter(str(tmp_path / "s")) as writer:
            writer.add("s", np.array(["a", "b"]))


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    prefix = str(tmp_path / "ckpt")
    with BundleWriter(prefix) as writer:
        writer.add("w", np.arange(4.0))

    def crash(self):
        raise OSError("disk full")
    monkeypatch.setattr(table.TableWriter, "finish", crash)
    with pytest.raises(OSError, match="disk full"):
        with BundleWriter(prefix) as writer:
            writer.add("w", np.zeros(4))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.data-00000-of-00001", "ckpt.index"]
    np.testing.assert_array_equal(BundleReader(prefix).get("w"), np.arange(4.0))


def test_scalars_empty_and_big_endian_arrays_round_trip(tmp_path):
    prefix = str(tmp_path / "c")
    values = {"scalar": np.float64(2.5), "empty": np.zeros((0, 3), np.float32),
              "be": np.arange(5, dtype=">i4"), "strided": np.arange(12.0).reshape(3, 4)[:, ::2]}
    with BundleWriter(prefix) as writer:
        for name, value in values.items():
            writer.add(name, value)
    reader = BundleReader(prefix)
    for name, value in values.items():
        got = reader.get(name)
        assert got.shape == np.shape(value)
        np.testing.assert_array_equal(got, value)
    assert reader.get("be").dtype == np.dtype("<i4")


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=12), st.binary(max_size=40),
                       min_size=1, max_size=120),
       st.sampled_from([32, 128, 4096]))
def test_table_round_trip_over_many_blocks(tmp_path_factory, entries, block_size):
    path = tmp_path_factory.mktemp("t") / "table"
    with open(path, "wb") as file:
        writer = table.TableWriter(file, block_size=block_size, restart_interval=3)
        for key in sorted(entries):
            writer.add(key, entries[key])
        writer.finish()
    assert table.read_table(path.read_bytes(), str(path)) == sorted(entries.items())


def test_table_keys_must_increase(tmp_path):
    with open(tmp_path / "t", "wb") as file:
        writer = table.TableWriter(file)
        writer.add(b"b", b"")
        with pytest.raises(table.TableError, match="must increase"):
            writer.add(b"a", b"")


def test_index_separators_are_short_and_between():
    assert table.shortest_separator(b"abcd", b"abzz") == b"abd"
    assert table.shortest_separator(b"ab", b"abc") == b"ab"
    assert table.short_successor(b"scalar") == b"t"
    assert table.short_successor(b"\xff\xff") == b"\xff\xff"


def test_crc32c_and_its_mask():
    assert crc32c_of(b"123456789") == 0xE3069283        # the CRC-32C check value
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert unmasked(masked(value)) == value
    assert masked_crc32c(b"123456789") == masked(0xE3069283)


@given(st.integers(-(2**63), 2**64 - 1))
def test_varints_round_trip(value):
    data = wire.field_varint(3, value)
    read = wire.parse(data)[3][0]
    assert (wire.as_int64(read) if value < 0 else read) == value


def test_malformed_messages_are_wire_errors():
    for data in (b"\x08", b"\x12\x05ab", b"\x0b", b"\x08" + b"\xff" * 11):
        with pytest.raises(wire.WireError):
            wire.parse(data)
