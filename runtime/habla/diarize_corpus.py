"""The speaker-diarization evaluation corpus and its metrics (``bench/diarize.py`` and the tests).

Conversations are composed from single-speaker phrases:

* Real speech: the ten FLEURS clips in shared/eval/speech, one speaker each (the speaker
  id is the file stem). Each clip is split into phrases at its internal pauses of 150 ms
  or more (Silero VAD, then the level inside Silero's regions: read speech rarely pauses
  long enough for Silero alone), pieces merged until each is at least 1.4 s where the
  clip allows; a phrase is trimmed to the voice with ``PAD_MS`` of the recording around
  it. 24 phrases from the 10 clips (1 to 5 each). Phrases carry no text (the transcript
  is per clip, in the manifest); ``origin`` says which clip and seconds they are.
* Synthetic speech (pool ``synthetic``): FLORES-200 devtest Spanish sentences spoken by
  espeak-ng (Debian package ``espeak-ng``) with distinct voice variants. These voices are
  robotic formant synthesis, clearly not real people: they only check that the pipeline
  runs on more speakers, never how well it tells real voices apart.

A conversation is one turn per entry of its speaker order; between turns either a
``pause`` (700–1200 ms: the ingest segmenter, which ends an utterance after 500 ms of
silence, splits there) or a ``quick`` change (60–200 ms: the speaker changes inside one
segmented utterance). Everything is deterministic from a seed. Reference turns are the
voiced extents of the turns; :func:`write_conversation` writes WAV, RTTM and the spec as
JSON so a person can listen and check.

Metrics take turns as ``(start_ms, end_ms, label)``: :func:`diarization_error` (frame-based
DER at 10 ms with an optimal one-to-one label mapping and a NIST-style collar; it agrees
with pyannote.metrics 4.2.0's ``DiarizationErrorRate(collar=2 * collar)`` to within the
10 ms rounding on random hypotheses, without pandas and pyannote in the dependencies),
:func:`speaker_changes`, :func:`change_precision_recall` and :func:`count_speakers`.

With only ten real speakers (5–21 s each) phrases are reused when a speaker has more
turns than phrases (``reused`` in the spec): the same audio then comes back verbatim.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
import json
import random
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_VOICES",
    "POOLS",
    "SAMPLE_RATE",
    "Conversation",
    "Phrase",
    "RefTurn",
    "Turn",
    "benchmark_set",
    "change_precision_recall",
    "compose",
    "count_speakers",
    "diarization_error",
    "espeak",
    "flores_sentences",
    "load_fleurs_phrases",
    "rttm_lines",
    "speaker_changes",
    "speaker_pairs",
    "split_phrases",
    "synthetic_phrases",
    "three_speakers",
    "two_speakers",
    "voice_pieces",
    "voiced_regions",
    "write_conversation",
]

SAMPLE_RATE = 16000
PAD_MS = 50  # recording kept around each phrase's voice
MIN_PAUSE_MS = 150  # a pause at least this long inside a clip may end a phrase
MIN_PHRASE_MS = 1400  # phrases are merged until their voiced extent is at least this long
FRAME_MS = 10  # DER resolution
POOLS = ("tune", "test", "synthetic")
DEFAULT_VOICES = ("es+m3", "es-419+f2", "es+f4", "es-419+m1")
GapKind = Literal["pause", "quick"]
Pcm = npt.NDArray[np.int16]
Turn = tuple[int, int, str]  # (start_ms, end_ms, speaker label)


@dataclass(frozen=True, eq=False)
class Phrase:
    """One speaker's stretch of speech at 16 kHz; the voice is ``pcm[lead:len(pcm) - trail]``."""

    speaker: str
    pcm: Pcm
    text: str = ""
    origin: str = ""  # where it comes from, for a person checking the corpus
    lead: int = 0  # samples before the voice starts
    trail: int = 0  # samples after the voice ends

    @property
    def voiced_samples(self) -> int:
        return len(self.pcm) - self.lead - self.trail


@dataclass(frozen=True)
class RefTurn:
    start_ms: int
    end_ms: int
    speaker: str


@dataclass
class Conversation:
    pcm: Pcm
    sample_rate: int
    reference: list[RefTurn]
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) * 1000 // self.sample_rate

    @property
    def turns(self) -> list[Turn]:
        return [(t.start_ms, t.end_ms, t.speaker) for t in self.reference]

    @property
    def gaps(self) -> list[tuple[GapKind, int]]:
        """(kind, ms) of the gap before each turn after the first."""
        return [(t["gap_before"]["kind"], t["gap_before"]["ms"]) for t in self.spec["turns"][1:]]


# ---------------------------------------------------------------- real speech (FLEURS)


def _read_wav(path: Path) -> Pcm:
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono PCM16")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def _write_wav(path: Path, pcm: Pcm, sample_rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.astype("<i2").tobytes())


@functools.cache
def _silero() -> tuple[Any, Any]:
    """The ONNX Silero VAD model and ``get_speech_timestamps``, loaded once. Importing
    ``silero_vad`` sets torch to one thread for the process: the count is put back."""
    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad import get_speech_timestamps, load_silero_vad

        return load_silero_vad(onnx=True), get_speech_timestamps
    finally:
        torch.set_num_threads(threads)


def voiced_regions(pcm: Pcm, *, min_pause_ms: int = MIN_PAUSE_MS) -> list[tuple[int, int]]:
    """Silero's speech regions as sample ranges (no padding); pauses shorter than
    ``min_pause_ms`` stay inside a region."""
    import torch

    model, get_speech_timestamps = _silero()
    audio = torch.from_numpy(pcm.astype(np.float32) / 32768.0)
    try:
        stamps = get_speech_timestamps(
            audio, model, sampling_rate=SAMPLE_RATE, min_silence_duration_ms=min_pause_ms, speech_pad_ms=0
        )
    finally:
        model.reset_states()
    return [(int(s["start"]), int(s["end"])) for s in stamps]


def _levels(pcm: Pcm) -> npt.NDArray[np.float64]:
    """Level (dBFS) of each 10 ms frame."""
    step = SAMPLE_RATE // 100
    frames = pcm[: len(pcm) // step * step].astype(np.float64).reshape(-1, step)
    return np.asarray(20 * np.log10(np.sqrt((frames**2).mean(axis=1)) / 32768 + 1e-9), dtype=np.float64)


def _low_runs(low: npt.NDArray[np.bool_], min_frames: int) -> list[tuple[int, int]]:
    """Runs of True at least ``min_frames`` long that have False on both sides."""
    edges = np.flatnonzero(np.diff(low.astype(np.int8)))
    starts, ends = edges[low[edges + 1]] + 1, edges[~low[edges + 1]] + 1
    return [(int(a), int(b)) for a in starts for b in ends[ends > a][:1] if b - a >= min_frames]


def voice_pieces(pcm: Pcm, *, min_pause_ms: int = MIN_PAUSE_MS) -> list[tuple[int, int]]:
    """Stretches of voice as sample ranges, split at every pause of ``min_pause_ms`` or more.

    Silero finds the speech and the pauses it hears, but its probability stays high
    through most pauses of read speech (a comma, a breath: 150–600 ms), so each of its
    regions is also split where the level stays that long below the region's 10th
    percentile of 10 ms levels plus 30% of the range up to its 90th. Pieces are trimmed
    to where the level is above the clip's noise floor (10th percentile) plus 20% of the
    range up to its speech level (90th percentile)."""
    levels = _levels(pcm)
    noise, speech = np.percentile(levels, 10), np.percentile(levels, 90)
    edge = levels < noise + 0.2 * (speech - noise)
    step = SAMPLE_RATE // 100
    pieces = []
    for start, end in voiced_regions(pcm, min_pause_ms=min_pause_ms):
        a, b = start // step, min(len(levels), -(-end // step))
        low, high = np.percentile(levels[a:b], 10), np.percentile(levels[a:b], 90)
        pause = levels[a:b] < low + 0.3 * (high - low)
        cuts = [(a + x, a + y) for x, y in _low_runs(pause, -(-min_pause_ms // 10))]
        bounds = [a, *[c for cut in cuts for c in cut], b]
        for x, y in zip(bounds[::2], bounds[1::2], strict=True):
            loud = np.flatnonzero(~edge[x:y])
            if len(loud):
                pieces.append((max(start, (x + int(loud[0])) * step), min(end, (x + int(loud[-1]) + 1) * step)))
    return pieces


def _merge_short(pieces: list[tuple[int, int]], min_samples: int) -> list[tuple[int, int]]:
    """While some piece spans less than ``min_samples`` (and there are two or more), the
    shortest joins the neighbour across the shorter pause."""
    merged = list(pieces)
    while len(merged) > 1:
        i = min(range(len(merged)), key=lambda k: merged[k][1] - merged[k][0])
        if merged[i][1] - merged[i][0] >= min_samples:
            break
        before = merged[i][0] - merged[i - 1][1] if i > 0 else None
        after = merged[i + 1][0] - merged[i][1] if i + 1 < len(merged) else None
        j = i - 1 if after is None or (before is not None and before <= after) else i
        merged[j : j + 2] = [(merged[j][0], merged[j + 1][1])]
    return merged


def split_phrases(
    pcm: Pcm,
    speaker: str,
    *,
    origin: str = "",
    min_pause_ms: int = MIN_PAUSE_MS,
    min_phrase_ms: int = MIN_PHRASE_MS,
    pad_ms: int = PAD_MS,
) -> list[Phrase]:
    """One clip's phrases: its voice split at pauses of ``min_pause_ms`` or more
    (:func:`voice_pieces`), merged to at least ``min_phrase_ms`` of voiced extent where the
    clip allows, each with ``pad_ms`` of the recording on both sides."""
    regions = _merge_short(voice_pieces(pcm, min_pause_ms=min_pause_ms), min_phrase_ms * SAMPLE_RATE // 1000)
    pad = pad_ms * SAMPLE_RATE // 1000
    phrases = []
    for start, end in regions:
        a, b = max(0, start - pad), min(len(pcm), end + pad)
        where = f"{origin}@{start / SAMPLE_RATE:.2f}-{end / SAMPLE_RATE:.2f}s" if origin else ""
        chunk = pcm[a:b].copy()
        chunk.flags.writeable = False
        phrases.append(Phrase(speaker, chunk, "", where, start - a, b - end))
    return phrases


@functools.cache
def _fleurs(speech_dir: Path) -> tuple[tuple[str, tuple[Phrase, ...]], ...]:
    clips = sorted(speech_dir.glob("fleurs-es-*.wav"))
    if not clips:
        raise FileNotFoundError(f"no fleurs-es-*.wav in {speech_dir}")
    return tuple((p.stem, tuple(split_phrases(_read_wav(p), p.stem, origin=p.name))) for p in clips)


# FLEURS clips 003 and 004 are, as far as we can hear and measure, one person: their voices'
# cosine (resemblyzer, whole clips) is 0.96, as high as two halves of one clip, while other
# pairs reach 0.54-0.91; their pitch matches (median F0 106/107 Hz, 10th-90th percentile
# 62-124/64-124 Hz) and so does their level. The manifest says every clip is a different
# speaker; the corpus treats these two as one, under the first clip's name.
SAME_SPEAKER = {"fleurs-es-004": "fleurs-es-003"}


def load_fleurs_phrases(speech_dir: Path) -> dict[str, list[Phrase]]:
    """Phrases of the FLEURS clips in ``speech_dir`` by speaker (the file stem; clips of one
    person, see ``SAME_SPEAKER``, under the first one's). Computed once per directory and process."""
    out: dict[str, list[Phrase]] = {}
    for clip, phrases in _fleurs(Path(speech_dir).resolve()):
        speaker = SAME_SPEAKER.get(clip, clip)
        out.setdefault(speaker, []).extend(dataclasses.replace(p, speaker=speaker) for p in phrases)
    return out


# ---------------------------------------------------------------- synthetic speech (espeak-ng)


def _flores_path() -> Path:
    from .translate_eval import _eval_dir

    return _eval_dir() / "text" / "flores200_devtest_spa-eng.tsv"


def flores_sentences(n: int, *, min_words: int = 6, max_words: int = 14, path: Path | None = None) -> list[str]:
    """The first ``n`` FLORES-200 devtest Spanish sentences of ``min_words``..``max_words``
    words, in file order (short enough for a conversational turn)."""
    with open(path or _flores_path(), encoding="utf-8", newline="") as f:
        rows = [r["es"].strip() for r in csv.DictReader(f, delimiter="\t")]
    picked = [s for s in rows if min_words <= len(s.split()) <= max_words]
    if len(picked) < n:
        raise ValueError(f"only {len(picked)} FLORES sentences of {min_words}-{max_words} words, {n} wanted")
    return picked[:n]


def _resample(x: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(SAMPLE_RATE, rate)
    return np.asarray(resample_poly(x, SAMPLE_RATE // g, rate // g), dtype=np.float64)


def espeak(text: str, voice: str) -> Pcm:
    """``text`` spoken by espeak-ng's ``voice``: 16 kHz mono int16 peaking at -6 dBFS
    (espeak writes 22050 Hz; resampled with scipy's polyphase filter)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="habla-espeak-") as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run([exe, "-v", voice, "-w", str(out), text], check=True, capture_output=True, timeout=60)
        with wave.open(str(out), "rb") as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    y = _resample(x, rate) if rate != SAMPLE_RATE else x
    peak = float(np.abs(y).max(initial=0.0))
    if peak:  # espeak speaks at full scale: peak at -6 dBFS instead, like a recording
        y *= 16384 / peak
    return np.round(y).astype(np.int16)


def _trim(pcm: Pcm, speaker: str, text: str, origin: str, *, pad_ms: int = PAD_MS, floor: int = 64) -> Phrase:
    """Synthetic speech cut to its voice (espeak's silence is digital zero) plus ``pad_ms``."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > floor)
    if not len(loud):
        raise ValueError(f"espeak produced no sound for {origin}")
    pad = pad_ms * SAMPLE_RATE // 1000
    start, end = int(loud[0]), int(loud[-1]) + 1
    a, b = max(0, start - pad), min(len(pcm), end + pad)
    chunk = np.zeros(pad + (end - start) + pad, dtype=np.int16)
    chunk[pad - (start - a) : pad + (b - start)] = pcm[a:b]
    chunk.flags.writeable = False
    return Phrase(speaker, chunk, text, origin, pad, pad)


def synthetic_phrases(n_per_voice: int, voices: Sequence[str] = DEFAULT_VOICES) -> dict[str, list[Phrase]]:
    """SYNTHETIC speakers: ``n_per_voice`` short FLORES Spanish sentences per espeak-ng voice
    (voice ``v`` is speaker ``espeak-v``; each voice gets different sentences). Robotic
    formant speech, not people: a smoke test for more speakers, not a quality measure."""
    sentences = flores_sentences(n_per_voice * len(voices))
    out: dict[str, list[Phrase]] = {}
    for i, voice in enumerate(voices):
        speaker = f"espeak-{voice}"
        mine = sentences[i * n_per_voice : (i + 1) * n_per_voice]
        out[speaker] = [_trim(espeak(s, voice), speaker, s, f"espeak-ng -v {voice}: {s}") for s in mine]
    return out


# ---------------------------------------------------------------- composition


def _ms(samples: int) -> int:
    return round(samples * 1000 / SAMPLE_RATE)


def _samples(ms: float) -> int:
    return round(ms * SAMPLE_RATE / 1000)


def _take_turn(
    phrases: Sequence[Phrase], cursor: int, rng: random.Random, max_phrases: int, max_turn_ms: int
) -> tuple[list[tuple[Phrase, bool]], int]:
    """1..max_phrases consecutive phrases from ``cursor`` (cycling), with whether each is a
    reuse. Only the first phrase of a turn may be a reuse, and a further phrase is only
    added while the turn stays within ``max_turn_ms``."""
    want = rng.randint(1, max_phrases)
    taken: list[tuple[Phrase, bool]] = []
    voiced = 0
    while len(taken) < want:
        phrase = phrases[cursor % len(phrases)]
        if taken and (cursor >= len(phrases) or voiced + _ms(phrase.voiced_samples) > max_turn_ms):
            break
        taken.append((phrase, cursor >= len(phrases)))
        voiced += _ms(phrase.voiced_samples)
        cursor += 1
    return taken, cursor


def compose(
    phrases: Mapping[str, Sequence[Phrase]],
    order: Sequence[str],
    *,
    seed: int,
    quick_ratio: float,
    gaps: Sequence[GapKind] | None = None,
    pause_ms: tuple[int, int] = (700, 1200),
    quick_ms: tuple[int, int] = (60, 200),
    within_ms: tuple[int, int] = (150, 300),
    max_phrases_per_turn: int = 2,
    max_turn_ms: int = 9000,
    edge_ms: int = 500,
    noise_dbfs: float = -60.0,
    name: str = "",
) -> Conversation:
    """One turn per entry of ``order`` (a speaker id of ``phrases``).

    A turn is 1..``max_phrases_per_turn`` consecutive unused phrases of its speaker (cycling
    when they run out) separated by ``within_ms`` of silence. The gap before each later turn
    is ``gaps[i - 1]`` if given, else ``quick`` with probability ``quick_ratio``; a pause lasts
    ``pause_ms``, a quick change ``quick_ms`` (between the voices). ``edge_ms`` of silence
    lead in and trail; white noise at ``noise_dbfs`` RMS underlies everything.
    """
    if not order:
        raise ValueError("a conversation needs at least one turn")
    if gaps is not None and len(gaps) != len(order) - 1:
        raise ValueError(f"{len(order)} turns need {len(order) - 1} gaps, got {len(gaps)}")
    unknown = sorted(set(order) - {s for s, p in phrases.items() if p})
    if unknown:
        raise ValueError(f"no phrases for speaker(s) {unknown}")
    rng = random.Random(seed)
    cursors = dict.fromkeys(phrases, 0)
    placed: list[tuple[int, Phrase]] = []  # (sample where the phrase's voice starts, phrase)
    turns: list[dict[str, Any]] = []
    reference: list[RefTurn] = []
    t = _samples(edge_ms)  # where the next voice starts
    for i, speaker in enumerate(order):
        gap: dict[str, Any] | None = None
        if i:
            kind: GapKind = gaps[i - 1] if gaps is not None else ("quick" if rng.random() < quick_ratio else "pause")
            gap_ms = rng.randint(*(quick_ms if kind == "quick" else pause_ms))
            gap = {"kind": kind, "ms": gap_ms}
            t += _samples(gap_ms)
        taken, cursors[speaker] = _take_turn(phrases[speaker], cursors[speaker], rng, max_phrases_per_turn, max_turn_ms)
        start = t
        items = []
        for j, (phrase, reused) in enumerate(taken):
            if j:
                t += _samples(rng.randint(*within_ms))
            placed.append((t, phrase))
            items.append(
                {
                    "start_ms": _ms(t),
                    "end_ms": _ms(t + phrase.voiced_samples),
                    "origin": phrase.origin,
                    "text": phrase.text,
                    "reused": reused,
                }
            )
            t += phrase.voiced_samples
        reference.append(RefTurn(_ms(start), _ms(t), speaker))
        turns.append(
            {"speaker": speaker, "start_ms": _ms(start), "end_ms": _ms(t), "gap_before": gap, "phrases": items}
        )
    total = t + _samples(edge_ms)
    mix = np.random.default_rng(seed).normal(0.0, 32768.0 * 10 ** (noise_dbfs / 20), total)
    for voice_at, phrase in placed:
        a = voice_at - phrase.lead
        mix[a : a + len(phrase.pcm)] += phrase.pcm
    pcm = np.clip(np.round(mix), -32768, 32767).astype(np.int16)
    spec = {
        "name": name,
        "seed": seed,
        "sample_rate": SAMPLE_RATE,
        "duration_ms": _ms(total),
        "quick_ratio": quick_ratio,
        "noise_dbfs": noise_dbfs,
        "speakers": sorted(set(order)),
        "turns": turns,
    }
    return Conversation(pcm, SAMPLE_RATE, reference, spec)


def two_speakers(
    speech_dir: Path, a: str = "fleurs-es-005", b: str = "fleurs-es-007", *, seed: int = 5, name: str = "two_speakers"
) -> Conversation:
    """Two FLEURS speakers taking turns A B A B A, two of the four changes quick (by default
    005 and 007, a man and a woman, like the learner and his landlord at the door)."""
    p = load_fleurs_phrases(speech_dir)
    return compose(p, [a, b, a, b, a], seed=seed, quick_ratio=0.5, gaps=["pause", "quick", "pause", "quick"], name=name)


def speaker_pairs(speech_dir: Path, *, seed: int = 2) -> list[Conversation]:
    """:func:`two_speakers` for every pair of FLEURS speakers (004 left out: it is 003), the
    hard pairs of similar voices included: how often two people are told apart at all."""
    ids = sorted(s for s in load_fleurs_phrases(speech_dir) if s not in SAME_SPEAKER)
    return [
        two_speakers(speech_dir, a, b, seed=seed, name=f"pair-{a[-3:]}-{b[-3:]}")
        for a, b in itertools.combinations(ids, 2)
    ]


def three_speakers(speech_dir: Path) -> Conversation:
    """FLEURS 001, 000 and 003: A B C A C B A B, three of the seven changes quick."""
    p = load_fleurs_phrases(speech_dir)
    a, b, c = "fleurs-es-001", "fleurs-es-000", "fleurs-es-003"
    gaps: list[GapKind] = ["pause", "quick", "pause", "pause", "quick", "pause", "quick"]
    return compose(p, [a, b, c, a, c, b, a, b], seed=3, quick_ratio=0.5, gaps=gaps, name="three_speakers")


def _order(rng: random.Random, speakers: Sequence[str], n_turns: int) -> list[str]:
    """Every speaker once (shuffled), then random speakers, never the same twice in a row."""
    order = list(speakers)
    rng.shuffle(order)
    while len(order) < n_turns:
        order.append(rng.choice([s for s in speakers if s != order[-1]]))
    return order[:n_turns]


def _gaps(rng: random.Random, n: int, quick_ratio: float) -> list[GapKind]:
    """``n`` gap kinds, each quick with probability ``quick_ratio``, then :func:`_both`."""
    return _both(["quick" if rng.random() < quick_ratio else "pause" for _ in range(n)])


def _both(kinds: list[GapKind]) -> list[GapKind]:
    """At least one gap of each kind (given two or more): the middle one is changed if not."""
    out = list(kinds)
    if len(out) >= 2 and len(set(out)) == 1:
        out[len(out) // 2] = "quick" if out[0] == "pause" else "pause"
    return out


def _pool(speech_dir: Path, pool: str) -> dict[str, list[Phrase]]:
    if pool == "synthetic":
        return synthetic_phrases(6)
    fleurs = load_fleurs_phrases(speech_dir)
    ids = range(0, 5) if pool == "tune" else range(5, 10)
    wanted = {f"fleurs-es-{i:03d}" for i in ids}
    return {speaker: phrases for speaker, phrases in fleurs.items() if speaker in wanted}


def benchmark_set(speech_dir: Path, *, pool: str, n: int = 10, max_ms: int = 60_000) -> list[Conversation]:
    """``n`` conversations of 2–4 speakers and 6–12 turns with mixed gaps, each under
    ``max_ms``. Pools: ``tune`` (FLEURS clips 000–004: four speakers, for choosing thresholds),
    ``test`` (005–009, for reporting) and ``synthetic`` (the espeak-ng voices)."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    phrases = _pool(speech_dir, pool)
    speakers = sorted(phrases)
    out = []
    for k in range(n):
        seed = 1000 * (POOLS.index(pool) + 1) + k
        rng = random.Random(seed)
        n_speakers = min(len(speakers), 2 + k % 3)
        who = sorted(rng.sample(speakers, n_speakers))
        n_turns = rng.randint(max(6, n_speakers), 12)
        quick_ratio = (0.2, 0.35, 0.5)[k % 3]
        order = _order(rng, who, n_turns)
        gaps = _gaps(rng, n_turns - 1, quick_ratio)
        conv = compose(phrases, order, seed=seed, quick_ratio=quick_ratio, gaps=gaps, name=f"{pool}-{k:02d}")
        while conv.duration_ms > max_ms and len(order) > max(6, n_speakers):
            order, gaps = order[:-1], _both(gaps[:-1])
            conv = compose(phrases, order, seed=seed, quick_ratio=quick_ratio, gaps=gaps, name=f"{pool}-{k:02d}")
        out.append(conv)
    return out


def rttm_lines(turns: Iterable[RefTurn], file_id: str) -> list[str]:
    """NIST RTTM ``SPEAKER`` lines (times in seconds)."""
    out = []
    for t in turns:
        onset, duration = t.start_ms / 1000, (t.end_ms - t.start_ms) / 1000
        out.append(f"SPEAKER {file_id} 1 {onset:.3f} {duration:.3f} <NA> <NA> {t.speaker} <NA> <NA>")
    return out


def write_conversation(conv: Conversation, path_stem: Path | str) -> list[Path]:
    """``<stem>.wav``, ``<stem>.rttm`` and ``<stem>.json`` (the spec); returns the paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    wav, rttm, spec = (stem.with_name(stem.name + ext) for ext in (".wav", ".rttm", ".json"))
    _write_wav(wav, conv.pcm, conv.sample_rate)
    rttm.write_text("\n".join(rttm_lines(conv.reference, stem.name)) + "\n", encoding="utf-8")
    spec.write_text(json.dumps(conv.spec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return [wav, rttm, spec]


# ---------------------------------------------------------------- metrics


def _as_turns(turns: Iterable[RefTurn | tuple[int, int, str]]) -> list[Turn]:
    return [
        (t.start_ms, t.end_ms, t.speaker) if isinstance(t, RefTurn) else (int(t[0]), int(t[1]), t[2]) for t in turns
    ]


def _frames(turns: Sequence[Turn], labels: Sequence[str], n: int) -> npt.NDArray[np.bool_]:
    """(len(labels), n) activity at FRAME_MS; a frame is active when its centre is inside a turn."""
    index = {label: i for i, label in enumerate(labels)}
    act = np.zeros((len(labels), n), dtype=bool)
    for start, end, label in turns:
        a, b = round(start / FRAME_MS), round(end / FRAME_MS)
        act[index[label], max(0, a) : max(0, b)] = True
    return act


def diarization_error(
    reference: Iterable[RefTurn | tuple[int, int, str]],
    hypothesis: Iterable[tuple[int, int, str]],
    *,
    collar_ms: int = 250,
) -> dict[str, Any]:
    """Diarization error rate, NIST style, frame-based at 10 ms.

    Frames within ``collar_ms`` either side of any reference turn boundary are not scored
    (md-eval's ``-c 0.25``; pyannote.metrics' ``collar=0.5``). Per scored frame with R
    reference and H hypothesis speakers of which C are correctly mapped: miss max(0, R-H),
    false alarm max(0, H-R), confusion min(R, H) - C; each summed and divided by the
    scored reference speech. Hypothesis labels map one-to-one onto reference speakers so
    as to maximise the time they agree (Hungarian method); unmapped labels are confusion.
    Returns der, miss, false_alarm, confusion (fractions), reference_ms (scored) and
    mapping (hypothesis label -> reference speaker). Overlapping turns of one label count
    as one speaker (pyannote.metrics counts them twice unless the annotation is merged
    with ``support()`` first).
    """
    from scipy.optimize import linear_sum_assignment

    ref, hyp = _as_turns(reference), _as_turns(hypothesis)
    n = max([round(t[1] / FRAME_MS) for t in ref + hyp], default=0) + 1
    ref_labels = sorted({t[2] for t in ref})
    hyp_labels = sorted({t[2] for t in hyp})
    r_act, h_act = _frames(ref, ref_labels, n), _frames(hyp, hyp_labels, n)
    scored = np.ones(n, dtype=bool)
    c = round(collar_ms / FRAME_MS)
    for start, end, _ in ref:
        for edge in (round(start / FRAME_MS), round(end / FRAME_MS)):
            scored[max(0, edge - c) : max(0, edge + c)] = False
    r_act, h_act = r_act[:, scored], h_act[:, scored]
    overlap = r_act.astype(np.int64) @ h_act.T.astype(np.int64)  # (ref, hyp) frames together
    rows, cols = linear_sum_assignment(overlap, maximize=True) if overlap.size else ([], [])
    mapping = {hyp_labels[j]: ref_labels[i] for i, j in zip(rows, cols, strict=True) if overlap[i, j] > 0}
    n_ref, n_hyp = r_act.sum(axis=0), h_act.sum(axis=0)
    correct = sum(int(overlap[i, j]) for i, j in zip(rows, cols, strict=True))
    total = int(n_ref.sum())
    miss = int(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = int(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = int(np.minimum(n_ref, n_hyp).sum()) - correct
    denominator = total or 1
    return {
        "der": (miss + false_alarm + confusion) / denominator,
        "miss": miss / denominator,
        "false_alarm": false_alarm / denominator,
        "confusion": confusion / denominator,
        "reference_ms": total * FRAME_MS,
        "mapping": mapping,
    }


def speaker_changes(turns: Iterable[RefTurn | tuple[int, int, str]]) -> list[int]:
    """Times (ms) where the speaker changes: the middle of the gap (or overlap) between
    consecutive turns, ordered by start, of different speakers."""
    ordered = sorted(_as_turns(turns))
    return [(a[1] + b[0]) // 2 for a, b in itertools.pairwise(ordered) if a[2] != b[2]]


def change_precision_recall(
    reference: Iterable[RefTurn | tuple[int, int, str]],
    hypothesis: Iterable[tuple[int, int, str]],
    *,
    tolerance_ms: int = 500,
) -> dict[str, Any]:
    """Speaker-change detection: reference and hypothesis changes paired one-to-one, closest
    pairs first, when within ``tolerance_ms``. Precision is 1 with no hypothesis changes and
    recall 1 with no reference changes. ``errors_ms`` are hypothesis minus reference."""
    ref, hyp = speaker_changes(reference), speaker_changes(hypothesis)
    candidates = sorted(
        (abs(h - r), i, j) for i, r in enumerate(ref) for j, h in enumerate(hyp) if abs(h - r) <= tolerance_ms
    )
    used_r: set[int] = set()
    used_h: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, i, j in candidates:
        if i not in used_r and j not in used_h:
            used_r.add(i)
            used_h.add(j)
            pairs.append((ref[i], hyp[j]))
    pairs.sort()
    precision = len(pairs) / len(hyp) if hyp else 1.0
    recall = len(pairs) / len(ref) if ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "reference": len(ref),
        "hypothesis": len(hyp),
        "matched": pairs,
        "errors_ms": [h - r for r, h in pairs],
    }


def count_speakers(turns: Iterable[RefTurn | tuple[int, int, str]]) -> int:
    return len({t[2] for t in _as_turns(turns)})
