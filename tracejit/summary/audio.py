"""Audio summaries: samples to 16-bit PCM with tracejit ops, WAV files on the host.

TensorFlow encodes each clip as a 16-bit PCM WAV: a sample ``s`` in [-1, 1] becomes
``round(s * 32768)`` (halves away from zero) clamped to [-32768, 32767].
"""

from __future__ import annotations

import io
import wave

import numpy as np
from tensorboard.compat.proto import summary_pb2

from ..ir import dtypes as dt
from ..ir.errors import DTypeError, ShapeError
from ..ir.source import user_location
from ..trace import array_ops, math_ops
from ..trace.tracing import cast, to_tensor
from .image import numbered_tags


def check_audio(audio, tag: str):
    """``audio`` as a ``[batch, frames, channels]`` tensor (``[batch, frames]`` is one
    channel), refused (naming ``tag``) unless it is a float tensor of that rank."""
    x = to_tensor(audio)
    if not x.dtype.is_float:
        raise DTypeError(f"audio summary {tag!r}: samples must be float in [-1, 1], got "
                         f"{x.dtype.name}", location=user_location())
    if x.ndim == 2:
        x = array_ops.expand_dims(x, 2)
    if x.ndim != 3:
        raise ShapeError(f"audio summary {tag!r}: audio must be [batch, frames, channels] or "
                         f"[batch, frames], got shape {x.shape}", location=user_location())
    return x


def audio_to_pcm16(audio, max_outputs: int = 3, tag: str = "audio"):
    """The first ``max_outputs`` clips as 16-bit sample values (in an int32 tensor: the IR
    has no int16), computed with tracejit ops."""
    x = check_audio(audio, tag)[:max_outputs]
    # NOTE: float64, so that |y| + 0.5 is exact and rounds halves away from zero as C's
    # roundf does (tracejit's round is half to even)
    y = cast(x, dt.float64) * 32768.0
    rounded = math_ops.sign(y) * math_ops.floor(math_ops.abs(y) + 0.5)
    return cast(math_ops.clip_by_value(rounded, -32768.0, 32767.0), dt.int32)


def encode_wav(samples, sample_rate: int) -> bytes:
    """A 16-bit PCM WAV file of ``samples`` (``[frames, channels]`` integers)."""
    frames = np.asarray(samples)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(frames.astype("<i2").tobytes())
    return buffer.getvalue()


def audio_values(tag: str, pcm, sample_rate, max_outputs: int = 3
                 ) -> list[summary_pb2.Summary.Value]:
    """One Summary value a WAV clip of the ``[batch, frames, channels]`` 16-bit samples."""
    batch = np.asarray(pcm)
    rate = float(np.asarray(sample_rate))
    if batch.ndim != 3:
        raise ValueError(f"audio summary {tag!r}: expected [batch, frames, channels] samples, "
                         f"got shape {batch.shape}")
    if not rate > 0:
        raise ValueError(f"audio summary {tag!r}: sample_rate must be positive, got {rate}")
    batch = batch[:max_outputs]
    values = []
    for name, clip in zip(numbered_tags(tag, "audio", len(batch), max_outputs), batch,
                          strict=False):
        encoded = summary_pb2.Summary.Audio(
            sample_rate=rate, num_channels=clip.shape[1], length_frames=clip.shape[0],
            encoded_audio_string=encode_wav(clip, int(rate)), content_type="audio/wav")
        values.append(summary_pb2.Summary.Value(tag=name, audio=encoded))
    return values
