"""Translation benchmark: chrF with and without idiom hints and context, pass-through
rate, idiom recall and latency per final, on FLORES-200 and the project's idiom set.

    python bench/translate.py                       # 50 FLORES + every idiom sentence, plain vs full
    python bench/translate.py --ablation            # also hints-only and context-only
    TRANSLATE_JSON=prompt python bench/translate.py # the faster unconstrained JSON mode

Writes bench/out/translate.json (per-sentence outputs included). Same as
`habla eval translate`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from habla.translate_eval import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flores", type=int, default=50)
    parser.add_argument("--idioms", type=int, default=0, help="0 = all")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("out") / "translate.json")
    args = parser.parse_args()
    conditions = ("plain", "hints", "context", "full") if args.ablation else ("plain", "full")
    report = run(n_flores=args.flores, n_idioms=args.idioms, conditions=conditions, console=Console(stderr=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
