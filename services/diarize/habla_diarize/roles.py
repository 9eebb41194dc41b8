"""Classroom roles: who seems to be teaching.

Evidence per speaker, from the final transcripts of the session:

* **talk share**: teachers talk most (share of all transcribed speech time);
* **teaching cues**: instructions and feedback a teacher gives ("repitan", "muy bien",
  "se dice", "abran el libro", "página", "otra vez", "¿entienden?") counted per utterance;
* **student cues**: what learners say to a teacher ("profe", "no entiendo", "¿cómo se
  dice...?", "¿puede repetir?");
* **questions**: teachers ask most of the questions in a lesson.

The instructor is the speaker with the highest score once there are two speakers and
enough utterances, when it leads the next one by a margin; everyone else is a student. A
suggestion is an event the user sees and can ignore; it is re-issued only when it changes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RoleStats", "Suggestion", "suggest_roles"]

MIN_UTTERANCES = 4  # finals with a speaker before any suggestion
MARGIN = 0.1  # the instructor's score must lead the runner-up's by this much

_TEACHER = re.compile(
    r"\b(repit[ae]n?|repite|repitamos|muy bien|bien hecho|excelente|exacto|correcto|se dice|no se dice|"
    r"mejor dicho|escuch(?:en|a|emos)|abran|abre|lean|lee|escriban|escribe|pasen|pasa|fijense|fijate|"
    r"presten atencion|atencion|pagina|ejercicio|tarea|deberes|ahora vamos|vamos a (?:ver|leer|practicar|empezar)|"
    r"entienden|entendido|alguien sabe|quien sabe|otra vez|pronuncia|conjuga|traduce|traduzcan|"
    r"la respuesta|casi|intentalo|intentenlo|hoy vamos|la clase)\b"
)
_STUDENT = re.compile(
    r"\b(profe|profesora?|maestra?|no entiendo|no entendi|como se dice|que significa|puede repetir|"
    r"puedes repetir|mas despacio|perdon|disculpe|una pregunta|tengo una pregunta|no se)\b"
)
_QUESTION_START = re.compile(r"^(que|como|cuando|donde|por que|quien|quienes|cual|cuales|cuanto|cuantos|cuanta)\b")


def _fold(text: str) -> str:
    """Lowercase without accents, so cues match however Whisper spelled them."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


@dataclass
class RoleStats:
    """Running evidence for one session: per speaker talk time and cue counts."""

    talk_ms: dict[str, int] = field(default_factory=dict)
    utterances: dict[str, int] = field(default_factory=dict)
    teacher_cues: dict[str, int] = field(default_factory=dict)
    student_cues: dict[str, int] = field(default_factory=dict)
    questions: dict[str, int] = field(default_factory=dict)
    suggested: dict[str, str] = field(default_factory=dict)  # speaker -> role last suggested

    def add(self, speaker: str, text: str, duration_ms: int) -> None:
        if not speaker or not text.strip():
            return
        folded = _fold(text)
        self.talk_ms[speaker] = self.talk_ms.get(speaker, 0) + max(0, duration_ms)
        self.utterances[speaker] = self.utterances.get(speaker, 0) + 1
        self.teacher_cues[speaker] = self.teacher_cues.get(speaker, 0) + len(_TEACHER.findall(folded))
        self.student_cues[speaker] = self.student_cues.get(speaker, 0) + len(_STUDENT.findall(folded))
        asks = "?" in text or bool(_QUESTION_START.match(folded.lstrip("¿¡ ")))
        self.questions[speaker] = self.questions.get(speaker, 0) + int(asks)

    def to_state(self) -> dict[str, Any]:
        return {
            "talk_ms": self.talk_ms,
            "utterances": self.utterances,
            "teacher_cues": self.teacher_cues,
            "student_cues": self.student_cues,
            "questions": self.questions,
            "suggested": self.suggested,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> RoleStats:
        return cls(**{k: dict(d.get(k, {})) for k in cls().to_state()})


@dataclass(frozen=True)
class Suggestion:
    speaker: str
    role: str
    confidence: float
    evidence: dict[str, Any]


def _share(counts: dict[str, int], speaker: str) -> float:
    total = sum(counts.values())
    return counts.get(speaker, 0) / total if total else 0.0


def suggest_roles(stats: RoleStats) -> list[Suggestion]:
    """Roles that changed since the last suggestion (and records them as suggested)."""
    speakers = [s for s, n in stats.utterances.items() if n > 0]
    if len(speakers) < 2 or sum(stats.utterances.values()) < MIN_UTTERANCES:
        return []
    scores: dict[str, float] = {}
    evidence: dict[str, dict[str, Any]] = {}
    for s in speakers:
        talk = _share(stats.talk_ms, s)
        teach = _share(stats.teacher_cues, s)
        learn = _share(stats.student_cues, s)
        asks = _share(stats.questions, s)
        scores[s] = 0.45 * talk + 0.35 * teach + 0.2 * asks - 0.25 * learn
        evidence[s] = {
            "talk_share": round(talk, 3),
            "teaching_cues": stats.teacher_cues.get(s, 0),
            "student_cues": stats.student_cues.get(s, 0),
            "questions": stats.questions.get(s, 0),
            "utterances": stats.utterances.get(s, 0),
        }
    ranked = sorted(speakers, key=lambda s: scores[s], reverse=True)
    lead = scores[ranked[0]] - scores[ranked[1]]
    if lead < MARGIN:
        return []
    confidence = round(min(1.0, 0.5 + lead), 3)
    changed: list[Suggestion] = []
    for s in ranked:
        role = "instructor" if s == ranked[0] else "student"
        if stats.suggested.get(s) != role:
            stats.suggested[s] = role
            changed.append(Suggestion(s, role, confidence, {**evidence[s], "score": round(scores[s], 3)}))
    return changed
