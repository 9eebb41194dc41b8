"""``habla bench-speech``: how long a spoken answer takes, through the speech API.

Each recording is posted to ``POST /api/stream-audio`` (PARLE's SSE protocol) of a runtime
this command starts, or of one already running (``--url``/``--token``), one turn after
another, as a user talking to it would. The client clocks every stage from the moment it
started sending the recording: the transcript, the response, the **first audio byte** (the
first ``audio`` event), and the end; the server's own per-stage timings (stt, llm, tts) come
from the ``complete`` event. It prints p50/p95 per stage and writes every turn to JSON.

``--mode practice`` talks to the practice partner instead of the translator: each recording
is one learner turn of one conversation (the session continues from turn to turn).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.table import Table

__all__ = ["TurnTiming", "bench_speech_command", "post_turn", "sse_events", "summarise"]

console = Console(stderr=True)


@dataclass
class TurnTiming:
    """One turn as the client saw it (seconds from the start of the upload) and the server's timing (ms)."""

    file: str
    audio_s: float
    transcript: str = ""
    response: str = ""
    transcript_s: float | None = None
    response_s: float | None = None
    first_audio_s: float | None = None
    complete_s: float | None = None
    audio_chunks: int = 0
    spoken_s: float = 0.0  # length of the audio answer
    server: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, data) for each Server-Sent Event of a streamed response, as it arrives."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif not line and data:
            yield name, json.loads(data)
            name, data = "message", ""


def post_turn(client: httpx.Client, token: str, path: Path, audio_s: float, fields: dict[str, str]) -> TurnTiming:
    """Post one recording and time its stages."""
    timing = TurnTiming(path.name, audio_s)
    t0 = time.perf_counter()
    with client.stream(
        "POST",
        "/api/stream-audio",
        headers={"Authorization": f"Bearer {token}"},
        files={"audio": (path.name, path.read_bytes(), "application/octet-stream")},
        data=fields,
    ) as response:
        if response.status_code != 200:
            timing.error = f"HTTP {response.status_code}: {response.read().decode(errors='replace')[:300]}"
            return timing
        for name, data in sse_events(response):
            now = time.perf_counter() - t0
            if name == "transcript":
                timing.transcript_s, timing.transcript = now, data.get("transcript", "")
            elif name == "response":
                timing.response_s, timing.response = now, data.get("response", "")
            elif name == "audio":
                if timing.first_audio_s is None:
                    timing.first_audio_s = now
                timing.audio_chunks += 1
                timing.spoken_s += float(data.get("audio_ms", 0)) / 1000
            elif name == "complete":
                timing.complete_s, timing.server = now, dict(data.get("timing", {}))
                if fields.get("keep") == "1":  # a conversation: the next turn continues this session
                    fields["session_id"] = str(data.get("session_id", ""))
            elif name == "error":
                timing.error = str(data.get("message", data))
    return timing


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


STAGES = (
    ("transcript (client)", "transcript_s", 1.0),
    ("response (client)", "response_s", 1.0),
    ("first audio byte (client)", "first_audio_s", 1.0),
    ("complete (client)", "complete_s", 1.0),
    ("stt (server)", "stt_ms", 0.001),
    ("llm (server)", "llm_ms", 0.001),
    ("tts synthesis, sum (server)", "tts_ms", 0.001),
    ("first audio (server)", "first_audio_ms", 0.001),
)


def summarise(turns: list[TurnTiming]) -> dict[str, dict[str, float | None]]:
    """p50/p95/mean in seconds per stage over the turns that completed."""
    ok = [t for t in turns if not t.error and t.complete_s is not None]
    out: dict[str, dict[str, float | None]] = {}
    for label, key, scale in STAGES:
        raw = [getattr(t, key) if hasattr(t, key) else t.server.get(key) for t in ok]
        values = [float(v) * scale for v in raw if v is not None]
        out[label] = {
            "p50": _pct(values, 50),
            "p95": _pct(values, 95),
            "mean": statistics.fmean(values) if values else None,
            "n": float(len(values)),
        }
    return out


def _table(summary: dict[str, dict[str, float | None]]) -> Table:
    table = Table(title="speech API, seconds from the start of the upload")
    for col in ("stage", "p50", "p95", "mean", "n"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for label, s in summary.items():
        cells = ["–" if s[k] is None else f"{s[k]:.2f}" for k in ("p50", "p95", "mean")]
        table.add_row(label, *cells, f"{int(s['n'] or 0)}")
    return table


@click.command("bench-speech")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(["translate", "practice"]), default="translate", show_default=True)
@click.option("--direction", type=click.Choice(["es-en", "en-es", "auto"]), default="es-en", show_default=True)
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(1, 100), help="Play the files this often.")
@click.option("--warmup", default=1, show_default=True, type=click.IntRange(0, 10), help="Untimed turns first.")
@click.option("--url", default=None, help="A running gateway (e.g. https://127.0.0.1:8000); default: start one.")
@click.option("--token", default=None, help="Its token (with --url).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON report path.")
@click.option("--data-dir", default=None, help="Where a started runtime keeps its servers and logs.")
def bench_speech_command(
    files: tuple[Path, ...],
    mode: str,
    direction: str,
    repeat: int,
    warmup: int,
    url: str | None,
    token: str | None,
    out: Path | None,
    data_dir: str | None,
) -> None:
    """Time spoken answers through POST /api/stream-audio: transcript, response, first audio
    byte and the end of each turn, p50/p95 (the eval speech by default)."""
    from habla_common.audio import SAMPLE_RATE, decode_audio

    from .evaluation import load_manifest
    from .supervisor import running

    paths = list(files) or [c.path for c in load_manifest()]
    if url and not token:
        raise click.UsageError("--url needs --token")
    lengths = {p: len(decode_audio(p)) / SAMPLE_RATE for p in paths}
    plan = [p for _ in range(repeat) for p in paths]
    fields = {"mode": "practice" if mode == "practice" else "conversation", "direction": direction}
    if mode == "practice":
        fields["keep"] = "1"
    turns: list[TurnTiming] = []

    def run(base: str, tok: str) -> None:
        with httpx.Client(base_url=base, verify=False, timeout=600) as client:
            for i, path in enumerate([*plan[:warmup], *plan]):
                label = "warm-up" if i < warmup else f"{i - warmup + 1}/{len(plan)}"
                t = post_turn(client, tok, path, lengths[path], fields)
                first = "–" if t.first_audio_s is None else f"{t.first_audio_s:.2f} s"
                console.print(f"{label} {path.name}: first audio {first}, done {t.complete_s or 0:.2f} s {t.error}")
                if i >= warmup:
                    turns.append(t)

    if url:
        run(url.rstrip("/"), token or "")
    else:
        with console.status("starting Habla (loading models)…"):
            ctx = running(data_dir=Path(data_dir) if data_dir else Path("/tmp") / f"habla-speech-{int(time.time())}")
            rt = ctx.__enter__()
        try:
            run(rt.url, rt.token)
        finally:
            ctx.__exit__(None, None, None)
    summary = summarise(turns)
    console.print(_table(summary))
    errors = [t for t in turns if t.error]
    if errors:
        console.print(f"[red]{len(errors)} turn(s) failed[/red]: {errors[0].error}")
    out = out or Path("bench") / "out" / f"speech-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"mode": mode, "direction": direction, "summary": summary, "turns": [asdict(t) for t in turns]}
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    console.print(f"report: {out}")
    if errors:
        raise SystemExit(1)
