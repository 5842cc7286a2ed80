"""Nested Python containers (tuples, lists, dicts, namedtuples, None) as flat leaf lists.

A treedef is a hashable description of the container structure, so it can be part
of a jit cache key. Dicts flatten in sorted-key order, like JAX.
"""

from __future__ import annotations

from typing import Any

LEAF = "*"


def _is_namedtuple(value) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def flatten(tree: Any, leaves: list) -> Any:
    """Append the leaves of ``tree`` to ``leaves``; return its treedef."""
    kind = type(tree)
    if kind is tuple or kind is list:
        return (kind, tuple(flatten(child, leaves) for child in tree))
    if kind is dict:
        keys = tuple(sorted(tree))
        return (dict, keys, tuple(flatten(tree[k], leaves) for k in keys))
    if tree is None:
        return None
    if _is_namedtuple(tree):
        return (kind, tuple(flatten(child, leaves) for child in tree))
    leaves.append(tree)
    return LEAF


def unflatten(treedef: Any, leaves) -> Any:
    """Rebuild a tree from ``treedef`` and an iterator over its leaves."""
    if treedef is LEAF:
        return next(leaves)
    if treedef is None:
        return None
    kind = treedef[0]
    if kind is dict:
        return {k: unflatten(c, leaves) for k, c in zip(treedef[1], treedef[2], strict=True)}
    children = [unflatten(c, leaves) for c in treedef[1]]
    if kind is tuple or kind is list:
        return kind(children)
    return kind(*children)   # a namedtuple


def leaf_paths(treedef: Any, prefix: str) -> list[str]:
    """Human-readable paths of the leaves, e.g. ``params['w']`` or ``batch[0]``."""
    if treedef is LEAF:
        return [prefix]
    if treedef is None:
        return []
    kind = treedef[0]
    if kind is dict:
        out = []
        for key, child in zip(treedef[1], treedef[2], strict=True):
            out += leaf_paths(child, f"{prefix}[{key!r}]")
        return out
    names = getattr(kind, "_fields", None)
    out = []
    for i, child in enumerate(treedef[1]):
        out += leaf_paths(child, f"{prefix}.{names[i]}" if names else f"{prefix}[{i}]")
    return out


def tree_map(fn, tree: Any) -> Any:
    leaves: list = []
    treedef = flatten(tree, leaves)
    return unflatten(treedef, iter([fn(leaf) for leaf in leaves]))
