"""Image summaries: pixels to ``uint8`` with tracejit ops, PNG on the host.

``image_to_uint8(images, max_outputs)`` follows TensorFlow's ``ImageSummary``: uint8
images are kept; float images are scaled each on its own, over its finite pixels (a
pixel is finite when all its channels are): when none is negative by ``255 / max``,
otherwise by ``127 / max(|min|, |max|)`` around 128, with a scale of 0 below 1e-6; the
result is truncated to uint8, and non-finite pixels are painted red
(``[255, 0, 0, 255]`` cut to the channel count).
"""

from __future__ import annotations

import numpy as np
from tensorboard.compat.proto import summary_pb2

from ..ir import dtypes as dt
from ..ir.errors import DTypeError, ShapeError
from ..ir.source import user_location
from ..trace import array_ops, math_ops
from ..trace.tracing import cast, to_tensor
from .png import encode_png

_BAD_COLOR = (255, 0, 0, 255)
_ZERO_THRESHOLD = 1e-6


def check_images(images, tag: str):
    """``images`` as a tensor, refused (naming ``tag`` and the user's line) unless it is
    4-D with 1, 3 or 4 channels of uint8 or floats, as TensorFlow requires."""
    x = to_tensor(images)
    if x.ndim != 4 or x.shape[3] not in (1, 3, 4):
        raise ShapeError(f"image summary {tag!r}: images must be 4-D [batch, height, width, "
                         f"channels] with 1, 3 or 4 channels, got shape {x.shape}",
                         location=user_location())
    if x.dtype is not dt.uint8 and not x.dtype.is_float:
        raise DTypeError(f"image summary {tag!r}: images must be uint8 or float, got "
                         f"{x.dtype.name}", location=user_location())
    return x


def image_to_uint8(images, max_outputs: int = 3, tag: str = "image"):
    """The first ``max_outputs`` images as ``uint8`` (tracejit ops; see the module)."""
    x = check_images(images, tag)
    x = x[:max_outputs]
    if x.dtype is dt.uint8 or x.size == 0:
        return cast(x, dt.uint8)
    compute = dt.float64 if x.dtype is dt.float64 else dt.float32
    x = cast(x, compute)
    finite = math_ops.reduce_all(math_ops.isfinite(x), axis=3, keepdims=True)
    safe = math_ops.where(finite, x, 0.0)
    axes = (1, 2, 3)
    inf = float("inf")
    low = math_ops.reduce_min(math_ops.where(finite, x, inf), axis=axes, keepdims=True)
    high = math_ops.reduce_max(math_ops.where(finite, x, -inf), axis=axes, keepdims=True)
    negative = math_ops.less(low, 0.0)
    # NOTE: guard the divisions (an image of zeros or of no finite pixel) with a divisor
    # of 1 where the scale is 0 anyway
    biggest = math_ops.maximum(math_ops.abs(low), math_ops.abs(high))
    tiny = math_ops.less(biggest, _ZERO_THRESHOLD)
    signed_scale = math_ops.where(tiny, 0.0, 127.0 / math_ops.where(tiny, 1.0, biggest))
    small = math_ops.less(high, _ZERO_THRESHOLD)
    plain_scale = math_ops.where(small, 0.0, 255.0 / math_ops.where(small, 1.0, high))
    scale = math_ops.where(negative, signed_scale, plain_scale)
    offset = math_ops.where(negative, 128.0, 0.0)
    # NOTE: a float to uint8 cast truncates toward zero, as TensorFlow's does
    pixels = cast(safe * scale + offset, dt.uint8)
    bad = array_ops.constant(np.array(_BAD_COLOR[:x.shape[3]], np.uint8))
    return math_ops.where(array_ops.broadcast_to(finite, x.shape), pixels,
                          array_ops.broadcast_to(bad, x.shape))


def numbered_tags(tag: str, kind: str, count: int, max_outputs: int) -> list[str]:
    """TensorFlow's tags for a batch: ``tag/image`` when max_outputs is 1, else
    ``tag/image/0``, ``tag/image/1``, ..."""
    if max_outputs == 1:
        return [f"{tag}/{kind}"][:count]
    return [f"{tag}/{kind}/{i}" for i in range(count)]


def image_values(tag: str, pixels, max_outputs: int = 3) -> list[summary_pb2.Summary.Value]:
    """One Summary value a PNG-encoded image of the uint8 batch ``pixels``."""
    batch = np.asarray(pixels)
    if batch.dtype != np.uint8 or batch.ndim != 4:
        raise TypeError(f"image summary {tag!r}: expected uint8 pixels [batch, height, width, "
                        f"channels], got {batch.dtype} of shape {batch.shape}")
    if batch.shape[3] not in (1, 3, 4) or 0 in batch.shape[1:3]:
        raise ValueError(f"image summary {tag!r}: images must have 1, 3 or 4 channels and at "
                         f"least one pixel, got shape {batch.shape}")
    batch = batch[:max_outputs]
    values = []
    for name, image in zip(numbered_tags(tag, "image", len(batch), max_outputs), batch,
                           strict=False):
        height, width, channels = image.shape
        encoded = summary_pb2.Summary.Image(height=height, width=width, colorspace=channels,
                                            encoded_image_string=encode_png(image))
        values.append(summary_pb2.Summary.Value(tag=name, image=encoded))
    return values
