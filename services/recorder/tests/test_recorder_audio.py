"""Utterance audio: stored as Ogg/Opus beside the log (real FLEURS speech, real Postgres),
the logged fact without its PCM, idempotent, order-independent, kept by `habla rebuild`,
and deleted by the retention setting."""

from __future__ import annotations

import os
import time
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from habla_common.errors import ConfigError
from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_contracts import Event, SessionStarted, TranscriptFinal, UtteranceSegmented, derived_id
from habla_recorder.audio import decode_opus, encode_opus
from habla_recorder.config import RecorderConfig
from habla_recorder.handlers import Recorder
from habla_recorder.projections import rebuild

DAY = 86_400.0


def speech_dir() -> Path:
    env = os.environ.get("HABLA_EVAL_DIR")
    folder = (Path(env) if env else Path(__file__).resolve().parents[4] / "shared" / "eval") / "speech"
    if not folder.is_dir():
        pytest.skip(f"no evaluation audio at {folder} (set HABLA_EVAL_DIR)")
    return folder


def speech(name: str) -> bytes:
    with wave.open(str(speech_dir() / f"{name}.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.readframes(w.getnframes())


def ms(pcm: bytes, rate: int = 16000) -> int:
    return len(pcm) // 2 * 1000 // rate


def segmented(
    session: str, index: int, pcm: bytes, start_ms: int, *, seq: int, at: float | None = None
) -> UtteranceSegmented:
    kw: dict[str, Any] = {} if at is None else {"occurred_at": at}
    return UtteranceSegmented(
        session_id=session,
        event_id=derived_id(session, "seg", index),
        seq=seq,
        utterance_id=derived_id(session, "utt", index),
        index=index,
        start_ms=start_ms,
        end_ms=start_ms + ms(pcm),
        pcm=pcm,
        **kw,
    )


def recorder(url: str, **config: Any) -> Recorder:
    return Recorder(connect_pg(url, autocommit=True), PostgresEventStore(url), RecorderConfig(**config))


def audio_rows(url: str) -> list[tuple[Any, ...]]:
    with connect_pg(url) as conn:
        return conn.execute(
            "SELECT utterance_id, session_id, start_ms, end_ms, sample_rate, codec, data, recorded_at "
            "FROM utterance_audio ORDER BY utterance_id"
        ).fetchall()


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 32) -> float:
    """Pearson correlation of two signals at the best lag within ±2 ms."""
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b[: len(b) - lag]) if lag >= 0 else (a[:lag], b[-lag:])
        n = min(len(x), len(y))
        best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def test_audio_is_stored_as_opus_and_the_logged_fact_has_no_pcm(pg_url: str) -> None:
    pcm0, pcm1 = speech("fleurs-es-000"), speech("fleurs-es-003")
    t = time.time() - 60
    seg0 = segmented("s1", 0, pcm0, 500, seq=2, at=t)
    seg1 = segmented("s1", 1, pcm1, 500 + ms(pcm0) + 800, seq=3, at=t + 20)
    facts: list[Event] = [SessionStarted(session_id="s1", seq=1, occurred_at=t - 5), seg0, seg1]
    rec = recorder(pg_url)
    for e in facts:
        rec.handle(e)
    assert rec.appended == 3

    rows = audio_rows(pg_url)
    assert [r[0] for r in rows] == sorted(derived_id("s1", "utt", i) for i in (0, 1))
    by_id = {r[0]: r for r in rows}
    for fact, pcm in ((seg0, pcm0), (seg1, pcm1)):
        _, sid, start, end, rate, codec, data, recorded_at = by_id[fact.utterance_id]
        assert (sid, start, end, rate, codec) == ("s1", fact.start_ms, fact.end_ms, 16000, "opus")
        assert abs(recorded_at.timestamp() - fact.occurred_at) < 0.001  # when it was heard
        data = bytes(data)
        assert data[:4] == b"OggS" and b"OpusHead" in data[:100]
        seconds = len(pcm) / 32000
        assert len(data) < len(pcm) / 8  # 24 kbit/s against 256 kbit/s of PCM16
        assert 1500 < len(data) / seconds < 4500  # about 3 kB per second of speech
        decoded = np.frombuffer(decode_opus(data, 16000), dtype="<i2").astype(np.float32)
        original = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        assert abs(len(decoded) - len(original)) <= 16000 * 0.02  # within one Opus frame
        assert best_correlation(original, decoded) > 0.9
        # the rms level survives (no gain change)
        assert np.sqrt(np.mean(decoded**2)) == pytest.approx(np.sqrt(np.mean(original**2)), rel=0.15)

    stored = PostgresEventStore(pg_url).session_events("s1")
    assert [s.event for s in stored] == [facts[0], replace(seg0, pcm=b""), replace(seg1, pcm=b"")]
    with connect_pg(pg_url) as conn:
        payloads = conn.execute("SELECT sum(octet_length(payload)) FROM events").fetchone()
        utterances = conn.execute("SELECT idx, start_ms, end_ms FROM utterances ORDER BY idx").fetchall()
    assert payloads is not None and payloads[0] < 2000  # the log holds no audio
    assert utterances == [(0, seg0.start_ms, seg0.end_ms), (1, seg1.start_ms, seg1.end_ms)]


def test_redelivery_stores_the_audio_once(pg_url: str) -> None:
    fact = segmented("s1", 0, speech("fleurs-es-005"), 0, seq=1)
    rec = recorder(pg_url)
    rec.handle(fact)
    first = audio_rows(pg_url)
    for _ in range(2):
        rec.handle(fact)
    assert rec.appended == 1
    assert audio_rows(pg_url) == first
    with connect_pg(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_any_order_and_rebuild_give_the_same_rows_and_keep_the_audio(pg_url: str) -> None:
    pcm = speech("fleurs-es-007")
    facts = [
        SessionStarted(session_id="s1", seq=1),
        segmented("s1", 0, pcm, 0, seq=2),
        TranscriptFinal(
            session_id="s1",
            seq=3,
            utterance_id=derived_id("s1", "utt", 0),
            index=0,
            start_ms=0,
            end_ms=ms(pcm),
            text="hola",
        ),
    ]
    rec = recorder(pg_url)
    for e in reversed(facts):
        rec.handle(e)

    def state() -> tuple[list[tuple[Any, ...]], ...]:
        with connect_pg(pg_url) as conn:
            return (
                conn.execute("SELECT * FROM sessions").fetchall(),
                conn.execute("SELECT * FROM utterances").fetchall(),
                audio_rows(pg_url),
            )

    before = state()
    assert len(before[2]) == 1
    assert rebuild(pg_url) == 3
    assert state() == before


def test_unencodable_audio_keeps_its_pcm_in_the_log(pg_url: str) -> None:
    """A sample rate Opus cannot take even by resampling: the fact is recorded as before."""
    odd = replace(segmented("s1", 0, speech("fleurs-es-002")[:32000], 0, seq=1), sample_rate=0)
    rec = recorder(pg_url)
    rec.handle(odd)
    assert audio_rows(pg_url) == []
    (stored,) = PostgresEventStore(pg_url).session_events("s1")
    assert stored.event == odd


def test_retention_deletes_only_audio_older_than_the_setting(pg_url: str) -> None:
    now = time.time()
    pcm = speech("fleurs-es-004")[: 16000 * 2 * 3]
    ages = {0: 40, 1: 31, 2: 29, 3: 0}  # days
    rec = recorder(pg_url, audio_retention_days=30)  # next prune an hour away
    for i, age in ages.items():
        rec.handle(segmented("s1", i, pcm, i * 5000, seq=i + 1, at=now - age * DAY))
    assert len(audio_rows(pg_url)) == 4  # not pruned yet: the hourly check is not due

    assert rec.prune_audio() == 2
    kept = {r[0] for r in audio_rows(pg_url)}
    assert kept == {derived_id("s1", "utt", i) for i in (2, 3)}
    with connect_pg(pg_url) as conn:  # only the audio goes: facts and transcripts stay
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (4,)
        assert conn.execute("SELECT count(*) FROM utterances").fetchone() == (4,)
    assert rec.prune_audio() == 0

    # when the hourly check is due, handling a fact prunes (here: every fact)
    eager = Recorder(
        connect_pg(pg_url, autocommit=True),
        PostgresEventStore(pg_url),
        RecorderConfig(audio_retention_days=30),
        prune_every_s=0,
    )
    eager.handle(segmented("s1", 9, pcm, 90_000, seq=10, at=now - 45 * DAY))
    assert derived_id("s1", "utt", 9) not in {r[0] for r in audio_rows(pg_url)}
    assert len(audio_rows(pg_url)) == 2

    # 0 keeps audio forever
    forever = recorder(pg_url, audio_retention_days=0)
    forever.handle(segmented("s1", 10, pcm, 95_000, seq=11, at=now - 400 * DAY))
    assert forever.prune_audio() == 0 and len(audio_rows(pg_url)) == 3


def test_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RecorderConfig.from_env() == RecorderConfig(audio_bitrate_kbps=24, audio_retention_days=0)
    monkeypatch.setenv("RECORDER_AUDIO_BITRATE", "32")
    monkeypatch.setenv("AUDIO_RETENTION_DAYS", "90")
    assert RecorderConfig.from_env() == RecorderConfig(audio_bitrate_kbps=32, audio_retention_days=90)
    monkeypatch.setenv("RECORDER_AUDIO_RETENTION_DAYS", "7")  # the service-prefixed key wins
    assert RecorderConfig.from_env().audio_retention_days == 7
    monkeypatch.setenv("AUDIO_RETENTION_DAYS", "-1")
    monkeypatch.delenv("RECORDER_AUDIO_RETENTION_DAYS")
    with pytest.raises(ConfigError, match="AUDIO_RETENTION_DAYS"):
        RecorderConfig.from_env()
    monkeypatch.setenv("AUDIO_RETENTION_DAYS", "0")
    monkeypatch.setenv("RECORDER_AUDIO_BITRATE", "2")
    with pytest.raises(ConfigError, match="RECORDER_AUDIO_BITRATE"):
        RecorderConfig.from_env()


def test_a_higher_bitrate_gives_a_bigger_closer_file() -> None:
    pcm = speech("fleurs-es-006")
    original = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    low, high = encode_opus(pcm, 16000, 12), encode_opus(pcm, 16000, 48)
    assert len(low) < len(high) < len(pcm) / 4
    corr_low = best_correlation(original, np.frombuffer(decode_opus(low, 16000), dtype="<i2").astype(np.float32))
    corr_high = best_correlation(original, np.frombuffer(decode_opus(high, 16000), dtype="<i2").astype(np.float32))
    assert corr_high > corr_low
