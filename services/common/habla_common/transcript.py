"""Transcript formatting: Markdown and SRT from a list of lines (pure functions).

Used by the gateway's transcript endpoint and by ``habla replay``; neither imports the
other, so the formatting lives here. Lines whose ``text`` is empty (an utterance with
no speech, or one not transcribed yet) are left out of both formats. A line's
``speaker`` is the name to show (the one the user gave the speaker, else its label such
as "Speaker 2"); lines without one show no speaker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Line", "clock", "line_from_mapping", "srt_time", "to_markdown", "to_srt"]


@dataclass(frozen=True)
class Line:
    """One utterance (or one speaker's turn of it) of a transcript. Times are milliseconds
    of session audio; ``speaker`` is the display name (None: not shown)."""

    start_ms: int
    end_ms: int
    text: str
    language: str = ""
    speaker: str | None = None
    translation: str | None = None
    idioms: Sequence[Any] = field(default_factory=list)


def line_from_mapping(row: Mapping[str, Any]) -> Line:
    """A :class:`Line` from a dict with ``start_ms``, ``end_ms``, ``text`` (others optional).

    The speaker shown is ``speaker_name`` (as the gateway's JSON transcript has it) or else
    ``speaker``."""
    speaker = row.get("speaker_name") or row.get("speaker")
    return Line(
        start_ms=int(row.get("start_ms") or 0),
        end_ms=int(row.get("end_ms") or 0),
        text=str(row.get("text") or ""),
        language=str(row.get("language") or ""),
        speaker=str(speaker) if speaker else None,
        translation=row.get("translation"),
        idioms=list(row.get("idioms") or []),
    )


def clock(ms: int) -> str:
    """``HH:MM:SS`` for a time in milliseconds."""
    s = max(0, int(ms)) // 1000
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def srt_time(ms: int) -> str:
    """``HH:MM:SS,mmm`` (the SRT timestamp format)."""
    ms = max(0, int(ms))
    return f"{clock(ms)},{ms % 1000:03d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _md_name(name: str) -> str:
    """A speaker's name (typed by the user) as literal Markdown text."""
    return _MD_SPECIAL.sub(r"\\\1", _one_line(name))


def _idiom_label(idiom: Any) -> str:
    if isinstance(idiom, Mapping):
        phrase = idiom.get("phrase") or idiom.get("expression") or idiom.get("idiom") or ""
        meaning = idiom.get("meaning") or idiom.get("real_meaning") or ""
        return f"*{phrase}*: {meaning}" if meaning else f"*{phrase}*"
    return f"*{idiom}*"


def _spoken(lines: Iterable[Line]) -> list[Line]:
    return [ln for ln in lines if ln.text and ln.text.strip()]


def to_markdown(lines: Iterable[Line], title: str = "Transcript") -> str:
    """A bilingual Markdown transcript: one paragraph per utterance, translation quoted."""
    out = [f"# {_one_line(title) or 'Transcript'}", ""]
    spoken = _spoken(lines)
    if not spoken:
        out += ["*(no speech)*", ""]
    for ln in spoken:
        who = f" **{_md_name(ln.speaker)}:**" if ln.speaker and ln.speaker.strip() else ""
        out.append(f"`{clock(ln.start_ms)}`{who} {_one_line(ln.text)}")
        if ln.translation:
            out += ["", f"> {_one_line(ln.translation)}"]
        for idiom in ln.idioms:
            out += ["", f"- {_idiom_label(idiom)}"]
        out.append("")
    return "\n".join(out)


def to_srt(lines: Iterable[Line]) -> str:
    """SubRip subtitles: the source text, with the translation as a second line."""
    cues = []
    for n, ln in enumerate(_spoken(lines), start=1):
        end = ln.end_ms if ln.end_ms > ln.start_ms else ln.start_ms + 1000
        text = _one_line(ln.text)
        if ln.speaker and ln.speaker.strip():
            text = f"{_one_line(ln.speaker)}: {text}"
        body = [text] + ([_one_line(ln.translation)] if ln.translation else [])
        cues.append("\n".join([str(n), f"{srt_time(ln.start_ms)} --> {srt_time(end)}", *body]))
    return "\n\n".join(cues) + ("\n" if cues else "")
