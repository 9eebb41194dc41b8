"""Diarization benchmark: DER and speaker-change precision/recall of the online speaker
pipeline (ingest segmenter + diarize handler) on conversations built from real FLEURS
speech (and espeak-ng voices as a synthetic extra set), plus embedding cost and memory.

    python bench/diarize.py                        # every pool, default thresholds
    python bench/diarize.py --sweep                # threshold grid on the tune pool
    DIARIZE_HOP_MS=400 python bench/diarize.py     # any DIARIZE_* setting applies

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). Writes bench/out/diarize.json
(or diarize-sweep.json). Same as `habla eval diarize`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console

from habla.diarize_eval import run, sweep
from habla.evaluation import default_speech_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pools", default="named,tune,test,synthetic,pairs")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--assign", default="0.72,0.76,0.8,0.84")
    parser.add_argument("--change", default="0.5,0.6,0.7")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    console = Console(stderr=True)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    out_dir = Path(__file__).with_name("out")
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.sweep:
        rows = sweep(
            default_speech_dir(),
            redis_url=redis_url,
            assign=[float(x) for x in args.assign.split(",")],
            change=[float(x) for x in args.change.split(",")],
            progress=console.print,
        )
        (args.out or out_dir / "diarize-sweep.json").write_text(json.dumps(rows, indent=2))
        return
    report = run(default_speech_dir(), pools=args.pools.split(","), redis_url=redis_url, progress=console.print)
    (args.out or out_dir / "diarize.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({p: v["summary"] for p, v in report["pools"].items()}, indent=2))
    print(json.dumps({"model_load_s": report["model_load_s"], "rss_mb": report["rss_mb"]}))


if __name__ == "__main__":
    main()
