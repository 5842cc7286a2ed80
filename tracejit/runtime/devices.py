"""Device strings as TensorFlow writes them: ``/cpu:0``, ``/gpu:1``, ``/device:GPU:0``,
``/job:worker/replica:0/task:1/cpu:0``. Parsed into a canonical DeviceSpec."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..ir.errors import TracejitError
from ..ir.source import user_location


class DeviceError(TracejitError, ValueError):
    """A device string that does not parse or names an unknown device type."""


DEVICE_TYPES = ("cpu", "gpu")

_PART = re.compile(r"^(job|replica|task|device|cpu|gpu)(?::(.*))?$", re.IGNORECASE)


@dataclass(frozen=True)
class DeviceSpec:
    job: str | None = None
    replica: int | None = None
    task: int | None = None
    device_type: str | None = None     # "cpu" or "gpu"
    device_index: int | None = None

    def merged(self, inner: DeviceSpec) -> DeviceSpec:
        """This (an enclosing scope's) spec with ``inner``'s fields laid over it, as
        TensorFlow merges nested ``tf.device`` scopes: ``/job:ps`` then ``/cpu:1`` is
        ``/job:ps/device:CPU:1``."""
        fields = {name: getattr(inner, name) if getattr(inner, name) is not None
                  else getattr(self, name)
                  for name in ("job", "replica", "task", "device_type", "device_index")}
        if inner.device_type is not None and inner.device_index is None:
            fields["device_index"] = None   # "/gpu:*" inside "/cpu:1" is any GPU
        return DeviceSpec(**fields)

    def __str__(self) -> str:
        parts = []
        if self.job is not None:
            parts.append(f"/job:{self.job}")
        if self.replica is not None:
            parts.append(f"/replica:{self.replica}")
        if self.task is not None:
            parts.append(f"/task:{self.task}")
        if self.device_type is not None:
            index = "*" if self.device_index is None else self.device_index
            parts.append(f"/device:{self.device_type.upper()}:{index}")
        return "".join(parts)


def _fail(text: str, why: str):
    raise DeviceError(f"bad device string {text!r}: {why}. Expected something like "
                      "'/cpu:0', '/gpu:0' or '/job:worker/task:1/cpu:0'",
                      location=user_location())


def _int(text: str, value: str, what: str) -> int:
    if not value.isdigit():
        _fail(text, f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def parse_device(text) -> DeviceSpec:
    """Parse a TensorFlow device string; an empty string means no constraint."""
    if isinstance(text, DeviceSpec):
        return text
    if not isinstance(text, str):
        _fail(str(text), f"a device is a string, not {type(text).__name__}")
    fields: dict = {}
    if text.strip() == "":
        return DeviceSpec()
    if not text.startswith("/"):
        _fail(text, "it must start with '/'")
    for part in text.split("/")[1:]:
        match = _PART.match(part)
        if not match:
            _fail(text, f"unknown part {part!r}")
        key, value = match.group(1).lower(), match.group(2)
        if key in ("cpu", "gpu"):
            fields["device_type"] = key
            fields["device_index"] = None if value in (None, "*") else _int(text, value, key)
        elif key == "device":
            kind, _, index = (value or "").partition(":")
            if kind.lower() not in DEVICE_TYPES:
                _fail(text, f"unknown device type {kind!r}; tracejit knows CPU and GPU")
            fields["device_type"] = kind.lower()
            fields["device_index"] = None if index in ("", "*") else _int(text, index, "index")
        elif value is None or value == "":
            _fail(text, f"{key} needs a value, as in /{key}:0")
        elif key == "job":
            fields["job"] = value
        else:
            fields[key] = _int(text, value, key)
    return DeviceSpec(**fields)


def nested_device(outer, text) -> DeviceSpec:
    """The spec of a device scope ``text`` (parsed now: a bad string fails here) inside an
    enclosing scope ``outer`` (a DeviceSpec, a device string, or None), merged field by
    field as TensorFlow merges nested ``tf.device`` scopes."""
    inner = parse_device(text)
    if outer is None or outer == "":
        return inner
    return parse_device(outer).merged(inner)
