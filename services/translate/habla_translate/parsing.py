"""Reading the model's answers, leniently, and applying its corrections carefully.

Small models wrap JSON in code fences, stop mid-string when ``max_tokens`` runs out,
or leave trailing commas. :func:`parse_final` recovers what it can and raises
:class:`~habla_translate.errors.OutputInvalid` only when no translation can be found.

A correction is applied only when it is plausibly a misheard word: the heard text
occurs in the line, is short, and sounds like the fix. A model that "corrects" a line
into something else entirely is ignored rather than trusted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from .errors import OutputInvalid

__all__ = [
    "Correction",
    "FinalAnswer",
    "apply_corrections",
    "clean_line",
    "load_json_object",
    "parse_final",
    "strip_glosses",
]

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_TRANSLATION = re.compile(r'"translation"\s*:\s*"((?:[^"\\]|\\.)*)', re.DOTALL)
MAX_HEARD_WORDS = 4
MAX_FIXED_WORDS = 6
MIN_SOUND_ALIKE = 45.0  # rapidfuzz ratio between what was heard and the fix


@dataclass(frozen=True)
class Correction:
    heard: str
    fixed: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"heard": self.heard, "fixed": self.fixed, "reason": self.reason}


@dataclass(frozen=True)
class FinalAnswer:
    translation: str
    corrections: list[Correction] = field(default_factory=list)
    idioms: list[dict[str, str]] = field(default_factory=list)  # {phrase, canonical, literal, meaning}
    complete: bool = True  # False when recovered from a cut or broken answer


_GLOSS = re.compile(r"\s*\[=[^\]]*\]?")


def strip_glosses(text: str) -> str:
    """Drop an inline idiom gloss ("[= to get one's act together]") the model copied."""
    return " ".join(_GLOSS.sub("", text).split())


def clean_line(text: str) -> str:
    """A plain-text answer as one tidy line: no quotes, labels or trailing chatter."""
    line = text.strip().split("\n")[0].strip()
    line = re.sub(r"^(English|Spanish|Translation|Traducción)\s*:\s*", "", line, flags=re.IGNORECASE)
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'“”":
        line = line[1:-1]
    return strip_glosses(line.strip().strip("“”").strip())


def parse_final(text: str) -> FinalAnswer:
    body = _FENCE.sub("", text.strip())
    start = body.find("{")
    data = _load(body[start:]) if start >= 0 else None
    if isinstance(data, dict) and isinstance(data.get("translation"), str) and data["translation"].strip():
        return FinalAnswer(
            translation=strip_glosses(data["translation"]),
            corrections=_corrections(data.get("corrections")),
            idioms=_idioms(data.get("idioms")),
        )
    m = _TRANSLATION.search(body)
    if m and m.group(1).strip():
        try:
            translation = json.loads(f'"{m.group(1)}"')
        except ValueError:
            translation = m.group(1)
        return FinalAnswer(translation=strip_glosses(str(translation)), complete=False)
    if start < 0 and body.strip() and not body.lstrip().startswith(("{", "[")):
        return FinalAnswer(translation=clean_line(body), complete=False)  # answered in plain text
    raise OutputInvalid(f"no translation in the model's answer: {text[:200]!r}")


def load_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a model's answer, recovered leniently (code fences, trailing
    commas, an answer cut by max_tokens); None when there is none."""
    body = _FENCE.sub("", text.strip())
    start = body.find("{")
    data = _load(body[start:]) if start >= 0 else None
    return data if isinstance(data, dict) else None


def _load(candidate: str) -> Any:
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate), _close(candidate)):
        try:
            return json.JSONDecoder().raw_decode(attempt)[0]
        except ValueError:
            continue
    return None


def _close(candidate: str) -> str:
    """Close an answer cut by max_tokens: an open string, then open arrays and objects."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in candidate:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    tail = ('"' if in_string else "") + "".join(reversed(stack))
    return _TRAILING_COMMA.sub(r"\1", candidate.rstrip().rstrip(",") + tail)


def _corrections(value: Any) -> list[Correction]:
    out: list[Correction] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and isinstance(item.get("heard"), str) and isinstance(item.get("fixed"), str):
            out.append(Correction(item["heard"].strip(), item["fixed"].strip(), str(item.get("reason", "")).strip()))
    return out


def _idioms(value: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and str(item.get("phrase", "")).strip():
            out.append({k: str(item.get(k, "")).strip() for k in ("phrase", "canonical", "literal", "meaning")})
    return out


def apply_corrections(source: str, corrections: list[Correction]) -> tuple[str, list[Correction]]:
    """``source`` with the plausible corrections applied, and the ones applied."""
    text, applied = source, []
    for c in corrections:
        if not c.heard or not c.fixed or c.heard.lower() == c.fixed.lower():
            continue
        if len(c.heard.split()) > MAX_HEARD_WORDS or len(c.fixed.split()) > MAX_FIXED_WORDS:
            continue
        if fuzz.ratio(c.heard.lower(), c.fixed.lower()) < MIN_SOUND_ALIKE:
            continue
        m = re.search(rf"(?<!\w){re.escape(c.heard)}(?!\w)", text, flags=re.IGNORECASE)
        if m is None:
            continue
        text = text[: m.start()] + c.fixed + text[m.end() :]
        applied.append(c)
    return text, applied
