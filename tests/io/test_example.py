"""tf.train.Example and its parts (tracejit/io/example.py) against the bytes TensorFlow
2.21 wrote for the same messages (``SerializeToString(deterministic=True)``, which orders
map entries by key; recorded below), and the text of CSV numbers (tracejit/io/csv.py)
against TensorFlow's string_to_number/decode_csv."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit.compat.v1 as tf
from tracejit.io import wire
from tracejit.io.csv import CsvError, parse_number, split_record
from tracejit.io.example import (
    BytesList,
    DecodeError,
    Example,
    Feature,
    FeatureList,
    FeatureLists,
    Features,
    FloatList,
    Int64List,
    SequenceExample,
)

# bytes TensorFlow 2.21 serialized (tests/data/records/make_golden.py says how)
THREE_KINDS = ("0a460a1a0a056c6162656c12111a0f0a0d07ffffffffffffffffff01ac020a110a046e616d65"
               "12090a070a036361740a000a150a01781210120e0a0c0000c03f000000c000005040")
EMPTY_LIST = "0a150a070a0161120212000a0a0a016212051a030a0101"
FOUR_KEYS = ("0a300a0a0a016112051a030a01010a0a0a016212051a030a01030a0a0a016d12051a030a0102"
             "0a0a0a017a12051a030a0100")
INT64_EDGES = ("0a2c0a2a0a016e12251a230a2180808080808080808001ffffffffffffffff7f00ffffffff"
               "ffffffffff017f8001")
SEQUENCE = ("0a0e0a0c0a036c656e12051a030a010212380a190a03746f6b12120a060a040a0268690a080a06"
            "0a0400ff220a0a1b0a017712160a1412120a10cdcccc3dcaf24971000000800000807f")


def three_kinds() -> Example:
    return tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5, -2.0, 3.25])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[7, -1, 300])),
        "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"cat", b""])),
    }))


def test_bytes_equal_tensorflows():
    assert three_kinds().SerializeToString().hex() == THREE_KINDS
    assert Example(features=Features(feature={
        "b": Feature(int64_list=Int64List(value=[1])),
        "a": Feature(float_list=FloatList(value=[]))})).SerializeToString().hex() == EMPTY_LIST
    assert Example(features=Features(feature={
        k: Feature(int64_list=Int64List(value=[i])) for i, k in enumerate("zamb")})) \
        .SerializeToString().hex() == FOUR_KEYS
    assert Example(features=Features(feature={"n": Feature(int64_list=Int64List(
        value=[-(2 ** 63), 2 ** 63 - 1, 0, -1, 127, 128]))})).SerializeToString().hex() \
        == INT64_EDGES


def test_empty_messages_as_tensorflow_writes_them():
    assert Example().SerializeToString() == b""
    assert Example(features=Features()).SerializeToString().hex() == "0a00"
    assert Feature().SerializeToString() == b""
    assert Feature(float_list=FloatList()).SerializeToString().hex() == "1200"


def test_sequence_example_bytes_and_text():
    feature = Feature
    seq = SequenceExample(
        context=Features(feature={"len": feature(int64_list=Int64List(value=[2]))}),
        feature_lists=FeatureLists(feature_list={
            "tok": FeatureList(feature=[feature(bytes_list=BytesList(value=[b"hi"])),
                                        feature(bytes_list=BytesList(value=[b'\x00\xff"\n']))]),
            "w": FeatureList(feature=[feature(float_list=FloatList(
                value=[0.1, 1e30, -0.0, float("inf")]))])}))
    assert seq.SerializeToString().hex() == SEQUENCE
    back = SequenceExample.FromString(bytes.fromhex(SEQUENCE))
    assert back == seq
    # TensorFlow's text format of the same lists
    assert str(back.feature_lists.feature_list["w"]) == (
        "feature {\n  float_list {\n    value: 0.1\n    value: 1e+30\n    value: -0\n"
        "    value: inf\n  }\n}\n")
    assert 'value: "\\000\\377\\"\\n"' in str(back.feature_lists.feature_list["tok"])


def test_parse_round_trip_and_values():
    ex = Example.FromString(bytes.fromhex(THREE_KINDS))
    feature = ex.features.feature
    assert sorted(feature) == ["label", "name", "x"]
    assert feature["x"].float_list.value == [1.5, -2.0, 3.25]
    assert feature["label"].int64_list.value == [7, -1, 300]
    assert feature["name"].bytes_list.value == [b"cat", b""]
    assert feature["x"].WhichOneof("kind") == "float_list"
    assert ex == three_kinds()
    assert Example.FromString(bytes.fromhex(INT64_EDGES)).features.feature["n"] \
        .int64_list.value == [-(2 ** 63), 2 ** 63 - 1, 0, -1, 127, 128]


def test_unpacked_numbers_parse_as_packed():
    floats = b"".join(wire.field_fixed32(1, v) for v in (0x3FC00000, 0xC0000000))
    ints = b"".join(wire.field_varint(1, v) for v in (5, -3))
    feature = Features.FromString(
        wire.field_bytes(1, wire.field_bytes(1, b"f") + wire.field_bytes(
            2, wire.field_bytes(2, floats))) +
        wire.field_bytes(1, wire.field_bytes(1, b"i") + wire.field_bytes(
            2, wire.field_bytes(3, ints)))).feature
    assert feature["f"].float_list.value == [1.5, -2.0]
    assert feature["i"].int64_list.value == [5, -3]


def test_unknown_fields_are_skipped_and_garbage_refused():
    data = bytes.fromhex(THREE_KINDS) + wire.field_varint(9, 1) + wire.field_bytes(8, b"?")
    assert Example.FromString(data) == three_kinds()
    with pytest.raises(DecodeError, match="Error parsing message tensorflow.Example"):
        Example.FromString(b"\x0a\xff")
    with pytest.raises(DecodeError, match="wrong wire type"):
        Example.FromString(wire.field_varint(1, 3))


def test_floats_are_float32():
    data = FloatList(value=[0.1]).SerializeToString()
    assert FloatList.FromString(data).value == [float(np.float32(0.1))]
    assert FloatList(value=np.arange(3, dtype=np.float64)).value == [0.0, 1.0, 2.0]


def test_constructor_type_errors():
    with pytest.raises(TypeError, match="'a' has type str, but expected one of: bytes"):
        BytesList(value=["a"])
    with pytest.raises(TypeError, match="expected one of: int"):
        Int64List(value=[1.5])
    with pytest.raises(ValueError, match="out of range"):
        Int64List(value=[2 ** 63])
    with pytest.raises(TypeError, match="int, float"):
        FloatList(value=["x"])
    with pytest.raises(ValueError, match="one of bytes_list"):
        Feature(float_list=FloatList(), int64_list=Int64List())
    with pytest.raises(TypeError, match="must be a Features"):
        Example(features={"x": 1})
    with pytest.raises(TypeError, match="map value for 'x' must be a Feature"):
        Features(feature={"x": FloatList()})


def test_protobuf_style_mutation():
    ex = tf.train.Example()
    assert not ex.HasField("features")
    ex.features.feature["label"].int64_list.value.append(3)
    ex.features.feature["x"].float_list.value.extend([1.0, 2.0])
    assert ex.HasField("features")
    assert ex.features.feature["label"].WhichOneof("kind") == "int64_list"
    assert Example.FromString(ex.SerializeToString()) == ex
    untouched = Feature()
    _ = untouched.bytes_list                 # reading a member does not set the oneof
    assert untouched.WhichOneof("kind") is None
    copy = Example()
    copy.CopyFrom(ex)
    assert copy == ex and copy.ByteSize() == len(ex.SerializeToString())
    copy.Clear()
    assert copy.SerializeToString() == b""


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(
    st.text(max_size=5),
    st.one_of(st.lists(st.binary(max_size=5), max_size=3).map(
                  lambda v: Feature(bytes_list=BytesList(value=v))),
              st.lists(st.floats(width=32, allow_nan=False), max_size=3).map(
                  lambda v: Feature(float_list=FloatList(value=v))),
              st.lists(st.integers(-(2 ** 63), 2 ** 63 - 1), max_size=3).map(
                  lambda v: Feature(int64_list=Int64List(value=v)))),
    max_size=4))
def test_any_example_round_trips(features):
    ex = Example(features=Features(feature=features))
    assert Example.FromString(ex.SerializeToString()) == ex


# ---- CSV text: TensorFlow 2.21's results for the same strings ----------------------------

@pytest.mark.parametrize("text,float32,int32", [
    (b"1.5 ", 1.5, None), (b"0x10", 16.0, None), (b"nan", "nan", None),
    (b"1e40", float("inf"), None), (b"-inf", float("-inf"), None),
    (b"INF", float("inf"), None), (b"Infinity", float("inf"), None), (b"1e-50", 0.0, None),
    (b" 3", 3.0, 3), (b"1,5", None, None), (b".5", 0.5, None), (b"5.", 5.0, None),
    (b"1_0", None, None), ("１".encode(), None, None), (b"+5", 5.0, 5), (b"007", 7.0, 7),
    (b"", None, None), (b"3000000000", 3e9, None), (b"1 2", None, None)])
def test_numbers_as_tensorflow_reads_them(text, float32, int32):
    got = parse_number(text, "float32")
    if float32 == "nan":
        assert np.isnan(got)
    else:
        assert got == float32
    assert parse_number(text, "int32") == int32


def test_wide_numbers():
    assert parse_number(b"9000000000", "int64") == 9000000000
    assert parse_number(b"1e40", "float64") == 1e40
    assert parse_number(b"0.1", "float64") == 0.1


@pytest.mark.parametrize("record,fields", [
    (b"", []), (b",", [b"", b""]), (b"1,", [b"1", b""]), (b'"a,b",2', [b"a,b", b"2"]),
    (b'"he said ""hi""",3', [b'he said "hi"', b"3"]), (b'"a\nb",1', [b"a\nb", b"1"]),
    (b'"x",', [b"x", b""])])
def test_csv_splitting(record, fields):
    assert split_record(record) == fields


@pytest.mark.parametrize("record,message", [
    (b'a"b,2', "Unquoted fields cannot have quotes/CRLFs inside"),
    (b'"ab"c,2', "Quote inside a string has to be escaped by another quote"),
    (b'"abc', "Quoted field has to end with quote followed by delim or end"),
    (b"a\rb", "Unquoted fields cannot have quotes/CRLFs inside")])
def test_csv_errors(record, message):
    with pytest.raises(CsvError, match=message):
        split_record(record)


def test_csv_without_quoting_keeps_quotes():
    assert split_record(b'"a",2', b",", use_quote_delim=False) == [b'"a"', b"2"]
    assert split_record(b"1|2", b"|") == [b"1", b"2"]
