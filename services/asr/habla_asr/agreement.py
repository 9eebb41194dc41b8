"""Live-caption stabiliser: LocalAgreement-2 over successive hypotheses of one utterance.

Ingest sends the audio of the utterance *so far* every second or so; each window is
transcribed from the start, so successive hypotheses overlap. A word is **committed**
once two hypotheses in a row agree on it and on everything before it (the longest
common prefix of the last two, as in whisper_streaming's ``HypothesisBuffer``), and a
committed word is never taken back or rewritten: the live line's stable prefix does
not flicker. The rest of the latest hypothesis is **tentative**.

Words are compared after :func:`~habla_asr.domain.normalise`, so "viajeros," and
"viajeros" agree; a word is committed as the newer of the two hypotheses wrote it
(it has more context for punctuation) and keeps that spelling from then on.
When a new hypothesis spells an already committed word differently, the committed
words stay as they are and the new words are placed after the last committed ones.
A pure state machine: no model, no clock, replayable from recorded hypotheses.
"""

from __future__ import annotations

from collections.abc import Sequence

from .domain import normalise

__all__ = ["LocalAgreement"]

_ANCHORS = (3, 2)  # last committed words used to re-find our place in a diverging hypothesis


def _common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LocalAgreement:
    """``update(words) -> (committed, tentative)``; ``committed`` only ever grows."""

    def __init__(self) -> None:
        self._committed: list[str] = []
        self._committed_keys: list[str] = []
        self._previous: list[str] | None = None

    @property
    def committed(self) -> tuple[str, ...]:
        return tuple(self._committed)

    def update(self, hypothesis: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Take the newest hypothesis (all words of the utterance so far)."""
        words = [w for w in hypothesis if normalise(w)] if hypothesis else []
        keys = [normalise(w) for w in words]
        start = self._align(keys)
        if self._previous is not None and start is not None:
            prev_keys = [normalise(w) for w in self._previous]
            prev_start = self._align(prev_keys)
            if prev_start is not None:
                agreed = _common_prefix(prev_keys[prev_start:], keys[start:])
                self._committed.extend(words[start : start + agreed])
                self._committed_keys.extend(keys[start : start + agreed])
                start += agreed
        self._previous = words
        tentative = words[start:] if start is not None else words[len(self._committed) :]
        return self.committed, tuple(tentative)

    def _align(self, keys: list[str]) -> int | None:
        """Where the words after the committed prefix begin in ``keys``.

        Normally the hypothesis repeats the committed words exactly. When it spells an
        early word differently, the last few committed words are looked up near the
        expected place instead; None when they cannot be found either.
        """
        committed = self._committed_keys
        n = len(committed)
        if keys[:n] == committed:
            return n
        for size in _ANCHORS:
            tail = committed[-size:]
            if len(tail) < size:
                continue
            for delta in (0, -1, 1, -2, 2, -3, 3):
                end = n + delta
                if end >= size and keys[end - size : end] == tail:
                    return end
        return None

    def finish(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Everything of the last hypothesis, committed (the utterance ended)."""
        if self._previous is not None:
            keys = [normalise(w) for w in self._previous]
            start = self._align(keys)
            start = len(self._committed) if start is None else start
            self._committed.extend(self._previous[start:])
            self._committed_keys.extend(keys[start:])
        self._previous = None
        return self.committed, ()
