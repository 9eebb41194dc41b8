"""What the practice partner's model is asked, stable parts first for the prompt cache.

The same system prompt and two example turns start every practice prompt (they never
change, so llama.cpp keeps them evaluated); then the dialogue so far as chat turns (his
line, the answer's JSON), which only grows between pages; last the new line with what
may change per turn: the topic, his level, and the meaning of any idiom in his line
(glossed inline as for the translator: "me importa un pepino [= I couldn't care less]").
A small model answers a chat turn far better than a transcript pasted into one message,
which it tends to copy from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .idioms import IdiomHit
from .llm import Message
from .prompts import annotate

__all__ = [
    "LEVEL_STYLE",
    "TUTOR_SCHEMA",
    "Turn",
    "TutorRequest",
    "answer_json",
    "retry_messages",
    "system_prompt",
    "tutor_messages",
]

MAX_SAID_CHARS = 60
MAX_WHY_CHARS = 120
MAX_REPLY_CHARS = 320

TUTOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "corrections": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "said": {"type": "string", "maxLength": MAX_SAID_CHARS},
                    "correct": {"type": "string", "maxLength": MAX_SAID_CHARS},
                    "why": {"type": "string", "maxLength": MAX_WHY_CHARS},
                },
                "required": ["said", "correct", "why"],
            },
        },
        "reply": {"type": "string", "maxLength": MAX_REPLY_CHARS},
        "english": {"type": "string", "maxLength": MAX_REPLY_CHARS},  # the key cues the language
    },
    "required": ["corrections", "reply", "english"],
}

# how to speak at each band (CEFR), in the words a small model follows
LEVEL_STYLE = {
    "A1": "very short, simple sentences; present tense; only the most common words",
    "A2": "short, simple sentences; present and simple past; common everyday words",
    "B1": "clear everyday Spanish; past and future tenses; common words",
    "B2": "natural Spanish with some idioms and varied tenses",
    "C1": "rich, natural Spanish as between native speakers",
    "C2": "rich, natural Spanish as between native speakers, idioms welcome",
}


@dataclass(frozen=True)
class Turn:
    """One exchange: the learner's line and the partner's answer to it (as the JSON the
    model is shown, so every later prompt renders the turn the same way)."""

    learner: str
    answer: str


@dataclass(frozen=True)
class TutorRequest:
    line: str  # what the learner just said
    level: str = "A2"
    topic: str = ""
    history: Sequence[Turn] = ()
    hints: Sequence[IdiomHit] = ()  # idioms of the database in his line, glossed inline


def answer_json(corrections: Sequence[dict[str, str]], reply: str, english: str) -> str:
    """An answer as the model writes it (the keys of :data:`TUTOR_SCHEMA`)."""
    return json.dumps({"corrections": list(corrections), "reply": reply, "english": english}, ensure_ascii=False)


def system_prompt() -> str:
    return (
        "You are Habla, a friendly Spanish conversation partner for an English-speaking learner. "
        "You chat with him in Spanish so he practises speaking. You are not him: never repeat his sentence "
        "as if it were yours.\n"
        "Rules:\n"
        "1. reply: in Spanish only, 1 to 3 short sentences, at the learner's level. React to what he just said, "
        "stay on the topic, and end with one new question that keeps the conversation going.\n"
        "2. Be warm and natural, like a friend. Never lecture and never explain grammar in the reply.\n"
        "3. corrections: only real mistakes in his line (wrong verb form, wrong gender or agreement, wrong "
        "word). said = his wrong words exactly as in his line; correct = the right words; why = a short English "
        "reason. Never correct accents, punctuation or correct Spanish. No mistakes: an empty list.\n"
        "4. english: your reply in English."
    )


def _turn_message(line: str, topic: str, level: str, hints: Sequence[IdiomHit] = ()) -> str:
    topic = topic.strip() or "free conversation (follow his lead)"
    style = LEVEL_STYLE.get(level, LEVEL_STYLE["A2"])
    return (
        f"Topic: {topic}. His level: {level} ({style}).\n\n"
        f"He says: «{annotate(line, hints) if hints else line}»\n\n"
        "Answer in JSON: corrections (his mistakes, usually none), reply (Spanish), english."
    )


# two example turns: the answer's form, a reaction and a question, one correction
_EXAMPLES = (
    (
        _turn_message("Yo trabajo en una oficina en el centro.", "el trabajo", "A2"),
        answer_json(
            [],
            "¡Qué bien! El centro es muy bonito. ¿Cómo vas a la oficina, en metro o en autobús?",
            "How nice! The city centre is very pretty. How do you get to the office, by metro or by bus?",
        ),
    ),
    (
        _turn_message("Normalmente yo va en metro, es muy rápido.", "el trabajo", "A2"),
        answer_json(
            [{"said": "yo va", "correct": "yo voy", "why": "ir with yo is voy"}],
            "Sí, el metro es muy práctico. ¿A qué hora empiezas a trabajar?",
            "Yes, the metro is very practical. What time do you start work?",
        ),
    ),
)


def _messages(req: TutorRequest, last: str) -> list[Message]:
    messages = [Message("system", system_prompt())]
    for user, answer in _EXAMPLES:
        messages += [Message("user", user), Message("assistant", answer)]
    for turn in req.history:
        messages += [Message("user", f"He says: «{turn.learner}»"), Message("assistant", turn.answer)]
    messages.append(Message("user", last))
    return messages


def tutor_messages(req: TutorRequest) -> list[Message]:
    return _messages(req, _turn_message(req.line, req.topic, req.level, req.hints))


def retry_messages(req: TutorRequest, previous: str) -> list[Message]:
    """The stricter second try after a reply that was not Spanish."""
    note = (
        f'\n\nYour first reply "{previous}" was not Spanish or repeated his words. Write a new reply: every '
        "word in Spanish, your own words, ending with a question."
    )
    return _messages(req, _turn_message(req.line, req.topic, req.level, req.hints) + note)
