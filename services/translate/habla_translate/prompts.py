"""What the model is asked, in an order that keeps llama.cpp's prompt cache warm.

Every request of a direction starts with the same system prompt, then the session's
slowly changing context (topic summary, earlier lines), then the line itself, and only
then what differs between the kinds of request (idiom hints and the JSON answer for a
final; "translation only" for a live partial). A final whose text equals the last
partial's therefore reuses everything the partial already evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .idioms import IdiomHit
from .llm import Message

__all__ = [
    "FINAL_SCHEMA",
    "LANGUAGE_NAMES",
    "ContextLine",
    "GlossaryItem",
    "Request",
    "annotate",
    "final_messages",
    "partial_messages",
    "retry_messages",
    "summary_messages",
]

LANGUAGE_NAMES = {"es": "Spanish", "en": "English"}

FINAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "corrections": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "heard": {"type": "string"},
                    "fixed": {"type": "string"},
                    "reason": {"type": "string"},
                },
                "required": ["heard", "fixed", "reason"],
            },
        },
        "translation": {"type": "string"},
        "idioms": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "phrase": {"type": "string"},
                    "canonical": {"type": "string"},
                    "literal": {"type": "string"},
                    "meaning": {"type": "string"},
                },
                "required": ["phrase", "canonical", "literal", "meaning"],
            },
        },
    },
    "required": ["corrections", "translation", "idioms"],
}


@dataclass(frozen=True)
class ContextLine:
    speaker: str
    text: str


@dataclass(frozen=True)
class GlossaryItem:
    term: str
    meaning: str


@dataclass(frozen=True)
class Request:
    """One line to translate with everything the prompt may carry."""

    text: str
    source: str = "es"
    target: str = "en"
    speaker: str = ""
    context: Sequence[ContextLine] = ()
    summary: str = ""
    hints: Sequence[IdiomHit] = ()
    glossary: Sequence[GlossaryItem] = ()


def system_prompt(source: str, target: str) -> str:
    src, tgt = LANGUAGE_NAMES[source], LANGUAGE_NAMES[target]
    return (
        f"You are Habla, a professional {src}-to-{tgt} interpreter for a language learner.\n"
        f"Rules:\n"
        f"1. Translate what the speaker means into natural, fluent {tgt}, the way a native speaker "
        f"would say it. Never answer in {src}; never copy the {src} text.\n"
        f"2. Idioms and set phrases are translated by their meaning, never word for word. "
        f"Idiom hints from Habla's database are correct: use their meaning.\n"
        f"3. The {src} text comes from speech recognition and may contain a misheard word. Use "
        f"the conversation so far to understand it.\n"
        f"4. Keep names, numbers and the speaker's tone. Do not add explanations."
    )


def _shared_prefix(req: Request) -> list[str]:
    """The parts of the user message that partial and final requests share, stable first."""
    parts: list[str] = []
    if req.summary:
        parts.append(f"Topic of the conversation: {req.summary}")
    if req.context:
        lines = "\n".join(f"> {c.speaker + ': ' if c.speaker else ''}{c.text}" for c in req.context)
        parts.append(f"Earlier in the conversation (context only, already translated; never repeat it):\n{lines}")
    who = f" ({req.speaker})" if req.speaker else ""
    tgt = LANGUAGE_NAMES[req.target]
    if req.hints:
        parts.append(
            f"Translate this line{who} into {tgt} (the meaning of each idiom is given in brackets: translate "
            f"that meaning, never the idiom's words):\n{annotate(req.text, req.hints)}"
        )
    else:
        parts.append(f"Translate this line{who} into {tgt}:\n{req.text}")
    return parts


def annotate(text: str, hints: Sequence[IdiomHit]) -> str:
    """The line with each idiom's meaning right after it: "ponerse las pilas [= to get
    one's act together]". Small models follow an inline gloss far more reliably than a
    separate list of hints (measured on the bundled 1.5B model)."""
    out, last = [], 0
    for h in sorted(hints, key=lambda h: h.start):
        if h.start < last:
            continue
        meaning = h.entry.meaning.split(";")[0].strip()
        out += [text[last : h.end], f" [= {meaning}]"]
        last = h.end
    out.append(text[last:])
    return "".join(out)


def _hints(req: Request) -> list[str]:
    parts: list[str] = []
    if req.glossary:
        lines = "\n".join(f"- {g.term}: {g.meaning}" for g in req.glossary)
        parts.append(f"The learner's glossary:\n{lines}")
    return parts


def final_messages(req: Request) -> list[Message]:
    tgt = LANGUAGE_NAMES[req.target]
    task = (
        f"Answer in JSON: corrections (only clearly misheard words: heard, fixed, reason; "
        f"usually none), translation (natural {tgt}), idioms (other idioms in the line that "
        f"were not hinted: phrase as said, canonical dictionary form, literal gloss, meaning; usually none)."
    )
    user = "\n\n".join([*_shared_prefix(req), *_hints(req), task])
    return [Message("system", system_prompt(req.source, req.target)), Message("user", user)]


def partial_messages(req: Request) -> list[Message]:
    """A live line: translation only, no analysis. The caller prefills what was shown."""
    tgt = LANGUAGE_NAMES[req.target]
    user = "\n\n".join([*_shared_prefix(req), f"Give only the {tgt} translation of this unfinished line."])
    return [Message("system", system_prompt(req.source, req.target)), Message("user", user)]


def express_messages(req: Request) -> list[Message]:
    """A final that is late: the translation alone, in one plain call (the catch-up path)."""
    tgt = LANGUAGE_NAMES[req.target]
    user = "\n\n".join([*_shared_prefix(req), *_hints(req), f"Give only the natural {tgt} translation of this line."])
    return [Message("system", system_prompt(req.source, req.target)), Message("user", user)]


def retry_messages(req: Request, previous: str) -> list[Message]:
    """The stricter second try after an answer in the wrong language or a copy."""
    src, tgt = LANGUAGE_NAMES[req.source], LANGUAGE_NAMES[req.target]
    user = "\n\n".join(
        [
            *_shared_prefix(req),
            *_hints(req),
            f'Your previous answer "{previous}" was not {tgt}. Translate the line into {tgt} now. '
            f"Every word of the answer must be {tgt}; no {src} words. Answer with the translation only.",
        ]
    )
    return [Message("system", system_prompt(req.source, req.target)), Message("user", user)]


def summary_messages(req: Request, lines: Sequence[ContextLine]) -> list[Message]:
    """Ask for a one-sentence topic summary (in English, for the prompt's context)."""
    text = "\n".join(f"{c.speaker or '-'}: {c.text}" for c in lines)
    old = f"Summary so far: {req.summary}\n\n" if req.summary else ""
    user = (
        f"{old}Recent lines:\n{text}\n\n"
        "In one short English sentence (at most 25 words), say what this conversation is about "
        "and who is talking. Answer with the sentence only."
    )
    return [Message("system", system_prompt(req.source, req.target)), Message("user", user)]
