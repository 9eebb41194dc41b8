"""The segmenter with the real Silero model on real FLEURS speech, plus a few
scripted-probability cases for the state machine's edges."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pytest

from habla_ingest.adapters import SileroDetector
from habla_ingest.domain import FRAME, Output, Segmenter, SegmenterOptions, SpeechBegan, Utterance, Window

Pcm = npt.NDArray[np.int16]
Fleurs = Callable[[int], Pcm]
Bounds = Callable[[Pcm], tuple[int, int]]
Run = tuple[Pcm, list[tuple[int, int]], list[Output]]
T = TypeVar("T")
SILENCE = np.zeros(24_000, np.int16)  # 1.5 s
CLIPS = (0, 2, 3, 6)  # clips with no inner pause of 500 ms (FLEURS 1 and 9 have one)
PAD = 192  # 200 ms of pad, in whole 32 ms frames
TOL = 300


def run(audio: Pcm, options: SegmenterOptions | None = None, pieces: Sequence[int] = (4000,)) -> list[Output]:
    seg = Segmenter(options or SegmenterOptions(), SileroDetector().probability)
    out: list[Output] = []
    i, k = 0, 0
    while i < len(audio):
        n = pieces[k % len(pieces)]
        out += seg.push(audio[i : i + n])
        i, k = i + n, k + 1
    return out + seg.finish()


def of(kind: type[T], outputs: Sequence[object]) -> list[T]:
    return [o for o in outputs if isinstance(o, kind)]


@pytest.fixture(scope="module")
def concatenated(fleurs: Fleurs, speech_bounds: Bounds) -> Run:
    """Clips 0, 2, 3, 6 with 1.5 s of silence around each, and where their speech is."""
    parts: list[Pcm] = []
    truth: list[tuple[int, int]] = []
    at = 0
    for i in CLIPS:
        parts += [SILENCE, fleurs(i)]
        at += len(SILENCE)
        on, off = speech_bounds(fleurs(i))
        truth.append((at // 16 + on, at // 16 + off))
        at += len(fleurs(i))
    audio = np.concatenate([*parts, SILENCE])
    return audio, truth, run(audio)


def test_one_clip_gives_one_utterance_at_the_speech(fleurs: Fleurs, speech_bounds: Bounds) -> None:
    clip = fleurs(0)
    on, off = speech_bounds(clip)
    out = run(clip)
    (began,) = of(SpeechBegan, out)
    (utt,) = of(Utterance, out)
    assert (began.index, utt.index, utt.reason) == (0, 0, "pause")
    assert began.start_ms == utt.start_ms
    assert abs(utt.start_ms + PAD - on) <= TOL, (utt.start_ms, on)
    assert abs(utt.speech_end_ms - off) <= TOL, (utt.speech_end_ms, off)
    assert utt.speech_end_ms < utt.end_ms <= utt.speech_end_ms + 500 + 32  # the pause rides along
    assert len(utt.pcm) == (utt.end_ms - utt.start_ms) * 16 * 2
    start = utt.start_ms * 16
    assert utt.pcm == clip[start : start + len(utt.pcm) // 2].astype("<i2").tobytes()


def test_clips_between_pauses_give_one_utterance_each(concatenated: Run) -> None:
    _, truth, out = concatenated
    utts = of(Utterance, out)
    assert [u.index for u in utts] == [0, 1, 2, 3]
    assert [u.reason for u in utts] == ["pause"] * 4
    for u, (on, off) in zip(utts, truth, strict=True):
        assert abs(u.start_ms + PAD - on) <= TOL, (u.start_ms, on)
        assert abs(u.speech_end_ms - off) <= TOL, (u.speech_end_ms, off)
    # events come in order: began, windows, utterance, per index
    order = [(o.index, type(o).__name__) for o in out if not isinstance(o, Window)]
    assert order == [(i, k) for i in range(4) for k in ("SpeechBegan", "Utterance")]


def test_windows_come_early_then_about_every_second(concatenated: Run) -> None:
    _, _, out = concatenated
    for utt in of(Utterance, out):
        windows = [w for w in of(Window, out) if w.index == utt.index]
        assert [w.window_index for w in windows] == list(range(len(windows)))
        assert len(windows) >= (utt.end_ms - utt.start_ms) // 1000 - 2
        onset = utt.start_ms + PAD
        assert 450 <= windows[0].end_ms - onset < 450 + 32
        gaps = np.diff([w.end_ms for w in windows])  # a 1 s grid; a short pause may delay one
        assert np.all((gaps >= 800) & (gaps <= 1500)), gaps
        assert abs(gaps.mean() - 1000) <= 100, gaps
        for w in windows:
            assert w.start_ms == utt.start_ms and w.end_ms < utt.end_ms + 500
            assert len(w.pcm) == (w.end_ms - w.start_ms) * 32
            if w.end_ms <= utt.end_ms:
                assert utt.pcm.startswith(w.pcm)


def test_outputs_do_not_depend_on_chunking(concatenated: Run) -> None:
    audio, _, out = concatenated
    rng = np.random.default_rng(7)
    assert run(audio, pieces=[int(n) for n in rng.integers(1, 9000, 200)]) == out


def test_a_long_monologue_is_split_at_quiet_points(fleurs: Fleurs, speech_bounds: Bounds) -> None:
    speech = []
    for i in (0, 2, 3, 4, 5):  # speech only, back to back: ~33 s without a 500 ms pause
        on, off = speech_bounds(fleurs(i))
        speech.append(fleurs(i)[on * 16 : off * 16])
    audio = np.concatenate([SILENCE, *speech, SILENCE])
    options = SegmenterOptions(max_utterance_ms=8000)
    out = run(audio, options)
    utts = of(Utterance, out)
    assert len(utts) >= 4
    assert [u.reason for u in utts[:-1]] == ["cap"] * (len(utts) - 1)
    for a, b in itertools.pairwise(utts):
        assert b.start_ms == a.end_ms  # no audio lost or doubled at a split
        assert b.index == a.index + 1
    for u in utts[:-1]:
        assert 8000 * 0.7 - 64 <= u.end_ms - u.start_ms <= 8000
        # the cut is at a quiet frame: quieter than most of the search region
        region = np.frombuffer(u.pcm, "<i2")[-int(len(u.pcm) // 2 * 0.3) :].astype(np.float64)
        frames = region[: len(region) // FRAME * FRAME].reshape(-1, FRAME)
        rms = np.sqrt((frames**2).mean(axis=1))
        nxt = next(x for x in utts if x.index == u.index + 1)
        cut = np.frombuffer(nxt.pcm, "<i2")[:FRAME].astype(np.float64)
        assert np.sqrt((cut**2).mean()) <= np.percentile(rms, 25)
    # each continuation starts with SpeechBegan and gets a caption window right away
    for u in utts[1:]:
        began = [o for o in out if isinstance(o, SpeechBegan) and o.index == u.index]
        first = next(o for o in out if isinstance(o, Window) and o.index == u.index)
        assert began and began[0].start_ms == u.start_ms and first.window_index == 0
    joined = b"".join(u.pcm for u in utts)
    start = utts[0].start_ms * 16
    assert joined == audio[start : start + len(joined) // 2].astype("<i2").tobytes()


def test_finish_emits_the_utterance_in_progress(fleurs: Fleurs) -> None:
    clip = fleurs(0)[: 16000 * 6]  # cut in mid-sentence
    out = run(clip)
    (utt,) = of(Utterance, out)
    assert utt.reason == "end" and utt.end_ms == 6000


# --- the state machine's edges, with scripted probabilities ------------------------


def scripted(probs: Sequence[float]) -> Callable[[npt.NDArray[np.float32]], float]:
    it: Iterator[float] = iter(probs)
    return lambda _frame: next(it, 0.0)


def feed(probs: Sequence[float], options: SegmenterOptions | None = None) -> list[Output]:
    seg = Segmenter(options or SegmenterOptions(), scripted(probs))
    audio = (np.arange(len(probs) * FRAME) % 200 - 100).astype(np.int16)
    return seg.push(audio) + seg.finish()


def test_blips_shorter_than_min_speech_leave_no_trace() -> None:
    assert feed([0.0] * 20 + [0.9] * 5 + [0.0] * 40) == []  # 160 ms of voice
    out = feed([0.0] * 20 + [0.9] * 9 + [0.0] * 40)  # 288 ms
    assert [type(o).__name__ for o in out] == ["SpeechBegan", "Utterance"]


def test_hysteresis_between_the_two_thresholds_keeps_the_utterance_open() -> None:
    out = feed([0.9] * 20 + [0.4] * 40 + [0.9] * 10 + [0.1] * 20)
    (utt,) = of(Utterance, out)
    assert utt.start_ms == 0 and utt.reason == "pause"
    assert utt.speech_end_ms == (70 * FRAME) // 16  # where the voice stopped
    assert utt.end_ms == (70 * FRAME) // 16 + 512  # ... and the audio runs on to the pause decision


def test_pre_roll_comes_before_speech_but_never_overlaps_the_previous_utterance() -> None:
    out = feed([0.0] * 10 + [0.9] * 20 + [0.0] * 30 + [0.9] * 20 + [0.0] * 20)
    first, second = of(Utterance, out)
    assert first.start_ms == 10 * 32 - PAD and second.start_ms == 60 * 32 - PAD
    out = feed([0.9] * 20 + [0.0] * 8 + [0.9] * 20 + [0.0] * 20, SegmenterOptions(silence_ms=256))
    first, second = of(Utterance, out)
    assert first.speech_end_ms == 20 * 32
    assert second.start_ms == first.end_ms  # not 28 * 32 - PAD
