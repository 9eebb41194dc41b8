"""Online diarization logic on constructed voices (unit vectors), so each rule is visible:
change points, snapping to the gap, assignment, short fragments, caps, voiceprints, state."""

from __future__ import annotations

import numpy as np
import pytest

from habla_diarize.config import DiarizeConfig
from habla_diarize.domain import (
    SessionSpeakers,
    Voiceprint,
    best_cut,
    change_points,
    frame_levels,
    quiet_stretches,
)
from habla_diarize.embedders import Windows, normalise

DIM = 8
CFG = DiarizeConfig(assign_threshold=0.8, change_threshold=0.6, min_turn_ms=1600, min_new_speaker_ms=1500)


def voice(k: int, wobble: float = 0.0, seed: int = 0) -> np.ndarray:
    """Speaker ``k``'s voice: basis vector k plus a little noise."""
    v = np.zeros(DIM, dtype=np.float32)
    v[k] = 1.0
    v += wobble * np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return normalise(v)


def windows_for(turns: list[tuple[int, int]], hop: int = 200, length: int = 1600) -> Windows:
    """Windows over turns ``[(speaker, duration_ms), ...]``: a window's voice is the
    duration-weighted mix of the speakers it covers."""
    total = sum(d for _, d in turns)
    starts = list(range(0, max(1, total - length + 1), hop))
    vectors = []
    for s in starts:
        mix = np.zeros(DIM, dtype=np.float32)
        t = 0
        for k, d in turns:
            overlap = max(0, min(s + length, t + d) - max(s, t))
            mix += overlap * voice(k)
            t += d
        vectors.append(normalise(mix))
    return Windows(np.asarray(starts, dtype=np.int64), length, np.stack(vectors))


def speechlike(turns: list[tuple[int, int]], gap_ms: int = 0) -> np.ndarray:
    """Loud noise for each turn, with ``gap_ms`` of near-silence between turns."""
    rng = np.random.default_rng(0)
    parts = []
    for i, (_, d) in enumerate(turns):
        if i and gap_ms:
            parts.append(rng.standard_normal(gap_ms * 16).astype(np.float32) * 0.001)
        parts.append(rng.standard_normal((d - (gap_ms if i else 0)) * 16).astype(np.float32) * 0.2)
    return np.concatenate(parts)


def test_a_change_is_found_at_the_turn_boundary() -> None:
    w = windows_for([(0, 5000), (1, 4000)])
    assert change_points(w, 9000, threshold=0.6, min_turn_ms=1600) == [5000]


def test_no_change_inside_one_voice_or_in_short_utterances() -> None:
    assert change_points(windows_for([(0, 9000)]), 9000, threshold=0.6, min_turn_ms=1600) == []
    assert change_points(windows_for([(0, 1600), (1, 1400)]), 3000, threshold=0.6, min_turn_ms=1600) == []


def test_unvoiced_windows_take_no_part() -> None:
    w = windows_for([(0, 5000), (1, 4000)])
    usable = np.ones(len(w), dtype=bool)
    usable[(w.starts_ms >= 3400) & (w.starts_ms <= 5000)] = False  # the windows either side of 5 s are silence
    assert change_points(w, 9000, threshold=0.6, min_turn_ms=1600, usable=usable) == []


def test_the_boundary_moves_into_the_gap_between_voices() -> None:
    turns = [(0, 5000), (1, 4000)]
    audio = speechlike(turns, gap_ms=120)
    levels = frame_levels(audio)
    assert [abs(c - 5060) <= 20 for c in quiet_stretches(levels, 5400)] == [True]  # the gap is 5000..5120 ms
    assert abs(best_cut(windows_for(turns), levels, 5400) - 5060) <= 20
    assert quiet_stretches(frame_levels(speechlike([(0, 9000)])), 5400) == []  # no gap: nowhere to move


def test_of_several_gaps_the_one_between_two_voices_wins() -> None:
    # speaker 0 pauses (200 ms) inside its turn at 3.8 s; the voices meet in a shorter gap at 5 s
    turns = [(0, 3800), (0, 1200), (1, 4000)]
    rng = np.random.default_rng(1)
    loud = [rng.standard_normal(n * 16).astype(np.float32) * 0.2 for n in (3600, 1100, 3900)]
    quiet = [rng.standard_normal(n * 16).astype(np.float32) * 0.001 for n in (200, 100)]
    audio = np.concatenate([loud[0], quiet[0], loud[1], quiet[1], loud[2]])
    assert abs(best_cut(windows_for(turns), frame_levels(audio), 4400) - 4950) <= 20


def test_a_split_utterance_gets_two_speakers_and_a_snapped_boundary() -> None:
    turns = [(0, 5000), (1, 4000)]
    audio = speechlike(turns, gap_ms=120)
    out = SessionSpeakers().process(windows_for(turns), audio, CFG)
    assert [(t.speaker) for t in out.turns] == ["S1", "S2"]
    assert abs(out.turns[0].end_ms - 5060) <= 20 and out.turns[1].end_ms == 9000
    assert [s.id for s in out.joined] == ["S1", "S2"]


def test_speakers_are_recognised_across_utterances() -> None:
    session = SessionSpeakers()
    seen = []
    for k in (0, 1, 0, 2, 1):
        turns = [(k, 4000)]
        out = session.process(windows_for(turns), speechlike(turns), CFG)
        seen.append(out.turns[0].speaker)
    assert seen == ["S1", "S2", "S1", "S3", "S2"]
    assert [s.label for s in session.speakers] == ["Speaker 1", "Speaker 2", "Speaker 3"]
    assert len({s.color for s in session.speakers}) == 3


def test_short_fragments_inherit_their_neighbour() -> None:
    session = SessionSpeakers()
    session.process(windows_for([(0, 4000)]), speechlike([(0, 4000)]), CFG)
    out = session.process(windows_for([(3, 1200)]), speechlike([(3, 1200)]), CFG)  # 1.2 s, an unknown voice
    assert out.turns[0].speaker == "S1" and out.turns[0].similarity == 0.0 and not out.joined
    out = session.process(windows_for([(3, 3000)]), speechlike([(3, 3000)]), CFG)  # long enough: a new speaker
    assert out.turns[0].speaker == "S2"


def test_the_speaker_cap_sends_new_voices_to_the_closest() -> None:
    session = SessionSpeakers()
    cfg = DiarizeConfig(assign_threshold=0.8, max_speakers=2)
    for k in (0, 1, 2):
        session.process(windows_for([(k, 3000)]), speechlike([(k, 3000)]), cfg)
    assert len(session.speakers) == 2


def test_a_stored_voiceprint_names_a_new_speaker_and_a_late_match_renames() -> None:
    maria = Voiceprint("vp-maria", "María", False, "test", voice(2))
    me = Voiceprint("vp-me", "You", True, "test", voice(1))
    session = SessionSpeakers()
    out = session.process(windows_for([(1, 3000)]), speechlike([(1, 3000)]), CFG, [maria, me])
    assert out.joined[0].label == "You" and out.joined[0].is_user and out.joined[0].voiceprint_id == "vp-me"
    # a speaker opened from a voice too far from any voiceprint, which then firms up toward María's
    cfg = DiarizeConfig(assign_threshold=0.5, voiceprint_threshold=0.95)
    mixed = normalise(voice(2) + 0.45 * voice(4))
    w = Windows(np.array([0]), 1600, mixed[None, :])
    out = session.process(w, speechlike([(2, 3000)]), cfg, [maria, me])
    assert out.joined[0].label == "Speaker 2" and not out.recognised
    recognised = []
    for _ in range(3):
        out = session.process(windows_for([(2, 4000)]), speechlike([(2, 4000)]), cfg, [maria, me])
        recognised += [(s.id, vp.name) for s, vp, _ in out.recognised]
    assert recognised == [("S2", "María")]
    assert session.get("S2") is not None and session.get("S2").label == "María"  # type: ignore[union-attr]


def test_state_round_trips_and_continues_identically() -> None:
    a = SessionSpeakers()
    for k in (0, 1):
        a.process(windows_for([(k, 4000)]), speechlike([(k, 4000)]), CFG)
    b = SessionSpeakers.from_state(a.to_state())
    out_a = a.process(windows_for([(1, 3000)]), speechlike([(1, 3000)]), CFG)
    out_b = b.process(windows_for([(1, 3000)]), speechlike([(1, 3000)]), CFG)
    assert out_a.turns == out_b.turns and b.last_speaker == "S2"


@pytest.mark.parametrize("hop", [200, 400])
def test_adjacent_turns_of_one_speaker_are_merged(hop: int) -> None:
    turns = [(0, 3000), (0, 3000), (1, 3000)]
    out = SessionSpeakers().process(windows_for(turns, hop=hop), speechlike(turns, gap_ms=100), CFG)
    assert [t.speaker for t in out.turns] == ["S1", "S2"]
