"""Habla's event types.

Every event is a frozen dataclass with an envelope (``event_id``, ``session_id``,
``seq``, ``occurred_at``) and a class-level ``KIND`` (also its stream name) and ``V``
(schema version). Three class flags say where an event goes:

* ``FACT``: recorded in the Postgres event log (finals are facts).
* ``CLIENT``: copied to the session's outbox so sockets of the session see it.
* ``MAXLEN``: partial streams are trimmed to about this many entries (0 = never
  trimmed by length; consumed entries are trimmed once every group has acked them).

Evolution rules: add fields only with defaults, never change a field's type, and a
breaking change gets a new kind. Upcasters live in :mod:`habla_contracts.codec`.
``seq`` is assigned by the bus when the event is published (per-session counter),
so producers leave it at 0.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "AUDIO_CODECS",
    "DIRECTIONS",
    "EVENT_TYPES",
    "MODES",
    "AudioChunkReceived",
    "AudioDrained",
    "AudioRejected",
    "Event",
    "SessionEnded",
    "SessionSettingsChanged",
    "SessionStarted",
    "SpeechStarted",
    "SpeechWindow",
    "TranscriptFinal",
    "TranscriptPartial",
    "UtteranceSegmented",
    "derived_id",
    "new_id",
    "source_language",
]

DIRECTIONS = ("es-en", "en-es", "auto")
MODES = ("conversation", "classroom")
AUDIO_CODECS = ("pcm16", "webm-opus")

_NAMESPACE = uuid.UUID("0f3c2a1e-6d7b-4d0e-9a55-6b1d2f0c7e11")


def new_id() -> str:
    """A fresh random event id."""
    return str(uuid.uuid4())


def derived_id(*parts: object) -> str:
    """A deterministic id from its inputs.

    Handlers derive the ids of the events they produce from the id of the event they
    consume, so a redelivered input republishes the same ids and the bus drops the
    duplicates.
    """
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


def source_language(direction: str) -> str | None:
    """Spoken language for a session direction (``None`` = detect per utterance)."""
    return {"es-en": "es", "en-es": "en"}.get(direction)


@dataclass(frozen=True, kw_only=True)
class Event:
    KIND: ClassVar[str] = ""
    V: ClassVar[int] = 1
    FACT: ClassVar[bool] = False
    CLIENT: ClassVar[bool] = False
    MAXLEN: ClassVar[int] = 0

    session_id: str
    event_id: str = field(default_factory=new_id)
    seq: int = 0
    occurred_at: float = field(default_factory=time.time)

    def client_view(self) -> dict[str, Any]:
        """The JSON-safe payload sent to sockets (bytes fields are left out)."""
        from dataclasses import asdict

        return {k: v for k, v in asdict(self).items() if not isinstance(v, bytes)}


# --- session lifecycle -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SessionStarted(Event):
    KIND: ClassVar[str] = "session.started"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    direction: str = "es-en"
    mode: str = "conversation"
    codec: str = "pcm16"
    source: str = "live"  # live | file
    title: str = ""


@dataclass(frozen=True, kw_only=True)
class SessionSettingsChanged(Event):
    KIND: ClassVar[str] = "session.settings_changed"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    direction: str | None = None
    mode: str | None = None


@dataclass(frozen=True, kw_only=True)
class SessionEnded(Event):
    KIND: ClassVar[str] = "session.ended"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    reason: str = "client"


# --- audio -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AudioChunkReceived(Event):
    """Audio bytes as the client sent them, in order, per session.

    ``chunk_index`` counts the client's chunks from 0; the gateway derives the event
    id from it, so a chunk the phone resends after a reconnect is dropped as a
    duplicate. ``final`` marks the end of the session's audio (``data`` is empty).
    """

    KIND: ClassVar[str] = "audio.chunk"

    chunk_index: int = 0
    codec: str = "pcm16"
    sample_rate: int = 16000
    data: bytes = b""
    received_at: float = 0.0
    final: bool = False


@dataclass(frozen=True, kw_only=True)
class AudioRejected(Event):
    """Audio the pipeline could not use (undecodable bytes, wrong codec)."""

    KIND: ClassVar[str] = "audio.rejected"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    code: str = ""
    message: str = ""
    chunk_index: int = -1


@dataclass(frozen=True, kw_only=True)
class AudioDrained(Event):
    """The session's audio ended and every utterance in it has been segmented.

    ``utterances`` is how many UtteranceSegmented events the session produced in all,
    so a reader knows how many finals to wait for.
    """

    KIND: ClassVar[str] = "audio.drained"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterances: int = 0
    audio_ms: int = 0


# --- speech segmentation (ingest) --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SpeechStarted(Event):
    """Voice activity began. Times are milliseconds of session audio."""

    KIND: ClassVar[str] = "speech.started"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    utterance_id: str = ""
    index: int = 0
    start_ms: int = 0  # where the utterance's audio starts (a little pre-roll before the voice)
    received_at: float = 0.0  # when the gateway got the audio that showed speech
    onset_ms: int = 0  # the first voiced frame


@dataclass(frozen=True, kw_only=True)
class SpeechWindow(Event):
    """Audio of the utterance so far, while it continues (for live partials)."""

    KIND: ClassVar[str] = "speech.window"
    MAXLEN: ClassVar[int] = 50  # each carries up to INGEST_MAX_UTTERANCE_S of audio; only the newest matters

    utterance_id: str = ""
    index: int = 0
    window_index: int = 0
    start_ms: int = 0
    end_ms: int = 0
    sample_rate: int = 16000
    pcm: bytes = b""  # PCM16 little-endian mono
    received_at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class UtteranceSegmented(Event):
    """A finished utterance: speech up to a pause (or a cap split, or the end)."""

    KIND: ClassVar[str] = "speech.segmented"
    FACT: ClassVar[bool] = True

    utterance_id: str = ""
    index: int = 0
    start_ms: int = 0
    end_ms: int = 0
    sample_rate: int = 16000
    pcm: bytes = b""  # PCM16 little-endian mono, start_ms..end_ms
    reason: str = "pause"  # pause | cap | end
    received_at: float = 0.0  # when the gateway got the audio that ended it
    speech_end_ms: int = 0  # where the voice stopped; end_ms runs on through the pause that ended it


# --- transcription (asr) -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TranscriptPartial(Event):
    """Best-effort live caption: ``committed`` never changes, ``tentative`` may."""

    KIND: ClassVar[str] = "asr.partial"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    utterance_id: str = ""
    index: int = 0
    window_index: int = 0
    committed: str = ""
    tentative: str = ""
    language: str = ""
    audio_end_ms: int = 0


@dataclass(frozen=True, kw_only=True)
class TranscriptFinal(Event):
    """The transcript of one utterance. Empty ``text`` means no speech was found
    (``dropped`` says why), so every utterance gets exactly one final."""

    KIND: ClassVar[str] = "asr.final"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterance_id: str = ""
    index: int = 0
    start_ms: int = 0
    end_ms: int = 0
    text: str = ""
    language: str = ""
    language_probability: float = 0.0
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    dropped: str = ""  # "" | no_speech | hallucination | empty | asr_failed
    asr_ms: int = 0
    model: str = ""
    speech_end_ms: int = 0  # where the voice stopped (end_ms includes the pause after it)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        SessionStarted,
        SessionSettingsChanged,
        SessionEnded,
        AudioChunkReceived,
        AudioRejected,
        AudioDrained,
        SpeechStarted,
        SpeechWindow,
        UtteranceSegmented,
        TranscriptPartial,
        TranscriptFinal,
    )
}
