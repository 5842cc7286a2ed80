"""A recorded ``tf.*`` call as a GraphDef attribute, so a graph tracejit wrote (a
``.meta`` beside a checkpoint) is rebuilt exactly as it was recorded.

Most TF1 ops are recorded as a tracejit function and its arguments (``graph_op``). The
node of such an op carries ``_tracejit_call``: JSON naming the function (``module:name``)
and its arguments, with ``{"$input": i}`` for the node's i-th input. On import the name is
resolved only in the modules below, whose functions compute on tensors: a GraphDef can
call nothing else.
"""

from __future__ import annotations

import importlib
import json

import numpy as np

from ...ir import dtypes as dt
from .graph import Tensor
from .strings import string

CALL_ATTR = "_tracejit_call"

#: The modules whose functions a ``_tracejit_call`` may name.
CALLABLE_MODULES = (
    "tracejit.trace.math_ops", "tracejit.trace.array_ops", "tracejit.trace.nn_ops",
    "tracejit.trace.indexing", "tracejit.trace.tracing", "tracejit.compat.v1.ops",
    "tracejit.compat.v1.layers", "tracejit.compat.v1.clip_ops",
    "tracejit.compat.v1.legacy",
)

_NAMES: dict[int, str] = {}


class NotEncodable(Exception):
    """A recorded call whose function or arguments have no JSON form."""


def function_key(fn) -> str | None:
    """``module:name`` for a function one of CALLABLE_MODULES exposes, else None."""
    if not _NAMES:
        for module_name in CALLABLE_MODULES:
            module = importlib.import_module(module_name)
            for name, value in vars(module).items():
                if callable(value) and not isinstance(value, type):
                    _NAMES.setdefault(id(value), f"{module_name}:{name}")
    return _NAMES.get(id(fn))


def resolve_function(key: str, where: str):
    module_name, _, name = key.partition(":")
    if module_name not in CALLABLE_MODULES:
        raise ValueError(f"{where}: {CALL_ATTR} names {key!r}, outside the modules a "
                         "GraphDef may call")
    value = getattr(importlib.import_module(module_name), name, None)
    if not callable(value) or isinstance(value, type):
        raise ValueError(f"{where}: {CALL_ATTR} names {key!r}, which is not a function of "
                         "this tracejit")
    return value


def _encode(value, inputs: list[Tensor]):
    if isinstance(value, Tensor):
        inputs.append(value)
        return {"$input": len(inputs) - 1}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_encode(v, inputs) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, inputs) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _encode(v, inputs) for k, v in value.items()}}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"$array": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"$scalar": value.item(), "dtype": value.dtype.str}
    if isinstance(value, dt.DType) or value is string:
        return {"$dtype": value.name}
    if isinstance(value, slice):
        return {"$slice": [_encode(v, inputs) for v in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"$ellipsis": True}
    raise NotEncodable(f"a {type(value).__name__} argument")


def encode_call(fn, args, kwargs, inputs: list[Tensor]) -> str:
    """The JSON of a recorded call; ``inputs`` must match the op's inputs (checked by
    the caller). Raises NotEncodable."""
    key = function_key(fn)
    if key is None:
        raise NotEncodable(f"function {getattr(fn, '__qualname__', fn)!r}")
    found: list[Tensor] = []
    text = json.dumps({"function": key, "args": _encode(list(args), found),
                       "kwargs": _encode(dict(kwargs), found)})
    if len(found) != len(inputs) or any(a is not b for a, b in zip(found, inputs,
                                                                   strict=True)):
        raise NotEncodable("arguments that are not the op's inputs")
    inputs[:] = found
    return text


def _decode(value, inputs: list):
    if isinstance(value, list):
        return [_decode(v, inputs) for v in value]
    if not isinstance(value, dict):
        return value
    if "$input" in value:
        return inputs[value["$input"]]
    if "$tuple" in value:
        return tuple(_decode(v, inputs) for v in value["$tuple"])
    if "$dict" in value:
        return {k: _decode(v, inputs) for k, v in value["$dict"].items()}
    if "$array" in value:
        return np.array(value["$array"], dtype=np.dtype(value["dtype"]))
    if "$scalar" in value:
        return np.dtype(value["dtype"]).type(value["$scalar"])
    if "$dtype" in value:
        return string if value["$dtype"] == "string" else dt.as_dtype(value["$dtype"])
    if "$slice" in value:
        return slice(*(_decode(v, inputs) for v in value["$slice"]))
    if "$ellipsis" in value:
        return Ellipsis
    raise ValueError(f"unknown encoded value {value!r}")


def decode_call(text: str, inputs: list, where: str):
    """``(function, args, kwargs)`` of a ``_tracejit_call`` with the node's inputs."""
    try:
        found = json.loads(text)
        fn = resolve_function(found["function"], where)
        return fn, _decode(found["args"], inputs), _decode(found["kwargs"], inputs)
    except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: malformed {CALL_ATTR} ({exc})") from None
