"""Post-training int8 quantization (docs/quantization.md): ``tj.quantize`` for ``@jit``
inference functions, ``tj.quantize_session`` for TF1 graphs."""

from .api import QuantizationError, QuantizationReport, quantize, quantize_session
from .numerics import AffineParams, activation_params, quantize_weights

__all__ = ["quantize", "quantize_session", "QuantizationReport", "QuantizationError",
           "AffineParams", "activation_params", "quantize_weights"]
