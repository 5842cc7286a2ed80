"""decode_csv, decode_raw, string_to_number, parse_single_example and parse_example as
host ops: values and error texts are those TensorFlow 2.21 gave for the same programs
(tf.compat.v1, eager execution off; recorded below). Errors name the file and line where
a reader read the record, and the session keeps working after them."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

from .test_readers import Names

INF = float("inf")


def run(make):
    with tf.Graph().as_default():
        out = make()
        with tf.Session() as sess:
            return sess.run(out)


def values(result):
    return [np.asarray(r).tolist() for r in result]


@pytest.mark.parametrize("make,expected,dtypes", [
    (lambda: tf.decode_csv(["1,2.5,abc,7", "3,,x,"],
                           [[0], [1.5], ["d"], tf.constant([9], tf.int64)]),
     [[1, 3], [2.5, 1.5], [b"abc", b"x"], [7, 9]], ["int32", "float32", "object", "int64"]),
    (lambda: tf.decode_csv(['"a,b",2', '"he said ""hi""",3'], [[""], [0]]),
     [[b"a,b", b'he said "hi"'], [2, 3]], ["object", "int32"]),
    (lambda: tf.decode_csv(["1|2"], [[0.0], [0.0]], field_delim="|"), [[1.0], [2.0]], None),
    (lambda: tf.decode_csv(["NA,2"], [[5.0], [0.0]], na_value="NA"), [[5.0], [2.0]], None),
    (lambda: tf.decode_csv(["1,2,3,4"], [[0], [0.0]], select_cols=[1, 3]), [[2], [4.0]],
     None),
    (lambda: tf.decode_csv(["0.1,1e3, 2"], [tf.constant([0.0], tf.float64), [0.0], [0]]),
     [[0.1], [1000.0], [2]], ["float64", "float32", "int32"]),
    (lambda: tf.decode_csv(['"a",2'], [[""], [0]], use_quote_delim=False),
     [[b'"a"'], [2]], None),
    (lambda: tf.decode_csv("4,5", [[0], [0]]), [4, 5], None),
    (lambda: tf.decode_csv([["1,2"], ["3,4"]], [[0], [0.0]]), [[[1], [3]], [[2.0], [4.0]]],
     None),
    (lambda: tf.decode_csv(["3000000000,-7"], [tf.constant([0], tf.int64)] * 2),
     [[3000000000], [-7]], ["int64", "int64"]),
    (lambda: tf.decode_csv(["+4,-0,007, 5 "], [[0]] * 4), [[4], [0], [7], [5]], None),
    (lambda: tf.decode_csv(["inf,-inf, 2.5,3.5 ,+4,1e-50,1e40"], [[0.0]] * 7),
     [[INF], [-INF], [2.5], [3.5], [4.0], [0.0], [INF]], None),
    (lambda: tf.decode_csv(['"a\nb",1'], [[""], [0]]), [[b"a\nb"], [1]], None),
    (lambda: tf.decode_csv(["NA,x"], [["dflt"], [""]], na_value="NA"),
     [[b"dflt"], [b"x"]], None),
])
def test_decode_csv_values(make, expected, dtypes):
    got = run(make)
    assert values(got) == expected
    if dtypes:
        assert [np.asarray(g).dtype.name for g in got] == dtypes


@pytest.mark.parametrize("make,message", [
    (lambda: tf.decode_csv(["1,2,3"], [[0], [0]]), "Expect 2 fields but have 3 in record 0"),
    (lambda: tf.decode_csv(["1,2", "1"], [[0], [0]]),
     "Expect 2 fields but have 1 in record 1"),
    (lambda: tf.decode_csv(["1,abc"], [[0], [0.0]]),
     "Field 1 in record 0 is not a valid float: abc"),
    (lambda: tf.decode_csv(["1.5,2"], [[0], [0.0]]),
     "Field 0 in record 0 is not a valid int32: 1.5"),
    (lambda: tf.decode_csv(["x"], [tf.constant([0.0], tf.float64)]),
     "Field 0 in record 0 is not a valid double: x"),
    (lambda: tf.decode_csv(["1,"], [[0], tf.constant([], tf.float32)]),
     "Field 1 is required but missing in record 0!"),
    (lambda: tf.decode_csv(['a"b,2'], [[""], [0]]),
     "Unquoted fields cannot have quotes/CRLFs inside"),
    (lambda: tf.decode_csv(['"ab"c,2'], [[""], [0]]),
     "Quote inside a string has to be escaped by another quote"),
    (lambda: tf.decode_csv(["3000000000"], [[0]]),
     "Field 0 in record 0 is not a valid int32: 3000000000"),
    (lambda: tf.decode_csv(["0x10"], [[0]]), "Field 0 in record 0 is not a valid int32: 0x10"),
    (lambda: tf.decode_csv([""], [[0], [1]]), "Expect 2 fields but have 0 in record 0"),
    (lambda: tf.decode_csv(["1,2"], [[0], [0]], select_cols=[0, 3]),
     "Expect 2 fields but have 1 in record 0"),
    (lambda: tf.decode_raw([b"abcde"], tf.float32),
     "Input to DecodeRaw has length 5 that is not a multiple of 4, the size of float"),
    (lambda: tf.decode_raw([b"abcd", b"abcdefgh"], tf.float32),
     "DecodeRaw requires input strings to all be the same size, but element 1 has size 4 "
     "!= 8"),
    (lambda: tf.string_to_number(["1.5x"], tf.float32),
     "StringToNumberOp could not correctly convert string: 1.5x"),
    (lambda: tf.string_to_number(["1.5"], tf.int32),
     "StringToNumberOp could not correctly convert string: 1.5"),
    (lambda: tf.string_to_number(["9000000000"], tf.int32),
     "StringToNumberOp could not correctly convert string: 9000000000"),
])
def test_run_time_errors_are_tensorflows(make, message):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        run(make)
    assert info.value.message.splitlines()[0] == message
    assert info.value.location is not None and "test_parsers.py" in str(info.value.location)


@pytest.mark.parametrize("make,error,message", [
    (lambda: tf.decode_csv(["1,2"], [[0], [0]], select_cols=[1, 0]), ValueError,
     "select_cols is not strictly increasing."),
    (lambda: tf.decode_csv(["1,2"], [[0], [0]], select_cols=[1]), ValueError,
     "Length of select_cols and record_defaults do not match."),
    (lambda: tf.decode_csv(["1"], [[0, 1]]), ValueError,
     "Shape of a default must be a length-0 or length-1 vector, or a scalar."),
    (lambda: tf.decode_csv(["1"], [[True]]), TypeError, "DataType bool not in list"),
    (lambda: tf.decode_csv(["1"], [[0]], field_delim="ab"), tf.errors.InvalidArgumentError,
     "field_delim should be only 1 char"),
    (lambda: tf.decode_csv(tf.constant([1.0]), [[0]]), TypeError, "tf.string"),
    (lambda: tf.decode_raw([b"ab"], tf.bool), TypeError, "out_type bool"),
    (lambda: tf.parse_single_example(b"", {"x": tf.FixedLenFeature([], tf.int32)}),
     ValueError, "Unsupported dtype int32"),
    (lambda: tf.parse_single_example(b"", {"x": tf.FixedLenFeature([None], tf.float32)}),
     ValueError, "fully defined shape"),
])
def test_graph_time_errors(make, error, message):
    with tf.Graph().as_default(), pytest.raises(error, match=message.replace(".", r"\.")):
        make()


def test_decode_raw_and_string_to_number_values():
    assert values([run(lambda: tf.decode_raw(
        [b"\x00\x00\x80?\x00\x00\x00@", b"\x00\x00@@\x00\x00\x80@"], tf.float32))]) == \
        [[[1.0, 2.0], [3.0, 4.0]]]
    assert run(lambda: tf.decode_raw([b"\x01\x02\x03\x04"], tf.int32,
                                     little_endian=False)).tolist() == [[16909060]]
    assert run(lambda: tf.decode_raw(b"abc", tf.uint8)).tolist() == [97, 98, 99]
    assert run(lambda: tf.io.decode_raw([b"\x01\x00\x02"], tf.int32, fixed_length=8)) \
        .tolist() == [[131073, 0]]
    got = run(lambda: tf.string_to_number(["1.5", " 2", "-3e2", "inf"], tf.float32))
    assert got.dtype == np.float32 and got.tolist() == [1.5, 2.0, -300.0, INF]
    assert run(lambda: tf.string_to_number(["12", "-3"], tf.int32)).tolist() == [12, -3]
    assert run(lambda: tf.string_to_number(["7"])).dtype == np.float32
    assert run(lambda: tf.string_to_number(["9000000000"], tf.int64)).tolist() == \
        [9000000000]


# serialized by TensorFlow: x=[1.5, -2.0], label=[7], name=[b"cat"], tags=[a, b, c];
# x=[0.25, 4.0], label=[9], tags=[d] (its map in hash order, as TensorFlow wrote it)
E1 = bytes.fromhex("0a490a110a0178120c120a0a080000c03f000000c00a0e0a056c6162656c12051a030a01"
                   "070a0f0a046e616d6512070a050a036361740a130a0474616773120b0a090a01610a0162"
                   "0a0163")
E2 = bytes.fromhex("0a320a110a0178120c120a0a080000803e000080400a0e0a056c6162656c12051a030a01"
                   "090a0d0a047461677312050a030a0164")


def features():
    return {"x": tf.FixedLenFeature([2], tf.float32),
            "label": tf.FixedLenFeature([], tf.int64),
            "name": tf.FixedLenFeature([], tf.string, default_value="none"),
            "tags": tf.VarLenFeature(tf.string),
            "opt": tf.FixedLenFeature([2], tf.float32, default_value=[0.5, 1.5]),
            "ids": tf.VarLenFeature(tf.int64)}


def test_parse_single_example_as_tensorflow():
    got = run(lambda: tf.parse_single_example(E1, features()))
    assert got["x"].tolist() == [1.5, -2.0] and got["x"].dtype == np.float32
    assert got["label"] == 7 and got["label"].dtype == np.int64
    assert got["name"] == b"cat"      # a string scalar comes back as bytes
    assert got["opt"].tolist() == [0.5, 1.5]
    assert got["tags"].indices.tolist() == [[0], [1], [2]]
    assert got["tags"].values.tolist() == [b"a", b"b", b"c"]
    assert got["tags"].dense_shape.tolist() == [3]
    assert got["ids"].indices.shape == (0, 1) and got["ids"].dense_shape.tolist() == [0]
    second = run(lambda: tf.io.parse_single_example(E2, features()))
    assert second["name"] == b"none"
    assert second["tags"].values.tolist() == [b"d"]


def test_parse_example_batch_as_tensorflow():
    got = run(lambda: tf.parse_example([E1, E2], features()))
    assert got["x"].tolist() == [[1.5, -2.0], [0.25, 4.0]]
    assert got["label"].tolist() == [7, 9]
    assert got["name"].tolist() == [b"cat", b"none"]
    assert got["opt"].tolist() == [[0.5, 1.5], [0.5, 1.5]]
    assert got["tags"].indices.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0]]
    assert got["tags"].values.tolist() == [b"a", b"b", b"c", b"d"]
    assert got["tags"].dense_shape.tolist() == [2, 3]
    assert got["ids"].indices.shape == (0, 2) and got["ids"].dense_shape.tolist() == [2, 0]


def test_parse_shapes_and_empty_lists():
    m = tf.train.Example(features=tf.train.Features(feature={"m": tf.train.Feature(
        float_list=tf.train.FloatList(value=[1, 2, 3, 4, 5, 6]))})).SerializeToString()
    got = run(lambda: tf.parse_single_example(m, {"m": tf.FixedLenFeature([2, 3],
                                                                          tf.float32)}))
    assert got["m"].tolist() == [[1, 2, 3], [4, 5, 6]]
    empty = tf.train.Example(features=tf.train.Features(feature={
        "m": tf.train.Feature(float_list=tf.train.FloatList()),
        "k": tf.train.Feature()})).SerializeToString()
    got = run(lambda: tf.parse_single_example(empty, {"m": tf.VarLenFeature(tf.float32),
                                                      "k": tf.VarLenFeature(tf.float32)}))
    assert got["m"].values.tolist() == [] and got["k"].dense_shape.tolist() == [0]


@pytest.mark.parametrize("make,message", [
    (lambda: tf.parse_single_example(E1, {"zz": tf.FixedLenFeature([], tf.float32)}),
     "Feature: zz (data type: float) is required but could not be found."),
    (lambda: tf.parse_example([E1, E2], {"name": tf.FixedLenFeature([], tf.string)}),
     "Name: <unknown>, Feature: name (data type: string) is required but could not be "
     "found."),
    (lambda: tf.parse_single_example(E1, {"label": tf.FixedLenFeature([], tf.float32)}),
     "Key: label.  Data types don't match. Data type: int64 but expected type: float"),
    (lambda: tf.parse_single_example(E1, {"x": tf.VarLenFeature(tf.int64)}),
     "Key: x.  Data types don't match. Expected type: int64, Actual type: float"),
    (lambda: tf.parse_single_example(E1, {"x": tf.FixedLenFeature([3], tf.float32)}),
     "Key: x.  Can't parse serialized Example: 2 values in float_list, but the shape [3] "
     "takes 3"),
    (lambda: tf.parse_single_example(b"\x0a\xff", {"x": tf.VarLenFeature(tf.int64)}),
     "Could not parse example input"),
])
def test_parse_errors(make, message):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        run(make)
    assert info.value.message.startswith(message)


def test_bad_csv_lines_name_file_and_line_and_the_session_goes_on(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2.5\n3\n4,abc\n5,6.5\n")
    with tf.Graph().as_default():
        _, line = tf.TextLineReader().read(Names(path))
        a, b = tf.decode_csv(line, [[0], [0.0]])
        doubled = b * 2.0
        with tf.Session() as sess:
            assert sess.run([a, doubled]) == [1, 5.0]
            with pytest.raises(tf.errors.InvalidArgumentError) as info:
                sess.run(doubled)
            assert info.value.message.startswith("Expect 2 fields but have 1 in record 0")
            assert f"{path}:2" in info.value.message
            with pytest.raises(tf.errors.InvalidArgumentError) as info:
                sess.run(doubled)
            assert "Field 1 in record 0 is not a valid float: abc" in info.value.message
            assert f"{path}:3" in info.value.message
            assert sess.run([a, doubled]) == [5, 13.0]
            assert sess.run(tf.constant(2.0) * 3.0) == 6.0


def test_bad_line_in_a_batch_read_names_its_line(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("1\n2\nx\n4\n")
    with tf.Graph().as_default():
        _, lines = tf.TextLineReader().read_up_to(Names(path), 4)
        (numbers,) = tf.decode_csv(lines, [[0]])
        with tf.Session() as sess, pytest.raises(tf.errors.InvalidArgumentError) as info:
            sess.run(numbers)
    assert "record 2" in info.value.message and f"{path}:3" in info.value.message


def test_fed_records_and_defaults():
    with tf.Graph().as_default():
        records = tf.placeholder(tf.string, [None])
        default = tf.placeholder_with_default(tf.constant([7.0]), [1])
        a, b = tf.decode_csv(records, [[0], default])
        total = tf.reduce_sum(b) + tf.cast(tf.reduce_sum(a), tf.float32)
        with tf.Session() as sess:
            assert sess.run(total, {records: ["1,2", "3,"]}) == 13.0
            assert sess.run(total, {records: ["1,", "1,"], default: [0.5]}) == 3.0


def test_sparse_to_dense_and_exports():
    with tf.Graph().as_default():
        parsed = tf.parse_example([E1, E2], {"tags": tf.VarLenFeature(tf.string)})
        dense = tf.sparse_tensor_to_dense(parsed["tags"], default_value=b"")
        assert isinstance(parsed["tags"], tf.SparseTensor)
        with tf.Session() as sess:
            assert sess.run(dense).tolist() == [[b"a", b"b", b"c"], [b"d", b"", b""]]
    for name in ("FixedLenFeature", "VarLenFeature", "parse_example", "parse_single_example",
                 "decode_csv", "decode_raw", "read_file", "write_file", "TFRecordWriter",
                 "TFRecordOptions", "TFRecordCompressionType", "tf_record_iterator"):
        assert hasattr(tf.io, name), name


def test_files_as_tensors(tmp_path):
    target = str(tmp_path / "sub" / "f.txt")
    with tf.Graph().as_default():
        write = tf.write_file(target, "contents")
        with tf.Session() as sess:
            sess.run(write)
            assert sess.run(tf.read_file(target)) == b"contents"
            assert sess.run(tf.matching_files(str(tmp_path / "sub" / "*.txt"))).tolist() \
                == [target.encode()]
            with pytest.raises(tf.errors.NotFoundError, match="missing"):
                sess.run(tf.read_file(str(tmp_path / "missing")))
