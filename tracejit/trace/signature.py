"""What a jitted function's compiled entries are keyed by, and why a call recompiled.

A ``Signature`` is the argument structure, each leaf's (shape, dtype, weak) key, the
static arguments and the leaves' paths; ``describe_change`` says in the user's terms
what differs between the last signature and a new one (the reason ``compile_log`` and
``TRACEJIT_LOG=compiles`` report, and the message of a forbidden recompile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir import dtypes as dt

__all__ = ["Signature", "describe_change"]


@dataclass
class Signature:
    treedef: Any
    leaf_keys: tuple
    static: dict
    paths: list[str]


def shape_text(shape) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def describe_change(old: Signature | None, new: Signature) -> str:
    """Why a new signature needed a compile, in the user's terms."""
    if old is None:
        return "first call"
    changes = []
    for name, value in new.static.items():
        if name not in old.static:
            changes.append(f"static argument `{name}` is new")
        elif old.static[name] != value:
            changes.append(f"a new value for static argument `{name}`: {value!r} "
                           f"(was {old.static[name]!r})")
    if old.treedef != new.treedef:
        changes.append("the structure of the arguments changed "
                       f"(leaves were {old.paths}, now {new.paths})")
    else:
        for path, (s0, d0, w0), (s1, d1, w1) in zip(new.paths, old.leaf_keys, new.leaf_keys,
                                                   strict=True):
            if s0 != s1:
                changes.append(f"argument {path} changed shape from {shape_text(s0)} to "
                               f"{shape_text(s1)}")
            if d0 != d1:
                changes.append(f"argument {path} changed dtype from {dt.as_dtype(d0).name} to "
                               f"{dt.as_dtype(d1).name}")
            if w0 != w1:
                changes.append(f"argument {path} changed from "
                               f"{'a Python scalar' if w0 else 'an array'} to "
                               f"{'a Python scalar' if w1 else 'an array'}")
    return "; ".join(changes) or "a new signature (another executor or argument binding)"
