"""``tf.train.Example`` and its parts, encoded with protobuf's wire format (wire.py).

The messages (tensorflow/core/example/{example,feature}.proto)::

    BytesList    { repeated bytes value = 1; }
    FloatList    { repeated float value = 1 [packed = true]; }
    Int64List    { repeated int64 value = 1 [packed = true]; }
    Feature      { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                                Int64List int64_list = 3; } }
    Features     { map<string, Feature> feature = 1; }
    FeatureList  { repeated Feature feature = 1; }
    FeatureLists { map<string, FeatureList> feature_list = 1; }
    Example      { Features features = 1; }
    SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }

The classes take TensorFlow's constructor arguments, and serialize byte for byte as
TensorFlow's ``SerializeToString(deterministic=True)`` does: packed numbers, map entries
in key order. (Without ``deterministic``, TensorFlow writes a map in the order of a hash
table that differs from process to process; the same message either way.) Parsing takes
packed and unpacked numbers, map entries in any order, and skips unknown fields, as
protobuf does.

>>> ex = Example(features=Features(feature={
...     "x": Feature(float_list=FloatList(value=[1.5, 2.0]))}))
>>> data = ex.SerializeToString()
>>> Example.FromString(data).features.feature["x"].float_list.value
[1.5, 2.0]
"""

from __future__ import annotations

import numbers
import struct

import numpy as np

from . import wire


class DecodeError(ValueError):
    """Bytes that do not parse as the message asked for."""


def _float32(value) -> float:
    if not isinstance(value, (numbers.Real, np.floating, np.integer)) or \
            isinstance(value, bool):
        raise TypeError(f"{value!r} has type {type(value).__name__}, but expected one of: "
                        "int, float")
    return float(np.float32(value))


def _int64(value) -> int:
    if not isinstance(value, (numbers.Integral, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{value!r} has type {type(value).__name__}, but expected one of: "
                        "int")
    value = int(value)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"Value out of range: {value}")
    return value


def _bytes(value) -> bytes:
    if not isinstance(value, (bytes, bytearray, np.bytes_)):
        raise TypeError(f"{value!r} has type {type(value).__name__}, but expected one of: "
                        "bytes")
    return bytes(value)


def _quote(data: bytes) -> str:
    """Bytes as protobuf's text format writes them (C escapes, octal for the rest)."""
    escapes = {10: "\\n", 13: "\\r", 9: "\\t", 34: '\\"', 39: "\\'", 92: "\\\\"}
    return '"' + "".join(escapes.get(b) or (chr(b) if 32 <= b < 127 else f"\\{b:03o}")
                         for b in data) + '"'


def _float_text(value: float) -> str:
    text = str(np.float32(value))
    return text[:-2] if text.endswith(".0") else text


class _Message:
    """Shared behaviour: serialization, parsing, equality and the text format."""

    _name = ""

    def _encode(self) -> bytes:
        raise NotImplementedError

    def _decode(self, fields: dict[int, list]) -> None:
        raise NotImplementedError

    def _text(self, indent: str) -> list[str]:
        raise NotImplementedError

    def SerializeToString(self, deterministic=None) -> bytes:  # noqa: N802 -- protobuf's name
        return self._encode()

    def ParseFromString(self, data: bytes) -> int:  # noqa: N802
        """Replaces this message's contents with ``data``'s; returns its length."""
        fresh = type(self)()
        try:
            fresh._decode(wire.parse(bytes(data)))
        except (wire.WireError, struct.error, TypeError, ValueError) as exc:
            raise DecodeError(f"Error parsing message {self._name}: {exc}") from None
        self.__dict__.update(fresh.__dict__)
        return len(data)

    @classmethod
    def FromString(cls, data: bytes):  # noqa: N802
        message = cls()
        message.ParseFromString(data)
        return message

    def MergeFromString(self, data: bytes) -> int:  # noqa: N802
        return self.ParseFromString(self._encode() + bytes(data))

    def CopyFrom(self, other) -> None:  # noqa: N802
        self.ParseFromString(other.SerializeToString())

    def Clear(self) -> None:  # noqa: N802
        self.__dict__.update(type(self)().__dict__)

    def ByteSize(self) -> int:  # noqa: N802
        return len(self._encode())

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._encode() == self._encode()

    __hash__ = None

    def __str__(self) -> str:
        return "".join(line + "\n" for line in self._text(""))

    def __repr__(self) -> str:
        return str(self)


class _ValueList(_Message):
    """A list of one scalar type, in a field ``value``."""

    _check = staticmethod(lambda v: v)

    def __init__(self, value=()):
        self.value = [self._check(v) for v in
                      (value.reshape(-1).tolist() if isinstance(value, np.ndarray) else value)]

    def _values(self) -> list:
        return [self._check(v) for v in self.value]

    def __len__(self) -> int:
        return len(self.value)


class BytesList(_ValueList):
    _name = "tensorflow.BytesList"
    _check = staticmethod(_bytes)

    def _encode(self) -> bytes:
        return b"".join(wire.field_bytes(1, v) for v in self._values())

    def _decode(self, fields):
        self.value = [bytes(v) for v in _only(fields, 1, wire.BYTES, "BytesList.value")]

    def _text(self, indent):
        return [f"{indent}value: {_quote(v)}" for v in self.value]


class FloatList(_ValueList):
    _name = "tensorflow.FloatList"
    _check = staticmethod(_float32)

    def _encode(self) -> bytes:
        values = self._values()
        return wire.field_bytes(1, np.asarray(values, "<f4").tobytes()) if values else b""

    def _decode(self, fields):
        values = []
        for item in fields.get(1, []):
            if isinstance(item, bytes):             # packed
                if len(item) % 4:
                    raise DecodeError("packed FloatList.value is not a multiple of 4 bytes")
                values.extend(np.frombuffer(item, "<f4").tolist())
            else:
                values.append(struct.unpack("<f", struct.pack("<I", item))[0])
        self.value = values

    def _text(self, indent):
        return [f"{indent}value: {_float_text(v)}" for v in self.value]


class Int64List(_ValueList):
    _name = "tensorflow.Int64List"
    _check = staticmethod(_int64)

    def _encode(self) -> bytes:
        values = self._values()
        return wire.field_bytes(1, b"".join(wire.varint(v) for v in values)) if values \
            else b""

    def _decode(self, fields):
        values = []
        for item in fields.get(1, []):
            if isinstance(item, bytes):             # packed
                pos = 0
                while pos < len(item):
                    number, pos = wire.read_varint(item, pos)
                    values.append(wire.as_int64(number))
            else:
                values.append(wire.as_int64(item))
        self.value = values

    def _text(self, indent):
        return [f"{indent}value: {v}" for v in self.value]


def _only(fields, number: int, kind: int, what: str) -> list:
    """A field's values, checked to be of the wire kind the message defines."""
    values = fields.get(number, [])
    wanted = bytes if kind == wire.BYTES else int
    if any(not isinstance(v, wanted) for v in values):
        raise DecodeError(f"{what} has the wrong wire type")
    return values


_KINDS = {"bytes_list": (1, BytesList), "float_list": (2, FloatList),
          "int64_list": (3, Int64List)}


class Feature(_Message):
    """One of ``bytes_list``, ``float_list`` or ``int64_list`` (the oneof ``kind``)."""

    _name = "tensorflow.Feature"

    def __init__(self, bytes_list=None, float_list=None, int64_list=None):
        given = {k: v for k, v in (("bytes_list", bytes_list), ("float_list", float_list),
                                   ("int64_list", int64_list)) if v is not None}
        if len(given) > 1:
            raise ValueError(f"Feature takes one of bytes_list, float_list, int64_list; "
                             f"got {sorted(given)}")
        self._kind, self._list = None, None
        self._pending: dict = {}
        for kind, value in given.items():
            self._set(kind, value)

    def _set(self, kind, value):
        cls = _KINDS[kind][1]
        if not isinstance(value, cls):
            raise TypeError(f"Feature.{kind} must be a {cls.__name__}, not "
                            f"{type(value).__name__}")
        self._kind, self._list, self._pending = kind, value, {}

    def WhichOneof(self, name: str = "kind") -> str | None:  # noqa: N802
        if name != "kind":
            raise ValueError(f"Feature has no oneof named {name!r}")
        for kind, value in list(self._pending.items()):
            if len(value):           # NOTE: a list reached through the getter and filled
                self._set(kind, value)
        return self._kind

    def HasField(self, name: str) -> bool:  # noqa: N802
        return self.WhichOneof() == name

    def _get(self, kind):
        if self.WhichOneof() == kind:
            return self._list
        return self._pending.setdefault(kind, _KINDS[kind][1]())

    bytes_list = property(lambda self: self._get("bytes_list"),
                          lambda self, v: self._set("bytes_list", v))
    float_list = property(lambda self: self._get("float_list"),
                          lambda self, v: self._set("float_list", v))
    int64_list = property(lambda self: self._get("int64_list"),
                          lambda self, v: self._set("int64_list", v))

    def _encode(self) -> bytes:
        kind = self.WhichOneof()
        return wire.field_bytes(_KINDS[kind][0], self._list._encode()) if kind else b""

    def _decode(self, fields):
        for kind, (number, cls) in _KINDS.items():
            for payload in _only(fields, number, wire.BYTES, f"Feature.{kind}"):
                # NOTE: a oneof member met twice merges; another member replaces it
                merged = (self._list._encode() if self._kind == kind else b"") + payload
                self._set(kind, cls.FromString(merged))

    def _text(self, indent):
        kind = self.WhichOneof()
        if not kind:
            return []
        return [f"{indent}{kind} {{", *self._list._text(indent + "  "), f"{indent}}}"]


class _MessageMap(dict):
    """A protobuf map of messages: reading a missing key adds an empty message."""

    def __init__(self, cls, items=None):
        super().__init__()
        self._cls = cls
        for key, value in dict(items or {}).items():
            self[key] = value

    def __setitem__(self, key, value):
        if isinstance(key, bytes):
            key = key.decode()
        if not isinstance(key, str):
            raise TypeError(f"map key {key!r} is not a string")
        if not isinstance(value, self._cls):
            raise TypeError(f"map value for {key!r} must be a {self._cls.__name__}, not "
                            f"{type(value).__name__}")
        super().__setitem__(key, value)

    def __missing__(self, key):
        value = self._cls()
        self[key] = value
        return value

    def get_or_create(self, key):
        return self[key]

    def encode(self, number: int) -> bytes:
        return b"".join(wire.field_bytes(number, wire.field_bytes(1, key.encode()) +
                                         wire.field_bytes(2, value._encode()))
                        for key, value in sorted(self.items()))

    def decode(self, entries: list, what: str) -> None:
        for entry in entries:
            if not isinstance(entry, bytes):
                raise DecodeError(f"{what} has the wrong wire type")
            fields = wire.parse(entry)
            keys = _only(fields, 1, wire.BYTES, f"{what} key")
            # NOTE: a message field met more than once merges: its payloads concatenate
            value = self._cls.FromString(b"".join(
                _only(fields, 2, wire.BYTES, f"{what} value")))
            self[keys[-1].decode() if keys else ""] = value

    def text(self, field: str, indent: str) -> list[str]:
        lines = []
        for key, value in sorted(self.items()):
            lines += [f"{indent}{field} {{", f'{indent}  key: {_quote(key.encode())}',
                      f"{indent}  value {{", *value._text(indent + "    "),
                      f"{indent}  }}", f"{indent}}}"]
        return lines


class Features(_Message):
    """``feature``: a map from names to :class:`Feature`."""

    _name = "tensorflow.Features"

    def __init__(self, feature=None):
        self.feature = _MessageMap(Feature, feature)

    def _encode(self) -> bytes:
        return self.feature.encode(1)

    def _decode(self, fields):
        self.feature.decode(fields.get(1, []), "Features.feature")

    def _text(self, indent):
        return self.feature.text("feature", indent)


class FeatureList(_Message):
    """``feature``: a list of :class:`Feature` (one time step each)."""

    _name = "tensorflow.FeatureList"

    def __init__(self, feature=()):
        self.feature = list(feature)

    def _encode(self) -> bytes:
        return b"".join(wire.field_bytes(1, f._encode()) for f in self.feature)

    def _decode(self, fields):
        self.feature = [Feature.FromString(v)
                        for v in _only(fields, 1, wire.BYTES, "FeatureList.feature")]

    def _text(self, indent):
        lines = []
        for feature in self.feature:
            lines += [f"{indent}feature {{", *feature._text(indent + "  "), f"{indent}}}"]
        return lines


class FeatureLists(_Message):
    """``feature_list``: a map from names to :class:`FeatureList`."""

    _name = "tensorflow.FeatureLists"

    def __init__(self, feature_list=None):
        self.feature_list = _MessageMap(FeatureList, feature_list)

    def _encode(self) -> bytes:
        return self.feature_list.encode(1)

    def _decode(self, fields):
        self.feature_list.decode(fields.get(1, []), "FeatureLists.feature_list")

    def _text(self, indent):
        return self.feature_list.text("feature_list", indent)


class _Submessages(_Message):
    """A message of optional message fields ``_fields = ((name, number, cls), ...)``:
    a field is written when it was given or when it holds something."""

    _fields: tuple = ()

    def __init__(self, **given):
        for name, _, cls in self._fields:
            value = given.pop(name, None)
            if value is not None and not isinstance(value, cls):
                raise TypeError(f"{type(self).__name__}.{name} must be a {cls.__name__}, "
                                f"not {type(value).__name__}")
            self.__dict__[name] = value if value is not None else cls()
            self.__dict__["_has_" + name] = value is not None
        if given:
            raise TypeError(f"{type(self).__name__} has no field {sorted(given)[0]!r}")

    def __setattr__(self, name, value):
        for field, _, cls in self._fields:
            if field == name:
                if not isinstance(value, cls):
                    raise TypeError(f"{type(self).__name__}.{name} must be a "
                                    f"{cls.__name__}, not {type(value).__name__}")
                self.__dict__["_has_" + name] = True
        self.__dict__[name] = value

    def HasField(self, name: str) -> bool:  # noqa: N802
        return self.__dict__["_has_" + name] or bool(getattr(self, name)._encode())

    def _encode(self) -> bytes:
        return b"".join(wire.field_bytes(number, getattr(self, name)._encode())
                        for name, number, _ in self._fields if self.HasField(name))

    def _decode(self, fields):
        for name, number, cls in self._fields:
            values = _only(fields, number, wire.BYTES, f"{type(self).__name__}.{name}")
            if values:
                setattr(self, name, cls.FromString(b"".join(values)))

    def _text(self, indent):
        lines = []
        for name, _, _ in self._fields:
            if self.HasField(name):
                lines += [f"{indent}{name} {{", *getattr(self, name)._text(indent + "  "),
                          f"{indent}}}"]
        return lines


class Example(_Submessages):
    """``features``: the :class:`Features` of one example."""

    _name = "tensorflow.Example"
    _fields = (("features", 1, Features),)

    def __init__(self, features=None):
        super().__init__(features=features)


class SequenceExample(_Submessages):
    """``context`` features and ``feature_lists`` (one list of features per name)."""

    _name = "tensorflow.SequenceExample"
    _fields = (("context", 1, Features), ("feature_lists", 2, FeatureLists))

    def __init__(self, context=None, feature_lists=None):
        super().__init__(context=context, feature_lists=feature_lists)
