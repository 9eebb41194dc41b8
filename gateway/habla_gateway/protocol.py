"""The socket protocol's client frames: parsing and validation (pure, no I/O).

Text frames are JSON objects with a ``type``; binary frames are audio. Every refusal
is a :class:`ProtocolError` whose ``code`` is one of the constants below, sent back
as ``{"type": "error", "code": ..., "message": ...}``. See ``gateway/PROTOCOL.md``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from habla_contracts import AUDIO_CODECS, DIRECTIONS, MODES, SPEAK_SETTINGS

from .errors import ProtocolError

__all__ = [
    "ALREADY_STARTED",
    "BAD_JSON",
    "BAD_PCM_FRAME",
    "BAD_VALUE",
    "EBML_MAGIC",
    "EMPTY_FRAME",
    "FRAME_TOO_LARGE",
    "INTERNAL",
    "MAX_SPEAKER_NAME",
    "MAX_TOPIC",
    "NO_SESSION",
    "PCM_SAMPLE_RATES",
    "RESUME_GAP",
    "SESSION_ENDED",
    "SPEAKER_ID",
    "UNAUTHORIZED",
    "UNAVAILABLE",
    "UNDECODABLE_AUDIO",
    "UNKNOWN_TYPE",
    "UNSUPPORTED_CODEC",
    "UNSUPPORTED_SAMPLE_RATE",
    "WEBM_SAMPLE_RATE",
    "ClientMessage",
    "Ping",
    "RenameSpeaker",
    "SessionEnd",
    "SessionStart",
    "SettingsChange",
    "check_audio",
    "parse_rename",
    "parse_save",
    "parse_settings",
    "parse_text",
    "resolve_sample_rate",
    "valid_session_id",
]

BAD_JSON = "bad_json"
UNKNOWN_TYPE = "unknown_type"
BAD_VALUE = "bad_value"
UNSUPPORTED_CODEC = "unsupported_codec"
UNSUPPORTED_SAMPLE_RATE = "unsupported_sample_rate"
FRAME_TOO_LARGE = "frame_too_large"
EMPTY_FRAME = "empty_frame"
BAD_PCM_FRAME = "bad_pcm_frame"
UNDECODABLE_AUDIO = "undecodable_audio"
NO_SESSION = "no_session"
ALREADY_STARTED = "already_started"
SESSION_ENDED = "session_ended"
RESUME_GAP = "resume_gap"
UNAUTHORIZED = "unauthorized"
UNAVAILABLE = "unavailable"
INTERNAL = "internal"

EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # first bytes of every WebM/Matroska file
PCM_SAMPLE_RATES = (16000,)
WEBM_SAMPLE_RATE = 48000  # Opus always decodes at 48 kHz; the container is authoritative

_SESSION_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_ENTRY_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")
_MAX_TITLE = 200
MAX_TOPIC = 200


@dataclass(frozen=True)
class SessionStart:
    """``session.start``. ``None`` means "not given": a new session takes the defaults,
    a resumed one keeps what it had."""

    session_id: str | None = None
    last_event_id: str | None = None
    direction: str | None = None
    mode: str | None = None
    codec: str | None = None
    sample_rate: int | None = None
    next_chunk_index: int | None = None
    title: str = ""
    source: str = "live"
    speak: str | None = None
    topic: str | None = None


@dataclass(frozen=True)
class SettingsChange:
    direction: str | None = None
    mode: str | None = None
    speak: str | None = None
    topic: str | None = None


@dataclass(frozen=True)
class SessionEnd:
    reason: str = "client"


@dataclass(frozen=True)
class Ping:
    pass


TERM_KINDS = ("idiom", "word", "phrase", "correction")
_MAX_TERM = 300


@dataclass(frozen=True)
class SaveTerm:
    """The user saved something to study (an idiom card's Save button, a word)."""

    term_kind: str
    text: str
    meaning: str = ""
    literal: str = ""
    example: str = ""
    utterance_id: str = ""
    language: str = "es"


SPEAKER_ID = re.compile(r"^S[0-9]{1,3}$")
MAX_SPEAKER_NAME = 60


@dataclass(frozen=True)
class RenameSpeaker:
    """The user named a speaker of the session ("S2" is "Profesora García")."""

    speaker: str
    name: str
    remember: bool = False
    is_user: bool = False


ClientMessage = SessionStart | SettingsChange | SessionEnd | Ping | SaveTerm | RenameSpeaker


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ProtocolError(BAD_VALUE, f"{key!r} must be a string", field=key)
    return v


def _opt_int(obj: dict[str, Any], key: str, minimum: int = 0) -> int | None:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ProtocolError(BAD_VALUE, f"{key!r} must be an integer >= {minimum}", field=key)
    return v


def _choice(obj: dict[str, Any], key: str, allowed: tuple[str, ...], code: str = BAD_VALUE) -> str | None:
    v = _opt_str(obj, key)
    if v is not None and v not in allowed:
        raise ProtocolError(code, f"{key!r} must be one of {', '.join(allowed)}; got {v!r}", field=key)
    return v


def _session_start(obj: dict[str, Any]) -> SessionStart:
    session_id = _opt_str(obj, "session_id") or None
    if session_id is not None and not _SESSION_ID.match(session_id):
        raise ProtocolError(
            BAD_VALUE, "'session_id' must be 1-100 letters, digits, '.', '_' or '-'", field="session_id"
        )
    last_event_id = _opt_str(obj, "last_event_id") or None
    if last_event_id is not None and not _ENTRY_ID.match(last_event_id):
        raise ProtocolError(
            BAD_VALUE, "'last_event_id' must be an event id as received ('<ms>-<n>')", field="last_event_id"
        )
    title = _opt_str(obj, "title") or ""
    return SessionStart(
        session_id=session_id,
        last_event_id=last_event_id,
        direction=_choice(obj, "direction", DIRECTIONS),
        mode=_choice(obj, "mode", MODES),
        codec=_choice(obj, "codec", AUDIO_CODECS, UNSUPPORTED_CODEC),
        sample_rate=_opt_int(obj, "sample_rate", 1),
        next_chunk_index=_opt_int(obj, "next_chunk_index"),
        title=" ".join(title.split())[:_MAX_TITLE],
        source=_choice(obj, "source", ("live", "file")) or "live",
        speak=_choice(obj, "speak", SPEAK_SETTINGS),
        topic=_topic(obj),
    )


def valid_session_id(value: object) -> bool:
    return isinstance(value, str) and bool(_SESSION_ID.match(value))


def _topic(obj: dict[str, Any]) -> str | None:
    """Practice mode's topic: one line of at most MAX_TOPIC characters ("" clears it)."""
    raw = _opt_str(obj, "topic")
    if raw is None:
        return None
    topic = " ".join(raw.split())
    if len(topic) > MAX_TOPIC:
        raise ProtocolError(
            BAD_VALUE, f"'topic' is {len(topic)} characters; at most {MAX_TOPIC}", field="topic", limit=MAX_TOPIC
        )
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in topic):
        raise ProtocolError(BAD_VALUE, "'topic' must not contain control characters", field="topic")
    return topic


def parse_settings(obj: dict[str, Any]) -> SettingsChange:
    """A ``settings`` frame's fields (the speech API's form fields use it too)."""
    return SettingsChange(
        direction=_choice(obj, "direction", DIRECTIONS),
        mode=_choice(obj, "mode", MODES),
        speak=_choice(obj, "speak", SPEAK_SETTINGS),
        topic=_topic(obj),
    )


def _settings(obj: dict[str, Any]) -> SettingsChange:
    msg = parse_settings(obj)
    if msg == SettingsChange():
        raise ProtocolError(BAD_VALUE, "settings needs 'direction', 'mode', 'speak' and/or 'topic'")
    return msg


def _session_end(obj: dict[str, Any]) -> SessionEnd:
    reason = _opt_str(obj, "reason") or "client"
    return SessionEnd(reason=reason[:100])


def _ping(_obj: dict[str, Any]) -> Ping:
    return Ping()


def _save(obj: dict[str, Any]) -> SaveTerm:
    kind = _choice(obj, "kind", TERM_KINDS)
    text = " ".join((_opt_str(obj, "text") or "").split())
    if kind is None or not text:
        raise ProtocolError(BAD_VALUE, f"save needs 'kind' ({', '.join(TERM_KINDS)}) and a non-empty 'text'")
    fields = {k: " ".join((_opt_str(obj, k) or "").split())[:_MAX_TERM] for k in ("meaning", "literal", "example")}
    return SaveTerm(
        term_kind=kind,
        text=text[:_MAX_TERM],
        utterance_id=(_opt_str(obj, "utterance_id") or "")[:100],
        language=_choice(obj, "language", ("es", "en")) or "es",
        **fields,
    )


def parse_save(obj: dict[str, Any]) -> SaveTerm:
    """A saved term from a REST body (the same fields as the ``save`` frame)."""
    return _save(obj)


def _opt_bool(obj: dict[str, Any], key: str) -> bool:
    v = obj.get(key)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ProtocolError(BAD_VALUE, f"{key!r} must be true or false", field=key)
    return v


def parse_rename(obj: dict[str, Any]) -> RenameSpeaker:
    """``{"speaker": "S2", "name": ..., "remember"?: bool, "is_user"?: bool}`` (the socket's
    ``rename`` frame and the REST rename share it)."""
    speaker = obj.get("speaker")
    if not isinstance(speaker, str) or not SPEAKER_ID.match(speaker):
        raise ProtocolError(
            BAD_VALUE,
            f"'speaker' must be a speaker id like \"S2\" (S and 1-3 digits); got {speaker!r:.40}",
            field="speaker",
        )
    raw = obj.get("name")
    if raw is None:
        raise ProtocolError(BAD_VALUE, "rename needs a 'name'", field="name")
    if not isinstance(raw, str):
        raise ProtocolError(BAD_VALUE, "'name' must be a string", field="name")
    name = " ".join(raw.split())
    if not name:
        raise ProtocolError(BAD_VALUE, "'name' must not be empty", field="name")
    if len(name) > MAX_SPEAKER_NAME:
        raise ProtocolError(
            BAD_VALUE,
            f"'name' is {len(name)} characters; at most {MAX_SPEAKER_NAME}",
            field="name",
            limit=MAX_SPEAKER_NAME,
        )
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):  # NUL etc. cannot be stored
        raise ProtocolError(BAD_VALUE, "'name' must not contain control characters", field="name")
    return RenameSpeaker(
        speaker=speaker, name=name, remember=_opt_bool(obj, "remember"), is_user=_opt_bool(obj, "is_user")
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], ClientMessage]] = {
    "session.start": _session_start,
    "settings": _settings,
    "session.end": _session_end,
    "ping": _ping,
    "save": _save,
    "rename": parse_rename,
}


def parse_text(text: str, max_bytes: int) -> ClientMessage:
    """Parse one text frame; raises :class:`ProtocolError` with a code on any problem."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError(FRAME_TOO_LARGE, f"text frame is over {max_bytes} bytes", limit=max_bytes)
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ProtocolError(BAD_JSON, f"text frames must be JSON objects: {e}") from e
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_JSON, "text frames must be JSON objects with a 'type'")
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {kind!r}; expected one of {', '.join(_PARSERS)}")
    return parser(obj)


def resolve_sample_rate(codec: str, requested: int | None) -> int:
    """The sample rate audio events of this codec carry; refuses what pcm16 cannot be."""
    if codec == "webm-opus":
        return WEBM_SAMPLE_RATE
    rate = PCM_SAMPLE_RATES[0] if requested is None else requested
    if rate not in PCM_SAMPLE_RATES:
        raise ProtocolError(
            UNSUPPORTED_SAMPLE_RATE,
            f"pcm16 audio must be {' or '.join(map(str, PCM_SAMPLE_RATES))} Hz mono; got {rate}",
            field="sample_rate",
        )
    return rate


def check_audio(data: bytes, codec: str, *, max_bytes: int, stream_open: bool) -> bool:
    """Validate one binary frame; returns True when it starts a new WebM stream.

    ``stream_open`` says whether a WebM stream has begun (its header was received), so
    a continuation chunk is acceptable.
    """
    if len(data) > max_bytes:
        raise ProtocolError(
            FRAME_TOO_LARGE,
            f"audio frame of {len(data)} bytes is over the {max_bytes}-byte limit; "
            "send smaller chunks (about 250 ms each)",
            limit=max_bytes,
        )
    if not data:
        raise ProtocolError(EMPTY_FRAME, "empty audio frame")
    if codec == "pcm16":
        if len(data) % 2:
            raise ProtocolError(BAD_PCM_FRAME, "pcm16 frames must hold whole 16-bit samples (an even byte count)")
        return False
    if data.startswith(EBML_MAGIC):
        return True
    if not stream_open:
        raise ProtocolError(
            UNDECODABLE_AUDIO,
            "a webm-opus stream must begin with the WebM (EBML) header; send the recorder's first chunk first",
        )
    return False
