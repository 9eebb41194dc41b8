"""Cutting a text into the pieces spoken one by one (pure functions, Spanish and English).

A text is spoken sentence by sentence, each published as soon as it is synthesised, so the
first audio plays while the rest is still being made. :func:`speech_chunks` does it all:

1. :func:`speakable`: no markup or emoji (an engine would read ``*`` out loud), no space
   before a punctuation mark.
2. :func:`split_sentences`: a sentence ends at ``.``, ``?``, ``!``, ``…`` followed by a
   space (closing quotes and brackets stay with it; ``¿`` and ``¡`` open the next one), and at
   a line break. Not after a title or a common abbreviation (``Sr.``, ``Dra.``, ``p. ej.``,
   ``e.g.``), after an initial (``J. K. Rowling``), or after ``etc.`` or an ellipsis unless the
   next word starts a sentence (a capital letter, an opener); never inside a number (``3,5``,
   ``3.5``: no space follows the mark).
3. :func:`clip_sentences`: at most ``max_chars`` characters, whole sentences (a first sentence
   longer than that alone is cut at a word).
4. :func:`shorten_first`: a first sentence of more than ``first_words`` words is split at its
   first comma, semicolon or colon after a few words, so the first audio comes quickly
   (questions and exclamations are kept whole: their intonation needs the end).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clip_sentences", "shorten_first", "speakable", "speech_chunks", "split_sentences"]

_CLOSERS = "\"'”’»)]"
_OPENERS = "¿¡\"'“‘«([—-"
# never end a sentence: titles and abbreviations that a name, a number or more words follow
_NEVER_END = frozenset(
    {
        *("sr", "sra", "sres", "srta", "srs", "dr", "dra", "dres", "dras", "d", "dña", "ud", "uds", "vd", "vds"),
        *("lic", "ing", "prof", "profa", "arq", "mr", "mrs", "ms", "st", "p", "ej", "e.g", "i.e", "vs", "núm", "nº"),
        *("pág", "págs", "cap", "art", "aprox", "fig", "tel", "av", "avda", "c/", "cf", "approx", "dept"),
    }
)
# end a sentence only when the next word starts one
_MAY_END = frozenset({"etc", "a.m", "p.m", "ee.uu", "uu.ee", "u.s", "u.k", "jr", "inc", "ltd", "co"})
_ELLIPSIS = ("…", "...")
_MARKUP = re.compile(r"[*_#`~|<>]+")
_SPACES = re.compile(r"\s+")
_BEFORE_MARK = re.compile(r" ([.,;:!?…])")  # a space left before a mark by what was removed
_EMOJI_MARKS = frozenset(chr(c) for c in (*range(0xFE00, 0xFE10), 0x20E3))  # variation selectors, keycap


def speakable(text: str) -> str:
    """``text`` without what an engine should not read out: markup characters, emoji and other
    pictographs, control characters; whitespace runs become one space (line breaks stay)."""
    text = unicodedata.normalize("NFC", text)
    text = _MARKUP.sub("", text)
    kept = []
    for c in text:
        category = unicodedata.category(c)
        if c == "\n":
            kept.append(c)
        elif c in "\t\r\v\f":
            kept.append(" ")
        elif category[0] == "C" or category in ("So", "Sk") or c in _EMOJI_MARKS:
            continue  # control and format characters (joiners), pictographs and emoji, their selectors
        else:
            kept.append(c)
    lines = (_BEFORE_MARK.sub(r"\1", _SPACES.sub(" ", line)).strip() for line in "".join(kept).split("\n"))
    return "\n".join(line for line in lines if line)


def _starts_sentence(word: str) -> bool:
    first = word[:1]
    return bool(first) and (first.isupper() or first.isdigit() or first in _OPENERS)


def _ends_sentence(token: str, following: str | None) -> bool:
    """Whether ``token`` (a whitespace-separated word with its punctuation) ends a sentence,
    given the word after it (``None`` at the end of the text)."""
    if following is None:
        return True
    core = token.rstrip(_CLOSERS)
    if core.endswith(("?", "!")):
        return True
    if core.endswith(_ELLIPSIS):
        return _starts_sentence(following)
    if not core.endswith("."):
        return False
    word = core[:-1].lstrip(_OPENERS)
    lowered = word.lower()
    if lowered in _NEVER_END:
        return False
    if len(word) == 1 and word.isupper() and word != "I":  # an initial: J. K. Rowling
        return False
    if lowered in _MAY_END or "." in word:
        return _starts_sentence(following)
    return True


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order, each with its punctuation, spaces normalised."""
    sentences: list[str] = []
    for line in text.split("\n"):
        words = line.split()
        current: list[str] = []
        for i, word in enumerate(words):
            current.append(word)
            if _ends_sentence(word, words[i + 1] if i + 1 < len(words) else None):
                sentences.append(" ".join(current))
                current = []
    return [s for s in sentences if any(c.isalnum() for c in s)]


def clip_sentences(sentences: list[str], max_chars: int) -> list[str]:
    """The leading sentences that fit in ``max_chars`` characters; when even the first does
    not, the first cut at the last word that fits."""
    kept: list[str] = []
    used = 0
    for sentence in sentences:
        if used + len(sentence) > max_chars:
            if not kept:
                cut = sentence[: max_chars + 1].rsplit(" ", 1)[0] if " " in sentence[:max_chars] else ""
                kept.append(cut or sentence[:max_chars])
            break
        kept.append(sentence)
        used += len(sentence) + 1
    return kept


def shorten_first(sentences: list[str], first_words: int = 12, min_words: int = 3) -> list[str]:
    """``sentences`` with a long first one split at its first clause break after ``min_words``
    words (at least two words stay after it)."""
    if not sentences or first_words <= 0:
        return sentences
    first, rest = sentences[0], sentences[1:]
    words = first.split()
    if len(words) <= first_words or first.startswith(("¿", "¡")) or first.rstrip(_CLOSERS).endswith(("?", "!")):
        return sentences
    for i in range(min_words - 1, len(words) - 2):
        if words[i].endswith((",", ";", ":")):
            return [" ".join(words[: i + 1]), " ".join(words[i + 1 :]), *rest]
    return sentences


def speech_chunks(text: str, max_chars: int = 600, first_words: int = 12) -> list[str]:
    """The pieces ``text`` is spoken in, in order (see the module docstring)."""
    return shorten_first(clip_sentences(split_sentences(speakable(text)), max_chars), first_words)
