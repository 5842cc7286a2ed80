"""TensorFlow 2.21's summaries of fixed inputs (tf_reference.json, written by
make_tf_reference.py), and a PNG reader for checking encoded images."""

from __future__ import annotations

import json
import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


@cache
def tf_reference() -> dict:
    return json.loads((HERE / "tf_reference.json").read_text())


def tf_images(key: str) -> tuple[np.ndarray, list[str], list]:
    """The input batch of an image case (non-finite values restored), TF's tags and
    its decoded pixels."""
    case = tf_reference()["images"][key]
    values = np.array(case["input"], np.float32)
    bad = np.array(case["nonfinite"], bool)
    values[bad] = np.nan
    return values, case["tags"], case["pixels"]


def decode_png(data: bytes) -> np.ndarray:
    """Pixels of an 8-bit, non-interlaced PNG whose rows all use filter 0 (what
    tracejit writes): [height, width, channels]."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and interlace == 0
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8)
    rows = rows.reshape(height, 1 + width * channels)
    assert (rows[:, 0] == 0).all()
    assert b"IEND" in chunks
    return rows[:, 1:].reshape(height, width, channels)
