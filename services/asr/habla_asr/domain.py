"""Pure logic of the asr service: audio conversion, Whisper failure-mode guards.

No model, no Redis, no clock: everything here is a function of its arguments (the live
caption state machine is in :mod:`habla_asr.agreement`).

Whisper fails in known ways, and :func:`clean` catches them in this order:

1. **Silence decoded as words.** A segment whose no-speech probability is above the
   threshold *and* whose average log-probability is below its threshold is dropped
   (Whisper's own rule) -> ``dropped="no_speech"`` when nothing is left.
2. **Repetition loops** ("y luego y luego y luego ..."): an n-gram repeated in a row
   is kept once (:func:`collapse_repetitions`).
3. **Boilerplate from the training data** (YouTube outros, subtitle credits, "[Música]"):
   when the *whole* text is boilerplate -> ``dropped="hallucination"``. Short phrases a
   person may really say ("gracias", "thank you") count only when the model itself was
   unsure (see :func:`is_boilerplate`).
4. Nothing (or only punctuation) left -> ``dropped="empty"``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from habla_common.audio import pcm16_to_float32

__all__ = [
    "DROP_EMPTY",
    "DROP_HALLUCINATION",
    "DROP_NO_SPEECH",
    "MIN_AUDIO_MS",
    "SAMPLE_RATE",
    "Cleaned",
    "Segment",
    "Thresholds",
    "Transcription",
    "clean",
    "collapse_repetitions",
    "is_boilerplate",
    "max_new_tokens",
    "normalise",
    "pcm16_to_float32",
]

SAMPLE_RATE = 16000
MIN_AUDIO_MS = 100  # shorter than this is not worth a model call
DROP_NO_SPEECH = "no_speech"
DROP_HALLUCINATION = "hallucination"
DROP_EMPTY = "empty"


@dataclass(frozen=True)
class Segment:
    """One decoded stretch of an utterance (times in ms from the utterance start)."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float = 0.0
    start_ms: int = 0
    end_ms: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class Transcription:
    """What a :class:`~habla_asr.adapters.Transcriber` heard, before any guard."""

    text: str
    language: str
    language_probability: float
    avg_logprob: float
    no_speech_prob: float
    segments: tuple[Segment, ...] = ()
    duration_ms: int = 0


@dataclass(frozen=True)
class Thresholds:
    no_speech: float = 0.6
    log_prob: float = -1.0
    compression_ratio: float = 2.4


@dataclass(frozen=True)
class Cleaned:
    """A transcription after the guards. ``dropped`` is "" when ``text`` is usable."""

    text: str
    dropped: str
    avg_logprob: float
    no_speech_prob: float


# --- audio --------------------------------------------------------------------------


def max_new_tokens(duration_ms: int) -> int:
    """A cap on decoded tokens for audio this long, per 30 s window.

    Read Spanish runs at about 4 Whisper tokens per second (FLEURS, measured); three
    times that plus a margin leaves fast speech alone but stops a runaway loop early.
    """
    seconds = min(30.0, duration_ms / 1000.0)
    return int(min(224, 24 + 12 * seconds))


# --- text ---------------------------------------------------------------------------

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lowercase, accents and punctuation removed, single spaces: for comparisons only."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", stripped).split())


def _key(word: str) -> str:
    return normalise(word)


def collapse_repetitions(text: str, min_repeats: int = 3, min_word_repeats: int = 4) -> str:
    """Keep once any run of an n-gram repeated ``min_repeats``+ times in a row.

    Single words need ``min_word_repeats`` in a row, so that "no, no, no" or
    "sí, sí, sí" (which people say) survive while "no no no no no ..." loops do not.
    Words are compared after :func:`normalise`; the first copy is kept as written.
    """
    words = text.split()
    keys = [_key(w) for w in words]
    out: list[str] = []
    i = 0
    while i < len(words):
        run = _repeat_at(keys, i, min_repeats, min_word_repeats)
        if run is None:
            out.append(words[i])
            i += 1
            continue
        n, count = run
        out.extend(words[i : i + n])
        i += n * count
    return " ".join(out)


def _repeat_at(keys: list[str], i: int, min_repeats: int, min_word_repeats: int) -> tuple[int, int] | None:
    """(n, count) of the shortest n-gram starting at ``i`` that repeats enough, else None."""
    remaining = len(keys) - i
    for n in range(1, remaining // min_repeats + 1):
        need = min_word_repeats if n == 1 else min_repeats
        if n * need > remaining:
            continue
        gram = keys[i : i + n]
        count = 1
        while keys[i + count * n : i + (count + 1) * n] == gram:
            count += 1
        if count >= need:
            return n, count
    return None


# --- boilerplate --------------------------------------------------------------------

# Always hallucinations when they are the whole text (written as normalise() leaves them).
_BOILERPLATE = tuple(
    normalise(p)
    for p in (
        # Spanish: YouTube outros and subtitle credits from Whisper's training data
        "gracias por ver",
        "gracias por ver el video",
        "gracias por ver el vídeo",
        "gracias por mirar",
        "gracias por su atención",
        "muchas gracias por ver",
        "muchas gracias por ver el video",
        "muchas gracias por ver el vídeo",
        "gracias por ver y hasta la próxima",
        "nos vemos en el próximo video",
        "nos vemos en el próximo vídeo",
        "hasta el próximo video",
        "hasta el próximo vídeo",
        "hasta la próxima",
        "suscríbete",
        "suscríbete al canal",
        "suscríbete a nuestro canal",
        "no olvides suscribirte",
        "no olvides suscribirte al canal",
        "dale like y suscríbete",
        "like y suscríbete",
        "activa la campanita",
        "subtítulos realizados por la comunidad de amara.org",
        "subtítulos por la comunidad de amara.org",
        "subtitulado por la comunidad de amara.org",
        "subtítulos en español",
        "subtítulos hechos por la comunidad de amara.org",
        "amara.org",
        "transcripción realizada por la comunidad de amara.org",
        # English
        "thanks for watching",
        "thank you for watching",
        "thanks for watching and see you next time",
        "thank you so much for watching",
        "please subscribe",
        "please subscribe to my channel",
        "subscribe to my channel",
        "don't forget to like and subscribe",
        "like and subscribe",
        "see you in the next video",
        "see you next time",
        "subtitles by the amara.org community",
        "transcription by castingwords",
        "captions by",
        "www.mooji.org",
    )
)
# Things people really say: boilerplate only when the model was unsure it heard speech.
_WEAK = tuple(
    normalise(p)
    for p in (
        "gracias",
        "muchas gracias",
        "adiós",
        "chao",
        "hola",
        "thank you",
        "thanks",
        "thank you very much",
        "you",
        "bye",
        "bye bye",
        "okay",
        "oh",
    )
)
# Sound-event captions ("[Música]", "(aplausos)", "♪"): never speech.
_SOUND_TAGS = {
    normalise(p)
    for p in (
        "música",
        "musica",
        "music",
        "aplausos",
        "applause",
        "risas",
        "laughter",
        "silencio",
        "silence",
        "inaudible",
        "ruido",
        "noise",
        "música de fondo",
        "background music",
        "sonido",
        "tos",
        "cough",
        "suspiro",
        "sighs",
        "música suave",
        "upbeat music",
    )
}
_TAG = re.compile(r"[\[(（【]([^\])）】]{0,40})[\])）】]")
_MUSIC = re.compile(r"[♪♫♬🎵🎶]+")


def strip_sound_tags(text: str) -> str:
    """Remove sound-event captions like "[Música]", "(risas)" and music notes."""
    text = _TAG.sub(lambda m: "" if normalise(m.group(1)) in _SOUND_TAGS else m.group(0), text)
    return " ".join(_MUSIC.sub(" ", text).split())


def _strip_phrases(norm: str, phrases: tuple[str, ...]) -> str:
    """Remove leading boilerplate phrases one after another (longest first)."""
    ordered = sorted(phrases, key=len, reverse=True)
    changed = True
    while norm and changed:
        changed = False
        for phrase in ordered:
            if norm == phrase or norm.startswith(phrase + " "):
                norm = norm[len(phrase) :].strip()
                changed = True
                break
    return norm


def is_boilerplate(text: str, *, unsure: bool = False) -> bool:
    """True when all of ``text`` is known hallucination boilerplate.

    ``unsure`` (the model's own doubt: low confidence or a high no-speech probability)
    also lets short phrases such as "gracias" or "thank you" count.
    """
    norm = normalise(text)
    if not norm:
        return False
    phrases = _BOILERPLATE + _WEAK if unsure else _BOILERPLATE
    return not _strip_phrases(norm, phrases)


# --- the guard ----------------------------------------------------------------------


def _weighted(segments: tuple[Segment, ...], attr: str) -> float:
    if not segments:
        return 0.0
    weights = [max(1, s.tokens) for s in segments]
    return float(sum(getattr(s, attr) * w for s, w in zip(segments, weights, strict=False)) / sum(weights))


def clean(t: Transcription, th: Thresholds) -> Cleaned:
    """Apply the guards of the module docstring to one transcription."""
    segments = t.segments or ((Segment(t.text, t.avg_logprob, t.no_speech_prob),) if t.text.strip() else ())
    kept = tuple(s for s in segments if not (s.no_speech_prob > th.no_speech and s.avg_logprob < th.log_prob))
    basis = kept or segments
    logprob, no_speech = _weighted(basis, "avg_logprob"), _weighted(basis, "no_speech_prob")
    if segments and not kept:
        return Cleaned("", DROP_NO_SPEECH, logprob, no_speech)
    text = collapse_repetitions(strip_sound_tags(" ".join(s.text.strip() for s in kept)))
    unsure = no_speech > th.no_speech / 2 or logprob < th.log_prob
    if is_boilerplate(text, unsure=unsure):
        return Cleaned("", DROP_HALLUCINATION, logprob, no_speech)
    if not normalise(text):
        return Cleaned("", DROP_EMPTY, logprob, no_speech)
    return Cleaned(text, "", logprob, no_speech)
