"""The wire format (tracejit/cluster/wire.py): round trips, and every refusal of
``decode`` and ``encode`` naming what was wrong."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import zmq

from tracejit.cluster import wire
from tracejit.cluster.wire import (
    DTYPE_CODES,
    ENVELOPE,
    MAGIC,
    MAX_KEY,
    MAX_RANK,
    MAX_TENSORS,
    TENSOR_HEAD,
    VERSION,
    Kind,
    Message,
    WireError,
    decode,
    encode,
    expect,
)

DTYPES = [d.np_dtype for d in DTYPE_CODES.values()]
SHAPES = [(), (1,), (5,), (2, 3), (0,), (3, 0, 2), (2, 1, 2, 1), (1,) * MAX_RANK,
          (2, 1, 1, 1, 1, 1, 1, 3)]


def _array(dtype, shape) -> np.ndarray:
    values = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64) - 3
    if np.dtype(dtype) == np.bool_:
        return (values % 2 == 0).reshape(shape)
    return values.astype(dtype).reshape(shape)


def _bytes(frames) -> list[bytes]:
    """Frames as a receiver holds them: plain bytes (encode gives array views)."""
    return [f if isinstance(f, bytes) else bytes(f) for f in frames]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ---- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_dtype_and_rank_round_trips(dtype, shape):
    array = _array(dtype, shape)
    back = decode(_bytes(encode(Message(Kind.RESULT, {}, [("t", array)]))))
    assert _same(back.tensor("t"), array)


def test_a_message_round_trips_with_its_text_ids_and_several_tensors():
    tensors = [("in:0", _array(np.float32, (2, 2))), ("ключ/π", _array(np.int64, (3,))),
               ("", np.zeros((0, 4), np.float64)), ("s", np.float32(2.5).reshape(()))]
    message = Message(Kind.RUN, {"handle": "h", "args": [{"tensor": "in:0"}], "nested": {
        "a": [1, 2.5, None, True, "é"]}}, tensors, step=2**64 - 1, request=12345)
    back = decode(_bytes(encode(message)))
    assert (back.kind, back.text, back.step, back.request) == (
        Kind.RUN, message.text, 2**64 - 1, 12345)
    assert [k for k, _ in back.tensors] == [k for k, _ in tensors]
    assert all(_same(a, b) for (_, a), (_, b) in zip(back.tensors, tensors, strict=True))


def test_every_kind_round_trips_and_a_non_contiguous_array_is_sent_in_c_order():
    strided = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    for kind in Kind:
        back = decode(_bytes(encode(Message(kind, {}, [("x", strided)]))))
        assert back.kind is kind and _same(back.tensor("x"), np.ascontiguousarray(strided))


def test_received_frames_are_viewed_without_a_copy():
    a, b = zmq.Context.instance().socket(zmq.PAIR), zmq.Context.instance().socket(zmq.PAIR)
    try:
        a.bind("inproc://tracejit-test-wire")
        b.connect("inproc://tracejit-test-wire")
        big = _array(np.float64, (256, 256))
        a.send_multipart(encode(Message(Kind.RESULT, {}, [("big", big)])), copy=False)
        frames = b.recv_multipart(copy=False)
        received = decode(frames).tensor("big")
        assert _same(received, big)
        assert np.shares_memory(received, np.frombuffer(frames[3].buffer, np.uint8))
    finally:
        a.close(0)
        b.close(0)


def test_a_missing_tensor_is_named():
    with pytest.raises(WireError, match="RESULT message has no tensor 'y'"):
        Message(Kind.RESULT, {}, [("x", np.zeros(1))]).tensor("y")


# ---- encode's refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("array, pattern", [
    (np.zeros(2, np.complex64), r"tensor 't' of dtype complex64 cannot be sent; the wire "
                                r"carries \["),
    (np.array(["a"], object), "of dtype object cannot be sent"),
    (np.array(["a"]), "of dtype <U1 cannot be sent"),
    (np.zeros(2, np.uint16), "of dtype uint16 cannot be sent"),
    (np.zeros((1,) * (MAX_RANK + 1), np.float32), "key or rank too long"),
])
def test_encode_refuses_what_the_wire_cannot_carry(array, pattern):
    with pytest.raises(WireError, match=pattern):
        encode(Message(Kind.WRITE, {}, [("t", array)]))


def test_encode_refuses_a_long_key_too_many_tensors_and_a_long_text(monkeypatch):
    with pytest.raises(WireError, match="key or rank too long"):
        encode(Message(Kind.WRITE, {}, [("k" * (MAX_KEY + 1), np.zeros(1))]))
    with pytest.raises(WireError, match=f"{MAX_TENSORS + 1} tensors in one message; at "
                                        f"most {MAX_TENSORS}"):
        encode(Message(Kind.WRITE, {}, [("t", np.zeros(1))] * (MAX_TENSORS + 1)))
    monkeypatch.setattr(wire, "MAX_TEXT", 16)
    with pytest.raises(WireError, match="message text of 21 bytes; at most 16"):
        encode(Message(Kind.PING, {"padding": "0123456"}))


# ---- decode's refusals ------------------------------------------------------------------------


def _envelope(kind=int(Kind.PING), count=0, *, magic=MAGIC, version=VERSION, flags=0):
    return ENVELOPE.pack(magic, version, kind, flags, count, 0, 0)


def _tensor(head: bytes, data: bytes = b"") -> list[bytes]:
    return [_envelope(count=1), b"{}", head, data]


def _head(code=1, dims=(2,), key=b"t", rank=None, key_length=None) -> bytes:
    rank = len(dims) if rank is None else rank
    key_length = len(key) if key_length is None else key_length
    return TENSOR_HEAD.pack(code, rank, key_length) + struct.pack(
        f"<{len(dims)}Q", *dims) + key


@pytest.mark.parametrize("frames, pattern", [
    ([], r"at least 2 frames \(envelope, text\); got 0"),
    ([_envelope()], "at least 2 frames .*; got 1"),
    ([_envelope()[:-1], b"{}"], "envelope of 27 bytes; expected 28"),
    ([_envelope() + b"\0", b"{}"], "envelope of 29 bytes; expected 28"),
    ([b"", b"{}"], "envelope of 0 bytes; expected 28"),
    ([_envelope(magic=b"TJW2"), b"{}"], r"bad magic b'TJW2'; not a tracejit message"),
    ([_envelope(version=2), b"{}"], "wire format version 2; this task speaks 1"),
    ([_envelope(version=0), b"{}"], "wire format version 0"),
    ([_envelope(kind=0), b"{}"], "unknown message kind 0"),
    ([_envelope(kind=12), b"{}"], "unknown message kind 12"),
    ([_envelope(kind=255), b"{}"], "unknown message kind 255"),
    ([_envelope(flags=1), b"{}"], "unknown flags 0x1"),
    ([_envelope(flags=0x8000), b"{}"], "unknown flags 0x8000"),
    ([_envelope(count=1), b"{}"], r"announces 1 tensor\(s\), which needs 4 frames; got 2"),
    ([_envelope(count=0), b"{}", b"", b""], r"announces 0 tensor\(s\), which needs 2 "
                                            "frames; got 4"),
    ([_envelope(count=2**32 - 1), b"{}"], "announces 4294967295 tensor"),
    ([_envelope(count=MAX_TENSORS + 1), b"{}"] + [b""] * (2 * MAX_TENSORS + 2),
     f"announces {MAX_TENSORS + 1} tensor"),
    ([_envelope(), b"\xff{}"], "message text is not UTF-8 JSON"),
    ([_envelope(), b"{"], "message text is not UTF-8 JSON"),
    ([_envelope(), b""], "message text is not UTF-8 JSON"),
    ([_envelope(), b"{'a': 1}"], "message text is not UTF-8 JSON"),
    ([_envelope(), b'{"n": 1' + b"1" * 5000 + b"}"], "message text is not UTF-8 JSON"),
    ([_envelope(), b"[]"], "message text must be a JSON object, got list"),
    ([_envelope(), b"7"], "must be a JSON object, got int"),
    ([_envelope(), b'"x"'], "must be a JSON object, got str"),
    ([_envelope(), b"null"], "must be a JSON object, got NoneType"),
    ([_envelope(), b"[" * 100_000], "message text is JSON nested too deeply"),
    ([_envelope(), b'{"a":' * 5000 + b"1" + b"}" * 5000], "JSON nested too deeply"),
    (_tensor(b"\x01\x01"), "tensor 0: header of 2 bytes is too short"),
    (_tensor(b""), "tensor 0: header of 0 bytes is too short"),
    (_tensor(_head(code=0), bytes(8)), "tensor 0: unknown dtype code 0"),
    (_tensor(_head(code=10), bytes(8)), "tensor 0: unknown dtype code 10"),
    (_tensor(_head(code=255), bytes(8)), "tensor 0: unknown dtype code 255"),
    (_tensor(_head(dims=(1,) * 9), bytes(4)), "tensor 0: rank 9 or key length 1 too large"),
    (_tensor(_head(key=b"k" * (MAX_KEY + 1)), bytes(8)),
     f"tensor 0: rank 1 or key length {MAX_KEY + 1} too large"),
    (_tensor(_head() + b"\0", bytes(8)), "tensor 0: header of 14 bytes; rank 1 and a 1-byte "
                                         "key make 13"),
    (_tensor(_head(rank=2), bytes(8)), "header of 13 bytes; rank 2 and a 1-byte key make 21"),
    (_tensor(_head(key_length=3), bytes(8)), "header of 13 bytes; rank 1 and a 3-byte key "
                                             "make 15"),
    (_tensor(_head(key=b"\xff"), bytes(8)), "tensor 0: key is not UTF-8"),
    (_tensor(_head(key=b"\xed\xa0\x80"), bytes(8)), "key is not UTF-8"),
    (_tensor(_head(), bytes(7)), r"tensor 't': shape \[2\] of float32 is 8 bytes, but 7 "
                                 "arrived"),
    (_tensor(_head(code=2, dims=()), bytes(4)), r"shape \[\] of float64 is 8 bytes, but 4"),
    (_tensor(_head(dims=(0, 3)), bytes(1)), r"shape \[0, 3\] of float32 is 0 bytes, but 1"),
    (_tensor(_head(code=9, dims=(3,)), b""), r"shape \[3\] of bool is 3 bytes, but 0"),
])
def test_decode_names_what_is_wrong(frames, pattern):
    with pytest.raises(WireError, match=pattern):
        decode(frames)


@pytest.mark.parametrize("dims", [(2**64 - 1,), (2**63,), (2**32, 2**32), (2**35,),
                                  (1,) * 7 + (2**40,), (0, 2**63), (2**40, 0),
                                  (0, 2**64 - 1), (0, 2**62, 2**62), (0, 2**30, 2**30, 2**30)],
                         ids=str)
def test_decode_refuses_huge_dims_even_of_an_empty_tensor(dims):
    # NOTE: a zero among them makes the tensor empty, but NumPy cannot make the shape
    with pytest.raises(WireError, match=r"tensor 't': shape \[.*\] is larger than the wire "
                                        "allows"):
        decode(_tensor(_head(dims=dims), b""))


def test_decode_names_the_index_of_the_bad_tensor():
    good = [_head(), bytes(8)]
    frames = [_envelope(count=3), b"{}", *good, *good, _head(code=77), bytes(8)]
    with pytest.raises(WireError, match="tensor 2: unknown dtype code 77"):
        decode(frames)


def test_decode_refuses_a_text_over_max_text(monkeypatch):
    monkeypatch.setattr(wire, "MAX_TEXT", 16)
    decode([_envelope(), b'{"a": "0123456"}'])          # 16 bytes: the limit itself
    with pytest.raises(WireError, match="message text of 17 bytes; at most 16"):
        decode([_envelope(), b'{"a": "01234567"}'])


def test_expect_checks_a_fields_type_and_a_bool_is_no_int():
    text = {"n": 3, "flag": True, "s": "x", "f": 1.0}
    assert expect(text, "n", int, "TAKE") == 3
    assert expect(text, "s", str, "TAKE") == "x"
    for key, kind, got in [("flag", int, "bool"), ("f", int, "float"), ("s", int, "str"),
                           ("missing", int, "NoneType"), ("n", str, "int")]:
        with pytest.raises(WireError, match=f"TAKE: field '{key}' must be {kind.__name__}, "
                                            f"got {got}"):
            expect(text, key, kind, "TAKE")
