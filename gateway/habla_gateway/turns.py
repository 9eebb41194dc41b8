"""One spoken turn through the live pipeline: a recording in, its stages out.

The speech-to-speech endpoints (:mod:`habla_gateway.speech`: PARLE's SSE and WebSocket
protocols) do no work of their own. A turn decodes the recording, publishes it as the
audio chunks of a session (a new one, or one a client continues), then a ``flush`` chunk
that ends the turn, and follows the session's outbox like a phone's socket does. From the
events the services publish it derives PARLE's stages, in PARLE's order:

``status`` stt → ``transcript`` (every final of the turn) → ``status`` llm → ``response``
(the translations, or the practice partner's replies) → ``status`` tts → ``audio`` (one per
spoken sentence, as the tts stage publishes them) → ``complete`` (texts and timings).

Which utterances are the turn's: ingest numbers a session's utterances in order and
``audio.flushed`` gives the count at the turn's end, so the turn owns the indices from the
previous turn's count up to it (the count is kept in the gateway's session record).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from anyio import to_thread

from habla_common.audio import SAMPLE_RATE
from habla_common.bus import Delivered
from habla_contracts import (
    AudioFlushed,
    SpeechSynthesized,
    TranscriptFinal,
    TranslationFinal,
    TutorReplied,
    spoken,
)

from .outbox import Outbox
from .sessions import Connection, SessionStore

__all__ = ["CHUNK_BYTES", "Stage", "Turn", "TurnTimeout", "run_turn"]

log = logging.getLogger("habla.gateway.turns")

CHUNK_BYTES = SAMPLE_RATE * 2 // 4  # 250 ms of PCM16, as the phone sends


class TurnTimeout(Exception):
    """The pipeline did not finish the turn in time."""


@dataclass(frozen=True)
class Stage:
    """One message of the turn: ``name`` is PARLE's event name; ``audio`` is the WAV of an
    ``audio`` stage (the SSE endpoint sends it base64-encoded, the socket as a binary frame)."""

    name: str
    data: dict[str, Any]
    audio: bytes = b""


@dataclass
class Turn:
    """What a turn has seen so far (the outbox is followed from its start)."""

    conn: Connection
    first_index: int  # the turn's utterances are first_index .. utterances - 1
    started: float  # wall clock: the request's audio was in hand
    decode_ms: int = 0
    flush_index: int = -1
    utterances: int | None = None  # known once ingest has flushed the turn
    audio_ms: int = 0
    finals: dict[tuple[int, int], TranscriptFinal] = field(default_factory=dict)
    parts: dict[int, int] = field(default_factory=dict)
    responses: dict[str, TranslationFinal | TutorReplied] = field(default_factory=dict)
    speaking: set[str] = field(default_factory=set)  # ids of responses whose audio is awaited
    spoken_done: set[str] = field(default_factory=set)
    held_audio: list[SpeechSynthesized] = field(default_factory=list)
    audio_sent: int = 0
    marks: dict[str, float] = field(default_factory=dict)
    synth_ms: int = 0

    @property
    def practice(self) -> bool:
        return self.conn.mode == "practice"

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.time())

    def ms(self, name: str, since: str = "") -> int:
        start = self.marks.get(since, self.started) if since else self.started
        return round((self.marks.get(name, start) - start) * 1000)

    # --- what the turn waits for ---------------------------------------------------

    def transcribed(self) -> bool:
        if self.utterances is None:
            return False
        indices = range(self.first_index, self.utterances)
        return all(all((i, part) in self.finals for part in range(self.parts.get(i, 1))) for i in indices)

    def lines(self) -> list[TranscriptFinal]:
        """The turn's finals with text, in order."""
        return [f for _k, f in sorted(self.finals.items()) if f.text.strip()]

    def answered(self) -> bool:
        return all(f.utterance_id in self.responses for f in self.lines())

    def responses_in_order(self) -> list[TranslationFinal | TutorReplied]:
        return [self.responses[f.utterance_id] for f in self.lines() if f.utterance_id in self.responses]

    def spoken_all(self) -> bool:
        return self.speaking <= self.spoken_done

    # --- taking events in ------------------------------------------------------------

    def take(self, d: Delivered) -> None:
        e = d.event
        if isinstance(e, AudioFlushed) and e.chunk_index == self.flush_index:
            self.utterances, self.audio_ms = e.utterances, e.audio_ms
        elif isinstance(e, TranscriptFinal) and self._ours(e.index):
            self.finals[(e.index, e.part)] = e
            self.parts[e.index] = e.parts
        elif isinstance(e, TutorReplied | TranslationFinal):
            self._take_response(e)
        elif isinstance(e, SpeechSynthesized) and e.spoken_id in self.speaking:
            self.held_audio.append(e)
            self.synth_ms += e.synth_ms
            if e.last:
                self.spoken_done.add(e.spoken_id)

    def _ours(self, index: int) -> bool:
        return index >= self.first_index and (self.utterances is None or index < self.utterances)

    def _take_response(self, e: TranslationFinal | TutorReplied) -> None:
        if not self._ours(e.index):
            return
        if isinstance(e, TranslationFinal):
            if self.practice or e.revision != 0:
                return
            text, target, status, revision = e.translation, e.target_language, e.status, e.revision
        else:
            if not self.practice:
                return
            text, target, status, revision = e.reply, "es", e.status, 0
        self.responses[e.utterance_id] = e
        if spoken(
            e.KIND,
            speak=self.conn.speak,
            mode=self.conn.mode,
            text=text,
            target_language=target,
            status=status,
            revision=revision,
        ):
            self.speaking.add(e.event_id)


async def _publish_audio(store: SessionStore, turn: Turn, pcm: np.ndarray, end: bool) -> None:
    """The recording as 250 ms chunks of the session, a flush, and (``end``) the session's end."""
    conn = turn.conn
    assert conn.session_id is not None
    data = np.asarray(pcm, dtype="<i2").tobytes()

    def publish() -> None:
        index = conn.next_chunk
        for i in range(0, len(data), CHUNK_BYTES):
            store.accept_chunk(conn, index, data[i : i + CHUNK_BYTES], live=False)
            index += 1
        turn.flush_index = index
        store.flush(conn, index)
        index += 1
        if end:
            store.end(conn, index, "api")
            index += 1
            conn.ended = True
        conn.next_chunk = index

    await to_thread.run_sync(publish)


def _transcript(turn: Turn) -> dict[str, Any]:
    lines = turn.lines()
    return {
        "transcript": " ".join(f.text.strip() for f in lines),
        "stt_ms": turn.ms("transcribed", "sent"),
        "language": lines[0].language if lines else "",
        "utterances": [{"utterance_id": f.utterance_id, "text": f.text, "speaker": f.speaker} for f in lines],
        "asr_ms": sum(f.asr_ms for f in lines),
    }


def _response(turn: Turn) -> dict[str, Any]:
    responses = turn.responses_in_order()
    data: dict[str, Any] = {"llm_ms": turn.ms("answered", "transcribed"), "model_ms": 0}
    if turn.practice:
        replies = [r for r in responses if isinstance(r, TutorReplied)]
        data.update(
            kind="reply",
            response=" ".join(r.reply.strip() for r in replies),
            translation=" ".join(r.reply_translation.strip() for r in replies if r.reply_translation),
            corrections=[c for r in replies for c in r.corrections],
            level=replies[-1].level if replies else "",
            model_ms=sum(r.llm_ms for r in replies),
        )
    else:
        finals = [r for r in responses if isinstance(r, TranslationFinal)]
        data.update(
            kind="translation",
            response=" ".join(t.translation.strip() for t in finals if t.translation.strip()),
            language=finals[0].target_language if finals else "",
            idioms=[i for t in finals for i in t.idioms],
            status=[t.status for t in finals],
            model_ms=sum(t.translate_ms for t in finals),
        )
    return data


def _audio_stage(turn: Turn, e: SpeechSynthesized) -> Stage:
    index = turn.audio_sent
    turn.audio_sent += 1
    if index == 0:
        turn.mark("first_audio")
    return Stage(
        "audio",
        {
            "index": index,
            "text": e.text,
            "language": e.language,
            "sample_rate": e.sample_rate,
            "audio_ms": e.audio_ms,
            "format": "wav",
            "utterance_id": e.utterance_id,
            "error": e.error,
        },
        e.audio,
    )


def _complete(turn: Turn, transcript: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    turn.mark("complete")
    return {
        "transcript": transcript.get("transcript", ""),
        "response": response.get("response", ""),
        "kind": response.get("kind", ""),
        "session_id": turn.conn.session_id,
        "audio_chunks": turn.audio_sent,
        "timing": {
            "decode_ms": turn.decode_ms,
            "stt_ms": turn.ms("transcribed", "sent"),
            "llm_ms": turn.ms("answered", "transcribed"),
            "tts_ms": turn.synth_ms,
            "first_audio_ms": turn.ms("first_audio") if "first_audio" in turn.marks else None,
            "total_ms": turn.ms("complete"),
            "input_audio_ms": turn.audio_ms,
        },
    }


async def run_turn(
    store: SessionStore,
    outbox: Outbox,
    conn: Connection,
    pcm: np.ndarray,
    *,
    cursor: str,
    first_index: int,
    started: float,
    end: bool,
    timeout_s: float,
    decode_ms: int = 0,
) -> AsyncIterator[Stage]:
    """Publish ``pcm`` into ``conn``'s session and yield the turn's stages as they happen.

    ``cursor``: the outbox entry after which this turn's events come; ``first_index``: the
    session's utterance count before this turn; ``end``: end the session after the audio
    (a one-shot request). Raises :class:`TurnTimeout` when the pipeline takes longer than
    ``timeout_s`` from the audio's publication."""
    assert conn.session_id is not None
    session_id = conn.session_id
    turn = Turn(conn, first_index, started, decode_ms)
    try:
        yield Stage("status", {"stage": "stt", "session_id": session_id})
        await _publish_audio(store, turn, pcm, end)
        turn.mark("sent")
        deadline = time.monotonic() + timeout_s
        transcript: dict[str, Any] | None = None
        response: dict[str, Any] | None = None
        while True:
            if transcript is None and turn.transcribed():
                turn.mark("transcribed")
                transcript = _transcript(turn)
                yield Stage("transcript", transcript)
                if not turn.lines():  # no speech: nothing to answer or say
                    yield Stage("complete", _complete(turn, transcript, {}))
                    return
                yield Stage("status", {"stage": "llm"})
            if transcript is not None and response is None and turn.answered():
                turn.mark("answered")
                response = _response(turn)
                yield Stage("response", response)
                if turn.speaking:
                    yield Stage("status", {"stage": "tts"})
            if response is not None:
                for e in turn.held_audio:
                    yield _audio_stage(turn, e)
                turn.held_audio.clear()
                if turn.spoken_all():
                    yield Stage("complete", _complete(turn, transcript or {}, response))
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TurnTimeout(_waiting_for(turn, transcript, response, timeout_s))
            # short blocking reads, never cancelled mid-read (a client may leave at any yield)
            try:
                cursor, delivered = await outbox.read(session_id, cursor, int(min(remaining, 1.0) * 1000) or 1)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                log.warning("speech turn of %s: outbox read failed (%s); retrying", session_id, e)
                await asyncio.sleep(0.5)
                continue
            for d in delivered:
                turn.take(d)
    finally:
        if turn.utterances is not None:
            await to_thread.run_sync(store.set_turn_base, session_id, turn.utterances)


def _waiting_for(turn: Turn, transcript: object, response: object, timeout_s: float) -> str:
    if transcript is None:
        what = "the transcript" if turn.utterances is not None else "the audio's segmentation"
    elif response is None:
        what = "the practice reply" if turn.practice else "the translation"
    else:
        what = f"spoken audio ({len(turn.spoken_done)} of {len(turn.speaking)} texts done)"
    return f"no {what} within {timeout_s:.0f} s; the pipeline may be overloaded or a service down (see /ops)"
