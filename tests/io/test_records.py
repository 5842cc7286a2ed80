"""TFRecord files: the files TensorFlow 2.21 wrote (tests/data/records, made by
make_golden.py there) read back, files written here equal to TensorFlow's byte for byte
(uncompressed) and readable by it (checked once with tf.data.TFRecordDataset over
NONE/GZIP/ZLIB), and every kind of damage reported with the file and offset."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit.compat.v1 as tf
from tracejit.io import records
from tracejit.io.example import BytesList, Example, Feature, Features, FloatList, Int64List
from tracejit.io.records import RecordError, RecordReader, RecordWriter, read_records

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "records"
OFFSETS = [0, 72, 144, 216, 232]          # TFRecordReader's keys over golden.tfrecord


def golden_example(i: int) -> bytes:
    return Example(features=Features(feature={
        "x": Feature(float_list=FloatList(value=[i * 0.5, -i])),
        "label": Feature(int64_list=Int64List(value=[i])),
        "name": Feature(bytes_list=BytesList(value=[b"item%d" % i]))})).SerializeToString()


EXPECTED = [golden_example(i) for i in range(3)] + [b"", b"plain bytes record"]


@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_reads_files_tensorflow_wrote(compression):
    path = GOLDEN / f"golden{compression.lower()}.tfrecord"
    found = list(read_records(path, compression))
    # NOTE: TensorFlow wrote each Example's map in its hash table's order: the same
    # messages as ours, not the same bytes
    assert [Example.FromString(r) for r in found[:3]] == \
        [Example.FromString(r) for r in EXPECTED[:3]]
    assert found[3:] == EXPECTED[3:]


def test_offsets_are_those_tensorflow_reports():
    with RecordReader(GOLDEN / "golden.tfrecord") as reader:
        offsets = []
        while True:
            offsets.append(reader.offset)
            if reader.read() is None:
                break
    assert offsets[:-1] == OFFSETS and offsets[-1] == 266


def test_uncompressed_file_is_byte_identical_to_tensorflows(tmp_path):
    path = tmp_path / "ours.tfrecord"
    with RecordWriter(path) as writer:
        for record in read_records(GOLDEN / "golden.tfrecord"):
            writer.write(record)
    assert path.read_bytes() == (GOLDEN / "golden.tfrecord").read_bytes()


@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_round_trip(tmp_path, compression):
    data = [b"", b"a", bytes(range(256)) * 500, b"z" * 100_000]
    path = tmp_path / "r.tfrecord"
    with RecordWriter(path, compression) as writer:
        for record in data:
            writer.write(record)
    assert list(read_records(path, compression)) == data
    head = path.read_bytes()[:2]
    assert head == {"": b"\x00\x00", "GZIP": b"\x1f\x8b", "ZLIB": b"\x78\x9c"}[compression]


def test_gzip_file_is_an_ordinary_gzip_stream(tmp_path):
    path = tmp_path / "r.tfrecord.gz"
    with RecordWriter(path, "GZIP") as writer:
        writer.write(b"payload")
    assert gzip.decompress(path.read_bytes()) == records.encode_record(b"payload")
    zpath = tmp_path / "r.tfrecord.z"
    with RecordWriter(zpath, "ZLIB", level=9) as writer:
        writer.write(b"payload")
    assert zlib.decompress(zpath.read_bytes()) == records.encode_record(b"payload")


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_flush_makes_records_readable_before_close(tmp_path, compression):
    path = tmp_path / "live.tfrecord"
    writer = RecordWriter(path, compression)
    writer.write(b"one")
    writer.flush()
    with RecordReader(path, compression) as reader:
        assert reader.read() == b"one"
    writer.close()
    writer.close()                          # closing twice is harmless
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"two")


@pytest.mark.parametrize("spelling,name", [
    (None, ""), ("", ""), ("gzip", "GZIP"), (b"ZLIB", "ZLIB"), (0, ""), (1, "ZLIB"),
    (2, "GZIP"), (tf.python_io.TFRecordOptions("GZIP"), "GZIP"),
    (tf.python_io.TFRecordOptions(tf.python_io.TFRecordCompressionType.ZLIB), "ZLIB")])
def test_compression_spellings(spelling, name):
    assert records.compression_name(spelling) == name


def test_unknown_compression_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'BZIP2' is not one of"):
        RecordWriter(tmp_path / "x", "BZIP2")


def _damaged(tmp_path, position: int, size: int | None = None) -> Path:
    data = bytearray((GOLDEN / "golden.tfrecord").read_bytes())
    if size is not None:
        data = data[:size]
    else:
        data[position] ^= 0x01
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(bytes(data))
    return path


def test_corrupt_data_names_file_and_offset(tmp_path):
    path = _damaged(tmp_path, 72 + 12 + 5)         # inside the second record's data
    found = []
    with pytest.raises(RecordError) as info:
        for record in read_records(path):
            found.append(record)
    assert len(found) == 1
    assert info.value.offset == 72 and info.value.path == str(path)
    assert "data's checksum" in str(info.value) and "offset 72" in str(info.value)
    assert str(path) in str(info.value)


def test_corrupt_length_and_truncation(tmp_path):
    with pytest.raises(RecordError, match="length's checksum.*offset 144"):
        list(read_records(_damaged(tmp_path, 144 + 3)))
    with pytest.raises(RecordError, match="truncated record.*offset 232"):
        list(read_records(_damaged(tmp_path, 0, size=240)))
    with pytest.raises(RecordError, match="incomplete length.*offset 232"):
        list(read_records(_damaged(tmp_path, 0, size=236)))


def test_corrupt_compressed_stream(tmp_path):
    data = bytearray((GOLDEN / "goldenzlib.tfrecord").read_bytes())
    data[30] ^= 0xFF
    path = tmp_path / "bad.z"
    path.write_bytes(bytes(data))
    with pytest.raises(RecordError, match="offset"):
        list(read_records(path, "ZLIB"))


def test_python_io_writer_and_iterator(tmp_path):
    path = str(tmp_path / "p.tfrecord")
    options = tf.python_io.TFRecordOptions(tf.python_io.TFRecordCompressionType.GZIP)
    with tf.python_io.TFRecordWriter(path, options) as writer:
        for record in EXPECTED:
            writer.write(record)
    assert list(tf.python_io.tf_record_iterator(path, options)) == EXPECTED
    assert list(tf.io.tf_record_iterator(path, "GZIP")) == EXPECTED
    assert tf.io.TFRecordWriter is tf.python_io.TFRecordWriter
    assert tf.python_io.TFRecordOptions.get_compression_type_string(options) == "GZIP"


def test_python_io_errors(tmp_path):
    with pytest.raises(tf.errors.DataLossError, match="offset 72"):
        list(tf.python_io.tf_record_iterator(str(_damaged(tmp_path, 72 + 20))))
    with pytest.raises(tf.errors.NotFoundError, match="nowhere"):
        list(tf.python_io.tf_record_iterator(str(tmp_path / "nowhere")))
    with pytest.raises(tf.errors.NotFoundError):
        tf.python_io.TFRecordWriter(str(tmp_path / "no" / "dir" / "x"))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8),
       st.sampled_from(["", "GZIP", "ZLIB"]))
def test_any_records_round_trip(tmp_path_factory, data, compression):
    path = tmp_path_factory.mktemp("h") / "r.tfrecord"
    with RecordWriter(path, compression) as writer:
        for record in data:
            writer.write(record)
    assert list(read_records(path, compression)) == data
