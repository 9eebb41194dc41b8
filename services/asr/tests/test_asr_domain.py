"""Pure guards: audio conversion, repetition loops, boilerplate, the whole clean()."""

from __future__ import annotations

import numpy as np
import pytest

from habla_asr.domain import (
    DROP_EMPTY,
    DROP_HALLUCINATION,
    DROP_NO_SPEECH,
    Segment,
    Thresholds,
    Transcription,
    clean,
    collapse_repetitions,
    is_boilerplate,
    max_new_tokens,
    normalise,
    pcm16_to_float32,
    strip_sound_tags,
)

TH = Thresholds()


def heard(*segments: Segment) -> Transcription:
    return Transcription(
        text=" ".join(s.text for s in segments),
        language="es",
        language_probability=1.0,
        avg_logprob=segments[0].avg_logprob if segments else 0.0,
        no_speech_prob=segments[0].no_speech_prob if segments else 0.0,
        segments=segments,
    )


# --- audio ----------------------------------------------------------------------------


def test_pcm16_to_float32_scales_and_ignores_a_trailing_odd_byte() -> None:
    pcm = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes() + b"\x01"
    audio = pcm16_to_float32(pcm)
    assert audio.dtype == np.float32
    assert audio.tolist() == pytest.approx([0.0, 0.5, -1.0, 32767 / 32768])


def test_pcm16_to_float32_resamples_other_rates_to_16k() -> None:
    pcm = (np.sin(np.arange(8000) / 10) * 10000).astype("<i2").tobytes()
    assert pcm16_to_float32(pcm, 8000).size == 16000
    assert pcm16_to_float32(b"", 8000).size == 0


def test_max_new_tokens_grows_with_duration_and_is_capped() -> None:
    assert max_new_tokens(1000) < max_new_tokens(10_000) <= 224
    assert max_new_tokens(120_000) == 224


# --- repetition loops ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y luego y luego y luego y luego fuimos", "y luego fuimos"),
        ("Gracias. Gracias. Gracias. Gracias. Gracias.", "Gracias."),
        ("no no no no no no no no", "no"),
        ("es decir, es decir, es decir que no", "es decir, que no"),
        ("el perro de la casa el perro de la casa el perro de la casa", "el perro de la casa"),
        ("hola a todos y bienvenidos", "hola a todos y bienvenidos"),
    ],
)
def test_collapse_repetitions(text: str, expected: str) -> None:
    assert collapse_repetitions(text) == expected


def test_short_repeats_people_really_say_survive() -> None:
    assert collapse_repetitions("No, no, no, eso no es así") == "No, no, no, eso no es así"
    assert collapse_repetitions("muy muy bien") == "muy muy bien"
    assert collapse_repetitions("que sí que sí") == "que sí que sí"


def test_collapse_keeps_text_around_the_loop() -> None:
    loop = " ".join(["de la"] * 40)
    assert collapse_repetitions(f"Vamos a hablar {loop} historia") == "Vamos a hablar de la historia"


# --- boilerplate ---------------------------------------------------------------------


def test_normalise_drops_case_accents_and_punctuation() -> None:
    assert normalise("¡Suscríbete, AHORA!  ") == "suscribete ahora"


@pytest.mark.parametrize(
    "text",
    [
        "¡Gracias por ver el video!",
        "Subtítulos realizados por la comunidad de Amara.org",
        "Suscríbete al canal.",
        "Thanks for watching!",
        "Please subscribe.",
        "Gracias por ver. Suscríbete.",
        "THANK YOU FOR WATCHING",
    ],
)
def test_known_boilerplate_is_recognised(text: str) -> None:
    assert is_boilerplate(text)


@pytest.mark.parametrize(
    "text",
    [
        "Gracias por ver a mi madre ayer",
        "Me suscribí al periódico",
        "Thanks for watching the kids last night",
        "la comunidad de Amara.org publica subtítulos",
        "",
    ],
)
def test_ordinary_sentences_are_not_boilerplate(text: str) -> None:
    assert not is_boilerplate(text)
    assert not is_boilerplate(text, unsure=True) or text == ""


def test_short_courtesies_count_only_when_the_model_was_unsure() -> None:
    assert not is_boilerplate("Gracias.")
    assert is_boilerplate("Gracias.", unsure=True)
    assert is_boilerplate("you", unsure=True)


def test_sound_tags_are_removed_but_real_parentheses_stay() -> None:
    assert strip_sound_tags("[Música] ♪ hola (risas)") == "hola"
    assert strip_sound_tags("(Oravec, 2002)") == "(Oravec, 2002)"


# --- clean ------------------------------------------------------------------------------


def test_confident_speech_passes_unchanged() -> None:
    out = clean(heard(Segment("Hola, ¿qué tal?", -0.2, 0.01, tokens=6)), TH)
    assert (out.text, out.dropped) == ("Hola, ¿qué tal?", "")
    assert out.avg_logprob == pytest.approx(-0.2)


def test_silence_decoded_as_words_is_dropped_as_no_speech() -> None:
    out = clean(heard(Segment("No, no.", -1.6, 0.84)), TH)
    assert (out.text, out.dropped) == ("", DROP_NO_SPEECH)
    assert out.no_speech_prob == pytest.approx(0.84)


def test_high_no_speech_but_confident_text_is_kept() -> None:
    out = clean(heard(Segment("Buenos días a todos.", -0.3, 0.7)), TH)
    assert out.text == "Buenos días a todos."


def test_only_the_silent_segment_is_dropped() -> None:
    out = clean(heard(Segment("Buenos días.", -0.3, 0.1, tokens=4), Segment("y", -2.0, 0.9, tokens=1)), TH)
    assert (out.text, out.dropped) == ("Buenos días.", "")


def test_whole_boilerplate_is_a_hallucination() -> None:
    out = clean(heard(Segment("¡Gracias por ver el video!", -0.5, 0.3)), TH)
    assert (out.text, out.dropped) == ("", DROP_HALLUCINATION)


def test_unsure_courtesy_on_silence_is_a_hallucination_but_a_clear_one_is_kept() -> None:
    assert clean(heard(Segment("you", -0.96, 0.75)), TH).dropped == DROP_HALLUCINATION
    assert clean(heard(Segment("Gracias.", -0.15, 0.02)), TH).text == "Gracias."


def test_loops_are_collapsed_in_the_final_text() -> None:
    out = clean(heard(Segment("Y entonces " + "la la la " * 10 + "fin.", -0.4, 0.05)), TH)
    assert out.text == "Y entonces la fin."


@pytest.mark.parametrize("segments", [(), (Segment("...", -0.5, 0.1),), (Segment("[Música]", -0.4, 0.2),)])
def test_nothing_usable_is_empty(segments: tuple[Segment, ...]) -> None:
    out = clean(heard(*segments), TH)
    assert (out.text, out.dropped) == ("", DROP_EMPTY)
