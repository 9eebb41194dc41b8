"""Evaluation helpers: the FLEURS manifest, text normalisation and corpus WER."""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import jiwer

__all__ = ["Clip", "load_manifest", "normalise", "corpus_wer", "default_speech_dir"]


@dataclass(frozen=True)
class Clip:
    path: Path
    duration_s: float
    reference: str  # normalised Spanish transcript
    english: str


def default_speech_dir() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "speech"


def load_manifest(directory: Path | None = None) -> list[Clip]:
    directory = directory or default_speech_dir()
    with open(directory / "manifest.csv", newline="") as f:
        return [
            Clip(directory / row["file"], float(row["duration_s"]), normalise(row["transcript_es"]),
                 row["translation_en"])
            for row in csv.DictReader(f)
        ]


def normalise(text: str) -> str:
    """Lowercase, punctuation removed, whitespace collapsed (as FLEURS publishes references)."""
    kept = "".join(" " if unicodedata.category(ch).startswith(("P", "S")) else ch for ch in text.lower())
    return " ".join(kept.split())


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    refs = [normalise(r) for r in references]
    hyps = [normalise(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))
