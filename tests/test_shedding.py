"""Load shedding against a real Redis: a consumer behind the live audio acks live partials
without work and handles every final; with the real ingest (Silero VAD), diarize and asr
(the bundled Whisper) consumers, an artificially slowed ASR stage skips partials, loses no
final, and catches up when the slowdown ends; a busy translate stage puts off its topic
summary (the real bundled LLM)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.registry import REGISTRY

from habla_common import shedding
from habla_common.bus import RedisBus, decode_entry
from habla_common.consumer import Consumer
from habla_common.service import build_consumer
from habla_common.settings import Settings, ShedPolicy
from habla_common.shedding import FINALS_ONLY, NORMAL, THIN, LoadShedder
from habla_contracts import (
    AudioChunkReceived,
    AudioDrained,
    Event,
    SpeechTurn,
    SpeechWindow,
    TopicSummarized,
    TranscriptFinal,
    TranscriptPartial,
    TranslationFinal,
    UtteranceSegmented,
    derived_id,
    partition_of,
    stream_key,
)

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "eval" / "speech"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def read(bus: RedisBus, kind: str, session: str) -> list[Any]:
    key = stream_key(kind, partition_of(session, bus.partitions))
    return [decode_entry(key, eid, fields).event for eid, fields in bus.r.xrange(key)]


def pending(bus: RedisBus, kind: str, group: str) -> int:
    return sum(int(bus.r.xpending(stream_key(kind, p), group)["pending"]) for p in range(bus.partitions))


# --- the consumer's part ---------------------------------------------------------------------


def test_a_consumer_behind_the_live_audio_acks_partials_without_work_but_never_a_final(bus: RedisBus) -> None:
    handled: list[Event] = []
    shed = LoadShedder(ShedPolicy(hold_s=0.0), "shed-consumer")
    c = Consumer(
        bus,
        "asr",
        (SpeechTurn.KIND, SpeechWindow.KIND),
        handled.append,
        name="w1",
        block_ms=50,
        shed=shed,
        best_effort=(SpeechWindow.KIND,),
    )
    c.maintain_leases()
    c.poll()  # nothing pending from before: from now on it reads new messages
    skipped0 = value("habla_events_skipped_total", service="asr", kind="speech.window")
    shed0 = value("habla_shed_total", service="shed-consumer", kind="speech.window")
    handled0 = value("habla_events_handled_total", service="asr", kind="speech.turn")

    now = time.time()  # six seconds of audio waiting: the turn of u1, the windows of u2
    bus.publish(SpeechTurn(session_id="s", utterance_id="u1", received_at=now - 6.5))
    for i in range(3):
        bus.publish(SpeechWindow(session_id="s", utterance_id="u2", window_index=i, received_at=now - 6 + i))
    c.poll()
    assert shed.level == FINALS_ONLY and shed.behind >= 6.5
    assert value("habla_consumer_behind_seconds", service="shed-consumer") >= 6.5
    assert value("habla_shed_level", service="shed-consumer") == FINALS_ONLY
    assert [(e.KIND, e.utterance_id) for e in handled] == [("speech.turn", "u1")]  # type: ignore[attr-defined]
    assert value("habla_shed_total", service="shed-consumer", kind="speech.window") - shed0 == 3
    assert value("habla_events_skipped_total", service="asr", kind="speech.window") == skipped0
    assert value("habla_events_handled_total", service="asr", kind="speech.turn") - handled0 == 1
    assert pending(bus, SpeechWindow.KIND, "asr") == pending(bus, SpeechTurn.KIND, "asr") == 0  # all acked

    # caught up: fresh windows step the level down one reading at a time, and are handled
    bus.publish(SpeechWindow(session_id="s", utterance_id="u2", window_index=3, received_at=time.time()))
    c.poll()
    assert shed.level == THIN and [e.window_index for e in handled[1:]] == [3]  # type: ignore[attr-defined]
    bus.publish(SpeechWindow(session_id="s", utterance_id="u2", window_index=4, received_at=time.time()))
    c.poll()
    assert shed.level == NORMAL and [e.window_index for e in handled[1:]] == [3, 4]  # type: ignore[attr-defined]
    c.poll()  # nothing to read: behind falls to 0
    assert value("habla_consumer_behind_seconds", service="shed-consumer") == 0.0


# --- a slowed ASR stage on real speech -------------------------------------------------------


class SlowedTranscriber:
    """A slowdown wrapper around the real Whisper transcriber: until :meth:`end_slowdown`,
    each call first waits ``delay_s`` (as on a CPU shared with far more work), then
    transcribes for real. Ending the slowdown also releases a call waiting at that moment."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s
        self._normal = threading.Event()
        self.slowed_calls = 0

    @property
    def name(self) -> str:
        return str(self.inner.name)

    def end_slowdown(self) -> None:
        self._normal.set()

    def transcribe(self, pcm: np.ndarray, *, language: str | None, beam_size: int, partial: bool) -> Any:
        if not self._normal.is_set():
            self.slowed_calls += 1
            self._normal.wait(self.delay_s)
        return self.inner.transcribe(pcm, language=language, beam_size=beam_size, partial=partial)


@dataclass(frozen=True)
class Reading:
    at: float
    behind: float
    level: int
    shed: float


CLIPS = (6, 3, 2, 5, 4, 7)  # FLEURS es clips, 55 s of speech
CHUNK = 4000  # 250 ms of 16 kHz audio per chunk, as a phone sends
SLOW_FOR_S = 20.0  # seconds of audio during which ASR is slowed
DELAY_S = 6.0  # added to every Whisper call meanwhile: past the finals-only threshold even on a quiet CPU


@pytest.mark.slow
def test_with_asr_slowed_partials_are_skipped_no_final_is_lost_and_lag_recovers(bus: RedisBus) -> None:
    """Real speech at real-time pace through the ingest (Silero VAD), diarize and asr consumers
    of the live path, each a thread reading the real Redis, with the default shedding policy.

    asr reads ``speech.turn`` (from diarize), not ``speech.segmented``; diarize runs with
    ``DIARIZE_BACKEND=none``, its real handler passing every utterance through as one turn,
    which is the shortest honest path to the asr consumer as the runtime wires it. For the
    first 20 of the 62 s of audio ASR is slowed by 6 s a call (:class:`SlowedTranscriber` around the real
    model): it falls behind, sheds live windows, still transcribes every turn; then it
    catches up and live partials come back at level 0 before the audio ends."""
    from habla_asr.adapters import FasterWhisperTranscriber
    from habla_asr.config import AsrConfig
    from habla_asr.main import BEST_EFFORT as ASR_BEST_EFFORT
    from habla_asr.main import KINDS as ASR_KINDS
    from habla_asr.main import build as build_asr
    from habla_diarize.config import DiarizeConfig
    from habla_diarize.main import KINDS as DIARIZE_KINDS
    from habla_diarize.main import build as build_diarize
    from habla_ingest.adapters import decode_file
    from habla_ingest.config import IngestConfig
    from habla_ingest.main import KINDS as INGEST_KINDS
    from habla_ingest.main import bootstrap as ingest_handler

    session = "shed-e2e"
    gap = np.zeros(int(1.2 * 16000), np.int16)
    parts = [np.zeros(8000, np.int16)]
    for i in CLIPS:
        parts += [decode_file(SPEECH / f"fleurs-es-00{i}.wav"), gap]
    audio = np.concatenate(parts)
    chunks = [audio[i : i + CHUNK].astype("<i2").tobytes() for i in range(0, audio.size, CHUNK)]

    policy = ShedPolicy()  # the defaults: thin at 2 s, finals only at 5 s
    asr_config = AsrConfig.from_env()
    slowed = SlowedTranscriber(FasterWhisperTranscriber.from_config(asr_config), DELAY_S)

    def settings(service: str) -> Settings:
        return Settings(service, "", "", bus.partitions, 5, 200, 5000, "INFO", shed=policy)

    consumers = [
        build_consumer(
            bus,
            settings("ingest"),
            group="ingest",
            kinds=INGEST_KINDS,
            handler=ingest_handler(IngestConfig(), bus).handle,
        ),
        build_consumer(
            bus,
            settings("diarize"),
            group="diarize",
            kinds=DIARIZE_KINDS,
            build=lambda b: build_diarize(b, DiarizeConfig(backend="none")),
        ),
        build_consumer(
            bus,
            settings("asr"),
            group="asr",
            kinds=ASR_KINDS,
            build=lambda b: build_asr(b, asr_config, transcriber=slowed),
            best_effort=ASR_BEST_EFFORT,
        ),
    ]
    bus.set_session_settings(session, direction="es-en")
    shed0 = value("habla_shed_total", service="asr", kind="speech.window")
    windows0 = value("habla_events_handled_total", service="asr", kind="speech.window")
    superseded0 = value("habla_events_skipped_total", service="asr", kind="speech.window")
    readings: list[Reading] = []
    stop, watching = threading.Event(), threading.Event()

    def watch() -> None:
        while not watching.wait(0.05):
            readings.append(
                Reading(
                    time.time(),
                    value("habla_consumer_behind_seconds", service="asr"),
                    int(value("habla_shed_level", service="asr")),
                    value("habla_shed_total", service="asr", kind="speech.window") - shed0,
                )
            )

    threads = [threading.Thread(target=c.run, args=(stop,), name=c.group) for c in consumers]
    threads.append(threading.Thread(target=watch, name="watch"))
    for t in threads:
        t.start()
    try:
        start = time.time()
        slow_end = 0.0
        for k, data in enumerate(chunks):
            time.sleep(max(0.0, start + k * CHUNK / 16000 - time.time()))
            if not slow_end and k * CHUNK / 16000 >= SLOW_FOR_S:
                slowed.end_slowdown()
                slow_end = time.time()
            bus.publish(
                AudioChunkReceived(
                    session_id=session,
                    event_id=derived_id(session, "chunk", k),
                    chunk_index=k,
                    data=data,
                    received_at=time.time(),
                )
            )
        audio_end = time.time()
        bus.publish(
            AudioChunkReceived(
                session_id=session,
                event_id=derived_id(session, "chunk", len(chunks)),
                chunk_index=len(chunks),
                final=True,
            )
        )
        deadline = time.time() + 60
        while True:
            drained = read(bus, AudioDrained.KIND, session)
            finals = read(bus, TranscriptFinal.KIND, session)
            if drained and len(finals) >= drained[0].utterances:
                break
            assert time.time() < deadline, f"{len(finals)} finals, drained: {drained}"
            time.sleep(0.2)
        time.sleep(1.0)  # anything published twice would be in by now
    finally:
        stop.set()
        watching.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)

    utterances = read(bus, UtteranceSegmented.KIND, session)
    finals = read(bus, TranscriptFinal.KIND, session)
    partials = read(bus, TranscriptPartial.KIND, session)
    slowed_part = [r for r in readings if r.at < slow_end]
    after = [r for r in readings if slow_end <= r.at <= audio_end]
    recovered = next((r.at for r in after if r.level == NORMAL and r.behind < policy.thin_at_s), None)

    def level_at(t: float) -> int:
        return next((r.level for r in reversed(readings) if r.at <= t), NORMAL)

    summary = {
        "utterances": len(utterances),
        "finals": len(finals),
        "slowed_calls": slowed.slowed_calls,
        "max_behind_s": round(max(r.behind for r in readings), 2),
        "max_level": max(r.level for r in readings),
        "windows_shed": readings[-1].shed,
        "windows_handled": value("habla_events_handled_total", service="asr", kind="speech.window") - windows0,
        "windows_superseded": value("habla_events_skipped_total", service="asr", kind="speech.window") - superseded0,
        "partials_while_slowed": sum(p.occurred_at < slow_end for p in partials),
        "partials_after": sum(p.occurred_at >= slow_end for p in partials),
        "level_0_after_slowdown_s": round(recovered - slow_end, 1) if recovered else None,
        "partials_at_level_0_after": sum(
            recovered is not None and p.occurred_at >= recovered and level_at(p.occurred_at) == NORMAL for p in partials
        ),
        "audio_s": round(audio.size / 16000, 1),
        "slowdown_ended_at_s": round(slow_end - start, 1),
    }
    print(f"\nload shedding: {summary}")

    # the slowdown put ASR behind: it thinned, then dropped, live windows
    assert max(r.level for r in slowed_part) >= THIN, summary
    assert max(r.behind for r in slowed_part) >= policy.thin_at_s, summary
    assert readings[-1].shed > 0, summary
    # ... and every utterance still got exactly one final, transcribed
    assert drained[0].utterances == len(utterances) >= len(CLIPS), summary
    assert Counter(f.utterance_id for f in finals) == Counter(u.utterance_id for u in utterances), summary
    assert not [f for f in finals if f.dropped == "asr_failed"], summary
    assert sum(bool(f.text.strip()) for f in finals) >= 0.8 * len(finals), [f.text for f in finals]
    # once the slowdown ended it caught up before the audio did, and partials came back at level 0
    assert recovered is not None, summary  # level 0 and under 2 s behind before the audio ended
    assert summary["partials_at_level_0_after"] >= 2, summary


# --- translate puts off its topic summary while behind ----------------------------------------


def kinds(events: list[Event]) -> list[type]:
    return [type(e) for e in events if isinstance(e, TranslationFinal | TopicSummarized)]


@pytest.mark.slow
def test_translate_puts_off_the_topic_summary_while_the_process_sheds_load() -> None:
    """The real translate handler and bundled LLM, summary every final: at shedding level 1
    the final is translated but no summary is asked for; the next final at level 0 brings it."""
    from habla_translate.bundled import BUNDLED, assemble_bundled_gguf, default_cache_dir
    from habla_translate.config import TranslateConfig
    from habla_translate.handlers import TranslateHandler
    from habla_translate.llm import LlamaCppChat
    from habla_translate.main import build_interpreter

    chat = LlamaCppChat(assemble_bundled_gguf(default_cache_dir()), n_threads=2, name=BUNDLED)
    published: list[Event] = []
    handler = TranslateHandler(
        build_interpreter(TranslateConfig(), chat=chat, warm_up=False),
        TranslateConfig(summary_every=1),
        lambda _s: {"direction": "es-en", "mode": "conversation"},
    )
    shed = LoadShedder(ShedPolicy(hold_s=0.0), "translate-test")
    shedding.install(shed)
    try:
        now = time.time()
        shed.observe([TranscriptFinal(session_id="t", received_at=now - 3.0)], now)
        assert shedding.current_level() == THIN
        handler.on_final(
            TranscriptFinal(session_id="t", utterance_id="a", index=0, text="Hoy repasamos el pretérito indefinido."),
            published.append,
        )
        assert kinds(published) == [TranslationFinal]  # translated, summary put off
        shed.observe([], time.time())
        shed.observe([], time.time())
        assert shedding.current_level() == NORMAL
        handler.on_final(
            TranscriptFinal(session_id="t", utterance_id="b", index=1, text="Abrid el libro por la página cuarenta."),
            published.append,
        )
    finally:
        shedding.install(None)
        chat.close()
    assert kinds(published) == [TranslationFinal, TranslationFinal, TopicSummarized]
    summary = published[-1]
    assert isinstance(summary, TopicSummarized) and summary.summary and summary.upto_index == 1


# --- caps --------------------------------------------------------------------------------------


def test_diarize_reads_its_torch_thread_cap_and_refuses_a_negative_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from habla_common.errors import ConfigError
    from habla_diarize.config import DiarizeConfig

    monkeypatch.delenv("DIARIZE_CPU_THREADS", raising=False)
    assert DiarizeConfig.from_env().cpu_threads == 0  # torch's own default
    monkeypatch.setenv("DIARIZE_CPU_THREADS", "1")
    assert DiarizeConfig.from_env().cpu_threads == 1
    monkeypatch.setenv("DIARIZE_CPU_THREADS", "-1")
    with pytest.raises(ConfigError, match="DIARIZE_CPU_THREADS"):
        DiarizeConfig.from_env()
