"""Masked CRC-32C, the checksum of TensorFlow's tables, bundles and record files.

A CRC stored beside the data it covers is masked (rotated and offset) so that the CRC
of a string that itself contains CRCs does not degenerate."""

from __future__ import annotations

import crc32c

_MASK_DELTA = 0xA282EAD8


def crc32c_of(data, value: int = 0) -> int:
    """The CRC-32C of ``data`` (bytes or any buffer, e.g. a NumPy array's memory),
    continuing from ``value``."""
    return crc32c.crc32c(data, value)


def masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmasked(value: int) -> int:
    rotated = (value - _MASK_DELTA) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF


def masked_crc32c(data) -> int:
    return masked(crc32c_of(data))
