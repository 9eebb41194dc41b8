"""Where a saved term's context comes from: the event log.

:class:`LogHeardSource` reads the facts of the session a term was saved in, newest first
(a term is usually saved moments after it was heard, so the search stops early): the
turn's final transcript, its newest translation, the speaker's name, and the audio of the
segmented utterance the turn belongs to (``speech.segmented`` carries it as PCM16).
It depends on the event contracts only, not on another service's read models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from habla_common.eventlog import connect_pg
from habla_contracts import (
    Event,
    SpeakerJoined,
    SpeakerRenamed,
    TranscriptFinal,
    TranslationFinal,
    UtteranceSegmented,
    decode,
)

from .audio import slice_pcm

__all__ = ["Heard", "HeardSource", "LogHeardSource"]

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Heard:
    """One speaker turn as it was heard: text, translation, speaker and its audio."""

    utterance_id: str
    text: str
    corrected: str
    translation: str
    speaker: str
    speaker_name: str
    start_ms: int
    end_ms: int
    sample_rate: int = 16000
    pcm: bytes = b""  # PCM16 mono, start_ms..end_ms ("" when the log has no audio for it)


class HeardSource(Protocol):
    def heard(self, session_id: str, utterance_id: str) -> Heard | None:
        """The turn, or None when its final transcript is not in the log (yet)."""
        ...


class LogHeardSource:
    def __init__(self, database_url: str, *, batch: int = 16) -> None:
        self.url = database_url
        self.batch = batch

    def heard(self, session_id: str, utterance_id: str) -> Heard | None:
        final = self._newest(session_id, TranscriptFinal, lambda e: e.utterance_id == utterance_id)
        if final is None:
            return None
        translated = self._newest(session_id, TranslationFinal, lambda e: e.utterance_id == utterance_id)
        name = ""
        if final.speaker:
            renamed = self._newest(session_id, SpeakerRenamed, lambda e: e.speaker == final.speaker)
            joined = self._newest(session_id, SpeakerJoined, lambda e: e.speaker == final.speaker)
            name = (renamed.name if renamed else "") or (joined.label if joined else "")
        parent = final.parent_id or final.utterance_id
        segment = self._newest(session_id, UtteranceSegmented, lambda e: e.utterance_id == parent)
        pcm, rate = b"", 16000
        if segment is not None:
            rate = segment.sample_rate
            pcm = slice_pcm(segment.pcm, rate, segment.start_ms, final.start_ms, final.end_ms)
        return Heard(
            utterance_id=utterance_id,
            text=final.text,
            corrected=translated.corrected if translated else "",
            translation=translated.translation if translated else "",
            speaker=final.speaker,
            speaker_name=name,
            start_ms=final.start_ms,
            end_ms=final.end_ms,
            sample_rate=rate,
            pcm=pcm,
        )

    def _newest(self, session_id: str, cls: type[E], match: Callable[[E], bool]) -> E | None:
        """The newest event of ``cls`` in the session that ``match`` accepts."""
        with connect_pg(self.url) as conn, conn.cursor(name="vocab_heard") as cur:
            cur.itersize = self.batch
            cur.execute(
                "SELECT seq, payload FROM events WHERE session_id = %s AND kind = %s ORDER BY position DESC",
                (session_id, cls.KIND),
            )
            for seq, payload in cur:
                event = decode(cls.KIND, bytes(payload), seq=int(seq))
                if isinstance(event, cls) and match(event):
                    return event
        return None
