"""How ``tf.Print`` writes a tensor: TensorFlow's ``Tensor::SummarizeValue``.

At most ``summarize`` elements (all when negative), in row-major order, nested in
brackets per dimension, ``...`` where elements were left out; a scalar is its value.
Numbers are written as TensorFlow's ``StrCat`` writes them: floats with the shortest of
6 (float64: 15) significant digits that reads back exactly, else 9 (17); bools as 1/0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["summarize_value", "format_element"]


def _float(value: float, digits: int, more: int, np_type) -> str:
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{digits}g}"
    if np_type(float(text)) != np_type(value):
        text = f"{value:.{more}g}"
    return text


def format_element(value) -> str:
    """One element as TensorFlow 1's Print op writes it."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (np.floating, float)):
        if isinstance(value, np.float64) or type(value) is float:
            return _float(float(value), 15, 17, np.float64)
        # NOTE: halves (float16, bfloat16) are written through float32, as TF does
        return _float(float(value), 6, 9, np.float32)
    return str(int(value))


def _one_dim(array: np.ndarray, dim: int, limit: int, index: list[int], out: list[str]):
    """TensorFlow's PrintOneDim: dimension ``dim`` of the flat ``array`` from
    ``index[0]``, stopping after ``limit`` elements."""
    if index[0] >= limit:
        return
    count = array.shape[dim]
    flat = array.reshape(-1)
    if dim == array.ndim - 1:
        for i in range(count):
            if index[0] >= limit:
                if dim != 0:
                    out.append("...")
                return
            if i > 0:
                out.append(" ")
            out.append(format_element(flat[index[0]]))
            index[0] += 1
        return
    for _ in range(count):
        opened = index[0] < limit
        if opened:
            out.append("[")
        _one_dim(array, dim + 1, limit, index, out)
        if index[0] < limit or opened:
            out.append("]")


def summarize_value(array: np.ndarray, summarize: int) -> str:
    """``Tensor::SummarizeValue(summarize)`` (without the brackets Print adds around)."""
    array = np.asarray(array)
    total = array.size
    limit = total if summarize < 0 else min(summarize, total)
    if array.ndim == 0:
        text = " ".join(format_element(v) for v in array.reshape(-1)[:limit])
    else:
        parts: list[str] = []
        _one_dim(array, 0, limit, [0], parts)
        text = "".join(parts)
    return text + ("..." if total > limit else "")


def format_v2(array: np.ndarray, summarize: int, depth: int = 1) -> str:
    """How ``tf.print`` (PrintV2) writes a tensor: NumPy's layout, at most ``summarize``
    elements at each end of every dimension (all when negative), strings quoted."""
    array = np.asarray(array)
    if array.ndim == 0:
        value = array.reshape(())[()]
        return f'"{format_element(value)}"' if isinstance(value, (bytes, str)) else \
            format_element(value)
    n = array.shape[0]
    cut = 0 <= summarize and n > 2 * summarize
    keep = list(range(summarize)) + [-1] + list(range(n - summarize, n)) if cut \
        else list(range(n))
    parts = ["..." if i < 0 else format_v2(array[i], summarize, depth + 1) for i in keep]
    if array.ndim == 1:
        return "[" + " ".join(parts) + "]"
    return "[" + ("\n" * (array.ndim - 1) + " " * depth).join(parts) + "]"
