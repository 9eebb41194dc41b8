"""Pipeline benchmark: replay the FLEURS clips through the multi-process pipeline.

    python bench/pipeline.py                 # real-time pace, like a live microphone
    python bench/pipeline.py --fast          # as fast as the pipeline takes it

Each clip is one live session sent over the gateway's WebSocket in 250 ms chunks.
Writes bench/out/pipeline.json with: speech onset -> first partial caption (p50/p95),
end of speech -> final transcript (p50/p95), end of speech -> translated final card and
speech onset -> first live English (p50/p95), ASR real-time factor, peak RSS per
service, and corpus WER of the pipeline next to the WER of transcribing each whole
clip offline with the same model and settings.

Latency is measured at the client, from the moment the audio was spoken (the session
start plus the position in the audio of the first voiced frame, or of the first frame
after the last voiced one), as a microphone would produce it. So it includes the
250 ms chunking, the pause the segmenter waits for and all queueing. Settings come from
the environment as for `habla up` (e.g. INGEST_FIRST_WINDOW_MS=450 python bench/pipeline.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from habla.evaluation import corpus_wer, load_manifest
from habla.replay import ReplayResult, replay_pcm
from habla.supervisor import Runtime, running
from habla_ingest.adapters import decode_file


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.array(values), q))


class RssSampler(threading.Thread):
    def __init__(self, rt: Runtime, every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.rt, self.every_s = rt, every_s
        self.peak: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            for name, child in self.rt.children.items():
                if child.proc is None:
                    continue
                try:
                    rss = psutil.Process(child.proc.pid).memory_info().rss
                except psutil.Error:
                    continue
                self.peak[name] = max(self.peak.get(name, 0), rss)


def translation_latencies(result: ReplayResult) -> tuple[list[float], list[float]]:
    """End of speech -> translation final (the final card), and speech onset -> first
    live English (translation partial)."""
    end_to_card, onset_to_english = [], []
    for final in result.finals():
        if not final["text"]:
            continue
        idx = final["index"]
        card = [e for e in result.of_kind("translation.final") if e.data["index"] == idx]
        if card:
            end_to_card.append(card[0].at - (result.started_at + final["speech_end_ms"] / 1000))
        english = [e for e in result.of_kind("translation.partial") if e.data["index"] == idx]
        began = [e for e in result.of_kind("speech.started") if e.data["index"] == idx]
        if english and began:
            onset_to_english.append(english[0].at - (result.started_at + began[0].data["onset_ms"] / 1000))
    return end_to_card, onset_to_english


def latencies(result: ReplayResult) -> tuple[list[float], list[float]]:
    onset_to_partial, end_to_final = [], []
    for final in result.finals():
        if not final["text"]:
            continue
        idx = final["index"]
        partials = [
            e
            for e in result.of_kind("asr.partial")
            if e.data["index"] == idx and (e.data["committed"] or e.data["tentative"])
        ]
        began = [e for e in result.of_kind("speech.started") if e.data["index"] == idx]
        if partials and began:
            onset_to_partial.append(partials[0].at - (result.started_at + began[0].data["onset_ms"] / 1000))
        got = next(e for e in result.of_kind("asr.final") if e.data["index"] == idx)
        end_to_final.append(got.at - (result.started_at + final["speech_end_ms"] / 1000))
    return onset_to_partial, end_to_final


def offline_wer(clips: list[Any]) -> tuple[float, list[str]]:
    from habla_asr.adapters import FasterWhisperTranscriber
    from habla_asr.config import AsrConfig

    cfg = AsrConfig.from_env()
    tr = FasterWhisperTranscriber.from_config(cfg)
    hyps = []
    for clip in clips:
        pcm = decode_file(clip.path).astype(np.float32) / 32768.0
        hyps.append(tr.transcribe(pcm, language="es", beam_size=cfg.beam_size, partial=False).text)
    return corpus_wer([c.reference for c in clips], hyps), hyps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fast", action="store_true", help="send audio as fast as possible instead of real time")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "pipeline.json")
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()

    clips = load_manifest()
    results: list[ReplayResult] = []
    with running(data_dir=args.data_dir or Path("/tmp") / f"habla-bench-{int(time.time())}") as rt:
        sampler = RssSampler(rt)
        sampler.start()
        for clip in clips:
            pcm = decode_file(clip.path)
            # a second of silence after the clip, as between two people's turns
            pcm = np.concatenate([pcm, np.zeros(16000, dtype=np.int16)])
            res = asyncio.run(
                replay_pcm(rt.ws_url, rt.token, pcm, realtime=not args.fast, title=clip.path.name, translations=True)
            )
            results.append(res)
            print(
                f"{clip.path.name}: {len(res.finals())} utterance(s): {' / '.join(f['text'] for f in res.finals())}",
                file=sys.stderr,
            )
        sampler.stop.set()
        peak = dict(sampler.peak)

    onset, end, card, english = [], [], [], []
    asr_ms = audio_ms = 0
    hyps = []
    for res in results:
        o, e = latencies(res)
        onset += o
        end += e
        c, en = translation_latencies(res)
        card += c
        english += en
        hyps.append(" ".join(f["text"] for f in res.finals()))
        asr_ms += sum(f["asr_ms"] for f in res.finals())
        audio_ms += sum(f["end_ms"] - f["start_ms"] for f in res.finals())
    pipeline = corpus_wer([c.reference for c in clips], hyps)
    offline, _ = offline_wer(clips)
    report = {
        "mode": "fast" if args.fast else "realtime",
        "clips": len(clips),
        "utterances": sum(len(r.finals()) for r in results),
        "onset_to_first_partial_s": {"p50": pct(onset, 50), "p95": pct(onset, 95), "n": len(onset)},
        "end_of_speech_to_final_s": {"p50": pct(end, 50), "p95": pct(end, 95), "n": len(end)},
        "end_of_speech_to_translated_card_s": {"p50": pct(card, 50), "p95": pct(card, 95), "n": len(card)},
        "onset_to_first_live_english_s": {"p50": pct(english, 50), "p95": pct(english, 95), "n": len(english)},
        "asr_real_time_factor": asr_ms / audio_ms if audio_ms else None,
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in sorted(peak.items())},
        "wer_pipeline": pipeline,
        "wer_offline_whole_clips": offline,
        "wer_ratio": pipeline / offline if offline else None,
        "mean_end_to_final_s": statistics.fmean(end) if end else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
