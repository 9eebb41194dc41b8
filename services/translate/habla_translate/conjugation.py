"""Which infinitives could a Spanish word form belong to?

The lemmatiser gives one lemma per word and often picks the noun ("habla", "toma",
"vayas" -> "vaya"). The matcher needs the verb reading too, so this module guesses
*every* infinitive a form may come from: regular endings are stripped, stem changes
(ue->o, ie->e, i->e) and spelling changes (qu->c, gu->g, c->z, j->g) undone, and the
irregular stems and forms of the verbs idioms use most are looked up.

Guesses are over-generous on purpose: they only ever matter when one equals a verb of
an idiom pattern, and the pattern's other words and their order keep matches precise.
All input is lower case without accents (see :func:`habla_translate.matcher.deaccent`).
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["infinitives"]

# endings after accents are removed, longest first when tried
_ENDING_GROUPS = (
    "o as a amos ais an es e emos eis en imos is ad ed id",  # present, subjunctive, imperative
    "aste o amos asteis aron i iste io imos isteis ieron e",  # preterite
    "aba abas abamos abais aban ia ias iamos iais ian",  # imperfect
    "are aras ara aremos areis aran ere eras era eremos ereis eran ire iras ira iremos ireis iran",  # future
    "aria arias ariamos ariais arian eria erias eriamos eriais erian iria irias iriamos iriais irian",  # conditional
    "ara aras aramos arais aran ase ases asemos aseis asen",  # imperfect subjunctive, -ar
    "iera ieras ieramos ierais ieran iese ieses iesemos ieseis iesen",  # imperfect subjunctive, -er/-ir
    "yera yeras yeramos yerais yeran yendo yo yeron",  # caer, leer, oir...
    "ando iendo ado ada ados adas ido ida idos idas",  # gerund and participles
)
_ENDINGS = sorted({e for group in _ENDING_GROUPS for e in group.split()}, key=len, reverse=True)

# irregular stems -> infinitive (the part before the ending)
_IRREGULAR_STEMS = {
    "teng": "tener",
    "tien": "tener",
    "tuv": "tener",
    "tendr": "tener",
    "pong": "poner",
    "pus": "poner",
    "pondr": "poner",
    "puest": "poner",
    "hag": "hacer",
    "hic": "hacer",
    "hiz": "hacer",
    "har": "hacer",
    "hech": "hacer",
    "dig": "decir",
    "dic": "decir",
    "dij": "decir",
    "dir": "decir",
    "dich": "decir",
    "veng": "venir",
    "vien": "venir",
    "vin": "venir",
    "vendr": "venir",
    "salg": "salir",
    "saldr": "salir",
    "sep": "saber",
    "sup": "saber",
    "sabr": "saber",
    "quier": "querer",
    "quis": "querer",
    "querr": "querer",
    "pued": "poder",
    "pud": "poder",
    "podr": "poder",
    "caig": "caer",
    "cay": "caer",
    "traig": "traer",
    "traj": "traer",
    "estuv": "estar",
    "anduv": "andar",
    "cup": "caber",
    "quep": "caber",
    "cabr": "caber",
    "valg": "valer",
    "valdr": "valer",
    "oig": "oir",
    "oy": "oir",
    "hub": "haber",
    "habr": "haber",
    "vist": "ver",
    "vuelt": "volver",
    "muert": "morir",
    "rot": "romper",
    "escrit": "escribir",
    "abiert": "abrir",
    "cubiert": "cubrir",
    "frit": "freir",
    "conduj": "conducir",
    "conduzc": "conducir",
    "conozc": "conocer",
    "parezc": "parecer",
    "merezc": "merecer",
    "ofrezc": "ofrecer",
}
# whole forms of the shortest, most irregular verbs
_FORMS = {
    **dict.fromkeys(
        [
            "voy",
            "vas",
            "va",
            "vamos",
            "vais",
            "van",
            "ve",
            "id",
            "vaya",
            "vayas",
            "vayamos",
            "vayais",
            "vayan",
            "ido",
            "yendo",
            "iba",
            "ibas",
            "ibamos",
            "ibais",
            "iban",
        ],
        ("ir",),
    ),
    **dict.fromkeys(
        [
            "fui",
            "fuiste",
            "fue",
            "fuimos",
            "fuisteis",
            "fueron",
            "fuera",
            "fueras",
            "fueramos",
            "fuerais",
            "fueran",
            "fuese",
            "fueses",
        ],
        ("ir", "ser"),
    ),
    **dict.fromkeys(
        [
            "soy",
            "eres",
            "es",
            "somos",
            "sois",
            "son",
            "sea",
            "seas",
            "seamos",
            "seais",
            "sean",
            "era",
            "eras",
            "eramos",
            "erais",
            "eran",
            "sed",
            "sido",
            "siendo",
        ],
        ("ser",),
    ),
    **dict.fromkeys(
        [
            "doy",
            "das",
            "da",
            "damos",
            "dais",
            "dan",
            "des",
            "demos",
            "deis",
            "den",
            "di",
            "diste",
            "dio",
            "dimos",
            "disteis",
            "dieron",
            "diera",
            "dieras",
            "dado",
            "dando",
        ],
        ("dar",),
    ),
    **dict.fromkeys(
        [
            "veo",
            "ves",
            "ve",
            "vemos",
            "veis",
            "ven",
            "vea",
            "veas",
            "veamos",
            "veais",
            "vean",
            "vi",
            "viste",
            "vio",
            "vimos",
            "visteis",
            "vieron",
            "veia",
            "veias",
            "viendo",
            "visto",
        ],
        ("ver",),
    ),
    **dict.fromkeys(
        ["estoy", "estas", "esta", "estamos", "estais", "estan", "este", "estes", "estemos", "esteis", "esten"],
        ("estar",),
    ),
    **dict.fromkeys(
        ["he", "has", "ha", "hemos", "habeis", "han", "haya", "hayas", "hayamos", "hayais", "hayan", "hay"], ("haber",)
    ),
    **dict.fromkeys(["haz", "hace", "hago"], ("hacer",)),
    **dict.fromkeys(
        ["oigo", "oyes", "oye", "oimos", "ois", "oyen", "oia", "oias", "oiamos", "oiais", "oian", "oido", "oyendo"],
        ("oir",),
    ),
    **dict.fromkeys(["pon"], ("poner",)),
    **dict.fromkeys(["ten"], ("tener",)),
    **dict.fromkeys(["sal"], ("salir",)),
    **dict.fromkeys(["di"], ("decir", "dar")),
    **dict.fromkeys(["ven"], ("venir", "ver")),
}


def _stems(stem: str) -> set[str]:
    """Undo stem and spelling changes: "vuelv" -> volv, "pid" -> ped, "saqu" -> sac."""
    out = {stem}
    for changed, plain in (("ue", "o"), ("ue", "u"), ("ie", "e"), ("ie", "i"), ("i", "e"), ("u", "o"), ("y", "i")):
        i = stem.rfind(changed)
        if i > 0:
            out.add(stem[:i] + plain + stem[i + len(changed) :])
    for changed, plain in (("qu", "c"), ("gu", "g"), ("c", "z"), ("j", "g"), ("zc", "c"), ("g", "gu")):
        for s in list(out):
            if s.endswith(changed):
                out.add(s[: -len(changed)] + plain)
    return out


@lru_cache(maxsize=65536)
def infinitives(word: str) -> frozenset[str]:
    """Every infinitive ``word`` (lower case, no accents) might be a form of."""
    out: set[str] = set(_FORMS.get(word, ()))
    for ending in _ENDINGS:
        if not word.endswith(ending) or len(word) - len(ending) < 2:
            continue
        stem = word[: -len(ending)]
        if stem.endswith(("ar", "er", "ir")):  # future and conditional: "hablaria" -> hablar
            out.add(stem)
        if stem in _IRREGULAR_STEMS:
            out.add(_IRREGULAR_STEMS[stem])
        for s in _stems(stem):
            out.update((s + "ar", s + "er", s + "ir"))
            if s in _IRREGULAR_STEMS:
                out.add(_IRREGULAR_STEMS[s])
    return frozenset(out)
