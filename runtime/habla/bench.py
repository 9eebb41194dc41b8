"""``habla bench``: real recordings replayed as live sessions, measured over time.

The bench starts the one-machine runtime (every service its own process, as ``habla up``
runs them), plays the eval speech (and any files given) into N concurrent sessions at
real-time pace, or into one session looped for a given duration, and meanwhile scrapes
every process's Prometheus metrics every few seconds. It writes ``bench.json`` and PNG
plots (matplotlib) to ``--out``:

* ``latency.png``: per-stage latency p50/p95 over the run, measured at the client from
  the moment the audio was spoken (the session start plus the position in the audio);
* ``lag.png``: entries waiting in each consumer group's streams, and how far behind the live
  audio each consumer says it is;
* ``memory.png`` and ``cpu.png``: RSS and CPU of each service over the run;

and reports partial stability (how many words already on screen were later changed, per
final word) and WER against the references of the eval clips. ``--compare 'COMMAND'``
transcribes every source file with another command in the same run and tables its WER and
speed next to Habla's.

The pure parts (audio layout, matching finals to clips, stability, percentiles over time,
flatness and growth) are functions here, tested on their own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import shlex
import subprocess
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .evaluation import corpus_wer, load_manifest, normalise
from .replay import SAMPLE_RATE, ReplayResult

__all__ = [
    "SAMPLE_RATE",
    "Piece",
    "Sample",
    "Source",
    "assign_finals",
    "binned_percentiles",
    "growth",
    "layout",
    "parse_duration",
    "relative_change",
    "shown_word_changes",
]


# --- the audio a session plays -------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A recording to play, with its reference transcript when one is known."""

    path: Path
    reference: str | None = None


@dataclass(frozen=True)
class Piece:
    """One playing of a source inside a session's audio, in ms of that audio."""

    source: int  # index into the sources
    start_ms: int
    end_ms: int


def parse_duration(text: str) -> float:
    """``"30m"``, ``"90s"``, ``"1h"``, ``"1h30m"`` or plain seconds -> seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (try 30m, 90s, 1h30m)")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def layout(lengths_ms: Sequence[int], *, gap_ms: int, duration_ms: int | None, offset: int = 0) -> list[Piece]:
    """Where each playing of the sources goes: one after another with ``gap_ms`` of silence
    after each, once through (``duration_ms`` None) or looped until ``duration_ms`` is filled.
    ``offset`` rotates the order, so concurrent sessions do not all speak the same clip."""
    if not lengths_ms:
        raise ValueError("no audio to play")
    pieces: list[Piece] = []
    at, i = 0, 0
    n = len(lengths_ms)
    while True:
        src = (i + offset) % n
        if duration_ms is not None and pieces and at + lengths_ms[src] > duration_ms:
            break
        pieces.append(Piece(src, at, at + lengths_ms[src]))
        at += lengths_ms[src] + gap_ms
        i += 1
        if duration_ms is None and i == n:
            break
    return pieces


def session_audio(pcms: Sequence[np.ndarray], pieces: Sequence[Piece], gap_ms: int) -> np.ndarray:
    """The int16 PCM of a session: its pieces with silence between them (and after the last)."""
    end = pieces[-1].end_ms + gap_ms
    out = np.zeros(end * SAMPLE_RATE // 1000, dtype=np.int16)
    for p in pieces:
        pcm = pcms[p.source]
        at = p.start_ms * SAMPLE_RATE // 1000
        out[at : at + len(pcm)] = pcm[: len(out) - at]
    return out


def assign_finals(finals: Iterable[dict[str, Any]], pieces: Sequence[Piece]) -> list[list[str]]:
    """The final texts heard during each piece: a final goes to the piece it overlaps most."""
    heard: list[list[str]] = [[] for _ in pieces]
    for f in sorted(finals, key=lambda f: (f["start_ms"], f.get("part", 0))):
        if not f.get("text"):
            continue
        best, overlap = -1, 0
        for i, p in enumerate(pieces):
            o = min(f["end_ms"], p.end_ms) - max(f["start_ms"], p.start_ms)
            if o > overlap:
                best, overlap = i, o
        if best >= 0:
            heard[best].append(f["text"])
    return heard


# --- partial stability ---------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return normalise(text).split()


def shown_word_changes(shown: Sequence[str], final: str) -> int:
    """How many words already on screen were later changed: each hypothesis shown (a partial's
    committed + tentative words, then the final that replaces the line) is compared word by
    word with the one before; a word that is there before and different or gone after counts."""
    changed = 0
    previous: list[str] = []
    for text in [*shown, final]:
        words = _words(text)
        changed += sum(1 for i, w in enumerate(previous) if i >= len(words) or words[i] != w)
        previous = words
    return changed


def stability(result: ReplayResult) -> dict[str, int]:
    """Shown words later changed, committed words later changed and final words of a session."""
    shown: dict[str, list[str]] = defaultdict(list)
    committed: dict[str, list[str]] = defaultdict(list)
    for e in result.of_kind("asr.partial"):
        text = f"{e.data['committed']} {e.data['tentative']}".strip()
        if text:
            shown[e.data["utterance_id"]].append(text)
        if e.data["committed"]:
            committed[e.data["utterance_id"]].append(e.data["committed"])
    finals: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for f in result.finals():
        finals[f.get("parent_id") or f["utterance_id"]].append((f.get("part", 0), f["text"]))
    out = {"shown_changed": 0, "committed_changed": 0, "final_words": 0}
    for key, parts in finals.items():
        text = " ".join(t for _, t in sorted(parts) if t)
        out["final_words"] += len(_words(text))
        out["shown_changed"] += shown_word_changes(shown.get(key, []), text)
        # committed words promise not to change; the final replacing the line counts too
        out["committed_changed"] += shown_word_changes(committed.get(key, []), text)
    return out


# --- numbers over time ---------------------------------------------------------------------


def binned_percentiles(
    points: Sequence[tuple[float, float]], bin_s: float, qs: Sequence[float] = (50, 95)
) -> list[dict[str, float]]:
    """``(t, value)`` points -> per time bin: its middle ``t``, ``n`` and each percentile ``pQ``."""
    bins: dict[int, list[float]] = defaultdict(list)
    for t, v in points:
        bins[int(t // bin_s)].append(v)
    out = []
    for b in sorted(bins):
        values = np.array(bins[b])
        row = {"t": (b + 0.5) * bin_s, "n": float(len(values))}
        row.update({f"p{q:g}": float(np.percentile(values, q)) for q in qs})
        out.append(row)
    return out


def growth(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(t seconds, value)``, per minute (None with fewer than 3 points)."""
    if len(points) < 3:
        return None
    t = np.array([p[0] for p in points])
    v = np.array([p[1] for p in points])
    if float(np.ptp(t)) == 0.0:
        return None
    return float(np.polyfit(t / 60.0, v, 1)[0])


def relative_change(points: Sequence[tuple[float, float]], *, skip_s: float, window_s: float) -> float | None:
    """Mean of the last ``window_s`` over the mean of the first ``window_s`` after ``skip_s``
    (warm-up), minus one: 0.05 is 5 % more at the end than at the start."""
    first = [v for t, v in points if skip_s <= t < skip_s + window_s]
    end = max((t for t, _ in points), default=0.0)
    last = [v for t, v in points if t > end - window_s and t >= skip_s + window_s]
    if not first or not last or float(np.mean(first)) == 0.0:
        return None
    return float(np.mean(last) / np.mean(first) - 1.0)


def pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.array(values), q)) if values else None


# --- sampling the processes ----------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the bench's audio started
    rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    behind_s: dict[str, float] = field(default_factory=dict)
    shed_level: dict[str, float] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)  # group -> entries not yet delivered
    pending: dict[str, float] = field(default_factory=dict)  # group -> delivered, not acked


def read_metrics(text: str, service: str, sample: Sample) -> None:
    """Fold one process's Prometheus text into ``sample``."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "process_resident_memory_bytes":
                sample.rss_mb[service] = s.value / 2**20
            elif s.name == "process_cpu_seconds_total":
                sample.cpu_s[service] = s.value
            elif s.name == "habla_consumer_behind_seconds":
                sample.behind_s[s.labels.get("service", service)] = s.value
            elif s.name == "habla_shed_level":
                sample.shed_level[s.labels.get("service", service)] = s.value
            elif s.name == "habla_stream_lag":
                g = s.labels["group"]
                sample.lag[g] = sample.lag.get(g, 0.0) + s.value
            elif s.name == "habla_stream_pending":
                g = s.labels["group"]
                sample.pending[g] = sample.pending.get(g, 0.0) + s.value


class Sampler(threading.Thread):
    """Scrapes every process's /metrics every ``every_s`` seconds until stopped, and (as
    ``habla up`` does) restarts a service that died, noting when."""

    def __init__(
        self,
        urls: dict[str, str],
        token: str,
        every_s: float,
        t0: float,
        supervise: Callable[[], list[str]] | None = None,
    ) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        self.urls, self.token, self.every_s, self.t0 = urls, token, every_s, t0
        self.supervise = supervise
        self.samples: list[Sample] = []
        self.failures: dict[str, int] = defaultdict(int)
        self.restarts: list[tuple[float, str]] = []  # (seconds into the run, service)
        self.stop = threading.Event()

    def scrape(self) -> Sample:
        from habla_common.tls import loopback_context

        sample = Sample(time.time() - self.t0)
        ctx = loopback_context()  # the runtime's own certificate, if any
        for service, url in self.urls.items():
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
            try:
                with urllib.request.urlopen(req, timeout=3, context=ctx) as resp:
                    read_metrics(resp.read().decode(), service, sample)
            except OSError:
                self.failures[service] += 1
        return sample

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            if self.supervise is not None:
                self.restarts += [(time.time() - self.t0, name) for name in self.supervise()]
            self.samples.append(self.scrape())
            self.stop.wait(max(0.0, self.every_s - (time.monotonic() - started)))


# --- the report ------------------------------------------------------------------------------


@dataclass
class Run:
    """One bench run's raw material."""

    sources: list[Source]
    pieces: list[list[Piece]]  # per session
    results: list[ReplayResult]
    samples: list[Sample]
    t0: float  # wall time the audio started
    realtime: bool
    translations: bool
    audio_s: float
    wall_s: float
    restarts: list[tuple[float, str]] = field(default_factory=list)


STAGES = {
    "onset_to_first_caption": "speech onset → first live caption",
    "speech_end_to_transcript": "end of speech → final transcript",
    "speech_end_to_translation": "end of speech → translated card",
}


def stage_points(result: ReplayResult, t0: float) -> dict[str, list[tuple[float, float]]]:
    """Per stage, ``(when the speech ended or began, seconds since t0; latency)`` of every utterance."""
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in STAGES}
    first_partial: dict[str, float] = {}
    for e in result.of_kind("asr.partial"):
        if e.data["committed"] or e.data["tentative"]:
            first_partial.setdefault(e.data["utterance_id"], e.at)
    onsets = {e.data["index"]: e.data["onset_ms"] for e in result.of_kind("speech.started")}
    asr_at = {e.data["utterance_id"]: e.at for e in result.of_kind("asr.final")}
    card_at: dict[str, float] = {}
    for e in result.of_kind("translation.final"):
        if e.data["revision"] == 0:
            card_at.setdefault(e.data["utterance_id"], e.at)
    seen_onsets: set[int] = set()
    for f in result.finals():
        if not f["text"]:
            continue
        spoken_end = result.started_at + f["speech_end_ms"] / 1000
        t_end = spoken_end - t0
        out["speech_end_to_transcript"].append((t_end, asr_at[f["utterance_id"]] - spoken_end))
        if f["utterance_id"] in card_at:
            out["speech_end_to_translation"].append((t_end, card_at[f["utterance_id"]] - spoken_end))
        index = f["index"]
        live_id = f.get("parent_id") or f["utterance_id"]
        if index in onsets and index not in seen_onsets and live_id in first_partial:
            seen_onsets.add(index)
            spoken_onset = result.started_at + onsets[index] / 1000
            out["onset_to_first_caption"].append((spoken_onset - t0, first_partial[live_id] - spoken_onset))
    return out


def series(samples: Sequence[Sample], attr: str) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in samples:
        for name, v in getattr(s, attr).items():
            out[name].append((s.t, v))
    return dict(out)


def cpu_percent(samples: Sequence[Sample]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for a, b in itertools.pairwise(samples):
        for name, v in b.cpu_s.items():
            if name in a.cpu_s and b.t > a.t:
                out[name].append((b.t, max(0.0, 100 * (v - a.cpu_s[name]) / (b.t - a.t))))
    return dict(out)


def report(run: Run, *, bin_s: float, compare: dict[str, Any] | None = None) -> dict[str, Any]:
    points: dict[str, list[tuple[float, float]]] = {k: [] for k in STAGES}
    for res in run.results:
        for k, v in stage_points(res, run.t0).items():
            points[k] += v
    latency = {
        k: {
            "label": STAGES[k],
            "p50": pct([v for _, v in pts], 50),
            "p95": pct([v for _, v in pts], 95),
            "n": len(pts),
            "growth_s_per_min": growth(pts),
            "over_time": binned_percentiles(pts, bin_s),
        }
        for k, pts in points.items()
    }
    rss = series(run.samples, "rss_mb")
    skip = min(120.0, run.audio_s / 10)
    window = max(30.0, min(300.0, run.audio_s / 6))
    memory = {
        name: {
            "start_mb": round(float(np.mean([v for t, v in pts if skip <= t < skip + window] or [pts[0][1]])), 1),
            "end_mb": round(pts[-1][1], 1),
            "peak_mb": round(max(v for _, v in pts), 1),
            "change": relative_change(pts, skip_s=skip, window_s=window),
        }
        for name, pts in sorted(rss.items())
    }
    lag = series(run.samples, "lag")
    behind = series(run.samples, "behind_s")
    lags = {
        group: {
            "max": max(v for _, v in pts),
            "mean_first": _mean_between(pts, skip, skip + window),
            "mean_last": _mean_between(pts, run.audio_s - window, math.inf),
            "growth_per_min": growth(pts),
        }
        for group, pts in sorted(lag.items())
    }
    behinds = {
        name: {
            "max_s": max(v for _, v in pts),
            "mean_last_s": _mean_between(pts, run.audio_s - window, math.inf),
            "growth_s_per_min": growth(pts),
        }
        for name, pts in sorted(behind.items())
    }
    stab = {"shown_changed": 0, "committed_changed": 0, "final_words": 0}
    hyps: list[str] = []
    refs: list[str] = []
    per_source: dict[int, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for res, pieces in zip(run.results, run.pieces, strict=True):
        for name, count in stability(res).items():
            stab[name] += count
        for piece, heard in zip(pieces, assign_finals(res.finals(), pieces), strict=True):
            ref = run.sources[piece.source].reference
            if ref is not None:
                refs.append(ref)
                hyps.append(" ".join(heard))
                per_source[piece.source][0].append(ref)
                per_source[piece.source][1].append(" ".join(heard))
    words = stab["final_words"] or 1
    out: dict[str, Any] = {
        "mode": "realtime" if run.realtime else "fast",
        "sessions": len(run.results),
        "audio_s_per_session": round(run.audio_s, 1),
        "wall_s": round(run.wall_s, 1),
        "translations": run.translations,
        "utterances": sum(len([f for f in r.finals() if f["text"]]) for r in run.results),
        "untranslated": sum(
            1 for r in run.results for f in r.finals() if f["text"] and f.get("status") in (None, "untranslated")
        )
        if run.translations
        else 0,
        # without translations asked for, those that happened to arrive before the end say nothing
        "translations_by_path": translation_paths(run.results) if run.translations else {},
        "latency_s": latency,
        "memory": memory,
        "memory_flat_10pct": all(m["change"] is None or abs(m["change"]) <= 0.10 for m in memory.values()),
        "stream_lag": lags,
        "behind_s": behinds,
        "partial_stability": {
            **stab,
            "shown_changed_per_final_word": stab["shown_changed"] / words,
            "committed_changed_per_final_word": stab["committed_changed"] / words,
        },
        "wer": corpus_wer(refs, hyps) if refs else None,
        "wer_per_source": {run.sources[i].path.name: corpus_wer(r, h) for i, (r, h) in sorted(per_source.items())},
        "errors": [e for r in run.results for e in r.errors],
        "restarts": [{"t_s": round(t, 1), "service": name} for t, name in run.restarts],
    }
    if compare is not None:
        out["compare"] = compare
    return out


def translation_paths(results: Sequence[ReplayResult]) -> dict[str, int]:
    """How the live translation finals were made: ``full`` (the model with corrections),
    ``express`` (one plain call, the stage was behind), ``rules`` (rule-based, far behind),
    ``fallback`` (the model failed the guard) and ``untranslated``/``empty``."""
    counts: dict[str, int] = defaultdict(int)
    for res in results:
        for e in res.of_kind("translation.final"):
            d = e.data
            if d["revision"] != 0:
                continue
            if d["status"] in ("untranslated", "empty"):
                counts[d["status"]] += 1
            elif d.get("express"):
                counts["rules" if d["status"] == "fallback" else "express"] += 1
            else:
                counts["fallback" if d["status"] == "fallback" else "full"] += 1
    return dict(counts)


def _mean_between(points: Sequence[tuple[float, float]], lo: float, hi: float) -> float | None:
    values = [v for t, v in points if lo <= t < hi]
    return float(np.mean(values)) if values else None


# --- plots --------------------------------------------------------------------------------------


def plot(run: Run, rep: dict[str, Any], out: Path) -> list[Path]:
    """Write the PNGs; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def minutes(pts: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
        return [t / 60 for t, _ in pts], [v for _, v in pts]

    title = f"{rep['sessions']} session(s), {rep['audio_s_per_session'] / 60:.1f} min of audio each, {rep['mode']}"
    written = []

    fig, ax = plt.subplots(figsize=(10, 5))
    for i, lat in enumerate(rep["latency_s"].values()):
        rows = lat["over_time"]
        if not rows:
            continue
        t = [r["t"] / 60 for r in rows]
        color = f"C{i}"
        ax.plot(t, [r["p50"] for r in rows], color=color, marker="o", ms=3, label=f"{lat['label']} p50")
        ax.plot(t, [r["p95"] for r in rows], color=color, ls="--", label=f"{lat['label']} p95")
    ax.set(xlabel="minutes into the run", ylabel="seconds", title=f"Latency per stage — {title}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    written.append(_save(fig, out / "latency.png"))

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for group, pts in sorted(series(run.samples, "lag").items()):
        a1.plot(*minutes(pts), label=group)
    a1.set(ylabel="entries not yet read", title=f"Stream lag per consumer group — {title}")
    a1.legend(fontsize=8, ncol=3)
    a1.grid(alpha=0.3)
    behind = series(run.samples, "behind_s")
    for name, pts in sorted(behind.items()):
        a2.plot(*minutes(pts), label=name)
    a2.set(xlabel="minutes into the run", ylabel="seconds behind the audio", title="How far behind each consumer is")
    if behind:
        a2.legend(fontsize=8, ncol=3)
    a2.grid(alpha=0.3)
    written.append(_save(fig, out / "lag.png"))

    fig, ax = plt.subplots(figsize=(10, 5))
    for name, pts in sorted(series(run.samples, "rss_mb").items()):
        ax.plot(*minutes(pts), label=name)
    ax.set(xlabel="minutes into the run", ylabel="RSS (MB)", title=f"Memory per service — {title}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    written.append(_save(fig, out / "memory.png"))

    fig, ax = plt.subplots(figsize=(10, 5))
    for name, pts in sorted(cpu_percent(run.samples).items()):
        ax.plot(*minutes(pts), label=name, lw=1)
    ax.set(xlabel="minutes into the run", ylabel="CPU (% of one core)", title=f"CPU per service — {title}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    written.append(_save(fig, out / "cpu.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- another transcriber on the same audio ----------------------------------------------------


def run_compare(command: str, sources: Sequence[Source], audio_s: Sequence[float]) -> dict[str, Any]:
    """Run ``command`` on every source (``{}`` in it is replaced by the file's path, else the
    path is appended); its standard output is its transcript."""
    hyps, refs, per_file = [], [], {}
    total_s = total_audio = 0.0
    for src, seconds in zip(sources, audio_s, strict=True):
        path = shlex.quote(str(src.path))
        cmd = command.replace("{}", path) if "{}" in command else f"{command} {path}"
        started = time.perf_counter()
        done = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)
        took = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"--compare command failed on {src.path.name} ({done.returncode}): {done.stderr[-500:]}")
        text = done.stdout.strip()
        total_s += took
        total_audio += seconds
        per_file[src.path.name] = {"text": text, "seconds": round(took, 3)}
        if src.reference is not None:
            refs.append(src.reference)
            hyps.append(text)
    return {
        "command": command,
        "wer": corpus_wer(refs, hyps) if refs else None,
        "real_time_factor": total_s / total_audio if total_audio else None,
        "files": per_file,
    }


def default_sources(files: Sequence[Path], *, include_eval: bool, eval_dir: Path | None = None) -> list[Source]:
    """The eval clips with their references (``include_eval``), then the files given. A given
    file's reference is the ``FILE.txt`` beside it, else the eval manifest's if it is an eval clip."""
    try:
        known = {c.path.resolve(): c.reference for c in load_manifest(eval_dir)}
    except FileNotFoundError:
        known = {}
    sources = [Source(path, ref) for path, ref in known.items()] if include_eval else []
    for f in files:
        txt = f.with_suffix(".txt")
        sources.append(Source(f, normalise(txt.read_text()) if txt.is_file() else known.get(f.resolve())))
    return sources


def write_json(rep: dict[str, Any], run: Run, path: Path) -> None:
    raw = {
        "report": rep,
        "samples": [asdict(s) for s in run.samples],
        "sources": [{"path": str(s.path), "reference": s.reference} for s in run.sources],
    }
    path.write_text(json.dumps(raw, indent=1, default=str))


async def play_sessions(
    ws_url: str,
    token: str,
    audios: Sequence[np.ndarray],
    *,
    realtime: bool,
    translations: bool,
    on_sent: Any = None,
    on_event: Any = None,
) -> list[ReplayResult]:
    from .replay import replay_pcm

    return list(
        await asyncio.gather(
            *(
                replay_pcm(
                    ws_url,
                    token,
                    pcm,
                    realtime=realtime,
                    title=f"bench {i + 1}",
                    translations=translations,
                    on_sent=(lambda done, total, i=i: on_sent(i, done, total)) if on_sent else None,
                    on_event=on_event,
                    drain_timeout_s=900.0,
                )
                for i, pcm in enumerate(audios)
            )
        )
    )
