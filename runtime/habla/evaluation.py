"""Evaluation helpers: the FLEURS manifest, text normalisation and corpus WER."""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import av
import jiwer
import numpy as np
import numpy.typing as npt

__all__ = [
    "Clip",
    "corpus_wer",
    "cut_chunks_like_mediarecorder",
    "default_speech_dir",
    "encode_webm_opus",
    "load_manifest",
    "normalise",
]


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
            Clip(
                directory / row["file"],
                float(row["duration_s"]),
                normalise(row["transcript_es"]),
                row["translation_en"],
            )
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


_CLUSTER = b"\x1f\x43\xb6\x75"


def _unknown_size_clusters(data: bytes) -> bytes:
    out, i = bytearray(), 0
    while (j := data.find(_CLUSTER, i)) >= 0:
        out += data[i : j + 4]
        length = 9 - data[j + 4].bit_length()
        out += b"\x01\xff\xff\xff\xff\xff\xff\xff"
        i = j + 4 + length
    return bytes(out + data[i:])


def encode_webm_opus(pcm: npt.NDArray[np.int16], *, layout: str = "mono", bit_rate: int = 32000) -> bytes:
    """WebM/Opus as Chrome's MediaRecorder writes it: libopus at 48 kHz in a live WebM
    whose clusters have unknown sizes (so nothing can be decoded by seeking)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm", options={"live": "1"}) as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = layout
        stream.bit_rate = bit_rate
        resampler = av.AudioResampler(format="s16", layout=layout, rate=48000)
        channels = 2 if layout == "stereo" else 1
        for i in range(0, len(pcm), 4000):
            piece = np.repeat(pcm[i : i + 4000], channels).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(piece, format="s16", layout=layout)
            frame.sample_rate, frame.pts = 16000, i
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return _unknown_size_clusters(buf.getvalue())


def cut_chunks_like_mediarecorder(data: bytes, seconds: float, slice_s: float = 0.25) -> list[bytes]:
    """Split an encoded stream into ~``slice_s`` pieces at arbitrary byte offsets, as timeslices arrive."""
    step = max(1, int(len(data) * slice_s / seconds))
    return [data[i : i + step] for i in range(0, len(data), step)]
