"""Elements of a dataset: nested tuples, namedtuples and dicts of NumPy arrays.

As in ``tf.data``, a Python *list* is a value, not a structure: ``[1, 2, 3]`` becomes
one array. Strings become NumPy object arrays of ``bytes`` (TensorFlow's ``tf.string``
values). A ``TensorSpec`` describes one component (shape with ``None`` for a dimension
that varies, NumPy dtype); ``element_spec`` is the element's structure of them.

>>> spec_of(({"x": np.zeros((2, 3), np.float32)}, 7))
({'x': TensorSpec(shape=(2, 3), dtype=float32)}, TensorSpec(shape=(), dtype=int32))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..trace import pytree

__all__ = ["TensorSpec", "flatten", "flatten_up_to", "as_shape", "unflatten", "map_structure",
           "to_array", "spec_of", "normalize", "most_specific", "ElementError",
           "check_same_structure", "STRING", "describe"]

STRING = np.dtype(object)
"""The dtype of string components: object arrays holding ``bytes``."""


class ElementError(ValueError):
    """Elements a dataset cannot process as asked: components of different shapes in one
    batch, a padded shape too small. (``tf.data`` raises InvalidArgumentError, or
    DataLossError where ``data_loss``: padding to a smaller size.)"""

    def __init__(self, message: str, data_loss: bool = False):
        super().__init__(message)
        self.data_loss = data_loss


@dataclass(frozen=True)
class TensorSpec:
    """One component of an element: its shape (``None`` entries vary from element to
    element; ``shape=None``: even the rank is unknown) and NumPy dtype."""

    shape: tuple | None
    dtype: np.dtype

    def __repr__(self) -> str:
        name = "string" if self.dtype == STRING else self.dtype.name
        return f"TensorSpec(shape={self.shape}, dtype={name})"

    def is_compatible_with(self, value: np.ndarray) -> bool:
        if value.dtype != self.dtype:
            return False
        if self.shape is None:
            return True
        return len(self.shape) == value.ndim and all(
            d is None or d == v for d, v in zip(self.shape, value.shape, strict=True))


def _is_structure(value) -> bool:
    return type(value) is tuple or type(value) is dict or (
        isinstance(value, tuple) and hasattr(type(value), "_fields"))


def _flat_tuple_treedef(n: int):
    return (tuple, (pytree.LEAF,) * n)


_FLAT_TUPLES = [_flat_tuple_treedef(n) for n in range(9)]


def flatten(element) -> tuple[Any, list]:
    """(treedef, leaves): tuples, namedtuples and dicts are structure; anything else
    (arrays, numbers, strings, lists) is a leaf."""
    if type(element) is tuple and len(element) < len(_FLAT_TUPLES) \
            and not any(map(_is_structure, element)):
        # NOTE: the usual element, (features, label): a pipeline flattens every element
        # it batches, and the general walk cost more than the stacking
        return _FLAT_TUPLES[len(element)], list(element)
    leaves: list = []

    def walk(value):
        if not _is_structure(value):
            leaves.append(value)
            return pytree.LEAF
        if type(value) is dict:
            keys = tuple(sorted(value))
            return (dict, keys, tuple(walk(value[k]) for k in keys))
        return (type(value), tuple(walk(v) for v in value))

    return walk(element), leaves


def flatten_up_to(treedef, value, what: str) -> list:
    """The parts of ``value`` at the leaves of ``treedef`` (whatever they are: a shape
    given as a list stays whole), checking that ``value`` has that structure."""
    if treedef is pytree.LEAF:
        return [value]
    kind = treedef[0]
    if kind is dict:
        if not isinstance(value, dict) or sorted(value) != list(treedef[1]):
            raise TypeError(f"{what}: expected a dict with keys {list(treedef[1])}, got "
                            f"{value!r}")
        parts = [value[k] for k in treedef[1]]
        children = treedef[2]
    else:
        if not isinstance(value, (tuple, list)) or len(value) != len(treedef[1]):
            raise TypeError(f"{what}: expected {len(treedef[1])} parts "
                            f"({describe(treedef)}), got {value!r}")
        parts, children = list(value), treedef[1]
    out = []
    for part, child in zip(parts, children, strict=True):
        out += flatten_up_to(child, part, what)
    return out


def as_shape(value) -> tuple | None:
    """A shape from any spelling: None (unknown rank), a list or tuple of sizes and
    Nones, or an object with ``dims`` (a TensorShape)."""
    if value is None:
        return None
    dims = getattr(value, "dims", value)
    if dims is None:
        return None
    out = []
    for d in dims:
        d = getattr(d, "value", d)
        out.append(None if d is None or d == -1 else int(d))
    return tuple(out)


def unflatten(treedef, leaves) -> Any:
    if type(treedef) is tuple and treedef[0] is tuple and len(treedef[1]) < len(
            _FLAT_TUPLES) and treedef == _FLAT_TUPLES[len(treedef[1])]:
        return tuple(leaves)
    return pytree.unflatten(treedef, iter(leaves))


def map_structure(fn, *elements) -> Any:
    """``fn`` applied leaf by leaf to elements of one structure."""
    treedef, first = flatten(elements[0])
    others = [flatten(e)[1] for e in elements[1:]]
    return unflatten(treedef, [fn(*parts) for parts in zip(first, *others, strict=True)])


def to_array(value, dtype=None) -> np.ndarray:
    """A leaf as a NumPy array. Python numbers and lists take TensorFlow's default
    dtypes (float32, int32); NumPy values keep theirs; text becomes object arrays of
    bytes."""
    if isinstance(value, np.ndarray) and dtype is None and value.dtype != STRING:
        return value
    if hasattr(value, "__array__") and not isinstance(value, np.ndarray):
        value = np.asarray(value)
    if dtype is not None and np.dtype(dtype) == STRING:
        return _bytes_array(value)
    if _is_text(value):
        if dtype is not None:
            raise TypeError(f"text cannot become {np.dtype(dtype).name}")
        return _bytes_array(value)
    from_python = not isinstance(value, (np.ndarray, np.generic))
    array = np.asarray(value)
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if from_python:
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype == np.int64:
            array = array.astype(np.int32)
    return array


def _is_text(value) -> bool:
    if isinstance(value, (str, bytes)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "SUO" and value.size > 0 and isinstance(
            value.reshape(-1)[0], (str, bytes))
    if isinstance(value, list):
        return len(value) > 0 and all(_is_text(v) for v in value)
    return False


def _bytes_array(value) -> np.ndarray:
    array = np.asarray(value, dtype=object)
    out = np.empty(array.shape, dtype=object)
    for index, item in np.ndenumerate(array):
        if isinstance(item, np.ndarray):
            item = item.item()
        out[index] = item.encode() if isinstance(item, str) else bytes(item)
    return out


def normalize(element) -> Any:
    """The element with every leaf a NumPy array."""
    treedef, leaves = flatten(element)
    return unflatten(treedef, [to_array(leaf) for leaf in leaves])


def spec_of(element) -> Any:
    """The exact spec of one element."""
    treedef, leaves = flatten(element)
    return unflatten(treedef, [TensorSpec(tuple(a.shape), a.dtype)
                               for a in map(to_array, leaves)])


def most_specific(a: TensorSpec, b: TensorSpec) -> TensorSpec:
    """The spec both fit: dimensions that differ become ``None``."""
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorSpec(None, a.dtype)
    return TensorSpec(tuple(x if x == y else None for x, y in zip(a.shape, b.shape,
                                                                    strict=True)), a.dtype)


def describe(treedef) -> str:
    """A structure in words, for errors: ``(*, {'a': *})``."""
    if treedef is pytree.LEAF:
        return "*"
    if treedef is None:
        return "None"
    if treedef[0] is dict:
        return "{" + ", ".join(f"{k!r}: {describe(c)}"
                               for k, c in zip(treedef[1], treedef[2], strict=True)) + "}"
    inner = ", ".join(describe(c) for c in treedef[1])
    return f"({inner}{',' if len(treedef[1]) == 1 else ''})"


def check_same_structure(expected, got, what: str) -> None:
    """Raise a TypeError naming ``what`` when two treedefs differ."""
    if expected != got:
        raise TypeError(f"{what}: expected an element of structure {describe(expected)}, "
                        f"got {describe(got)}")
