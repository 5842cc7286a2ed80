"""A PNG encoder for image summaries (8-bit grey, grey+alpha, RGB or RGBA).

PNG is a signature and a list of chunks, each ``length, type, data, CRC-32``: ``IHDR``
(size and pixel format), ``IDAT`` (the zlib-compressed rows, each led by a filter byte)
and ``IEND``. Every row uses filter 0 (none): simplest, and zlib still finds the
repetition in typical summaries.

>>> data = encode_png(np.zeros((2, 3, 3), np.uint8))
>>> data[:8] == PNG_SIGNATURE, len(data) > 50
(True, True)
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG's colour types by channel count: grey, grey+alpha, RGB, RGBA
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


def _chunk(kind: bytes, data: bytes) -> bytes:
    # NOTE: the CRC covers the chunk type and its data, not the length
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image, compression: int = 6) -> bytes:
    """PNG bytes of a ``uint8`` array of shape ``[height, width, channels]`` (1 to 4
    channels) or ``[height, width]``."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        raise TypeError(f"encode_png takes uint8 pixels, got {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in _COLOR_TYPE:
        raise ValueError(f"encode_png takes an image of shape [height, width, channels] with "
                         f"1 to 4 channels, got shape {pixels.shape}")
    height, width, channels = pixels.shape
    if height == 0 or width == 0:
        raise ValueError(f"a PNG image has at least one pixel, got shape {pixels.shape}")
    # one filter byte (0: none) before each row of width * channels bytes
    rows = np.zeros((height, 1 + width * channels), np.uint8)
    rows[:, 1:] = pixels.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), compression))
            + _chunk(b"IEND", b""))
