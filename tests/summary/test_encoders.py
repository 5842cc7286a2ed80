"""Images, audio and text: the IR conversions and host encodings against TensorFlow
2.21's (recorded in tf_reference.json), and the PNG encoder against a reader."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
from tensorboard.compat.proto import summary_pb2

import tracejit as tj
from tracejit.summary.audio import audio_to_pcm16, audio_values, encode_wav
from tracejit.summary.image import image_to_uint8, image_values, numbered_tags
from tracejit.summary.png import encode_png
from tracejit.summary.values import clean_tag, scalar_value, summary_bytes, text_value

from .reference import decode_png, tf_images, tf_reference

_TO_UINT8 = tj.jit(lambda x: image_to_uint8(x, 3))
_TO_PCM = tj.jit(lambda x: audio_to_pcm16(x, 2))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_round_trip(channels):
    rng = np.random.default_rng(channels)
    image = rng.integers(0, 256, (5, 7, channels), dtype=np.uint8)
    data = encode_png(image)
    assert np.array_equal(decode_png(data), image)
    pil = pytest.importorskip("PIL.Image")
    decoded = np.asarray(pil.open(io.BytesIO(data)))
    assert np.array_equal(decoded.reshape(image.shape), image)


def test_png_refuses_bad_pixels():
    with pytest.raises(TypeError, match="uint8"):
        encode_png(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="1 to 4 channels"):
        encode_png(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match="at least one pixel"):
        encode_png(np.zeros((0, 2, 3), np.uint8))


@pytest.mark.parametrize("case", ["positive", "mixed", "nonfinite", "zeros", "tiny", "rgba"])
def test_image_pixels_equal_tensorflows(case):
    images, tags, pixels = tf_images(case)
    got = np.asarray(_TO_UINT8(images))
    assert got.dtype == np.uint8
    expected = np.array(pixels, np.uint8).reshape(got.shape)
    assert np.array_equal(got, expected)
    values = image_values("pic", got, 3)
    assert [v.tag for v in values] == tags
    for value, image in zip(values, expected, strict=True):
        assert (value.image.height, value.image.width, value.image.colorspace) == image.shape
        assert np.array_equal(decode_png(value.image.encoded_image_string), image)


def test_uint8_images_are_kept_and_max_outputs_cuts_the_batch():
    images = np.arange(4 * 2 * 2 * 1, dtype=np.uint8).reshape(4, 2, 2, 1) * 7
    got = np.asarray(tj.jit(lambda x: image_to_uint8(x, 2))(images))
    assert np.array_equal(got, images[:2])


def test_image_tags_follow_tensorflow():
    assert numbered_tags("pic", "image", 2, 3) == ["pic/image/0", "pic/image/1"]
    assert numbered_tags("pic", "image", 2, 1) == ["pic/image"]
    assert numbered_tags("snd", "audio", 1, 3) == ["snd/audio/0"]


def test_bad_images_are_refused_naming_the_tag():
    with pytest.raises(ValueError, match=r"'faces'.*1, 3 or 4 channels.*\(2, 3, 3\)"):
        image_to_uint8(np.zeros((2, 3, 3), np.float32), tag="faces")
    with pytest.raises(ValueError, match="'faces'.*1, 3 or 4 channels"):
        image_to_uint8(np.zeros((1, 3, 3, 2), np.float32), tag="faces")
    with pytest.raises(TypeError, match="'faces'.*uint8 or float, got int32"):
        image_to_uint8(np.zeros((1, 3, 3, 3), np.int32), tag="faces")


def test_audio_equals_tensorflows_wav_bytes():
    ref = tf_reference()["audio"]
    pcm = np.asarray(_TO_PCM(np.array(ref["input"], np.float32)))
    values = audio_values("snd", pcm, 8000, 2)
    assert len(values) == len(ref["clips"])
    for value, clip in zip(values, ref["clips"], strict=True):
        audio = value.audio
        assert value.tag == clip["tag"]
        assert (audio.sample_rate, audio.num_channels, audio.length_frames,
                audio.content_type) == (clip["sample_rate"], clip["num_channels"],
                                        clip["length_frames"], clip["content_type"])
        assert audio.encoded_audio_string.hex() == clip["wav_hex"]


def test_audio_rounds_halves_away_from_zero_and_clamps():
    samples = np.array([[0.5 / 32768, -0.5 / 32768, 1.5 / 32768, 1.0, -1.0, 3.0, -3.0]],
                       np.float32)
    pcm = np.asarray(tj.jit(lambda x: audio_to_pcm16(x))(samples))
    assert pcm[0, :, 0].tolist() == [1, -1, 2, 32767, -32768, 32767, -32768]


def test_wav_reads_back():
    data = encode_wav(np.array([[1, -1], [300, -300], [0, 32767]]), 16000)
    with wave.open(io.BytesIO(data)) as clip:
        assert (clip.getnchannels(), clip.getsampwidth(), clip.getframerate(),
                clip.getnframes()) == (2, 2, 16000, 3)
        frames = np.frombuffer(clip.readframes(3), "<i2")
    assert frames.tolist() == [1, -1, 300, -300, 0, 32767]


def test_bad_audio_is_refused():
    with pytest.raises(TypeError, match="'snd'.*float"):
        audio_to_pcm16(np.zeros((1, 4), np.int32), tag="snd")
    with pytest.raises(ValueError, match="'snd'.*frames"):
        audio_to_pcm16(np.zeros((4,), np.float32), tag="snd")
    with pytest.raises(ValueError, match="sample_rate must be positive"):
        audio_values("snd", np.zeros((1, 4, 1), np.int32), 0)


def test_text_equals_tensorflows():
    ref = summary_pb2.Summary.FromString(bytes.fromhex(tf_reference()["text"]))
    ours = summary_pb2.Summary.FromString(summary_bytes([text_value("notes",
                                                                    ["a", "héllo *md*"])]))
    assert ours == ref


def test_text_refuses_non_strings():
    with pytest.raises(TypeError, match="strings, got int"):
        text_value("t", [1, 2])


def test_scalars_and_tags():
    assert scalar_value("loss", np.float64(0.5)).simple_value == 0.5
    assert scalar_value("n", np.array([3], np.int32)).simple_value == 3.0
    with pytest.raises(ValueError, match="'loss' takes one real number"):
        scalar_value("loss", np.array([1.0, 2.0]))
    assert clean_tag("bad name!") == "bad_name_"
    assert clean_tag("/a/b-c.d") == "a/b-c.d"
    with pytest.raises(TypeError, match="must be a string"):
        clean_tag(3)


def test_concatenated_summaries_are_a_merged_summary():
    one = summary_bytes([scalar_value("a", 1.0)])
    two = summary_bytes([scalar_value("b", 2.0), scalar_value("c", 3.0)])
    merged = summary_pb2.Summary.FromString(one + two)
    assert [v.tag for v in merged.value] == ["a", "b", "c"]
