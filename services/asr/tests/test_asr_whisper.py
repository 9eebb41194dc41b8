"""The real bundled Whisper base on real speech (FLEURS es) and on non-speech.

Slow-ish: the model is loaded once per session (conftest ``transcriber``); every
transcribe() call costs 0.5-1.5 s on 2 CPU cores.
"""

from __future__ import annotations

import re
from typing import Any

import jiwer
import numpy as np
import pytest

from habla_asr.agreement import LocalAgreement
from habla_asr.domain import DROP_HALLUCINATION, DROP_NO_SPEECH, Thresholds, clean
from habla_asr.handlers import AsrHandler
from habla_contracts import Event, SpeechWindow, TranscriptFinal, TranscriptPartial, UtteranceSegmented

pytestmark = pytest.mark.slow

TH = Thresholds()
DOCUMENTED_WER = 0.089  # shared/eval/README.md: base int8, 2 cores, beam 5, language es


def normalise(text: str) -> str:
    """As FLEURS normalises its references: lowercase, no punctuation, accents kept."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def pcm_bytes(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def test_fleurs_corpus_wer_is_close_to_the_documented_one(transcriber: Any, speech_clips: Any) -> None:
    refs, hyps = [], []
    for clip in speech_clips:
        heard = transcriber.transcribe(clip.audio, language="es", beam_size=5, partial=False)
        out = clean(heard, TH)
        assert out.dropped == "" and heard.language == "es"
        refs.append(clip.reference)
        hyps.append(normalise(out.text))
    wer = jiwer.wer(refs, hyps)
    print(f"\nFLEURS es corpus WER (bundled base int8, beam 5, {len(refs)} clips): {100 * wer:.2f} %")
    assert wer < DOCUMENTED_WER + 0.03


def test_auto_language_detection_picks_spanish(transcriber: Any, speech_clips: Any) -> None:
    heard = transcriber.transcribe(speech_clips[6].audio, language=None, beam_size=1, partial=True)
    assert heard.language == "es" and heard.language_probability > 0.9
    assert jiwer.wer(speech_clips[6].reference, normalise(heard.text)) < 0.3


def _noise(seconds: float, std: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * std).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "audio", "language"),
    [
        ("silence 3 s", np.zeros(48000, np.float32), "es"),
        ("silence 3 s, auto language", np.zeros(48000, np.float32), None),
        ("white noise 3 s", _noise(3, 0.1, 1), "es"),
        ("quiet white noise 10 s", _noise(10, 0.003, 2), "es"),
        ("white noise 2 s, auto language", _noise(2, 0.05, 3), None),
    ],
)
def test_non_speech_gives_empty_text_with_a_reason(
    transcriber: Any, name: str, audio: np.ndarray, language: str | None
) -> None:
    out = clean(transcriber.transcribe(audio, language=language, beam_size=5, partial=False), TH)
    assert out.text == "", name
    assert out.dropped in (DROP_NO_SPEECH, DROP_HALLUCINATION), name


def test_local_agreement_on_growing_windows_of_a_real_clip(transcriber: Any, speech_clips: Any) -> None:
    clip = speech_clips[0]  # 12.8 s
    agreement = LocalAgreement()
    history: list[tuple[str, ...]] = []
    for end in range(16000, clip.audio.size + 16000, 16000):
        heard = transcriber.transcribe(clip.audio[:end], language="es", beam_size=1, partial=True)
        committed, tentative = agreement.update(clean(heard, TH).text.split())
        if history:
            assert committed[: len(history[-1])] == history[-1], "a committed word was rewritten"
        history.append(committed)
        print(f"{end / 16000:5.1f} s | {' '.join(committed)} || {' '.join(tentative)}")
    assert len(history[-1]) >= 0.7 * len(clip.reference.split())  # most of it committed before the end
    final, _ = agreement.finish()
    wer = jiwer.wer(clip.reference, normalise(" ".join(final)))
    print(f"committed-stream WER {100 * wer:.1f} %")
    assert wer < 0.25


def test_handler_on_the_real_model(transcriber: Any, asr_config: Any, speech_clips: Any) -> None:
    handler = AsrHandler(transcriber, asr_config, lambda sid: {"direction": "es-en"})
    out: list[Event] = []
    clip = speech_clips[6]  # 5.6 s
    handler.handle(
        SpeechWindow(session_id="s", utterance_id="u", window_index=0, pcm=pcm_bytes(clip.audio[:48000])), out.append
    )
    handler.handle(UtteranceSegmented(session_id="s", utterance_id="u", pcm=pcm_bytes(clip.audio)), out.append)
    handler.handle(UtteranceSegmented(session_id="s", utterance_id="v", pcm=bytes(32000)), out.append)
    partial, final, silent = out
    assert isinstance(partial, TranscriptPartial) and partial.tentative
    assert isinstance(final, TranscriptFinal) and isinstance(silent, TranscriptFinal)
    assert jiwer.wer(clip.reference, normalise(final.text)) < 0.3
    assert final.model == "whisper-base-bundled/int8" and final.language == "es" and final.asr_ms > 0
    assert (silent.text, silent.dropped) == ("", DROP_NO_SPEECH)


def test_an_utterance_longer_than_whisper_s_30_s_window_is_transcribed_whole(
    transcriber: Any, speech_clips: Any
) -> None:
    long_audio = np.concatenate([speech_clips[1].audio, speech_clips[0].audio])  # 21.4 s + 12.8 s
    out = clean(transcriber.transcribe(long_audio, language="es", beam_size=5, partial=False), TH)
    reference = f"{speech_clips[1].reference} {speech_clips[0].reference}"
    assert jiwer.wer(reference, normalise(out.text)) < 0.2
