"""Transcript formatting (pure)."""

from __future__ import annotations

from habla_common.transcript import Line, clock, line_from_mapping, srt_time, to_markdown, to_srt

LINES = [
    Line(
        start_ms=500,
        end_ms=2500,
        text="Me importa un pepino.",
        speaker="Ana",
        translation="I couldn't care less.",
        idioms=[{"phrase": "importar un pepino", "meaning": "not to care at all"}],
    ),
    Line(start_ms=3000, end_ms=3000, text=""),
    Line(start_ms=3_723_004, end_ms=3_723_004, text="Vale,\nhasta  luego."),
]


def test_times() -> None:
    assert clock(3_723_004) == "01:02:03" and srt_time(3_723_004) == "01:02:03,004" and srt_time(-5) == "00:00:00,000"


def test_srt_skips_empty_lines_and_never_has_zero_length_cues() -> None:
    assert to_srt(LINES) == (
        "1\n00:00:00,500 --> 00:00:02,500\nAna: Me importa un pepino.\nI couldn't care less.\n\n"
        "2\n01:02:03,004 --> 01:02:04,004\nVale, hasta luego.\n"
    )
    assert to_srt([]) == ""


def test_markdown() -> None:
    md = to_markdown(LINES, title="Clase")
    assert md.splitlines()[0] == "# Clase"
    assert "`00:00:00` **Ana:** Me importa un pepino." in md
    assert "> I couldn't care less." in md and "- *importar un pepino*: not to care at all" in md
    assert "`01:02:03` Vale, hasta luego." in md
    assert "*(no speech)*" in to_markdown([], title="x")


def test_line_from_mapping() -> None:
    ln = line_from_mapping({"start_ms": 1, "end_ms": 2, "text": None, "idioms": None})
    assert ln == Line(start_ms=1, end_ms=2, text="")


def test_speaker_names_are_literal_markdown() -> None:
    md = to_markdown([Line(start_ms=0, end_ms=1, text="hola", speaker="*Ana* _la_ [profe]")])
    assert r"**\*Ana\* \_la\_ \[profe\]:** hola" in md
    assert to_srt([Line(start_ms=0, end_ms=1, text="hola", speaker="*Ana*")]).splitlines()[2] == "*Ana*: hola"
    assert "** hola" not in to_markdown([Line(start_ms=0, end_ms=1, text="hola", speaker="  ")])


def test_line_from_mapping_shows_the_speakers_name() -> None:
    row = {"start_ms": 0, "end_ms": 1, "text": "hola", "speaker": "S2", "speaker_name": "Profesora García"}
    assert line_from_mapping(row).speaker == "Profesora García"
    assert line_from_mapping({**row, "speaker_name": None}).speaker == "S2"
    assert line_from_mapping({**row, "speaker_name": "", "speaker": ""}).speaker is None
