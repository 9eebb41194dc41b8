"""Send a recording through a running gateway as a live client would, and collect the result.

The client speaks the same WebSocket protocol as the phone: ``session.start``, binary
PCM16 chunks, ``session.end``; it then waits until the ingest reports how many
utterances the audio held (``audio.drained``) and a final has arrived for each speaker
turn of each (with ``translations=True``, also a translation final for each).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets

__all__ = ["SAMPLE_RATE", "Received", "ReplayResult", "replay_chunks", "replay_pcm"]

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Received:
    at: float  # wall time the client got it
    id: str
    kind: str
    data: dict[str, Any]


@dataclass
class ReplayResult:
    session_id: str
    started_at: float  # wall time the first chunk was sent
    audio_ms: int
    events: list[Received] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def finals(self) -> list[dict[str, Any]]:
        """Final transcripts in order (utterance, then speaker turn), each with its newest
        translation merged in (``translation``, ``corrected``, ``idioms``, ``status``) when one
        arrived, and its speaker's current label (``speaker_label``: the name given, or
        "Speaker n")."""
        out = {e.data["utterance_id"]: dict(e.data) for e in self.events if e.kind == "asr.final"}
        for t in sorted(self.of_kind("translation.final"), key=lambda e: e.data["revision"]):
            f = out.get(t.data["utterance_id"])
            if f is not None:
                f.update(
                    translation=t.data["translation"],
                    corrected=t.data["corrected"],
                    idioms=list(t.data["idioms"]),
                    corrections=list(t.data["corrections"]),
                    status=t.data["status"],
                )
        labels = self.speaker_labels()
        for f in out.values():
            f["speaker_label"] = labels.get(f.get("speaker") or "", "")
        return sorted(out.values(), key=lambda f: (f["index"], f.get("part", 0)))

    def speaker_labels(self) -> dict[str, str]:
        """Speaker id -> what to call it now (the newest name, else its label)."""
        labels: dict[str, str] = {}
        for e in self.events:
            if e.kind == "speaker.joined":
                labels.setdefault(e.data["speaker"], e.data["label"])
            elif e.kind == "speaker.renamed":
                labels[e.data["speaker"]] = e.data["name"]
        return labels

    def of_kind(self, kind: str) -> list[Received]:
        return [e for e in self.events if e.kind == kind]


async def replay_pcm(
    ws_url: str,
    token: str,
    pcm: np.ndarray,
    *,
    chunk_ms: int = 250,
    **options: Any,
) -> ReplayResult:
    """Stream int16 mono 16 kHz ``pcm`` as PCM16 chunks and return every event the session produced."""
    data = np.asarray(pcm, dtype="<i2").tobytes()
    step = SAMPLE_RATE * chunk_ms // 1000 * 2
    chunks: list[bytes | str] = [data[i : i + step] for i in range(0, len(data), step)]
    return await replay_chunks(
        ws_url, token, chunks, codec="pcm16", audio_ms=len(pcm) * 1000 // SAMPLE_RATE, chunk_ms=chunk_ms, **options
    )


async def replay_chunks(
    ws_url: str,
    token: str,
    chunks: list[bytes | str],
    *,
    codec: str,
    audio_ms: int,
    realtime: bool = False,
    chunk_ms: int = 250,
    title: str = "",
    direction: str = "es-en",
    on_event: Callable[[Received], None] | None = None,
    on_sent: Callable[[int, int], None] | None = None,
    drain_timeout_s: float = 600.0,
    translations: bool = False,
) -> ReplayResult:
    """Send ``chunks`` of ``codec`` audio (one every ``chunk_ms`` with ``realtime``) and collect the session.

    A ``str`` among the chunks is sent as a text frame as it is (tests use this for control
    frames and broken JSON in the middle of the audio)."""
    async with websockets.connect(f"{ws_url}?token={token}", max_size=16 * 2**20, ping_interval=20) as ws:
        start: dict[str, Any] = {"type": "session.start", "codec": codec, "direction": direction, "title": title}
        if codec == "pcm16":
            start["sample_rate"] = SAMPLE_RATE
        await ws.send(json.dumps(start))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"gateway refused the session: {ready}")
        result = ReplayResult(ready["session_id"], time.time(), audio_ms)

        async def send() -> None:
            t0 = time.monotonic()
            result.started_at = time.time()
            for i, chunk in enumerate(chunks):
                if realtime:
                    delay = t0 + (i + 1) * chunk_ms / 1000 - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await ws.send(chunk)
                if on_sent:
                    on_sent(i + 1, len(chunks))
            await ws.send(json.dumps({"type": "session.end"}))

        sender = asyncio.create_task(send())
        expected: int | None = None
        parts: dict[int, int] = {}  # utterance index -> speaker turns it was split into
        finals: dict[int, set[int]] = {}  # utterance index -> turns with a final
        transcribed: set[str] = set()  # utterance ids of those finals
        translated: set[str] = set()

        def waiting() -> bool:
            if expected is None:
                return True
            if any(len(finals.get(i, ())) < parts.get(i, 1) for i in range(expected)):
                return True
            return translations and not transcribed <= translated

        deadline = time.monotonic() + drain_timeout_s + (audio_ms / 1000 if realtime else 0)
        try:
            while waiting():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"session {result.session_id}: {len(transcribed)} finals of {len(finals)} utterances and "
                        f"{len(translated)} translations ({expected} utterances) after the audio ended"
                    )
                msg = json.loads(await asyncio.wait_for(ws.recv(), remaining))
                if msg.get("type") == "error":
                    result.errors.append(msg)
                    continue
                if msg.get("type") != "event":
                    continue
                ev = Received(time.time(), msg["id"], msg["kind"], msg["data"])
                result.events.append(ev)
                if ev.kind == "audio.drained":
                    expected = int(ev.data["utterances"])
                elif ev.kind == "asr.final":
                    index = int(ev.data["index"])
                    finals.setdefault(index, set()).add(int(ev.data.get("part", 0)))
                    parts[index] = int(ev.data.get("parts", 1))
                    transcribed.add(ev.data["utterance_id"])
                elif ev.kind == "translation.final":
                    translated.add(ev.data["utterance_id"])
                if on_event:
                    on_event(ev)
            await sender
        finally:
            sender.cancel()
    return result
