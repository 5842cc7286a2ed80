"""CSV records and numbers in text, read by TensorFlow's rules (``decode_csv``,
``string_to_number``).

Fields are split on a one-byte delimiter. With quoting on, a field that starts with
``"`` runs to the next ``"`` that is followed by the delimiter or the record's end, and
``""`` inside it stands for one quote; an unquoted field may hold no quote, CR or LF. An
empty record has no fields; a record that ends with the delimiter has an empty last field.

Numbers: floats as C's ``strtod`` reads them (surrounding spaces, ``inf``,
``infinity``, ``nan`` in any case, hexadecimal such as ``0x1p3``; float32 rounds and
overflows to inf), integers as decimal digits with an optional sign and surrounding
spaces, range-checked for their width.

>>> split_record(b'1,"a,""b",', b",")
[b'1', b'a,"b', b'']
>>> parse_number(b" 0x10 ", "float32"), parse_number(b"+7", "int32")
(16.0, 7)
"""

from __future__ import annotations

import re

import numpy as np

_SPACE = b" \t\n\v\f\r"
_DECIMAL = re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)",
                      re.IGNORECASE)
_HEX = re.compile(rb"[+-]?0x([0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(p[+-]?\d+)?", re.IGNORECASE)
_INTEGER = re.compile(rb"[+-]?\d+")
_INT_RANGE = {"int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}
_QUOTE = ord('"')


class CsvError(ValueError):
    """A record that does not split into fields; the message is TensorFlow's."""


def split_record(record: bytes, delim: bytes = b",", use_quote_delim: bool = True) \
        -> list[bytes]:
    """The fields of one record (TensorFlow's splitting rules, above)."""
    if len(delim) != 1:
        raise CsvError("field_delim should be only 1 char")
    sep = delim[0]
    fields: list[bytes] = []
    i, n = 0, len(record)
    while i < n:
        if use_quote_delim and record[i] == _QUOTE:
            field = bytearray()
            i += 1
            while True:
                if i >= n:
                    raise CsvError("Quoted field has to end with quote followed by delim or "
                                   "end")
                if record[i] != _QUOTE:
                    field.append(record[i])
                    i += 1
                elif i + 1 < n and record[i + 1] == _QUOTE:
                    field.append(_QUOTE)
                    i += 2
                elif i + 1 == n or record[i + 1] == sep:
                    i += 2                      # the closing quote and the delimiter
                    break
                else:
                    raise CsvError("Quote inside a string has to be escaped by another "
                                   "quote")
            fields.append(bytes(field))
        else:
            end = record.find(delim, i)
            end = n if end < 0 else end
            field = record[i:end]
            if (use_quote_delim and b'"' in field) or b"\n" in field or b"\r" in field:
                raise CsvError("Unquoted fields cannot have quotes/CRLFs inside")
            fields.append(bytes(field))
            i = end + 1
    if n and record[-1] == sep:
        fields.append(b"")
    return fields


def parse_number(text: bytes, kind: str):
    """``text`` as a ``kind`` ("float32", "float64", "int32", "int64") value, or None
    when it is not one (TensorFlow's rules, above)."""
    text = bytes(text).strip(_SPACE)
    if kind in _INT_RANGE:
        if not _INTEGER.fullmatch(text):
            return None
        value = int(text)
        low, high = _INT_RANGE[kind]
        return value if low <= value <= high else None
    if _DECIMAL.fullmatch(text):
        value = float(text)
    elif _HEX.fullmatch(text):
        value = float.fromhex(text.decode())
    else:
        return None
    if kind == "float32":
        with np.errstate(over="ignore"):
            return float(np.float32(value))
    return value
