"""Diarization benchmark: the online speaker pipeline on conversations built from real speech.

Each conversation of :mod:`habla.diarize_corpus` (FLEURS voices, and espeak-ng voices as
a clearly synthetic extra set) goes through what a live session runs: the ingest's
voice-activity segmenter (Silero) cuts it into utterances exactly as the ingest service
does, and the diarize service's handler (the real speaker encoder, state in real Redis)
assigns speakers and splits utterances at speaker changes, in order, as they would arrive.
The hypothesis is the handler's ``speaker.assigned`` turns; the reference is how the
conversation was built. Reported per pool: diarization error rate (collar 250 ms, the
usual), speaker-change precision/recall within 0.5 s, how often the number of speakers
is right, embedding cost per utterance and the process's memory.

``habla eval diarize`` / ``python bench/diarize.py`` run it; ``--sweep`` tries threshold
pairs on the tune pool, which is how the defaults were chosen.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from habla_contracts import Event, SpeakerAssigned, UtteranceSegmented, derived_id

from .diarize_corpus import (
    Conversation,
    benchmark_set,
    change_precision_recall,
    count_speakers,
    diarization_error,
    speaker_pairs,
    three_speakers,
    two_speakers,
)

__all__ = ["Hypothesis", "diarize_conversation", "run", "segment", "sweep"]


@dataclasses.dataclass
class Hypothesis:
    turns: list[tuple[int, int, str]]  # (start_ms, end_ms, speaker) of the voiced turns
    utterances: int
    embed_ms: list[int]
    splits: int  # utterances split at a speaker change


def segment(conv: Conversation, session_id: str) -> list[UtteranceSegmented]:
    """The utterances the ingest service would publish for this audio (its segmenter and
    Silero VAD with the service's default settings), as events."""
    import torch

    from habla_ingest.adapters import SileroDetector
    from habla_ingest.config import IngestConfig
    from habla_ingest.domain import Segmenter, Utterance

    threads = torch.get_num_threads()  # silero_vad sets the process to one torch thread
    try:
        seg = Segmenter(IngestConfig().segmenter_options(), SileroDetector().probability)
        outs = [*seg.push(conv.pcm), *seg.finish()]
    finally:
        torch.set_num_threads(threads)
    return [
        UtteranceSegmented(
            session_id=session_id,
            event_id=derived_id(session_id, "utt", o.index),
            utterance_id=derived_id(session_id, "utterance", o.index),
            index=o.index,
            start_ms=o.start_ms,
            end_ms=o.end_ms,
            pcm=o.pcm,
            reason=o.reason,
            speech_end_ms=o.speech_end_ms,
        )
        for o in outs
        if isinstance(o, Utterance)
    ]


def diarize_conversation(
    handle: Callable[[Event, Callable[[Event], Any]], None], utterances: Sequence[UtteranceSegmented]
) -> Hypothesis:
    """Feed the utterances to a diarize handler in order; collect its turns."""
    turns: list[tuple[int, int, str]] = []
    embed_ms: list[int] = []
    splits = 0
    for u in utterances:
        out: list[Event] = []
        handle(u, out.append)
        assigned = [e for e in out if isinstance(e, SpeakerAssigned)]
        if not assigned:
            continue
        a = assigned[0]
        embed_ms.append(a.embed_ms)
        splits += len(a.turns) > 1
        for i, t in enumerate(a.turns):
            end = min(t["end_ms"], u.speech_end_ms) if i == len(a.turns) - 1 else t["end_ms"]
            turns.append((t["start_ms"], end, t["speaker"]))
    return Hypothesis(turns, len(utterances), embed_ms, splits)


def score(conv: Conversation, hyp: Hypothesis) -> dict[str, Any]:
    der = diarization_error(conv.reference, hyp.turns, collar_ms=250)
    changes = change_precision_recall(conv.reference, hyp.turns, tolerance_ms=500)
    return {
        "name": conv.spec.get("name", ""),
        "duration_s": round(conv.duration_ms / 1000, 1),
        "speakers": count_speakers(conv.turns),
        "found_speakers": count_speakers(hyp.turns),
        "utterances": hyp.utterances,
        "split_utterances": hyp.splits,
        "der": der["der"],
        "miss": der["miss"],
        "false_alarm": der["false_alarm"],
        "confusion": der["confusion"],
        "change_precision": changes["precision"],
        "change_recall": changes["recall"],
        "change_errors_ms": changes["errors_ms"],
        "reference_changes": changes["reference"],
        "found_changes": changes["hypothesis"],
        "embed_ms": hyp.embed_ms,
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total_ref = sum(r["reference_changes"] for r in rows)
    total_hyp = sum(r["found_changes"] for r in rows)
    matched = sum(round(r["change_recall"] * r["reference_changes"]) for r in rows)
    embed = sorted(ms for r in rows for ms in r["embed_ms"])
    weights = [r["duration_s"] for r in rows]
    return {
        "conversations": len(rows),
        "der": round(float(np.average([r["der"] for r in rows], weights=weights)), 4),
        "miss": round(float(np.average([r["miss"] for r in rows], weights=weights)), 4),
        "false_alarm": round(float(np.average([r["false_alarm"] for r in rows], weights=weights)), 4),
        "confusion": round(float(np.average([r["confusion"] for r in rows], weights=weights)), 4),
        "change_precision": round(matched / total_hyp, 4) if total_hyp else 1.0,
        "change_recall": round(matched / total_ref, 4) if total_ref else 1.0,
        "speaker_count_right": sum(r["speakers"] == r["found_speakers"] for r in rows),
        # the right speaker count and every change found within 0.5 s, none extra
        "all_right": sum(
            r["speakers"] == r["found_speakers"] and r["change_precision"] == r["change_recall"] == 1.0 for r in rows
        ),
        "embed_ms_p50": int(statistics.median(embed)) if embed else 0,
        "embed_ms_p95": int(embed[int(0.95 * (len(embed) - 1))]) if embed else 0,
        "utterances": sum(r["utterances"] for r in rows),
        "split_utterances": sum(r["split_utterances"] for r in rows),
    }


def conversations(speech_dir: Path, pools: Iterable[str]) -> dict[str, list[Conversation]]:
    out: dict[str, list[Conversation]] = {}
    for pool in pools:
        if pool == "named":
            out[pool] = [two_speakers(speech_dir), three_speakers(speech_dir)]
        elif pool == "pairs":
            out[pool] = speaker_pairs(speech_dir)
        else:
            out[pool] = benchmark_set(speech_dir, pool=pool)
    return out


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process(os.getpid()).memory_info().rss / 2**20)


def run(
    speech_dir: Path,
    *,
    pools: Sequence[str] = ("named", "tune", "test", "synthetic", "pairs"),
    redis_url: str,
    config: Any = None,
    embedder: Any = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The benchmark: every conversation of ``pools`` as its own session through the online
    pipeline; per-conversation rows and a summary per pool."""
    import redis

    from habla_diarize.config import DiarizeConfig
    from habla_diarize.embedders import build_embedder
    from habla_diarize.handlers import DiarizeHandler
    from habla_diarize.store import RedisStateStore

    config = config or DiarizeConfig.from_env()
    rss_start = _rss_mb()
    started = time.perf_counter()
    embedder = embedder or build_embedder(config)
    load_s = time.perf_counter() - started
    client = redis.Redis.from_url(redis_url)
    store = RedisStateStore(client, ttl_s=3600, prefix="bench-diarize:")
    handler = DiarizeHandler(embedder, config, store, lambda _s: {"mode": "conversation"})
    corpus = conversations(speech_dir, pools)
    report: dict[str, Any] = {"config": dataclasses.asdict(config), "embedder": embedder.name, "pools": {}}
    rss: list[float] = []
    run_id = os.urandom(4).hex()
    for pool, convs in corpus.items():
        rows: list[dict[str, Any]] = []
        for conv in convs:
            session = f"bench-{run_id}-{conv.spec.get('name', len(rows))}"
            hyp = diarize_conversation(handler.handle, segment(conv, session))
            client.delete(f"bench-diarize:{session}")
            rows.append(score(conv, hyp))
            rss.append(_rss_mb())
            if progress:
                r = rows[-1]
                progress(
                    f"{pool}/{r['name']}: DER {r['der']:.1%}, changes P {r['change_precision']:.0%} "
                    f"R {r['change_recall']:.0%}, speakers {r['found_speakers']}/{r['speakers']}"
                )
        report["pools"][pool] = {"summary": _summary(rows), "conversations": rows}
    client.close()
    report["model_load_s"] = round(load_s, 2)
    report["rss_mb"] = {"start": round(rss_start, 1), "after_load": round(rss[0], 1) if rss else 0.0}
    report["rss_mb"].update(peak=round(max(rss), 1) if rss else 0.0, end=round(rss[-1], 1) if rss else 0.0)
    return report


def sweep(
    speech_dir: Path,
    *,
    redis_url: str,
    assign: Sequence[float],
    change: Sequence[float],
    pool: str = "tune",
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """DER and change F1 on ``pool`` for each (assign, change) threshold pair (one model load)."""
    from habla_diarize.config import DiarizeConfig
    from habla_diarize.embedders import build_embedder

    base = DiarizeConfig.from_env()
    embedder = build_embedder(base)
    out = []
    for a in assign:
        for c in change:
            cfg = dataclasses.replace(base, assign_threshold=a, change_threshold=c)
            rep = run(speech_dir, pools=(pool,), redis_url=redis_url, config=cfg, embedder=embedder)
            s = rep["pools"][pool]["summary"]
            out.append({"assign": a, "change": c, **s})
            if progress:
                progress(
                    f"assign {a:.2f} change {c:.2f}: DER {s['der']:.1%} changes P {s['change_precision']:.0%} "
                    f"R {s['change_recall']:.0%} speakers right {s['speaker_count_right']}/{s['conversations']}"
                )
    return out
