"""The audio of what was heard, read back by the vocab service after the recorder moved it out of
the log into ``utterance_audio`` (real FLEURS speech, real recorder and Postgres)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_contracts import (
    Event,
    SessionStarted,
    SpeakerJoined,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    derived_id,
)
from habla_recorder.handlers import Recorder
from habla_vocab.adapters import LogHeardSource

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "eval" / "speech"


def speech(name: str) -> bytes:
    if not SPEECH.is_dir():
        pytest.skip(f"no evaluation audio at {SPEECH}")
    with wave.open(str(SPEECH / f"{name}.wav")) as w:
        return w.readframes(w.getnframes())


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 32) -> float:
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b[: len(b) - lag]) if lag >= 0 else (a[:lag], b[-lag:])
        n = min(len(x), len(y))
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def split_utterance(sid: str, pcm: bytes, start: int) -> tuple[list[Event], str, str, int]:
    """An utterance at ``start`` ms split into two turns at its middle."""
    u0 = derived_id(sid, "utt", 0)
    t1 = derived_id(u0, "turn", 1)
    end = start + len(pcm) // 32
    half = start + len(pcm) // 64
    facts: list[Event] = [
        SessionStarted(session_id=sid, seq=1),
        UtteranceSegmented(session_id=sid, seq=2, utterance_id=u0, index=0, start_ms=start, end_ms=end, pcm=pcm),
        SpeakerJoined(session_id=sid, seq=3, speaker="S1", number=1, label="Speaker 1"),
        TranscriptFinal(
            session_id=sid, seq=4, utterance_id=u0, index=0, parts=2, start_ms=start, end_ms=half, text="uno"
        ),
        TranscriptFinal(
            session_id=sid,
            seq=5,
            utterance_id=t1,
            index=0,
            part=1,
            parts=2,
            parent_id=u0,
            start_ms=half,
            end_ms=end,
            speaker="S1",
            text="dos",
        ),
        TranslationFinal(session_id=sid, seq=6, utterance_id=t1, index=0, corrected="dos", translation="two"),
    ]
    return facts, u0, t1, half


def test_heard_audio_is_decoded_from_the_stored_opus(pg_url: str) -> None:
    pcm = speech("fleurs-es-000")
    start = 2000
    facts, u0, t1, half = split_utterance("s1", pcm, start)
    rec = Recorder(connect_pg(pg_url, autocommit=True), PostgresEventStore(pg_url))
    for e in facts:
        rec.handle(e)
    (logged,) = [s.event for s in PostgresEventStore(pg_url).session_events("s1") if s.event.KIND == facts[1].KIND]
    assert isinstance(logged, UtteranceSegmented) and logged.pcm == b""  # the log has no audio

    source = LogHeardSource(pg_url)
    cut = (half - start) * 32  # byte offset of the second turn in the utterance's PCM
    for uid, original in ((u0, pcm[:cut]), (t1, pcm[cut:])):
        heard = source.heard("s1", uid)
        assert heard is not None and heard.sample_rate == 16000
        assert abs(len(heard.pcm) - len(original)) <= 32 * 20  # within 20 ms
        assert correlation(samples(original), samples(heard.pcm)) > 0.9
    heard = source.heard("s1", t1)
    assert heard is not None and (heard.text, heard.translation, heard.speaker_name) == ("dos", "two", "Speaker 1")

    # the audio deleted by retention: the words are still heard, without sound
    with connect_pg(pg_url) as conn:
        conn.execute("DELETE FROM utterance_audio")
        conn.commit()
    silent = source.heard("s1", t1)
    assert silent is not None and silent.pcm == b"" and silent.text == "dos"


def test_sessions_logged_with_their_pcm_still_give_it(pg_url: str) -> None:
    """Facts recorded before the audio moved out of the log carry PCM16: read as before."""
    pcm = speech("fleurs-es-002")
    facts, _, t1, half = split_utterance("old", pcm, 0)
    store = PostgresEventStore(pg_url)
    with connect_pg(pg_url) as conn:
        for e in facts:
            store.append(conn, e)
        conn.commit()
    heard = LogHeardSource(pg_url).heard("old", t1)
    assert heard is not None and heard.pcm == pcm[half * 32 :]
