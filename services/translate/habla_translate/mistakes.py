"""Frequent learner mistakes in spoken Spanish, found by rules: instant and deterministic.

The practice partner's model is small: it misses real mistakes and sometimes invents
some. The mistakes learners make most often are therefore caught here, and merged with
the model's (:mod:`habla_translate.tutor`). Every rule is narrow on purpose, because a
false correction of correct Spanish is worse than a missed one: a rule fires only where
the words, as they stand next to each other, cannot be right.

* **person agreement** after an explicit subject pronoun: "yo tiene" → "yo tengo",
  "nosotros va" → "nosotros vamos", "tú no me entiende" → "tú no me entiendes". Only the
  present indicative of the verbs in :data:`_IRREGULAR` and :data:`_REGULAR`, directly
  after the pronoun (a "no" and object pronouns may stand between). Never after a
  preposition ("para él trabajo"), a verb ("cuando llegó él tengo que irme"), or in a
  cleft ("lo que quiero yo es dormir"); after "y" only when the verb is singular and the
  clause before already had a verb ("me llamo Pedro y yo tiene"), so "mi hermano y yo
  vamos" stays untouched.
* **gustar** with a subject pronoun: "yo gusta" → "me gusta", "yo me gusta" → "a mí me gusta".
* **gender** of determiner + noun for the nouns learners get wrong (:data:`_MASCULINE`,
  :data:`_FEMININE`, and the always-feminine endings -ción, -sión, -dad, -tad, -tud,
  -umbre): "la problema" → "el problema", "el mano" → "la mano", "de la día" → "del día",
  "la agua" → "el agua". "la/los/las" before a noun that is also a verb form is left
  alone: there it may be an object pronoun ("la traje" = I brought it).
* **tener, not ser/estar**: "estoy hambre" → "tengo hambre", "soy 30 años" → "tengo 30 años";
  "soy de acuerdo" → "estoy de acuerdo".
* "más mejor" → "mejor", "más peor" → "peor".

Spelling, accents and punctuation are never corrected: the learner spoke, and the text
is speech recognition's.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

__all__ = ["Mistake", "check", "present_forms"]


def _split(text: str) -> tuple[str, ...]:
    """The words of a space-separated list, in order."""
    return tuple(text.split())


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


PERSONS = ("yo", "tú", "él", "nosotros", "vosotros", "ellos")  # names of the six persons, in order
# subject pronoun -> persons its verb may have ("ustedes" takes 3rd plural, or 2nd in Andalusia)
_PRONOUNS = {
    "yo": (0,),
    "tú": (1,),
    "él": (2,),
    "ella": (2,),
    "usted": (2,),
    "nosotros": (3,),
    "nosotras": (3,),
    "vosotros": (4,),
    "vosotras": (4,),
    "ellos": (5,),
    "ellas": (5,),
    "ustedes": (5, 4),
}
_CLITICS = _set("me te se lo la le nos os les los las")
_PREPOSITIONS = _set(
    "a ante bajo con contra de desde durante en entre hacia hasta mediante para por según sin sobre tras "
    "excepto salvo menos incluso como"
)
_COORDINATORS = _set("y e o u")
_RELATIVE_ARTICLES = _set("lo el la los las")

# present indicative: infinitive, then the six persons
_IRREGULAR = """
ser soy eres es somos sois son
estar estoy estás está estamos estáis están
tener tengo tienes tiene tenemos tenéis tienen
ir voy vas va vamos vais van
hacer hago haces hace hacemos hacéis hacen
poder puedo puedes puede podemos podéis pueden
querer quiero quieres quiere queremos queréis quieren
saber sé sabes sabe sabemos sabéis saben
decir digo dices dice decimos decís dicen
venir vengo vienes viene venimos venís vienen
ver veo ves ve vemos veis ven
dar doy das da damos dais dan
poner pongo pones pone ponemos ponéis ponen
salir salgo sales sale salimos salís salen
conocer conozco conoces conoce conocemos conocéis conocen
traer traigo traes trae traemos traéis traen
jugar juego juegas juega jugamos jugáis juegan
dormir duermo duermes duerme dormimos dormís duermen
volver vuelvo vuelves vuelve volvemos volvéis vuelven
pensar pienso piensas piensa pensamos pensáis piensan
empezar empiezo empiezas empieza empezamos empezáis empiezan
entender entiendo entiendes entiende entendemos entendéis entienden
preferir prefiero prefieres prefiere preferimos preferís prefieren
pedir pido pides pide pedimos pedís piden
seguir sigo sigues sigue seguimos seguís siguen
sentir siento sientes siente sentimos sentís sienten
encontrar encuentro encuentras encuentra encontramos encontráis encuentran
recordar recuerdo recuerdas recuerda recordamos recordáis recuerdan
cerrar cierro cierras cierra cerramos cerráis cierran
perder pierdo pierdes pierde perdemos perdéis pierden
conducir conduzco conduces conduce conducimos conducís conducen
"""
_REGULAR = _split(
    "hablar trabajar estudiar cocinar comprar llegar llevar tomar mirar escuchar necesitar viajar bailar cantar "
    "caminar usar esperar ayudar visitar llamar desayunar cenar limpiar ganar pagar preparar practicar descansar "
    "terminar olvidar entrar buscar enseñar regresar cambiar contestar preguntar nadar montar "
    "comer beber leer aprender comprender correr vender deber creer responder "
    "vivir escribir abrir subir decidir recibir compartir"
)
_ENDINGS = {
    "ar": ("o", "as", "a", "amos", "áis", "an"),
    "er": ("o", "es", "e", "emos", "éis", "en"),
    "ir": ("o", "es", "e", "imos", "ís", "en"),
}
# forms that are also everyday non-verbs or imperatives: never taken for a present form
_AMBIGUOUS_FORMS = _set("como ve ven nada")
_GUSTAR = _set("gusta gustan encanta encantan interesa interesan duele duelen")
_GUSTAR_CLITIC = {"yo": "me", "tú": "te", "nosotros": "nos", "nosotras": "nos", "vosotros": "os", "vosotras": "os"}
_GUSTAR_TONIC = {"yo": "a mí", "tú": "a ti"}
_GUSTAR_GLOSS = {"me": "me", "te": "you", "nos": "us", "os": "you"}

# nouns whose gender learners get wrong (the plural adds -s/-es unless given as singular:plural);
# not "tarde" or "sol": "llegó el tarde" may be "él" with its accent lost, "la sol" two notes
_MASCULINE = _split(
    "problema tema sistema programa idioma mapa día clima planeta sofá poema drama dilema esquema pijama fantasma "
    "diploma síntoma enigma aroma crucigrama panorama tranvía mediodía coche café parque viaje hombre nombre aire "
    "puente deporte diente accidente cine chocolate tomate restaurante traje paisaje mensaje garaje "
    "lenguaje personaje equipaje pasaje árbol:árboles papel hotel hospital color amor dolor pan tren "
    "avión:aviones camión:camiones corazón:corazones jamón:jamones examen:exámenes reloj país:países "
    "lápiz:lápices arroz:arroces autobús:autobuses mes lunes:lunes martes:martes miércoles:miércoles "
    "jueves:jueves viernes:viernes"
)
_FEMININE = _split(
    "mano foto moto leche calle noche gente clase carne nieve llave fuente suerte muerte madre sangre nube "
    "torre frase base flor sal piel miel cárcel:cárceles red pared sed vez:veces luz:luces voz:voces "
    "nariz:narices cruz:cruces paz:paces imagen:imágenes"
)
# feminine nouns starting with a stressed a-: "el"/"un" in the singular, "las" in the plural
_STRESSED_A = _set("agua alma área aula águila hambre hacha hada")
_FEMININE_ENDINGS = ("ción", "sión", "xión", "dad", "tad", "tud", "umbre")
_FEMININE_PLURAL_ENDINGS = ("ciones", "siones", "xiones", "dades", "tades", "tudes", "umbres")
# nouns with a verb form of the same spelling: "la traje" may be "I brought it"
_ALSO_VERB = _set("programa tema viaje nombre traje parque deporte aire calle base sal sangre")
_OBJECT_ARTICLES = _set("la las los")
# determiner -> (gender, number, the same determiner of the other gender)
_DETERMINERS: dict[str, tuple[str, str, str]] = {}
for _m, _f in (
    ("el", "la"),
    ("los", "las"),
    ("un", "una"),
    ("unos", "unas"),
    ("este", "esta"),
    ("estos", "estas"),
    ("ese", "esa"),
    ("esos", "esas"),
    ("aquel", "aquella"),
    ("aquellos", "aquellas"),
    ("nuestro", "nuestra"),
    ("nuestros", "nuestras"),
    ("vuestro", "vuestra"),
    ("vuestros", "vuestras"),
    ("otro", "otra"),
    ("otros", "otras"),
    ("ningún", "ninguna"),
    ("algún", "alguna"),
):
    _number = "p" if _m.endswith("s") else "s"
    _DETERMINERS[_m] = ("m", _number, _f)
    _DETERMINERS[_f] = ("f", _number, _m)
_CONTRACTIONS = {"del": "de", "al": "a"}  # contraction -> its preposition (+ el)

_TENER_NOUNS = _set("hambre sed miedo sueño prisa calor")
_SER_ESTAR_TO_TENER = {
    "soy": "tengo",
    "eres": "tienes",
    "somos": "tenemos",
    "sois": "tenéis",
    "estoy": "tengo",
    "estás": "tienes",
    "estamos": "tenemos",
    "estáis": "tenéis",
}
_SER_TO_ESTAR = {"soy": "estoy", "eres": "estás", "somos": "estamos", "sois": "estáis"}
_NUMBERS = frozenset(
    _split(
        "uno un dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciséis "
        "diecisiete dieciocho diecinueve veinte veintiuno veintiún veintidós veintitrés veinticuatro veinticinco "
        "veintiséis veintisiete veintiocho veintinueve treinta cuarenta cincuenta sesenta setenta ochenta noventa "
        "cien ciento"
    )
)
_AGE_NOT_AFTER = _set("mayor menor mayores menores más menos de")


@dataclass(frozen=True)
class Mistake:
    """One mistake in a line: ``said`` as it stands in the line, ``correct`` to replace it,
    ``why`` a short English reason; ``start``/``end`` index the line (-1 when unknown)."""

    said: str
    correct: str
    why: str
    rule: str = "model"
    start: int = -1
    end: int = -1

    def as_dict(self) -> dict[str, str]:
        return {"said": self.said, "correct": self.correct, "why": self.why}


@dataclass(frozen=True)
class _Word:
    low: str
    start: int
    end: int


_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")


def _clauses(text: str) -> Iterator[list[_Word]]:
    """Runs of words with no punctuation between them."""
    clause: list[_Word] = []
    for m in _TOKEN.finditer(text):
        if m.group()[0].isalnum():
            clause.append(_Word(m.group().lower(), m.start(), m.end()))
        elif clause:
            yield clause
            clause = []
    if clause:
        yield clause


@cache
def _paradigms() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for line in _IRREGULAR.strip().splitlines():
        verb, *forms = line.split()
        out[verb] = tuple(forms)
    for verb in _REGULAR:
        stem, kind = verb[:-2], verb[-2:]
        out[verb] = tuple(stem + ending for ending in _ENDINGS[kind])
    return out


@cache
def _forms() -> dict[str, tuple[tuple[str, int], ...]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for verb, forms in _paradigms().items():
        for person, form in enumerate(forms):
            out.setdefault(form, []).append((verb, person))
    return {form: tuple(readings) for form, readings in out.items() if form not in _AMBIGUOUS_FORMS}


def present_forms(form: str) -> tuple[tuple[str, int], ...]:
    """The (infinitive, person 0..5) readings of a present-indicative form this module knows."""
    return _forms().get(form.lower(), ())


def check(text: str) -> list[Mistake]:
    """The mistakes the rules find in ``text``, in order, never overlapping."""
    found: list[Mistake] = []
    for clause in _clauses(text):
        for rule in (_agreement, _gender, _tener, _mas_mejor):
            found.extend(rule(text, clause))
    found.sort(key=lambda m: m.start)
    out: list[Mistake] = []
    for m in found:
        if not out or m.start >= out[-1].end:
            out.append(m)
    return out


def _mistake(text: str, first: _Word, last: _Word, correct: str, why: str, rule: str) -> Mistake:
    said = text[first.start : last.end]
    if said[:1].isupper():
        correct = correct[:1].upper() + correct[1:]
    return Mistake(said, correct, why, rule, first.start, last.end)


def _replace(text: str, words: Sequence[_Word], index: int, new: str) -> str:
    """The words' span of ``text`` with word ``index`` replaced by ``new``."""
    start, end = words[0].start, words[-1].end
    w = words[index]
    return text[start : w.start] + new + text[w.end : end]


def _verblike(word: str) -> bool:
    """A known present form, or an ending of the preterite or imperfect."""
    return bool(present_forms(word)) or (len(word) > 3 and word.endswith(("ó", "é", "í", "aba", "ía", "aron")))


# --------------------------------------------------------------------------- rules


def _agreement(text: str, clause: list[_Word]) -> Iterator[Mistake]:
    for i, pron in enumerate(clause):
        persons = _PRONOUNS.get(pron.low)
        if persons is None or not _subject_position(clause, i):
            continue
        j = i + 1
        if j < len(clause) and clause[j].low == "no":
            j += 1
        clitics = 0
        while j < len(clause) and clause[j].low in _CLITICS and clitics < 2:
            j, clitics = j + 1, clitics + 1
        if j >= len(clause):
            continue
        verb = clause[j]
        if verb.low in _GUSTAR:
            yield from _gustar(text, clause[i : j + 1], clitics)
            continue
        readings = present_forms(verb.low)
        if not readings or any(p in persons for _, p in readings):
            continue
        infinitive, person = readings[0]
        plural = person >= 3
        # "mi hermano y yo vamos": a joint subject; "me llamo Pedro y yo tiene": two clauses
        coordinated = i > 0 and clause[i - 1].low in _COORDINATORS
        if coordinated and (plural or not any(_verblike(w.low) for w in clause[: i - 1])):
            continue
        if pron.low in ("él", "ella", "usted") and person == 0 and infinitive.endswith("ar") and infinitive in _REGULAR:
            continue  # "él trabajo" may be "trabajó" with its accent lost
        if pron.low == "tú" and verb.low == "sé":
            continue  # the imperative of ser: "tú sé bueno"
        right = _paradigms()[infinitive][persons[0]]
        correct = _replace(text, clause[i : j + 1], j - i, right)
        why = f"the verb agrees with {pron.low}: {right}, not {verb.low} ({infinitive})"
        yield _mistake(text, pron, verb, correct, why, "agreement")


def _subject_position(clause: list[_Word], i: int) -> bool:
    """Whether pronoun ``i`` may be the subject of the verb after it."""
    if i == 0:
        return True
    before = clause[i - 1].low
    if before in _PREPOSITIONS or before == "ni":
        return False
    if before not in _COORDINATORS and _verblike(before):
        return False  # after a verb the pronoun is that verb's subject: "cuando llegó él tengo..."
    words = [w.low for w in clause[:i]]
    for k, w in enumerate(words):
        if w in ("quien", "quienes") or (w == "que" and k > 0 and words[k - 1] in _RELATIVE_ARTICLES):
            return False  # "lo que quiero yo es ...": the pronoun belongs to the relative clause
    return True


def _gustar(text: str, words: list[_Word], clitics: int) -> Iterator[Mistake]:
    pron, verb = words[0], words[-1]
    if pron.low not in _GUSTAR_CLITIC:
        return
    clitic = _GUSTAR_CLITIC[pron.low]
    between = [w.low for w in words[1:-1]]
    negated = "no " if "no" in between else ""
    if clitics == 0:
        correct = f"{negated}{clitic} {verb.low}"
    elif clitics == 1 and between[-1] == clitic and pron.low in _GUSTAR_TONIC:
        correct = f"{_GUSTAR_TONIC[pron.low]} {negated}{clitic} {verb.low}"
    else:
        return
    gloss = f"it pleases {_GUSTAR_GLOSS[clitic]}"
    why = f"with {verb.low} the thing liked is the subject: {clitic} {verb.low} ({gloss}), not {pron.low}"
    yield _mistake(text, pron, verb, correct, why, "gustar")


@cache
def _genders() -> dict[str, tuple[str, str, str]]:
    """noun form -> (gender, number, singular) for the listed nouns."""
    out: dict[str, tuple[str, str, str]] = {}
    for gender, nouns in (("m", _MASCULINE), ("f", _FEMININE)):
        for entry in nouns:
            singular, _, plural = entry.partition(":")
            out[singular] = (gender, "s", singular)
            out[plural or _plural(singular)] = (gender, "p", singular)
    return out


def _plural(noun: str) -> str:
    if noun[-1] in "aeioéáó":
        return noun + "s"
    return noun + "es"


def _gender_of(noun: str) -> tuple[str, str, str] | None:
    known = _genders().get(noun)
    if known is not None:
        return known
    if noun in _STRESSED_A:
        return "f", "s", noun
    if len(noun) >= 5 and noun.endswith(_FEMININE_ENDINGS) and noun != "alumbre":
        return "f", "s", noun
    if len(noun) >= 7 and noun.endswith(_FEMININE_PLURAL_ENDINGS):
        return "f", "p", noun
    return None


def _gender(text: str, clause: list[_Word]) -> Iterator[Mistake]:
    for i in range(len(clause) - 1):
        det, noun = clause[i], clause[i + 1]
        known = _gender_of(noun.low)
        if known is None:
            continue
        gender, number, singular = known
        if det.low in _CONTRACTIONS:
            prep = _CONTRACTIONS[det.low]
            if gender == "f" and number == "s" and singular not in _STRESSED_A:
                why = f"{singular} is feminine: {prep} la {noun.low}"
                yield _mistake(text, det, noun, f"{prep} la {text[noun.start : noun.end]}", why, "gender")
            continue
        if det.low not in _DETERMINERS:
            continue
        det_gender, det_number, other = _DETERMINERS[det.low]
        if det_number != number or (det.low in _OBJECT_ARTICLES and singular in _ALSO_VERB):
            continue
        if singular == "mano" and [w.low for w in clause[i + 2 : i + 4]] == ["a", "mano"]:
            continue  # "un mano a mano": a head-to-head
        if singular in _STRESSED_A and number == "s":
            if det.low != "la":
                continue  # "el agua" is right; "una agua" and "esta agua" are accepted too
            right, why = "el", f"{singular} is feminine but takes el in the singular (stressed a-): el {singular}"
        elif det_gender == gender:
            continue
        else:
            right = other
            why = f"{singular} is {'masculine' if gender == 'm' else 'feminine'}: {other} {noun.low}"
        first, word = det, text[noun.start : noun.end]
        correct = f"{right} {word}"
        if right == "el" and i > 0 and clause[i - 1].low in ("de", "a"):
            first = clause[i - 1]
            correct = f"{'del' if first.low == 'de' else 'al'} {word}"
            why = why.replace(f"el {singular}", f"{'del' if first.low == 'de' else 'al'} {singular}")
        yield _mistake(text, first, noun, correct, why, "gender")


def _tener(text: str, clause: list[_Word]) -> Iterator[Mistake]:
    for i, verb in enumerate(clause):
        tener = _SER_ESTAR_TO_TENER.get(verb.low)
        if tener is None or i + 1 >= len(clause):
            continue
        rest = [w.low for w in clause[i + 1 :]]
        if verb.low in _SER_TO_ESTAR and rest[:2] == ["de", "acuerdo"]:
            right = _SER_TO_ESTAR[verb.low]
            why = f"agreeing is a state: estar de acuerdo ({right} de acuerdo)"
            yield _mistake(text, verb, clause[i + 2], _replace(text, clause[i : i + 3], 0, right), why, "ser-estar")
            continue
        k = 1 if rest[0] in ("mucho", "mucha") else 0
        if k < len(rest) and rest[k] in _TENER_NOUNS:
            last = clause[i + 1 + k]
            why = f"in Spanish you have {rest[k]}: tener {rest[k]} ({tener} {rest[k]})"
            yield _mistake(text, verb, last, _replace(text, clause[i : i + 2 + k], 0, tener), why, "tener")
            continue
        n = 0
        while n < len(rest) and (rest[n].isdigit() or rest[n] in _NUMBERS or (n > 0 and rest[n] == "y")):
            n += 1
        if verb.low in _SER_TO_ESTAR and 0 < n < len(rest) and rest[n - 1] != "y" and rest[n] == "años":
            after = rest[n + 1] if n + 1 < len(rest) else ""
            if after in _AGE_NOT_AFTER:
                continue  # "soy dos años mayor que tú" is right
            last = clause[i + 1 + n]
            why = f"age is had in Spanish: tener … años ({tener} … años)"
            yield _mistake(text, verb, last, _replace(text, clause[i : i + 2 + n], 0, tener), why, "tener")


def _mas_mejor(text: str, clause: list[_Word]) -> Iterator[Mistake]:
    for a, b in itertools.pairwise(clause):
        if a.low == "más" and b.low in ("mejor", "peor"):
            why = f"{b.low} is already a comparative: no más"
            yield _mistake(text, a, b, text[b.start : b.end], why, "comparative")
