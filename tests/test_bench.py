"""``habla bench``: its measuring functions on known inputs, and one short real run through
every process (real Redis, Postgres, Whisper) with ``--compare`` running the offline
transcriber on the same audio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from habla.bench import (
    Piece,
    assign_finals,
    binned_percentiles,
    growth,
    layout,
    parse_duration,
    relative_change,
    session_audio,
    shown_word_changes,
)

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "eval" / "speech"


def test_durations() -> None:
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("42") == 42
    for bad in ("", "ten minutes", "30x", "5m junk"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_layout_plays_once_or_loops_to_the_duration_and_rotates_per_session() -> None:
    once = layout([1000, 2000], gap_ms=500, duration_ms=None)
    assert once == [Piece(0, 0, 1000), Piece(1, 1500, 3500)]
    looped = layout([1000, 2000], gap_ms=500, duration_ms=8000)
    assert [p.source for p in looped] == [0, 1, 0, 1]
    assert looped[-1].end_ms <= 8000
    assert layout([1000, 2000], gap_ms=500, duration_ms=None, offset=1)[0].source == 1
    with pytest.raises(ValueError):
        layout([], gap_ms=0, duration_ms=None)
    pcm = session_audio([np.full(16, 7, np.int16), np.full(32, 9, np.int16)], once, 500)
    assert len(pcm) == (3500 + 500) * 16
    assert pcm[0] == 7 and pcm[1500 * 16] == 9 and pcm[1200 * 16] == 0


def test_finals_go_to_the_clip_they_overlap_most() -> None:
    pieces = [Piece(0, 0, 10_000), Piece(1, 11_000, 20_000)]
    finals = [
        {"start_ms": 200, "end_ms": 6000, "text": "uno"},
        {"start_ms": 6000, "end_ms": 11_500, "text": "dos"},  # mostly in the first
        {"start_ms": 10_800, "end_ms": 19_000, "text": "tres"},
        {"start_ms": 30_000, "end_ms": 31_000, "text": "nadie"},  # in the silence after: no clip
        {"start_ms": 12_000, "end_ms": 13_000, "text": ""},
    ]
    assert assign_finals(finals, pieces) == [["uno", "dos"], ["tres"]]


def test_shown_words_changed_counts_what_the_reader_saw_rewritten() -> None:
    # growing without rewriting: nothing changed
    assert shown_word_changes(["hola", "hola, que", "Hola que tal"], "hola que tal.") == 0
    # an accent the final adds is a change the reader sees
    assert shown_word_changes(["hola", "hola que", "hola que tal"], "hola qué tal") == 1
    # "casa" shown then "caza": one word; the final drops "bien": one more
    assert shown_word_changes(["la casa", "la caza bien"], "la caza") == 2
    # a final that differs from everything shown
    assert shown_word_changes(["uno dos tres"], "cuatro cinco seis") == 3
    assert shown_word_changes([], "lo que sea") == 0


def test_percentiles_over_time_trend_and_flatness() -> None:
    pts = [(float(t), float(t % 3)) for t in range(120)]
    rows = binned_percentiles(pts, 60)
    assert [r["t"] for r in rows] == [30.0, 90.0]
    assert rows[0]["n"] == 60 and rows[0]["p50"] == 1.0 and rows[0]["p95"] == 2.0
    assert growth([(0, 1.0), (60, 2.0), (120, 3.0)]) == pytest.approx(1.0)
    assert growth([(0, 5.0), (60, 5.0), (120, 5.0)]) == pytest.approx(0.0)
    assert growth([(0, 1.0)]) is None
    flat = [(float(t), 100.0 + (t % 7)) for t in range(0, 1800, 5)]
    assert abs(relative_change(flat, skip_s=120, window_s=300) or 1) < 0.02
    leaking = [(float(t), 100.0 + t / 10) for t in range(0, 1800, 5)]
    assert (relative_change(leaking, skip_s=120, window_s=300) or 0) > 0.5


@pytest.mark.slow
def test_bench_runs_real_sessions_and_compares_with_the_offline_transcriber(tmp_path: Path) -> None:
    """Two concurrent sessions of two FLEURS clips each at real-time pace (ASR only, so it
    stays short), every process scraped; --compare runs the offline Whisper on the same files."""
    clips = [SPEECH / "fleurs-es-006.wav", SPEECH / "fleurs-es-003.wav"]
    out = tmp_path / "out"
    env = dict(os.environ)
    compare = f"{sys.executable} -m habla_asr.offline"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "habla",
            "bench",
            *map(str, clips),
            "--no-eval",
            "--sessions",
            "2",
            "--gap",
            "1",
            "--no-translations",
            "--sample-every",
            "1",
            "--compare",
            compare,
            "--out",
            str(out),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    raw = json.loads((out / "bench.json").read_text())
    rep = raw["report"]
    assert rep["sessions"] == 2 and rep["mode"] == "realtime"
    assert rep["utterances"] >= 4
    # every utterance has its final; a live caption may be shed when asr is behind
    finals, captions = rep["latency_s"]["speech_end_to_transcript"], rep["latency_s"]["onset_to_first_caption"]
    assert finals["n"] == rep["utterances"] and 0 < finals["p50"] < 30, finals
    assert captions["n"] >= 1 and 0 < captions["p50"] < 30, captions
    assert rep["untranslated"] == 0 and rep["translations_by_path"] == {}  # translations were not asked for
    # every process was scraped, more than once
    services = {"ingest", "diarize", "asr", "recorder", "translate", "vocab", "gateway"}
    assert services <= set(rep["memory"]), rep["memory"]
    assert len(raw["samples"]) >= 10
    assert all(v["peak_mb"] > 10 for v in rep["memory"].values())
    assert {"ingest", "asr"} <= set(rep["stream_lag"])
    stab = rep["partial_stability"]
    assert stab["final_words"] > 20
    assert 0 <= stab["shown_changed_per_final_word"] < 2
    # eval clips given as files keep their references: WER for habla and for the offline run
    assert 0 <= rep["wer"] < 0.35, rep["wer_per_source"]
    assert set(rep["wer_per_source"]) == {c.name for c in clips}
    cmp = rep["compare"]
    assert cmp["command"] == compare and set(cmp["files"]) == {c.name for c in clips}
    assert 0 <= cmp["wer"] < 0.35 and cmp["real_time_factor"] > 0
    for png in ("latency.png", "lag.png", "memory.png", "cpu.png"):
        assert (out / png).stat().st_size > 10_000
    assert "side by side" in done.stderr
