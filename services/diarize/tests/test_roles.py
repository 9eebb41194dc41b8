"""Classroom role suggestions from talk share, teaching cues, learner cues and questions."""

from __future__ import annotations

from habla_diarize.roles import RoleStats, suggest_roles

LESSON = [
    ("S1", "Buenos días a todos, hoy vamos a practicar el pretérito. Abran el libro en la página diez.", 6000),
    ("S2", "Profe, ¿cómo se dice homework?", 1800),
    ("S1", "Se dice tarea. Muy bien, repitan conmigo: la tarea.", 4000),
    ("S2", "La tarea.", 900),
    ("S3", "Perdón, no entiendo el ejercicio.", 1800),
    ("S1", "¿Quién sabe la respuesta? Escuchen otra vez.", 3500),
]


def test_the_teacher_is_suggested_as_instructor_and_the_others_as_students() -> None:
    stats = RoleStats()
    out = []
    for speaker, text, ms in LESSON:
        stats.add(speaker, text, ms)
        out += suggest_roles(stats)
    roles = {s.speaker: s.role for s in out}
    assert roles == {"S1": "instructor", "S2": "student", "S3": "student"}
    teacher = next(s for s in out if s.speaker == "S1")
    assert teacher.evidence["teaching_cues"] >= 5 and teacher.evidence["talk_share"] > 0.6
    assert suggest_roles(stats) == []  # nothing changed: nothing re-issued


def test_no_suggestion_from_one_speaker_or_a_balanced_chat() -> None:
    stats = RoleStats()
    for _ in range(5):
        stats.add("S1", "Hola, ¿qué tal?", 2000)
    assert suggest_roles(stats) == []
    stats.add("S2", "Bien, ¿y tú?", 2000)
    for _ in range(4):
        stats.add("S2", "Hola, ¿qué tal?", 2000)
    assert suggest_roles(stats) == []  # equal talk and cues: no one leads


def test_role_state_round_trips() -> None:
    stats = RoleStats()
    for speaker, text, ms in LESSON:
        stats.add(speaker, text, ms)
    suggest_roles(stats)
    again = RoleStats.from_state(stats.to_state())
    assert again == stats
