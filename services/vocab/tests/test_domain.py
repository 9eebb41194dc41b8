"""The pure parts: canonical forms and merge keys, frequency bands, where a phrase was said,
the clip window, SM-2 by hand, the study day and the settings' errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from habla_common.errors import ConfigError
from habla_vocab.config import VocabConfig
from habla_vocab.domain import Span, band_of, canonical_form, clip_window, item_id_for, locate, zipf
from habla_vocab.errors import BadGrade
from habla_vocab.srs import fold, new_schedule, review

T0 = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kind", "canonical"),
    [
        ("puse", "word", "poner"),
        ("Pudieron", "word", "poder"),
        ("pilas", "word", "pila"),
        ("¡Ponerse las pilas!", "idiom", "ponerse las pilas"),
        ("  Me importa   un PEPINO. ", "idiom", "me importa un pepino"),
        ("la fianza", "phrase", "la fianza"),
        ("papá", "word", "papá"),
    ],
)
def test_canonical_forms(text: str, kind: str, canonical: str) -> None:
    assert canonical_form(text, kind) == canonical


def test_merge_key_is_language_and_canonical_form() -> None:
    assert item_id_for("es", canonical_form("puse", "word")) == item_id_for("es", canonical_form("pongo", "word"))
    assert item_id_for("es", "papa") != item_id_for("es", "papá")
    assert item_id_for("es", "once") != item_id_for("en", "once")


def test_frequency_bands_from_wordfreq() -> None:
    assert band_of(zipf("casa")) == 1
    assert band_of(zipf("fianza")) == 3
    assert band_of(zipf("enfáticamente")) == 4
    assert zipf("xyzzyq") == 0.0 and band_of(0.0) == 5
    assert zipf("casa", "xx") == 0.0  # a language wordfreq does not know


def test_locate_matches_lemmas() -> None:
    sentence = "Pues mira, me puse las pilas antes del examen."
    span = locate("ponerse las pilas", sentence)
    assert span is not None and sentence[span.start : span.end] == "puse las pilas"
    assert locate("me importa un pepino", sentence) is None


def test_clip_window() -> None:
    assert clip_window(1000, 9000, "abc", None, max_ms=10_000, pad_ms=1500) == (1000, 9000)
    sentence = "x" * 100
    # a 30 s turn, the phrase in its last tenth: a 10 s window ending at the turn's end
    assert clip_window(0, 30_000, sentence, Span(90, 100), max_ms=10_000, pad_ms=1500) == (20_000, 30_000)
    # no phrase found: the middle of the turn
    assert clip_window(0, 30_000, sentence, None, max_ms=10_000, pad_ms=1500) == (10_000, 20_000)
    # a phrase longer than the window: the phrase and its padding
    assert clip_window(0, 30_000, sentence, Span(10, 50), max_ms=10_000, pad_ms=1500) == (1500, 16_500)


def test_sm2_by_hand() -> None:
    s = new_schedule(T0)
    assert (s.due, s.ease, s.is_new) == (T0, 2.5, True)
    s = review(s, 5, T0)
    assert (s.ease, s.interval_days, s.repetitions, s.due) == (2.6, 1, 1, T0 + timedelta(days=1))
    s = review(s, 5, T0 + timedelta(days=1))
    assert (s.ease, s.interval_days, s.due) == (2.7, 6, T0 + timedelta(days=7))
    s = review(s, 4, T0 + timedelta(days=7))
    assert (s.ease, s.interval_days) == (2.7, 17)  # ceil(6 * 2.7 = 16.2)
    s = review(s, 0, T0 + timedelta(days=24))
    assert (s.ease, s.interval_days, s.repetitions, s.lapses) == (2.7, 1, 0, 1)
    s = review(s, 3, T0 + timedelta(days=25))  # 2.7 - 0.14; the first interval again
    assert (s.ease, s.interval_days, s.repetitions) == (2.56, 1, 1)


def test_ease_never_drops_below_1_3() -> None:
    schedules = fold(T0, [(3, T0 + timedelta(days=n)) for n in range(12)])
    assert schedules[-1].ease == 1.3
    assert schedules[-1].interval_days > schedules[-2].interval_days


@pytest.mark.parametrize("bad", [6, -1, "3", 3.0, True, None])
def test_bad_grades_are_refused(bad: object) -> None:
    with pytest.raises(BadGrade, match=r"from 0 .* to 5"):
        review(new_schedule(T0), bad, T0)  # type: ignore[arg-type]


def test_settings_errors_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert VocabConfig.from_env() == VocabConfig()
    monkeypatch.setenv("VOCAB_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="VOCAB_TIMEZONE"):
        VocabConfig.from_env()
    monkeypatch.setenv("VOCAB_TIMEZONE", "Europe/Madrid")
    monkeypatch.setenv("VOCAB_DAY_STARTS_AT", "25")
    with pytest.raises(ConfigError, match="VOCAB_DAY_STARTS_AT"):
        VocabConfig.from_env()
    monkeypatch.setenv("VOCAB_DAY_STARTS_AT", "4")
    monkeypatch.setenv("VOCAB_CLIP_MAX_MS", "lots")
    with pytest.raises(ConfigError, match="VOCAB_CLIP_MAX_MS"):
        VocabConfig.from_env()
