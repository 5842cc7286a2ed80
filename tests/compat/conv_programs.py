"""The 1-D/3-D/depthwise/separable convolution and pooling programs of test_layers_api.py,
run the same way on tracejit.compat.v1 and (by make_tf_conv_reference.py) on TensorFlow
2.21's tensorflow.compat.v1: values and gradients with respect to inputs and filters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_RNG = np.random.RandomState(7)
SIGNAL = _RNG.randn(2, 9, 3).astype(np.float32)            # N, W, C
SIGNAL_FILTER = _RNG.randn(3, 3, 4).astype(np.float32)     # K, C, O
VOLUME = _RNG.randn(2, 5, 6, 5, 2).astype(np.float32)      # N, D, H, W, C
VOLUME_FILTER = _RNG.randn(3, 2, 3, 2, 3).astype(np.float32)
IMAGE = _RNG.randn(2, 7, 6, 3).astype(np.float32)
DEPTHWISE = _RNG.randn(3, 2, 3, 2).astype(np.float32)      # KH, KW, C, M
POINTWISE = _RNG.randn(1, 1, 6, 4).astype(np.float32)


def build(tf) -> tuple[dict, dict]:
    """(name -> (output, [gradients of sum(output * weights) w.r.t. the inputs]), the
    feed_dict of the input placeholders)."""
    nn = tf.nn
    arrays = (SIGNAL, VOLUME, IMAGE, SIGNAL_FILTER, VOLUME_FILTER, DEPTHWISE, POINTWISE)
    feed = {tf.placeholder(tf.float32, a.shape): a for a in arrays}
    signal, volume, image, signal_filter, volume_filter, depthwise, pointwise = feed
    made = {
        "conv1d-same-2": (nn.conv1d(signal, signal_filter, 2, "SAME"), [signal, signal_filter]),
        # NOTE: no gradients here: TensorFlow's CPU kernels have no dilated filter gradient
        "conv1d-valid-dilated": (nn.conv1d(signal, signal_filter, 1, "VALID", dilations=2),
                                 []),
        "conv3d-same": (nn.conv3d(volume, volume_filter, [1, 2, 1, 2, 1], "SAME"),
                        [volume, volume_filter]),
        "conv3d-valid": (nn.conv3d(volume, volume_filter, [1, 1, 2, 1, 1], "VALID"),
                         [volume, volume_filter]),
        "depthwise-same-2": (nn.depthwise_conv2d(image, depthwise, [1, 2, 2, 1], "SAME"),
                             [image, depthwise]),
        "depthwise-valid-rate": (nn.depthwise_conv2d(image, depthwise, [1, 1, 1, 1], "VALID",
                                                     rate=[2, 2]), [image, depthwise]),
        "separable": (nn.separable_conv2d(image, depthwise, pointwise, [1, 1, 1, 1], "SAME"),
                      [image, depthwise, pointwise]),
        "max_pool1d": (nn.max_pool1d(signal, 3, 2, "SAME"), [signal]),
        "avg_pool1d": (nn.avg_pool1d(signal, 2, 2, "VALID"), [signal]),
        "max_pool3d-same": (nn.max_pool3d(volume, [1, 2, 3, 2, 1], [1, 2, 2, 2, 1], "SAME"),
                            [volume]),
        "avg_pool3d-same": (nn.avg_pool3d(volume, [1, 3, 2, 2, 1], [1, 2, 2, 1, 1], "SAME"),
                            [volume]),
        "avg_pool3d-valid": (nn.avg_pool3d(volume, [1, 2, 2, 2, 1], [1, 1, 2, 2, 1], "VALID"),
                             [volume]),
    }
    out = {}
    for key, (y, inputs) in made.items():
        weights = tf.constant(np.linspace(-1.0, 1.0, int(np.prod(y.shape.as_list())))
                              .reshape(y.shape.as_list()).astype(np.float32))
        out[key] = (y, tf.gradients(tf.reduce_sum(y * weights), inputs) if inputs else [])
    return out, feed


def recorded() -> dict:
    return json.loads(Path(__file__).with_name("tf_conv_reference.json").read_text())
