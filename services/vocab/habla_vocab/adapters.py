"""Where a saved term's context comes from: the event log.

:class:`LogHeardSource` reads the facts of the session a term was saved in, newest first
(a term is usually saved moments after it was heard, so the search stops early): the
turn's final transcript, its newest translation, the speaker's name, and the audio of the
segmented utterance the turn belongs to. The recorder logs ``speech.segmented`` without its
PCM and keeps the audio as Ogg/Opus in ``utterance_audio`` (sessions recorded before that
carry PCM16 in the fact itself); either is read. Besides the log it reads only that table.
"""

from __future__ import annotations

import logging
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

from .audio import decode_opus, slice_pcm
from .errors import ClipFailed

__all__ = ["Heard", "HeardSource", "LogHeardSource"]

log = logging.getLogger("habla.vocab")

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
            audio, audio_start = segment.pcm, segment.start_ms
            if not audio:
                audio, audio_start = self._stored_audio(session_id, parent, rate, segment.start_ms)
            pcm = slice_pcm(audio, rate, audio_start, final.start_ms, final.end_ms)
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

    def _stored_audio(self, session_id: str, utterance_id: str, rate: int, start_ms: int) -> tuple[bytes, int]:
        """The utterance's stored audio as PCM16 at ``rate`` and the session time it starts
        at; no audio when none is stored (deleted by retention) or it does not decode."""
        with connect_pg(self.url) as conn:
            row = conn.execute(
                "SELECT data, start_ms FROM utterance_audio WHERE utterance_id = %s AND session_id = %s",
                (utterance_id, session_id),
            ).fetchone()
        if row is None:
            return b"", start_ms
        try:
            return decode_opus(bytes(row[0]), rate), int(row[1])
        except ClipFailed as e:
            log.warning("no audio for utterance %s: %s", utterance_id, e)
            return b"", start_ms

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
