"""Shared fixtures: FLEURS speech from ``shared/eval/speech`` heard in a session, written to
the real event log as the pipeline's facts, and the real bus driving the vocab consumer."""

from __future__ import annotations

import csv
import dataclasses
import os
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from habla_common.bus import RedisBus
from habla_common.consumer import Consumer
from habla_common.eventlog import PostgresEventStore, connect_pg
from habla_contracts import (
    Event,
    SpeakerJoined,
    SpeakerRenamed,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    derived_id,
)
from habla_vocab.config import VocabConfig
from habla_vocab.main import KINDS, bootstrap
from habla_vocab.store import VOCAB_TABLES


def eval_dir() -> Path:
    env = os.environ.get("HABLA_EVAL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "eval"


@dataclass(frozen=True)
class Clip:
    name: str
    pcm: bytes
    text: str
    translation: str

    @property
    def ms(self) -> int:
        return len(self.pcm) // 32


@pytest.fixture(scope="session")
def speech() -> dict[str, Clip]:
    """The FLEURS clips with their transcripts and reference translations, by file stem."""
    folder = eval_dir() / "speech"
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"no evaluation audio at {folder} (set HABLA_EVAL_DIR)")
    clips = {}
    with (folder / "manifest.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            with wave.open(str(folder / row["file"])) as w:
                assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
                pcm = w.readframes(w.getnframes())
            stem = row["file"].removesuffix(".wav")
            clips[stem] = Clip(stem, pcm, row["transcript_es_cased"].strip(), row["translation_en"].strip())
    return clips


class EventLog:
    """The real bus and the real Postgres event log: ``publish`` puts an event on the bus
    and appends it to the log if it is a fact, as the recorder does."""

    def __init__(self, bus: RedisBus, url: str) -> None:
        self.bus = bus
        self.url = url
        self.store = PostgresEventStore(url)

    def publish(self, event: Event) -> int | None:
        seq = self.bus.publish(event)
        if seq is not None and type(event).FACT:
            with connect_pg(self.url) as conn:
                self.store.append(conn, dataclasses.replace(event, seq=seq))
                conn.commit()
        return seq

    def heard(
        self,
        session: str,
        clip: Clip,
        *,
        index: int = 0,
        start_ms: int = 0,
        speaker_name: str = "",
        translated: bool = True,
    ) -> str:
        """Record the facts of ``clip`` heard as utterance ``index`` of ``session`` (segmented
        audio, speaker, final transcript, and its translation unless not ``translated``);
        returns the utterance id."""
        uid = f"{session}-u{index}"
        end_ms = start_ms + clip.ms
        facts: list[Event] = [
            UtteranceSegmented(
                session_id=session,
                utterance_id=uid,
                index=index,
                start_ms=start_ms,
                end_ms=end_ms,
                pcm=clip.pcm,
            ),
            SpeakerJoined(session_id=session, speaker="S1", number=1, label="Speaker 1"),
            TranscriptFinal(
                session_id=session,
                utterance_id=uid,
                index=index,
                start_ms=start_ms,
                end_ms=end_ms,
                text=clip.text,
                language="es",
                speaker="S1",
            ),
            TranslationFinal(
                session_id=session,
                utterance_id=uid,
                index=index,
                source_text=clip.text,
                corrected=clip.text,
                translation=clip.translation,
                speaker="S1",
            ),
        ]
        if not translated:
            facts = [f for f in facts if not isinstance(f, TranslationFinal)]
        if speaker_name:
            facts.append(SpeakerRenamed(session_id=session, speaker="S1", name=speaker_name))
        for fact in facts:
            self.publish(dataclasses.replace(fact, event_id=derived_id("test", session, fact.KIND, index)))
        return uid


@pytest.fixture
def event_log(bus: RedisBus, pg_url: str) -> EventLog:
    return EventLog(bus, pg_url)


class Pipeline:
    """The vocab consumer on the real bus; every fact it publishes is recorded in the log."""

    def __init__(self, bus: RedisBus, log: EventLog, config: VocabConfig) -> None:
        self.bus, self.log = bus, log
        self.handler = bootstrap(config, log.url)
        self.published: list[Event] = []
        self.consumer = Consumer(
            bus,
            "vocab",
            KINDS,
            lambda e: self.handler.handle(e, self.publish),
            name="vocab-test",
            select=self.handler.select,
            give_up=lambda e, reason: self.handler.give_up(e, reason, self.publish),
            max_deliveries=3,
            block_ms=50,
        )
        self.consumer.maintain_leases()

    def publish(self, event: Event) -> int | None:
        seq = self.log.publish(event)
        if seq is not None:
            self.published.append(dataclasses.replace(event, seq=seq))
        return seq

    def drain(self) -> None:
        """Poll until the streams have nothing more for the vocab group."""
        idle = 0
        while idle < 2:
            idle = idle + 1 if self.consumer.poll() == 0 else 0


@pytest.fixture
def pipeline(bus: RedisBus, event_log: EventLog) -> Iterator[Pipeline]:
    p = Pipeline(bus, event_log, VocabConfig())
    yield p
    p.consumer.release_all()


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the vocabulary read models, in a stable order."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with psycopg.connect(url) as conn:
        for table in VOCAB_TABLES:
            out[table] = sorted(
                (tuple(r) for r in conn.execute(f"SELECT * FROM {table}").fetchall()),
                key=repr,
            )
    return out
