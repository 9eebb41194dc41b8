"""Cutting text into the sentences spoken one by one (pure functions, no engine)."""

from __future__ import annotations

import pytest

from habla_tts.sentences import clip_sentences, shorten_first, speakable, speech_chunks, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hola. ¿Qué tal estás? ¡Muy bien!", ["Hola.", "¿Qué tal estás?", "¡Muy bien!"]),
        ("Hello there. How are you? Great!", ["Hello there.", "How are you?", "Great!"]),
        # titles and abbreviations
        ("El Sr. García y la Dra. López llegan hoy.", ["El Sr. García y la Dra. López llegan hoy."]),
        ("Trae fruta, p. ej. manzanas. Gracias.", ["Trae fruta, p. ej. manzanas.", "Gracias."]),
        ("Bring fruit, e.g. apples. Thanks.", ["Bring fruit, e.g. apples.", "Thanks."]),
        ("Mr. Smith met Dr. Jones.", ["Mr. Smith met Dr. Jones."]),
        ("Lo leyó J. K. Rowling en voz alta.", ["Lo leyó J. K. Rowling en voz alta."]),
        # etc. ends a sentence only when the next one starts
        ("Compré pan, leche, etc. Luego volví.", ["Compré pan, leche, etc.", "Luego volví."]),
        ("Pan, leche, etc. y nada más.", ["Pan, leche, etc. y nada más."]),
        # numbers: decimals and thousands never split
        ("Cuesta 3,5 euros. El otro 3.5 dólares.", ["Cuesta 3,5 euros.", "El otro 3.5 dólares."]),
        ("Son 1.200 personas. Nací en 1990.", ["Son 1.200 personas.", "Nací en 1990."]),
        # ellipses
        ("Pues… no sé. Bueno… Vale.", ["Pues… no sé.", "Bueno…", "Vale."]),
        ("Pues... no sé... Mañana.", ["Pues... no sé...", "Mañana."]),
        # closing quotes and brackets stay with their sentence; ¿ and ¡ open the next one
        (
            'Dijo: "Ven mañana." ¿Vendrás? (Creo que sí.) Vale.',
            ['Dijo: "Ven mañana."', "¿Vendrás?", "(Creo que sí.)", "Vale."],
        ),
        ("¿De verdad?! ¡Qué bien!", ["¿De verdad?!", "¡Qué bien!"]),
        ("¿Vienes?, preguntó ella.", ["¿Vienes?, preguntó ella."]),
        # a spoken "No." is a sentence
        ("No. No quiero ir.", ["No.", "No quiero ir."]),
        ("I can. Neither do I. Then go.", ["I can.", "Neither do I.", "Then go."]),
        # no final mark; line breaks; nothing to say
        ("sin punto final", ["sin punto final"]),
        ("Primera línea\nsegunda línea.", ["Primera línea", "segunda línea."]),
        ("  Muchos   espacios.  Aquí.  ", ["Muchos espacios.", "Aquí."]),
        ("", []),
        ("... ¿? !", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_speakable_drops_markup_and_emoji_keeps_accents_and_numbers() -> None:
    assert speakable("¡**Muy bien**! 👍🏽 Sigue así 😊.") == "¡Muy bien! Sigue así."
    assert speakable("Niño, pingüino, 3,5 € y 10 %\r\n\tadiós") == "Niño, pingüino, 3,5 € y 10 %\nadiós"
    assert speakable("Ho\u200bla ❤️ #tema `código`") == "Hola tema código"


def test_a_long_first_sentence_is_split_at_its_first_clause_break() -> None:
    long = "Cuando llegues a la estación de tren, llámame y te recojo en el coche enseguida."
    assert shorten_first([long, "Hasta luego."]) == [
        "Cuando llegues a la estación de tren,",
        "llámame y te recojo en el coche enseguida.",
        "Hasta luego.",
    ]


def test_a_comma_too_early_or_too_late_is_not_used() -> None:
    early = "Sí, claro que puedo ayudarte con la mudanza del sábado por la mañana temprano."
    assert shorten_first([early]) == [early]  # one word before the comma
    late = "Puedo ayudarte con la mudanza del sábado por la mañana temprano si quieres, vale."
    assert shorten_first([late]) == [late]  # one word after it
    short = "Vale, nos vemos mañana."
    assert shorten_first([short]) == [short]


def test_questions_and_exclamations_stay_whole() -> None:
    question = "¿Sabes dónde está la estación de tren, la que tiene un reloj grande en la fachada?"
    assert shorten_first([question]) == [question]
    assert shorten_first([question.lstrip("¿")]) == [question.lstrip("¿")]


def test_clipping_keeps_whole_sentences_that_fit() -> None:
    sentences = ["Uno dos tres.", "Cuatro cinco seis.", "Siete ocho nueve."]
    assert clip_sentences(sentences, 32) == ["Uno dos tres.", "Cuatro cinco seis."]
    assert clip_sentences(sentences, 1000) == sentences
    assert clip_sentences(["Una frase larguísima que no cabe entera."], 20) == ["Una frase larguísima"]
    assert clip_sentences(["Supercalifragilístico."], 10) == ["Supercalif"]


def test_speech_chunks_puts_it_together() -> None:
    text = (
        "Cuando llegues a la estación de tren, llámame y te recojo en el coche enseguida. "
        "El Sr. Pérez vendrá también. " + "Otra frase más. " * 100
    )
    chunks = speech_chunks(text, max_chars=150)
    assert chunks == [
        "Cuando llegues a la estación de tren,",
        "llámame y te recojo en el coche enseguida.",
        "El Sr. Pérez vendrá también.",
        "Otra frase más.",
        "Otra frase más.",
    ]
    assert sum(len(c) + 1 for c in chunks) <= 151
    assert speech_chunks("Hola.", first_words=0) == ["Hola."]
