"""The diarization corpus (real FLEURS phrases composed into conversations) and its metrics."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from habla.diarize_corpus import (
    SAMPLE_RATE,
    Conversation,
    RefTurn,
    benchmark_set,
    change_precision_recall,
    compose,
    count_speakers,
    diarization_error,
    load_fleurs_phrases,
    speaker_changes,
    synthetic_phrases,
    three_speakers,
    two_speakers,
    write_conversation,
)
from habla.evaluation import default_speech_dir

SPEECH = default_speech_dir()
REF = [RefTurn(0, 4000, "A"), RefTurn(5000, 8000, "B"), RefTurn(9000, 12000, "A")]


# ---------------------------------------------------------------- metrics


def test_perfect_hypothesis_has_no_error() -> None:
    hyp = [(t.start_ms, t.end_ms, t.speaker) for t in REF]
    out = diarization_error(REF, hyp)
    assert out["der"] == out["miss"] == out["false_alarm"] == out["confusion"] == 0
    assert out["mapping"] == {"A": "A", "B": "B"}


def test_labels_are_mapped_before_scoring() -> None:
    hyp = [(0, 4000, "spk2"), (5000, 8000, "spk1"), (9000, 12000, "spk2")]
    out = diarization_error(REF, hyp, collar_ms=0)
    assert out["der"] == 0 and out["mapping"] == {"spk2": "A", "spk1": "B"}


def test_a_missed_turn_is_miss() -> None:
    hyp = [(0, 4000, "x"), (9000, 12000, "x")]
    out = diarization_error(REF, hyp, collar_ms=0)
    assert out["miss"] == pytest.approx(3000 / 10000) and out["false_alarm"] == out["confusion"] == 0
    assert out["reference_ms"] == 10000


def test_collar_excludes_time_around_reference_boundaries() -> None:
    # the hypothesis is 200 ms late everywhere: inside a 250 ms collar that costs nothing
    hyp = [(t.start_ms + 200, t.end_ms + 200, t.speaker) for t in REF]
    assert diarization_error(REF, hyp)["der"] == 0
    late = diarization_error(REF, hyp, collar_ms=0)
    assert late["miss"] == pytest.approx(3 * 200 / 10000) and late["false_alarm"] == pytest.approx(3 * 200 / 10000)
    # scored reference speech: 10 s less the 250 ms inside each turn at its six boundaries
    assert diarization_error(REF, [])["reference_ms"] == 10000 - 6 * 250


def test_one_speaker_for_everybody_is_confusion() -> None:
    out = diarization_error(REF, [(0, 12000, "x")], collar_ms=0)
    assert out["confusion"] == pytest.approx(3000 / 10000)
    assert out["false_alarm"] == pytest.approx(2000 / 10000) and out["miss"] == 0
    assert out["mapping"] == {"x": "A"}


def test_extra_hypothesis_speakers_are_confusion() -> None:
    hyp = [(0, 2000, "a1"), (2000, 4000, "a2"), (5000, 8000, "b"), (9000, 12000, "a1")]
    out = diarization_error(REF, hyp, collar_ms=0)
    assert out["confusion"] == pytest.approx(2000 / 10000) and out["miss"] == out["false_alarm"] == 0


def test_speaker_changes_are_midpoints_between_different_speakers() -> None:
    assert speaker_changes(REF) == [4500, 8500]
    assert speaker_changes([(0, 1000, "A"), (1500, 2000, "A"), (2100, 3000, "B")]) == [2050]
    assert speaker_changes([]) == []
    assert count_speakers(REF) == 2 and count_speakers([]) == 0


def test_change_precision_recall() -> None:
    # reference changes at 4500 and 8500; hypothesis at 4700 (hit), 6500 (false), none near 8500
    hyp = [(0, 4600, "a"), (4800, 6400, "b"), (6600, 12000, "c")]
    out = change_precision_recall(REF, hyp, tolerance_ms=500)
    assert out["matched"] == [(4500, 4700)] and out["errors_ms"] == [200]
    assert out["precision"] == pytest.approx(1 / 2) and out["recall"] == pytest.approx(1 / 2)
    assert out["f1"] == pytest.approx(1 / 2)
    assert change_precision_recall(REF, [(*t[:2], "a") for t in hyp])["precision"] == 1.0  # no changes claimed
    assert change_precision_recall(REF, hyp, tolerance_ms=100)["matched"] == []


def test_change_matching_is_one_to_one_closest_first() -> None:
    ref = [(0, 1000, "A"), (1000, 2000, "B")]  # change at 1000
    hyp = [(0, 900, "a"), (900, 1050, "b"), (1050, 2000, "a")]  # changes at 900 and 1050
    out = change_precision_recall(ref, hyp)
    assert out["matched"] == [(1000, 1050)] and out["precision"] == 0.5 and out["recall"] == 1.0


# ---------------------------------------------------------------- corpus


def _rms_dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) / 32768 + 1e-12))


def test_every_clip_gives_phrases_of_its_own_speaker() -> None:
    phrases = load_fleurs_phrases(SPEECH)
    assert len(phrases) == 9  # clips 003 and 004 are one speaker (SAME_SPEAKER)
    assert sum(len(p) >= 2 for p in phrases.values()) >= 6
    for speaker, items in phrases.items():
        for p in items:
            assert p.speaker == speaker and p.pcm.dtype == np.int16 and p.voiced_samples > 0.5 * SAMPLE_RATE
        if len(items) >= 2:
            assert all(p.voiced_samples >= 1.4 * SAMPLE_RATE for p in items)


def _check_invariants(conv: Conversation) -> None:
    ref, sr = conv.reference, conv.sample_rate
    assert sr == SAMPLE_RATE and conv.pcm.dtype == np.int16
    assert ref[0].start_ms >= 400 and ref[-1].end_ms <= conv.duration_ms - 400
    for a, b in itertools.pairwise(ref):  # sorted, not overlapping, a change at each
        assert a.start_ms < a.end_ms < b.start_ms < b.end_ms and a.speaker != b.speaker
    for t in ref:  # speech: most 30 ms frames in a turn are well above the noise floor
        x = conv.pcm[t.start_ms * sr // 1000 : t.end_ms * sr // 1000].astype(np.float64)
        frames = x[: len(x) // 480 * 480].reshape(-1, 480)
        levels = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) / 32768 + 1e-12)
        assert (levels > -45).mean() > 0.5, t
    for a, b in itertools.pairwise(ref):  # gaps: quiet once the phrases' padding is past
        lo, hi = a.end_ms + 60, b.start_ms - 60
        if hi - lo >= 50:
            assert _rms_dbfs(conv.pcm[lo * sr // 1000 : hi * sr // 1000]) < -50
    assert -62 < _rms_dbfs(conv.pcm[: 400 * sr // 1000]) < -58  # the noise floor, not digital silence


@pytest.mark.parametrize(("build", "speakers"), [(two_speakers, 2), (three_speakers, 3)])
def test_named_conversations(build: object, speakers: int) -> None:
    conv = build(SPEECH)  # type: ignore[operator]
    _check_invariants(conv)
    assert count_speakers(conv.reference) == speakers and len(conv.reference) >= 5
    quick = [ms for kind, ms in conv.gaps if kind == "quick"]
    assert quick and all(ms < 250 for ms in quick)
    assert any(kind == "pause" and ms >= 700 for kind, ms in conv.gaps)
    assert conv.duration_ms < 60_000
    assert speaker_changes(conv.reference) and len(speaker_changes(conv.reference)) == len(conv.reference) - 1


def test_composition_is_deterministic_for_a_seed() -> None:
    phrases = load_fleurs_phrases(SPEECH)
    order = ["fleurs-es-003", "fleurs-es-007", "fleurs-es-003", "fleurs-es-009", "fleurs-es-007"]
    a = compose(phrases, order, seed=7, quick_ratio=0.4)
    b = compose(phrases, order, seed=7, quick_ratio=0.4)
    c = compose(phrases, order, seed=8, quick_ratio=0.4)
    assert np.array_equal(a.pcm, b.pcm) and a.reference == b.reference and a.spec == b.spec
    assert not (len(a.pcm) == len(c.pcm) and np.array_equal(a.pcm, c.pcm))
    _check_invariants(a)
    _check_invariants(c)


def test_write_conversation(tmp_path: Path) -> None:
    conv = two_speakers(SPEECH)
    wav, rttm, spec = write_conversation(conv, tmp_path / "two")
    assert wav.stat().st_size == 44 + 2 * len(conv.pcm)
    lines = rttm.read_text().splitlines()
    assert len(lines) == len(conv.reference) and lines[0].startswith("SPEAKER two 1 ")
    assert json.loads(spec.read_text())["turns"][0]["speaker"] == conv.reference[0].speaker


@pytest.mark.parametrize(("pool", "speakers"), [("tune", range(0, 5)), ("test", range(5, 10))])
def test_benchmark_pools_keep_their_speakers_apart(pool: str, speakers: range) -> None:
    convs = benchmark_set(SPEECH, pool=pool)
    assert len(convs) == 10
    allowed = {f"fleurs-es-{i:03d}" for i in speakers}
    for conv in convs:
        _check_invariants(conv)
        assert set(conv.spec["speakers"]) <= allowed and 2 <= count_speakers(conv.reference) <= 4
        assert 6 <= len(conv.reference) <= 12 and conv.duration_ms < 60_000
        assert {kind for kind, _ in conv.gaps} == {"pause", "quick"}
    assert len({count_speakers(c.reference) for c in convs}) == 3


def test_synthetic_voices_are_distinct_speakers() -> None:
    assert shutil.which("espeak-ng"), "espeak-ng is not installed: apt-get install espeak-ng"
    phrases = synthetic_phrases(2)
    assert sorted(phrases) == ["espeak-es+f4", "espeak-es+m3", "espeak-es-419+f2", "espeak-es-419+m1"]
    texts = [p.text for items in phrases.values() for p in items]
    assert len(set(texts)) == len(texts) and all(texts)
    conv = compose(
        phrases, ["espeak-es+m3", "espeak-es-419+f2", "espeak-es+f4", "espeak-es+m3"], seed=1, quick_ratio=0.5
    )
    _check_invariants(conv)
    assert np.abs(conv.pcm).max() < 20000  # not espeak's full scale


@pytest.mark.parametrize("build", [two_speakers, three_speakers])
def test_the_ingest_segmenter_splits_at_pauses_not_at_quick_changes(build: object) -> None:
    from habla_ingest.adapters import SileroDetector
    from habla_ingest.domain import Segmenter, SegmenterOptions, Utterance

    conv = build(SPEECH)  # type: ignore[operator]
    segmenter = Segmenter(SegmenterOptions(), SileroDetector().probability)
    outputs = segmenter.push(conv.pcm) + segmenter.finish()
    spans = [(u.start_ms, u.speech_end_ms) for u in outputs if isinstance(u, Utterance)]
    for (before, after), (kind, _) in zip(itertools.pairwise(conv.reference), conv.gaps, strict=True):
        one_utterance = any(s <= before.end_ms - 100 and e >= after.start_ms + 100 for s, e in spans)
        assert one_utterance == (kind == "quick"), (before, after, kind, spans)


def test_loading_phrases_leaves_torch_threads_as_they_were() -> None:
    # importing silero_vad sets torch to one thread for the whole process
    code = (
        "import torch; torch.set_num_threads(2)\n"
        "from habla.diarize_corpus import voiced_regions\n"
        "import numpy as np; voiced_regions(np.zeros(16000, np.int16))\n"
        "print(torch.get_num_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "2"
