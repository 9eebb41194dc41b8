"""The ``habla`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
import urllib.parse
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from habla_common.settings import default_data_dir
from habla_common.transcript import clock

from .bench_cli import bench_command
from .export_cli import export
from .sessions_cli import sessions
from .speech_bench import bench_speech_command
from .translate_cli import eval_group, idioms, render_translation, retranslate, translate
from .voices_cli import voices

console = Console()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what the runtime does.")
def main(verbose: bool) -> None:
    """Habla: live Spanish captions and translations on your own machine."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _data_dir(value: str | None) -> Path:
    return Path(value) if value else default_data_dir()


@main.command()
@click.option("--host", default=lambda: os.environ.get("GATEWAY_HOST", "0.0.0.0"), show_default="0.0.0.0")
@click.option("--port", default=lambda: int(os.environ.get("GATEWAY_PORT", "8000")), type=int, show_default="8000")
@click.option("--data-dir", default=None, help="Where embedded servers, logs and the token live.")
@click.option(
    "--pair-host",
    default=lambda: os.environ.get("HABLA_PAIR_HOST") or None,
    help="Name, address or base URL (https://…) the phone reaches Habla by; default: each address of this machine.",
)
@click.option(
    "--https/--http",
    "https",
    default=lambda: _env_flag("HABLA_HTTPS"),
    help="Serve the phone page over HTTPS (phones record only from https:// pages). Default: HTTPS when "
    "listening on the network and no https:// --pair-host (a proxy in front) is given.",
)
def up(host: str, port: int, data_dir: str | None, pair_host: str | None, https: bool | None) -> None:
    """Start Redis and Postgres (embedded unless REDIS_URL/DATABASE_URL are set), every service and the gateway."""
    from .supervisor import running

    if https is None:
        https = host not in ("127.0.0.1", "localhost", "::1") and not (pair_host or "").startswith("https://")

    stop = False

    def on_signal(_signum: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    with console.status("starting Habla (loading models)…"):
        ctx = running(data_dir=_data_dir(data_dir), host=host, port=port, https=https)
        rt = ctx.__enter__()
    try:
        console.print(f"[bold green]Habla is up[/] — {rt.url}")
        console.print(f"  redis:    {rt.infra.redis_url}{' (embedded)' if 'redis' in rt.infra.embedded else ''}")
        console.print(f"  postgres: {rt.infra.database_url}{' (embedded)' if 'postgres' in rt.infra.embedded else ''}")
        console.print(f"  logs:     {rt.log_dir}")
        ports = ", ".join(f"{name} {port}" for name, port in rt.metrics_ports.items())
        console.print(f"  metrics:  {rt.url}/metrics (token); http://127.0.0.1:PORT/metrics: {ports}", highlight=False)
        console.print(f"  ops view: {rt.ops_url}#token={urllib.parse.quote(rt.token, safe='')}", highlight=False)
        console.print(f"token: {rt.token}")
        _print_pairing(rt.pairing_urls(pair_host), rt.tls_cert if rt.tls_self_signed else None)
        console.print("Press Ctrl-C to stop.")
        while not stop:
            for name in rt.supervise():
                console.print(f"[yellow]{name} stopped unexpectedly and was restarted[/]")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("stopping…"):
            ctx.__exit__(None, None, None)
        console.print("stopped.")


def _env_flag(name: str) -> bool | None:
    """A yes/no environment setting; None when unset or "auto"."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "auto"):
        return None
    return value in ("1", "true", "yes", "on")


def _print_pairing(urls: list[str], cert: Path | None = None) -> None:
    """The pairing links, and the first as a QR code to scan with the phone."""
    for url in urls:
        console.print(f"pair a phone: [bold]{url}[/]", highlight=False, soft_wrap=True)
    if not urls:
        return
    try:
        import qrcode
    except ImportError:  # optional: the links are enough
        return
    import io

    qr = qrcode.QRCode(border=2)
    qr.add_data(urls[0])
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    console.print(out.getvalue().rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    if cert is not None and urls[0].startswith("https://"):
        from habla_common.tls import fingerprint

        console.print(
            "  HTTPS with this computer's own certificate: the phone warns once that it does not know it.\n"
            "  Check that the fingerprint it shows (certificate details) is this one, then go on:\n"
            f"  SHA-256 {fingerprint(cert)}",
            highlight=False,
        )
    elif cert is None and not urls[0].startswith("https://"):
        console.print(
            "  (a phone records only from an https:// page or localhost: run with --https, see the README, Phone)",
            highlight=False,
        )


def _load_audio(path: Path) -> Any:
    from habla_ingest.adapters import decode_file

    try:
        return decode_file(path)
    except Exception as e:
        raise click.ClickException(f"cannot read {path}: {e}") from e


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--realtime", is_flag=True, help="Send the audio at real-time pace, like a live microphone.")
@click.option(
    "--direction",
    type=click.Choice(["es-en", "en-es", "auto"]),
    default="es-en",
    show_default=True,
    help="Spanish to English, English to Spanish, or detect per utterance.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the transcript (.md and .srt); default: next to FILE.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every final utterance as JSON here.",
)
@click.option("--url", default=None, help="Gateway WebSocket URL of a running `habla up` (default: start one).")
@click.option("--token", default=None, help="Token for --url.")
@click.option("--data-dir", default=None)
def replay(
    file: Path,
    realtime: bool,
    direction: str,
    out_dir: Path | None,
    json_path: Path | None,
    url: str | None,
    token: str | None,
    data_dir: str | None,
) -> None:
    """Run a recorded FILE (wav, mp3, m4a, ogg, webm) through the live pipeline and write its transcript."""
    from .supervisor import running

    pcm = _load_audio(file)
    if url:
        result = _replay_live(url, token or os.environ.get("HABLA_TOKEN", ""), pcm, realtime, file.name, direction)
    else:
        with console.status("starting Habla (loading models)…"):
            ctx = running(data_dir=_data_dir(data_dir))
            rt = ctx.__enter__()
        try:
            result = _replay_live(rt.ws_url, rt.token, pcm, realtime, file.name, direction)
        finally:
            ctx.__exit__(None, None, None)
    _write_outputs(file, result, out_dir, json_path)


def _replay_live(ws_url: str, token: str, pcm: Any, realtime: bool, title: str, direction: str = "es-en") -> Any:
    from .replay import Received, replay_pcm

    partial = Text("")
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    sent = progress.add_task("audio sent (chunks)", total=1)
    done = progress.add_task("utterances translated", total=None)
    table = Table.grid()
    table.add_row(partial)
    table.add_row(progress)
    n_finals = 0
    speakers: dict[str, tuple[str, str]] = {}  # id -> (label, colour)

    def on_event(ev: Received) -> None:
        nonlocal n_finals
        if ev.kind == "speaker.joined":
            d = ev.data
            speakers[d["speaker"]] = (d["label"], d["color"])
            live.console.print(f"         [{d['color']}]● {d['label']}[/] joined")
        elif ev.kind == "speaker.renamed":
            d = ev.data
            color = speakers.get(d["speaker"], ("", "white"))[1]
            speakers[d["speaker"]] = (d["name"], color)
            live.console.print(f"         [{color}]● {d['speaker']}[/] is [bold]{d['name']}[/]")
        elif ev.kind == "speaker.role_suggested":
            d = ev.data
            label = speakers.get(d["speaker"], (d["speaker"], ""))[0]
            live.console.print(f"         {label} looks like the {d['role']} ({d['confidence']:.0%} sure)")
        elif ev.kind == "asr.partial":
            partial.plain = f"… {ev.data['committed']} {ev.data['tentative']}".rstrip()
            partial.stylize("dim")
        elif ev.kind == "translation.partial":
            partial.plain = partial.plain.split("\n")[0] + f"\n  {ev.data['text']}"
            partial.stylize("dim")
        elif ev.kind == "asr.final":
            d = ev.data
            if d["text"]:
                label, color = speakers.get(d.get("speaker") or "", ("", "white"))
                who = f"[{color}]{label}:[/] " if label else ""
                live.console.print(f"[cyan]{clock(d['start_ms'])}[/] {who}{d['text']}")
            partial.plain = ""
        elif ev.kind == "idiom.detected":
            d = ev.data
            live.console.print(f"         [magenta]idiom[/] [bold]{d['phrase']}[/] ({d['canonical']}): {d['meaning']}")
        elif ev.kind == "correction.detected":
            d = ev.data
            live.console.print(f"         [yellow]correction[/] {d['said']} → [bold]{d['correct']}[/] ({d['why']})")
        elif ev.kind == "translation.final":
            n_finals += 1
            progress.update(done, completed=n_finals)
            live.console.print(render_translation(ev.data))
        elif ev.kind == "audio.drained":
            progress.update(done, total=ev.data["utterances"])

    def on_sent(i: int, total: int) -> None:
        progress.update(sent, completed=i, total=total)

    with Live(table, console=console, refresh_per_second=8, transient=True) as live:
        result = asyncio.run(
            replay_pcm(
                ws_url,
                token,
                pcm,
                realtime=realtime,
                title=title,
                direction=direction,
                on_event=on_event,
                on_sent=on_sent,
                translations=True,
            )
        )
    for err in result.errors:
        console.print(f"[red]error[/] {err.get('code')}: {err.get('message')}")
    return result


def _write_outputs(file: Path, result: Any, out_dir: Path | None, json_path: Path | None) -> None:
    from habla_common.transcript import Line, to_markdown, to_srt

    lines = [
        Line(
            start_ms=f["start_ms"],
            end_ms=f["end_ms"],
            text=f["text"],
            speaker=f.get("speaker_label") or f.get("speaker") or None,
            translation=f.get("translation"),
            idioms=f.get("idioms") or [],
        )
        for f in result.finals()
    ]
    out_dir = out_dir or file.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    md, srt = out_dir / f"{file.stem}.md", out_dir / f"{file.stem}.srt"
    md.write_text(to_markdown(lines, title=file.name))
    srt.write_text(to_srt(lines))
    console.print(f"wrote {md} and {srt} ({sum(1 for x in lines if x.text)} utterances)")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(
            json.dumps(
                {
                    "session_id": result.session_id,
                    "file": str(file),
                    "utterances": [
                        {
                            "index": f["index"],
                            "start": f["start_ms"] / 1000,
                            "end": f["end_ms"] / 1000,
                            "part": f.get("part", 0),
                            "speaker": f.get("speaker") or None,
                            "speaker_label": f.get("speaker_label") or None,
                            "source_text": f["text"],
                            "language": f["language"],
                            "corrected": f.get("corrected"),
                            "corrections": f.get("corrections") or [],
                            "translation": f.get("translation"),
                            "translation_status": f.get("status"),
                            "idioms": f.get("idioms") or [],
                            "dropped": f["dropped"] or None,
                        }
                        for f in result.finals()
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        console.print(f"wrote {json_path}")


@main.command()
@click.option("--data-dir", default=None)
def rebuild(data_dir: str | None) -> None:
    """Drop the read models and rebuild them from the event log."""
    from habla_common.migrate import migrate
    from habla_recorder.projections import rebuild as do_rebuild
    from habla_vocab.store import rebuild as rebuild_vocab

    from .embedded import infra

    with infra(_data_dir(data_dir)) as inf:
        migrate(inf.database_url)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("replaying the log", total=None)
            n = do_rebuild(inf.database_url, lambda i, total: progress.update(task, completed=i, total=total))
            task = progress.add_task("replaying the study facts", total=None)
            studied = rebuild_vocab(inf.database_url, lambda i: progress.update(task, completed=i))
    console.print(f"rebuilt the read models from {n} events ({studied} of them for the vocabulary)")


@main.command()
@click.option("--data-dir", default=None)
def migrate(data_dir: str | None) -> None:
    """Apply pending database migrations."""
    from habla_common.migrate import migrate as do_migrate

    from .embedded import infra

    with infra(_data_dir(data_dir)) as inf:
        applied = do_migrate(inf.database_url)
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


main.add_command(translate)
main.add_command(idioms)
main.add_command(retranslate)
main.add_command(eval_group)
main.add_command(voices)
main.add_command(sessions)
main.add_command(export)
main.add_command(bench_command)
main.add_command(bench_speech_command)

if __name__ == "__main__":
    main()
