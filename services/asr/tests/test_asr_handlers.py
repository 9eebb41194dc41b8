"""AsrHandler: one final per utterance, partials through LocalAgreement, select().

The handler logic is tested here with a scripted stand-in for the model (it returns
the transcriptions it is given); the same handler on the real model is in
test_asr_model.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pytest

from habla_asr.config import AsrConfig
from habla_asr.domain import Segment, Transcription
from habla_asr.handlers import AsrHandler
from habla_contracts import (
    Event,
    SessionEnded,
    SpeechWindow,
    TranscriptFinal,
    TranscriptPartial,
    UtteranceSegmented,
    derived_id,
)

SECOND = np.full(16000, 1000, dtype="<i2").tobytes()


@dataclass
class Scripted:
    """Returns queued texts as confident transcriptions; records each call."""

    texts: list[str] = field(default_factory=list)
    calls: list[dict[str, object]] = field(default_factory=list)
    name: str = "scripted"

    def transcribe(self, pcm: np.ndarray, *, language: str | None, beam_size: int, partial: bool) -> Transcription:
        self.calls.append({"samples": pcm.size, "language": language, "beam_size": beam_size, "partial": partial})
        text = self.texts.pop(0) if self.texts else ""
        seg = (Segment(text, -0.2, 0.01, tokens=len(text.split())),) if text else ()
        return Transcription(text, language or "en", 0.97, -0.2, 0.01, seg, int(pcm.size / 16))


def settings(direction: str | None = "es-en") -> dict[str, dict[str, str]]:
    return {"s1": {} if direction is None else {"direction": direction}}


def make(texts: list[str], direction: str | None = "es-en", **cfg: object) -> tuple[AsrHandler, Scripted, list[Event]]:
    model = Scripted(list(texts))
    table: Mapping[str, Mapping[str, str]] = settings(direction)
    ticks = iter(range(0, 10_000, 250))
    handler = AsrHandler(
        model,
        AsrConfig(**cfg),
        lambda sid: table.get(sid, {}),
        clock=lambda: next(ticks) / 1000,  # type: ignore[arg-type]
    )
    return handler, model, []


def window(utt: str, i: int, seconds: int = 1, session: str = "s1") -> SpeechWindow:
    return SpeechWindow(
        session_id=session,
        event_id=f"w-{utt}-{i}",
        utterance_id=utt,
        window_index=i,
        end_ms=1000 * seconds,
        pcm=SECOND * seconds,
    )


def utterance(utt: str, seconds: int = 2, session: str = "s1") -> UtteranceSegmented:
    return UtteranceSegmented(
        session_id=session,
        event_id=f"u-{utt}",
        utterance_id=utt,
        index=3,
        start_ms=500,
        end_ms=500 + 1000 * seconds,
        pcm=SECOND * seconds,
    )


# --- finals -----------------------------------------------------------------------------


def test_an_utterance_gives_one_final_with_a_derived_id() -> None:
    handler, model, out = make(["Hola, ¿qué tal?"])
    handler.handle(utterance("a"), out.append)
    (final,) = out
    assert isinstance(final, TranscriptFinal)
    assert final.event_id == derived_id("u-a", "final")
    assert (final.text, final.dropped, final.language, final.model) == ("Hola, ¿qué tal?", "", "es", "scripted")
    assert (final.utterance_id, final.index, final.start_ms, final.end_ms) == ("a", 3, 500, 2500)
    assert final.asr_ms == 250
    assert model.calls == [{"samples": 32000, "language": "es", "beam_size": 5, "partial": False}]


def test_a_redelivered_utterance_republishes_the_same_final() -> None:
    handler, _, out = make(["uno", "uno"])
    handler.handle(utterance("a"), out.append)
    handler.handle(utterance("a"), out.append)
    assert [e.event_id for e in out] == [derived_id("u-a", "final")] * 2


def test_giving_up_on_an_utterance_still_publishes_its_one_final() -> None:
    handler, _, out = make([])
    handler.give_up(utterance("a"), "RuntimeError: model crashed", out.append)
    handler.give_up(window("a", 0), "whatever", out.append)  # windows need no fallback
    (final,) = out
    assert isinstance(final, TranscriptFinal)
    assert final.event_id == derived_id("u-a", "final") and (final.text, final.dropped) == ("", "asr_failed")
    handler.handle(window("a", 1), out.append)
    assert len(out) == 1  # the utterance is closed: no partial after its final


@pytest.mark.parametrize(("direction", "language"), [("es-en", "es"), ("en-es", "en"), ("auto", None), (None, "es")])
def test_the_session_direction_picks_the_language(direction: str | None, language: str | None) -> None:
    handler, model, out = make(["hello"], direction=direction)
    handler.handle(utterance("a"), out.append)
    assert model.calls[0]["language"] == language
    assert isinstance(out[0], TranscriptFinal) and out[0].language == (language or "en")


def test_nothing_heard_still_gives_a_final_with_the_reason() -> None:
    handler, _, out = make(["¡Gracias por ver el video!", ""])
    handler.handle(utterance("a"), out.append)
    handler.handle(utterance("b"), out.append)
    assert [(e.text, e.dropped) for e in out if isinstance(e, TranscriptFinal)] == [
        ("", "hallucination"),
        ("", "empty"),
    ]


def test_an_empty_or_tiny_utterance_skips_the_model() -> None:
    handler, model, out = make([])
    handler.handle(UtteranceSegmented(session_id="s1", utterance_id="a", pcm=b""), out.append)
    handler.handle(UtteranceSegmented(session_id="s1", utterance_id="b", pcm=b"\x00\x01" * 100), out.append)
    assert [(e.text, e.dropped) for e in out if isinstance(e, TranscriptFinal)] == [("", "empty"), ("", "empty")]
    assert model.calls == []


# --- partials ---------------------------------------------------------------------------


def test_windows_give_partials_whose_committed_part_only_grows() -> None:
    handler, model, out = make(["se recomienda", "se recomienda enfáticamente a", "se recomienda enfáticamente a los"])
    for i in range(3):
        handler.handle(window("a", i, i + 1), out.append)
    partials = [e for e in out if isinstance(e, TranscriptPartial)]
    assert [(p.committed, p.tentative) for p in partials] == [
        ("", "se recomienda"),
        ("se recomienda", "enfáticamente a"),
        ("se recomienda enfáticamente a", "los"),
    ]
    assert partials[1].event_id == derived_id("w-a-1", "partial")
    assert (partials[2].window_index, partials[2].audio_end_ms, partials[2].language) == (2, 3000, "es")
    assert all(c["partial"] and c["beam_size"] == 1 for c in model.calls)


def test_an_unchanged_partial_is_not_republished() -> None:
    handler, _, out = make(["hola", "hola", "hola"])
    for i in range(3):
        handler.handle(window("a", i, i + 1), out.append)
    assert [(e.committed, e.tentative) for e in out if isinstance(e, TranscriptPartial)] == [("", "hola"), ("hola", "")]


def test_windows_after_the_final_or_older_than_one_seen_are_ignored() -> None:
    handler, model, out = make(["uno", "uno dos", "final"])
    handler.handle(window("a", 1), out.append)
    handler.handle(window("a", 0), out.append)  # older than one already handled
    handler.handle(window("a", 2), out.append)
    handler.handle(utterance("a"), out.append)
    handler.handle(window("a", 3), out.append)  # after the final
    assert [type(e).__name__ for e in out] == ["TranscriptPartial", "TranscriptPartial", "TranscriptFinal"]
    assert len(model.calls) == 3
    assert handler.open_utterances == 0


def test_auto_direction_reuses_a_confident_partial_language() -> None:
    handler, model, out = make(["hello there", "hello there friend"], direction="auto")
    handler.handle(window("a", 0, 2), out.append)
    handler.handle(window("a", 1, 3), out.append)
    assert [c["language"] for c in model.calls] == [None, "en"]


def test_live_state_is_bounded() -> None:
    handler, _, out = make(["x"] * 20, max_utterances=5)
    for n in range(20):
        handler.handle(window(f"u{n}", 0), out.append)
    assert handler.open_utterances == 5


# --- select -----------------------------------------------------------------------------


def test_select_puts_finals_first_and_keeps_only_the_newest_window() -> None:
    handler, _, _ = make([])
    batch: list[Event] = [
        window("a", 0),
        window("b", 0),
        window("a", 1),
        utterance("c"),
        window("a", 2),
        window("b", 1),
        utterance("d"),
    ]
    chosen = handler.select(batch)
    assert [e.event_id for e in chosen] == ["u-c", "u-d", "w-a-2", "w-b-1"]


def test_select_skips_windows_of_utterances_finalized_in_the_batch_or_before() -> None:
    handler, _, out = make(["done"])
    handler.handle(utterance("old"), out.append)
    batch: list[Event] = [window("old", 5), window("a", 0), window("a", 1), utterance("a"), window("b", 0)]
    assert [e.event_id for e in handler.select(batch)] == ["u-a", "w-b-0"]


def test_select_skips_windows_older_than_the_last_handled_and_other_kinds() -> None:
    handler, _, out = make(["uno"])
    handler.handle(window("a", 4), out.append)
    batch: list[Event] = [window("a", 3), window("a", 4), SessionEnded(session_id="s1")]
    assert handler.select(batch) == []
    assert handler.select([window("a", 5)])[0].event_id == "w-a-5"


def test_select_keeps_sessions_apart() -> None:
    handler, _, _ = make([])
    batch: list[Event] = [window("a", 0, session="s1"), window("a", 0, session="s2"), window("a", 1, session="s1")]
    assert [(e.session_id, e.event_id) for e in handler.select(batch)] == [("s2", "w-a-0"), ("s1", "w-a-1")]
