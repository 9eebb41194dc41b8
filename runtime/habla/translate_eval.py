"""The translation benchmark behind ``habla eval translate`` (and ``bench/translate.py``).

Two fixed test sets: the first N sentences of FLORES-200 devtest spa->eng (shared/eval,
consecutive sentences of the same articles, so the two before each one are its context)
and the project's idiom test set (services/translate/eval/idioms_es_en.tsv: each
sentence uses an idiom in context and has a reference translation by meaning).

Each set is translated under several conditions with the same model:
``plain`` (no idiom hints, no context), ``hints``, ``context`` and ``full`` (hints and
context: what the service does). Reported: corpus chrF (sacrebleu), the pass-through
rate of first answers (rejected by the untranslated-output guard, so retried) and of
final results (still untranslated after every retry and the fallback), idiom recall of
the database on the idiom set, and latency per final (p50/p95).
"""

from __future__ import annotations

import csv
import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["CONDITIONS", "Item", "load_flores", "load_idioms", "run"]

CONDITIONS = {"plain": (False, False), "hints": (True, False), "context": (False, True), "full": (True, True)}


@dataclass(frozen=True)
class Item:
    es: str
    en: str
    context: tuple[str, ...] = ()
    canonical: str = ""


def _repo() -> Path:
    return Path(__file__).resolve().parents[2]


def _eval_dir() -> Path:
    env = os.environ.get("HABLA_EVAL_DIR")
    return Path(env) if env else _repo().parent / "shared" / "eval"


def load_flores(n: int, path: Path | None = None) -> list[Item]:
    path = path or _eval_dir() / "text" / "flores200_devtest_spa-eng.tsv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:n]
    return [Item(r["es"], r["en"], tuple(x["es"] for x in rows[max(0, i - 2) : i])) for i, r in enumerate(rows)]


def load_idioms(n: int = 0, path: Path | None = None) -> list[Item]:
    path = path or _repo() / "services" / "translate" / "eval" / "idioms_es_en.tsv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = rows[:n] if n else rows
    return [Item(r["es"], r["en"], (r["context_es"],), r["canonical"]) for r in rows]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def _evaluate(interpreter: Any, items: list[Item], hints: bool, context: bool, tick: Any) -> dict[str, Any]:
    from sacrebleu.metrics.chrf import CHRF

    from habla_translate.prompts import ContextLine, Request

    hyps, ms, first_rejected, untranslated, rows = [], [], 0, 0, []
    for item in items:
        req = Request(item.es, context=[ContextLine("", c) for c in item.context] if context else [])
        hits = interpreter.idioms.match(item.es) if hints else []
        result = interpreter.final(req, hits)
        hyps.append(result.translation)
        ms.append(result.elapsed_ms)
        first_rejected += result.attempts > 1
        untranslated += result.status == "untranslated"
        rows.append({"es": item.es, "ref": item.en, "hyp": result.translation, "status": result.status})
        tick()
    return {
        "chrf": round(CHRF().corpus_score(hyps, [[i.en for i in items]]).score, 2),
        "first_answer_pass_through": round(first_rejected / len(items), 4),
        "untranslated": round(untranslated / len(items), 4),
        "latency_ms_p50": _pct(ms, 50),
        "latency_ms_p95": _pct(ms, 95),
        "latency_ms_mean": round(statistics.fmean(ms), 1),
        "n": len(items),
        "rows": rows,
    }


def _idiom_recall(interpreter: Any, items: list[Item]) -> dict[str, Any]:
    from habla_translate.matcher import deaccent

    found, ms = 0, []
    for item in items:
        t0 = time.perf_counter()
        hits = interpreter.idioms.match(item.es)
        ms.append((time.perf_counter() - t0) * 1000)
        want = deaccent(item.canonical).replace("(", "").replace(")", "")
        found += any(deaccent(h.entry.canonical).replace("(", "").replace(")", "") == want for h in hits)
    return {"recall": round(found / len(items), 4), "match_ms_p50": round(_pct(ms, 50), 3), "n": len(items)}


def run(
    *,
    n_flores: int = 50,
    n_idioms: int = 0,
    backend: str | None = None,
    model: str | None = None,
    conditions: tuple[str, ...] = ("plain", "full"),
    console: Any = None,
) -> dict[str, Any]:
    from rich.progress import Progress

    from habla_translate.config import TranslateConfig
    from habla_translate.main import build_interpreter

    config = TranslateConfig.from_env()
    config = replace(config, backend=backend or config.backend, model=model or config.model)
    t0 = time.perf_counter()
    interpreter = build_interpreter(config)
    load_s = time.perf_counter() - t0
    sets = {"flores": load_flores(n_flores), "idioms": load_idioms(n_idioms)}
    report: dict[str, Any] = {"model": config.model_label, "json_mode": config.json_mode, "load_s": round(load_s, 1)}
    total = sum(len(items) for items in sets.values()) * len(conditions)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("translating", total=total)
        for name, items in sets.items():
            report[name] = {}
            for cond in conditions:
                hints, context = CONDITIONS[cond]
                report[name][cond] = _evaluate(interpreter, items, hints, context, lambda: progress.advance(task))
    report["idioms"]["database"] = _idiom_recall(interpreter, sets["idioms"])
    report["summary"] = {
        f"{name}.{cond}": {k: v for k, v in report[name][cond].items() if k != "rows"}
        for name in sets
        for cond in conditions
    } | {"idioms.database": report["idioms"]["database"], "model": config.model_label}
    return report
