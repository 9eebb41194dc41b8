"""The diarize handler on real speech, with its state in real Redis: speakers across
utterances, a split at a speaker change inside one utterance, redelivery, a restarted
worker keeping the same ids, pass-through when it gives up or is switched off, names,
voiceprints across sessions and classroom roles."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from habla_common.bus import RedisBus
from habla_contracts import (
    Event,
    SpeakerAssigned,
    SpeakerJoined,
    SpeakerRenamed,
    SpeakerRoleSuggested,
    SpeechTurn,
    TranscriptFinal,
    UtteranceSegmented,
    VoiceprintSaved,
    derived_id,
)
from habla_diarize.config import DiarizeConfig
from habla_diarize.embedders import ResemblyzerEmbedder
from habla_diarize.enrol import enrol
from habla_diarize.errors import EnrolmentFailed
from habla_diarize.handlers import DiarizeHandler
from habla_diarize.store import RedisStateStore

from .conftest import gap, pcm16

pytestmark = pytest.mark.slow

CFG = DiarizeConfig()


def handler(
    bus: RedisBus, embedder: ResemblyzerEmbedder | None, mode: str = "conversation", **kw: Any
) -> DiarizeHandler:
    return DiarizeHandler(embedder, CFG, RedisStateStore(bus.r), lambda _s: {"mode": mode}, **kw)


def utterance(session: str, index: int, audio: np.ndarray, start_ms: int = 0) -> UtteranceSegmented:
    ms = audio.size * 1000 // 16000
    return UtteranceSegmented(
        session_id=session,
        event_id=derived_id(session, "seg", index),
        utterance_id=f"{session}-u{index}",
        index=index,
        start_ms=start_ms,
        end_ms=start_ms + ms,
        speech_end_ms=start_ms + ms - 200,
        pcm=pcm16(audio),
    )


def run(h: DiarizeHandler, ev: Event) -> list[Event]:
    out: list[Event] = []
    h.handle(ev, out.append)
    return out


def timeless(e: Event) -> Event:
    return dataclasses.replace(e, occurred_at=0.0)


def of(events: list[Event], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def test_speakers_across_utterances_and_turns_for_the_asr(
    bus: RedisBus, embedder: ResemblyzerEmbedder, clips: list[np.ndarray]
) -> None:
    h = handler(bus, embedder)
    speakers, joined = [], []
    for i, clip in enumerate((clips[0], clips[5], clips[0], clips[9])):
        out = run(h, utterance("s", i, clip, start_ms=20_000 * i))
        (assigned,) = of(out, SpeakerAssigned)
        (turn,) = of(out, SpeechTurn)
        speakers.append(assigned.speaker)
        joined += [j.speaker for j in of(out, SpeakerJoined)]
        assert turn.utterance_id == f"s-u{i}" and turn.parent_id == f"s-u{i}" and (turn.part, turn.parts) == (0, 1)
        assert turn.pcm == pcm16(clip) and turn.speaker == assigned.speaker
        assert assigned.backend.startswith("resemblyzer") and assigned.embed_ms > 0
    assert speakers == ["S1", "S2", "S1", "S3"]
    assert joined == ["S1", "S2", "S3"]


def test_a_speaker_change_inside_an_utterance_splits_it(
    bus: RedisBus, embedder: ResemblyzerEmbedder, clips: list[np.ndarray]
) -> None:
    a, b = clips[0][: 16000 * 6], clips[9][: 16000 * 5]
    audio = np.concatenate([a, gap(120), b])
    out = run(handler(bus, embedder), utterance("s", 0, audio, start_ms=1000))
    (assigned,) = of(out, SpeakerAssigned)
    turns = of(out, SpeechTurn)
    assert [t.speaker for t in turns] == ["S1", "S2"] and [t.part for t in turns] == [0, 1]
    assert abs(turns[0].end_ms - (1000 + 6000 + 60)) <= 500  # the change is at 7.06 s of session audio
    assert turns[0].utterance_id == "s-u0" and turns[1].utterance_id != "s-u0"
    assert turns[1].parent_id == "s-u0" and turns[0].parts == turns[1].parts == 2
    assert b"".join(t.pcm for t in turns) == pcm16(audio)  # nothing lost or doubled at the cut
    assert [d["speaker"] for d in assigned.turns] == ["S1", "S2"]
    assert turns[1].speech_end_ms == 1000 + audio.size // 16 - 200


def test_a_redelivered_utterance_republishes_the_same_events(
    bus: RedisBus, embedder: ResemblyzerEmbedder, clips: list[np.ndarray]
) -> None:
    h = handler(bus, embedder)
    first = run(h, utterance("s", 0, clips[0]))
    run(h, utterance("s", 1, clips[6]))
    again = run(h, utterance("s", 0, clips[0]))
    assert [timeless(e) for e in again] == [timeless(e) for e in first]


def test_a_restarted_worker_keeps_the_speaker_ids(
    bus: RedisBus, embedder: ResemblyzerEmbedder, clips: list[np.ndarray]
) -> None:
    before = handler(bus, embedder)
    assert of(run(before, utterance("s", 0, clips[0])), SpeakerAssigned)[0].speaker == "S1"
    assert of(run(before, utterance("s", 1, clips[6])), SpeakerAssigned)[0].speaker == "S2"
    after = handler(bus, embedder)  # a new process: nothing in memory, the state is in Redis
    out = run(after, utterance("s", 2, clips[6]))
    assert of(out, SpeakerAssigned)[0].speaker == "S2" and not of(out, SpeakerJoined)
    assert of(run(after, utterance("s", 3, clips[0])), SpeakerAssigned)[0].speaker == "S1"
    assert of(run(after, utterance("other", 0, clips[6])), SpeakerAssigned)[0].speaker == "S1"  # per session


def test_giving_up_or_no_backend_passes_the_utterance_through(bus: RedisBus, clips: list[np.ndarray]) -> None:
    ev = utterance("s", 0, clips[0])
    out: list[Event] = []
    handler(bus, None).give_up(ev, "boom", out.append)
    assert [(t.utterance_id, t.speaker, t.pcm == ev.pcm) for t in of(out, SpeechTurn)] == [("s-u0", "", True)]
    out = run(handler(bus, None), utterance("s", 1, clips[1]))
    assert [type(e).__name__ for e in out] == ["SpeechTurn"] and out[0].speaker == ""


def test_a_named_remembered_voice_is_recognised_in_a_later_session(
    bus: RedisBus, embedder: ResemblyzerEmbedder, clips: list[np.ndarray]
) -> None:
    h = handler(bus, embedder)
    run(h, utterance("monday", 0, clips[6]))
    run(h, utterance("monday", 1, clips[0]))
    out = run(h, SpeakerRenamed(session_id="monday", speaker="S2", name="Profesora García", remember=True))
    (saved,) = of(out, VoiceprintSaved)
    assert saved.name == "Profesora García" and saved.dim == 256 and len(saved.embedding) == 256 * 4
    # a later session, a fresh worker that learns the voiceprint from the log's event
    later = handler(bus, embedder, voiceprints=[saved])
    out = run(later, utterance("tuesday", 0, clips[0][::-1].copy()))  # not her: reversed speech of another voice
    out = run(later, utterance("tuesday", 1, clips[0]))
    labels = {j.speaker: j.label for j in of(out, SpeakerJoined)}
    recognised = [r for r in of(out, SpeakerRenamed) if r.source == "voiceprint"]
    assert "Profesora García" in labels.values() or [r.name for r in recognised] == ["Profesora García"]


def test_the_users_own_voice_is_labelled_as_his(
    bus: RedisBus, embedder: ResemblyzerEmbedder, clips: list[np.ndarray]
) -> None:
    h = handler(bus, embedder)
    run(h, utterance("a", 0, clips[9]))
    (saved,) = of(run(h, SpeakerRenamed(session_id="a", speaker="S1", name="You", is_user=True)), VoiceprintSaved)
    assert saved.is_user
    out = run(handler(bus, embedder, voiceprints=[saved]), utterance("b", 0, clips[9]))
    (joined,) = of(out, SpeakerJoined)
    assert joined.is_user and joined.label == "You" and joined.voiceprint_id == saved.voiceprint_id


def test_an_enrolled_voice_is_recognised_from_its_first_sentence(
    bus: RedisBus, embedder: ResemblyzerEmbedder, clips: list[np.ndarray]
) -> None:
    """``habla voices enroll``: the user records himself once; in a later session his first
    utterance is already labelled as his, and another voice is not."""
    cut = clips[7].size * 7 // 10
    saved = enrol(clips[7][:cut], embedder, name="  Me ", is_user=True)
    assert saved.session_id.startswith("enrolment-") and saved.voiceprint_id and saved.name == "Me"
    assert saved.backend == embedder.name and saved.dim == 256 and saved.speech_ms >= 3000
    again = enrol(clips[7][:cut], embedder, name="Me", is_user=True)
    assert again.voiceprint_id != saved.voiceprint_id and again.embedding == saved.embedding  # deterministic voice
    h = handler(bus, embedder, voiceprints=[saved])
    out = run(h, utterance("class", 0, clips[7][cut:].copy()))  # words he did not enrol with
    (joined,) = of(out, SpeakerJoined)
    assert joined.is_user and joined.label == "Me" and joined.voiceprint_id == saved.voiceprint_id
    out = run(h, utterance("class", 1, clips[5]))
    (other,) = of(out, SpeakerJoined)
    assert not other.is_user and other.label == "Speaker 2"


@pytest.mark.parametrize(
    ("audio", "name", "message"),
    [
        (np.zeros(16000 * 10, dtype=np.float32), "Me", "0.0 s of speech"),
        (None, "Me", "needs at least 3 s"),  # 2 s of audio
        (None, "   ", "needs a name"),
    ],
)
def test_enrolment_refuses_too_little_speech_or_no_name(
    embedder: ResemblyzerEmbedder, clips: list[np.ndarray], audio: np.ndarray | None, name: str, message: str
) -> None:
    with pytest.raises(EnrolmentFailed, match=message):
        enrol(clips[2][: 16000 * 2] if audio is None else audio, embedder, name=name)


def test_classroom_roles_are_suggested_from_the_finals(bus: RedisBus) -> None:
    h = handler(bus, None, mode="classroom")
    lines = [
        ("S1", "Buenos días, hoy vamos a practicar. Abran el libro en la página diez, por favor.", 6000),
        ("S2", "Profe, ¿cómo se dice homework?", 1800),
        ("S1", "Se dice tarea. Muy bien, repitan: la tarea.", 4000),
        ("S2", "La tarea.", 900),
    ]
    out: list[Event] = []
    for i, (speaker, text, ms) in enumerate(lines):
        final = TranscriptFinal(
            session_id="c",
            event_id=f"f{i}",
            utterance_id=f"u{i}",
            index=i,
            start_ms=0,
            end_ms=ms,
            text=text,
            speaker=speaker,
        )
        out += run(h, final)
    roles = {e.speaker: e.role for e in of(out, SpeakerRoleSuggested)}
    assert roles == {"S1": "instructor", "S2": "student"}
    again = run(h, final)  # the last final redelivered: the same suggestions again (the bus drops them)
    assert [timeless(e) for e in again] == [timeless(e) for e in of(out, SpeakerRoleSuggested)]
    plain = handler(bus, None, mode="conversation")
    assert not any(
        run(plain, TranscriptFinal(session_id="d", event_id=f"g{i}", text=t, speaker=s, end_ms=ms))
        for i, (s, t, ms) in enumerate(lines)
    )


def test_empty_audio_and_a_broken_voiceprint_lose_nothing(bus: RedisBus, embedder: ResemblyzerEmbedder) -> None:
    broken = VoiceprintSaved(session_id="x", voiceprint_id="vp", name="?", dim=256, embedding=b"\x00" * 12)
    h = handler(bus, embedder, voiceprints=[broken])
    assert h.voiceprints == []  # 3 values where 256 were promised: ignored, not loaded
    for i, pcm in enumerate((b"", b"\x01")):  # no audio, or one stray byte: still reaches the asr, unlabelled
        ev = dataclasses.replace(utterance("s", i, np.zeros(0, dtype=np.float32)), pcm=pcm)
        out = run(h, ev)
        assert [(t.utterance_id, t.speaker, t.pcm) for t in of(out, SpeechTurn)] == [(ev.utterance_id, "", pcm)]
        assert not of(out, SpeakerJoined)
