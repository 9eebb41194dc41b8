"""WAV in and out, and the silence kept around a sentence."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from habla_tts.audio import Speech, from_wav, to_wav, trim_silence
from habla_tts.errors import SynthesisFailed


def tone(ms: int, rate: int = 22050, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def wav_bytes(samples: bytes, *, channels: int = 1, width: int = 2, rate: int = 22050) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples)
    return out.getvalue()


def test_round_trip() -> None:
    samples = tone(300, rate=24000)
    back = from_wav(to_wav(samples, 24000))
    assert back.sample_rate == 24000 and np.array_equal(back.samples, samples)
    assert back.duration_ms == 300


def test_a_header_that_overstates_the_size_is_read_as_far_as_the_data_goes() -> None:
    data = bytearray(to_wav(tone(200), 22050))
    data[4:8] = struct.pack("<I", 0x7FFFF000)  # as espeak-ng writes it on a pipe
    data[40:44] = struct.pack("<I", 0x7FFFEFDC)
    assert np.array_equal(from_wav(bytes(data)).samples, tone(200))


def test_stereo_is_mixed_down() -> None:
    left, right = tone(100), np.zeros(len(tone(100)), dtype=np.int16)
    stereo = np.stack([left, right], axis=1).astype("<i2").tobytes()
    mono = from_wav(wav_bytes(stereo, channels=2))
    assert len(mono.samples) == len(left)
    assert np.allclose(mono.samples, left / 2, atol=1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"error": "no voice"}', "not a WAV file"),
        (wav_bytes(b"\x80" * 100, width=1), "8-bit samples"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "unreadable WAV"),
    ],
)
def test_what_is_not_pcm16_wav_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(SynthesisFailed, match=message):
        from_wav(data, "the speech server")


def test_silence_is_trimmed_to_a_short_lead_and_the_pause_after_a_sentence() -> None:
    rate = 22050
    silence = np.zeros(rate // 2, dtype=np.int16)  # 500 ms
    speech = Speech(np.concatenate([silence, tone(400), silence]), rate)
    trimmed = trim_silence(speech)
    assert trimmed.duration_ms == pytest.approx(50 + 400 + 250, abs=2)
    assert trim_silence(trimmed) is trimmed  # nothing more to cut
    quiet = Speech(np.zeros(1000, dtype=np.int16), rate)
    assert trim_silence(quiet) is quiet
