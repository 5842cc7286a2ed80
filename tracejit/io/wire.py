"""Protobuf's wire encoding, for the few small messages whose definitions no package we
depend on ships (a checkpoint's BundleHeaderProto and BundleEntryProto, a tensor slice).

Messages are written field by field in field-number order, as protobuf's serializers
do, and read into ``{field_number: [values]}``: varints and fixed-width fields as ints,
length-delimited fields as bytes (a nested message is parsed again by its reader).
"""

from __future__ import annotations

import struct

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def varint(value: int) -> bytes:
    """A base-128 varint; negative int64 values take their 64-bit two's complement (ten
    bytes), as protobuf encodes them."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than ten bytes")


def as_int64(value: int) -> int:
    """A varint read back as a signed int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3 | VARINT) + varint(value)


def field_bytes(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | BYTES) + varint(len(payload)) + payload


def field_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | FIXED32) + struct.pack("<I", value)


def parse(data: bytes) -> dict[int, list]:
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, kind = key >> 3, key & 7
        if kind == VARINT:
            value, pos = read_varint(data, pos)
        elif kind == BYTES:
            size, pos = read_varint(data, pos)
            if pos + size > len(data):
                raise WireError(f"field {number}: {size} bytes past the end of the message")
            value, pos = bytes(data[pos:pos + size]), pos + size
        elif kind == FIXED32:
            if pos + 4 > len(data):
                raise WireError(f"field {number}: truncated fixed32")
            value, pos = struct.unpack_from("<I", data, pos)[0], pos + 4
        elif kind == FIXED64:
            if pos + 8 > len(data):
                raise WireError(f"field {number}: truncated fixed64")
            value, pos = struct.unpack_from("<Q", data, pos)[0], pos + 8
        else:
            raise WireError(f"field {number}: unsupported wire type {kind}")
        fields.setdefault(number, []).append(value)
    return fields


def first(fields: dict[int, list], number: int, default=0):
    """A singular field's value (the last one written wins, as in protobuf)."""
    values = fields.get(number)
    return values[-1] if values else default
