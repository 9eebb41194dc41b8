"""The idiom matcher: many surface forms per idiom, and literal uses that must not fire.

These tests use a small fixture database written for them (``data/matcher_fixture.tsv``)
so that they test the matcher's mechanics whatever the packaged database holds; the
packaged database has its own tests in ``test_translate_idiom_db.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from habla_translate.idioms import IdiomDatabase, IdiomDataError
from habla_translate.matcher import PatternError, compile_pattern

FIXTURE = Path(__file__).with_name("data") / "matcher_fixture.tsv"


@pytest.fixture(scope="module")
def db() -> IdiomDatabase:
    return IdiomDatabase.load([FIXTURE])


def canonicals(db: IdiomDatabase, text: str) -> list[str]:
    return [h.entry.canonical for h in db.match(text)]


SURFACE_FORMS = {
    "ponerse las pilas": [
        "Me puse las pilas para el examen.",
        "Ponte las pilas, tío.",
        "Se está poniendo las pilas.",
        "Tenemos que ponernos las pilas.",
        "Poneos las pilas ya.",
        "Si no te pones las pilas, suspendes.",
        "Hoy vamos a hablar de la importancia de ponerse las pilas antes del examen.",
        "Se puso por fin las pilas.",  # a small insertion
        "¡Poniéndote las pilas así, aprobarás!",
        "Me las puse, las pilas, a tiempo.",  # not this one: see the negatives
    ][:-1],
    "importar un pepino": [
        "Me importa un pepino lo que digan.",
        "Nos importan un pepino sus quejas.",
        "A Juan le importaba un pepino.",
        "Eso me importa un pepino.",
        "Me importa mucho un pepino",
    ],
    "tomarle el pelo": [
        "Me tomó el pelo.",
        "¿Me estás tomando el pelo?",
        "No me tomes el pelo.",
        "Tómale el pelo un rato.",
        "Nos han tomado el pelo.",
        "Le tomaban el pelo en clase.",
    ],
    "estar (hecho) polvo": ["Estoy hecha polvo.", "Estamos hechos polvo.", "Después del viaje estaba polvo."],
    "salirse con la suya": ["Me salí con la mía.", "Siempre se salen con la suya.", "Os salisteis con la vuestra."],
    "perder los estribos": [
        "Perdió los estribos.",
        "Está perdiendo los estribos otra vez.",
        "No pierdas los estribos.",
    ],
    "qué va": ["¡Qué va! No es así.", "Pero qué va, hombre.", "—¿Estás cansado? —Qué va."],
    "estar hasta las narices/narizotas": ["Estoy hasta las narices de este piso.", "Está hasta las narizotas."],
    "no tener pelos en la lengua": ["No tiene pelos en la lengua.", "Mi abuela no tenía pelos en la lengua."],
    "meter la pata": ["Metiste la pata hasta el fondo.", "Siempre meto la pata.", "He metido bien la pata."],
    "echar una mano": ["¿Me echas una mano?", "Échame una mano con esto.", "Nos echaron una mano enorme."],
    "dar la lata": ["Deja de darme la lata.", "Los vecinos nos dan la lata.", "No me des la lata."],
    "costar un ojo de la cara": ["Me costó un ojo de la cara.", "Cuesta un ojo de la cara."],
    "irse de la lengua": ["Se fue de la lengua.", "No te vayas de la lengua.", "Me fui de la lengua."],
    "tirar la toalla": ["No tires la toalla.", "Tiró la toalla.", "Estamos tirando la toalla."],
    "hablar por los codos": ["Habla por los codos.", "Hablaban por los codos toda la clase."],
    "estar en las nubes": ["Siempre estás en las nubes.", "Estaba en las nubes."],
    "de campeonato": ["Tengo una resaca de campeonato."],
}

NEGATIVES = [
    "Puse las pilas en el mando.",  # literal batteries: no reflexive
    "Le puse las pilas nuevas al mando.",
    "Las pilas se ponen en el mando.",  # the words, out of order
    "Compré un pepino y me importa el precio.",  # co-occur, far apart
    "¿Qué va a hacer mañana?",  # "qué va" inside a question
    "La pata de la mesa, la metí en el coche.",
    "Tiene un pelo largo en la lengua del zapato.",  # no negation, words scattered
    "Perdió el tren y los estribos de la bici se rompieron.",
    "La cara de la moneda y un ojo del muñeco.",
    "Echa la sal en una mano.",
    "Le di la vuelta a la lata de atún.",
    "Las nubes están en el cielo.",
    "Habla con los codos apoyados en la mesa.",
    "Participó en dos carreras del campeonato.",  # "del" carries an article: not the idiom
]


@pytest.mark.parametrize(
    ("canonical", "text"), [(c, t) for c, forms in SURFACE_FORMS.items() for t in forms], ids=lambda v: str(v)[:40]
)
def test_surface_forms_match(db: IdiomDatabase, canonical: str, text: str) -> None:
    assert canonical in canonicals(db, text)


@pytest.mark.parametrize("text", NEGATIVES)
def test_literal_uses_do_not_fire(db: IdiomDatabase, text: str) -> None:
    assert canonicals(db, text) == []


def test_span_covers_the_phrase_as_heard_with_its_pronoun(db: IdiomDatabase) -> None:
    text = "Oye, se está poniendo las pilas por fin."
    [hit] = db.match(text)
    assert hit.phrase == "se está poniendo las pilas"
    assert text[hit.start : hit.end] == hit.phrase
    [hit] = db.match("Me importa un pepino.")
    assert hit.phrase == "Me importa un pepino"


def test_overlapping_hits_keep_the_longest(db: IdiomDatabase) -> None:
    hits = db.match("Me costó un ojo de la cara y metí la pata.")
    assert [h.entry.canonical for h in hits] == ["costar un ojo de la cara", "meter la pata"]
    assert hits[0].end <= hits[1].start


def test_accents_lost_by_asr_still_match(db: IdiomDatabase) -> None:
    assert canonicals(db, "que va, no es asi") == ["qué va"]
    assert canonicals(db, "ponte las pilas") == ["ponerse las pilas"]


def test_matching_is_a_few_milliseconds(db: IdiomDatabase) -> None:
    db.match("calentar el lematizador")
    text = "Bueno, hoy vamos a hablar de cómo ponerse las pilas, porque me importa un pepino la excusa."
    t0 = time.perf_counter()
    for _ in range(100):
        db.match(text)
    assert (time.perf_counter() - t0) / 100 < 0.005


def test_saved_idioms_join_the_database(db: IdiomDatabase) -> None:
    from habla_translate.idioms import IdiomEntry

    fresh = IdiomDatabase.load([FIXTURE], lemmatize=db.lemmatize)
    assert canonicals(fresh, "Estaba como pez en el agua.") == []
    assert fresh.add(
        IdiomEntry("estar como pez en el agua", "like a fish in water", "to be in one's element", origin="user")
    )
    [hit] = fresh.match("Estaba como pez en el agua.")
    assert hit.entry.origin == "user"


def test_placeholders_and_optional_words_compile() -> None:
    pattern = compile_pattern("tomarle el pelo a alguien")
    assert [s.text for s in pattern.slots] == ["tomarle", "el", "pelo"]
    assert pattern.slots[0].kind == "verb" and pattern.slots[0].takes_object
    assert compile_pattern("ponerse las pilas").slots[0].reflexive
    assert compile_pattern("estar (hecho) polvo").slots[1].optional
    with pytest.raises(PatternError):
        compile_pattern("estar (hecho polvo")
    with pytest.raises(PatternError):
        compile_pattern("   ")


def test_bad_data_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text(FIXTURE.read_text().splitlines()[0] + "\nsolo\tdos campos\n", encoding="utf-8")
    with pytest.raises(IdiomDataError, match=r"bad\.tsv:2"):
        IdiomDatabase.load([bad])
    bad.write_text(FIXTURE.read_text().splitlines()[0] + "\na b\tl\tm\te\tE\tmars\tneutral\tidiom\n", encoding="utf-8")
    with pytest.raises(IdiomDataError, match="region"):
        IdiomDatabase.load([bad])
