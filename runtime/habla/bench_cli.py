"""The ``habla bench`` command (the measuring is in :mod:`habla.bench`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import bench

console = Console(stderr=True)


def _fmt(v: Any, unit: str = "s") -> str:
    return "–" if v is None else f"{v:.2f} {unit}".strip()


@click.command("bench")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sessions", "-n", default=1, show_default=True, type=click.IntRange(1, 64), help="Concurrent sessions.")
@click.option(
    "--duration",
    default=None,
    help="Loop the audio until each session has this much (30m, 90s, 1h); default: play it once.",
)
@click.option("--gap", default=1.5, show_default=True, type=float, help="Seconds of silence after each recording.")
@click.option("--fast", is_flag=True, help="Send the audio as fast as it is taken instead of at real-time pace.")
@click.option("--no-eval", is_flag=True, help="Play only FILES, not the eval speech.")
@click.option("--no-translations", is_flag=True, help="Do not wait for translations (ASR only).")
@click.option("--compare", "compare_cmd", default=None, help="Another transcriber: a command run on each file.")
@click.option("--sample-every", default=5.0, show_default=True, type=float, help="Seconds between metric scrapes.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for bench.json and the plots (default bench/out/<time>).",
)
@click.option("--data-dir", default=None, help="Where the runtime's embedded servers and logs go.")
def bench_command(
    files: tuple[Path, ...],
    sessions: int,
    duration: str | None,
    gap: float,
    fast: bool,
    no_eval: bool,
    no_translations: bool,
    compare_cmd: str | None,
    sample_every: float,
    out: Path | None,
    data_dir: str | None,
) -> None:
    """Replay real recordings through the live pipeline as N sessions, measure it over time,
    and write bench.json with latency, lag, memory, CPU, partial stability and WER plots."""
    from habla_ingest.adapters import decode_file

    from .supervisor import running

    try:
        seconds = bench.parse_duration(duration) if duration else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--duration") from e
    sources = bench.default_sources(files, include_eval=not no_eval)
    if not sources:
        raise click.UsageError("nothing to play: give FILES or leave out --no-eval")
    pcms = []
    for src in sources:
        try:
            pcms.append(decode_file(src.path))
        except Exception as e:
            raise click.ClickException(f"cannot read {src.path}: {e}") from e
    lengths = [len(p) * 1000 // bench.SAMPLE_RATE for p in pcms]
    gap_ms = int(gap * 1000)
    duration_ms = int(seconds * 1000) if seconds else None
    pieces = [bench.layout(lengths, gap_ms=gap_ms, duration_ms=duration_ms, offset=i) for i in range(sessions)]
    audios = [bench.session_audio(pcms, p, gap_ms) for p in pieces]
    audio_s = max(len(a) for a in audios) / bench.SAMPLE_RATE
    out = out or Path("bench") / "out" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    console.print(
        f"{sessions} session(s) of {audio_s / 60:.1f} min ({sum(len(p) for p in pieces)} recordings) "
        f"{'as fast as taken' if fast else 'at real-time pace'}; writing to {out}"
    )

    with console.status("starting Habla (loading models)…"):
        ctx = running(data_dir=Path(data_dir) if data_dir else Path("/tmp") / f"habla-bench-{int(time.time())}")
        rt = ctx.__enter__()
    try:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        sent = progress.add_task("audio sent", total=sessions)
        finals = progress.add_task("finals", total=None)
        done: dict[int, float] = {}
        n_finals = 0

        def on_sent(i: int, k: int, total: int) -> None:
            done[i] = k / total
            progress.update(sent, completed=sum(done.values()))

        def on_event(ev: Any) -> None:
            nonlocal n_finals
            if ev.kind == ("asr.final" if no_translations else "translation.final"):
                n_finals += 1
                progress.update(finals, completed=n_finals)

        t0 = time.time()
        sampler = bench.Sampler(rt.metrics_urls(), rt.token, sample_every, t0, rt.supervise)
        sampler.start()
        try:
            with progress:
                results = asyncio.run(
                    bench.play_sessions(
                        rt.ws_url,
                        rt.token,
                        audios,
                        realtime=not fast,
                        translations=not no_translations,
                        on_sent=on_sent,
                        on_event=on_event,
                    )
                )
        finally:
            sampler.stop.set()
            sampler.join()
        wall = time.time() - t0
    finally:
        with console.status("stopping Habla…"):
            ctx.__exit__(None, None, None)

    compare = None
    if compare_cmd:
        with console.status(f"running {compare_cmd!r} on {len(sources)} file(s)…"):
            try:
                compare = bench.run_compare(compare_cmd, sources, [n / 1000 for n in lengths])
            except RuntimeError as e:
                raise click.ClickException(str(e)) from e
    run = bench.Run(
        sources, pieces, results, sampler.samples, t0, not fast, not no_translations, audio_s, wall, sampler.restarts
    )
    rep = bench.report(run, bin_s=max(30.0, audio_s / 30), compare=compare)
    bench.write_json(rep, run, out / "bench.json")
    plots = bench.plot(run, rep, out)
    _print_summary(rep, plots, out)


def _print_summary(rep: dict[str, Any], plots: list[Path], out: Path) -> None:
    t = Table(title=f"habla bench: {rep['sessions']} session(s), {rep['mode']}, {rep['utterances']} utterances")
    t.add_column("stage")
    t.add_column("p50", justify="right")
    t.add_column("p95", justify="right")
    t.add_column("trend", justify="right")
    for lat in rep["latency_s"].values():
        trend = lat["growth_s_per_min"]
        t.add_row(lat["label"], _fmt(lat["p50"]), _fmt(lat["p95"]), "–" if trend is None else f"{trend:+.3f} s/min")
    console.print(t)
    m = Table(title="memory (RSS)")
    for col in ("service", "start", "end", "peak", "change"):
        m.add_column(col, justify="right" if col != "service" else "left")
    for name, v in rep["memory"].items():
        change = "–" if v["change"] is None else f"{v['change']:+.1%}"
        m.add_row(name, f"{v['start_mb']:.0f} MB", f"{v['end_mb']:.0f} MB", f"{v['peak_mb']:.0f} MB", change)
    console.print(m)
    lags = ", ".join(
        f"{g} max {v['max']:.0f}" + ("" if v["growth_per_min"] is None else f" ({v['growth_per_min']:+.2f}/min)")
        for g, v in rep["stream_lag"].items()
        if v["max"] > 0
    )
    console.print(f"stream lag: {lags or 'none'}")
    stab = rep["partial_stability"]
    console.print(
        f"partial stability: {stab['shown_changed_per_final_word']:.3f} shown words changed per final word "
        f"({stab['committed_changed_per_final_word']:.3f} committed)"
    )
    if rep["wer"] is not None:
        console.print(f"WER against the references: {rep['wer']:.1%}")
    cmp = rep.get("compare")
    if cmp:
        c = Table(title="side by side")
        for col in ("system", "WER", "speed"):
            c.add_column(col)
        c.add_row("habla (live pipeline)", _pct(rep["wer"]), "real time" if rep["mode"] == "realtime" else "fast")
        rtf = cmp["real_time_factor"]
        c.add_row(cmp["command"], _pct(cmp["wer"]), "–" if rtf is None else f"RTF {rtf:.2f}")
        console.print(c)
    paths = rep.get("translations_by_path") or {}
    if paths:
        console.print("translations: " + ", ".join(f"{n} {path}" for path, n in sorted(paths.items())))
    if rep["untranslated"]:
        console.print(f"[red]{rep['untranslated']} final(s) without a translation[/]")
    for r in rep["restarts"]:
        console.print(f"[red]{r['service']} died and was restarted[/] {r['t_s'] / 60:.1f} min into the run")
    for e in rep["errors"]:
        console.print(f"[red]error[/] {e.get('code')}: {e.get('message')}")
    console.print(f"wrote {out / 'bench.json'} and {', '.join(p.name for p in plots)}")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"
