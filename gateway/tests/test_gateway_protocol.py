"""Client-frame parsing and audio validation (pure)."""

from __future__ import annotations

import pytest

from habla_gateway import protocol as p
from habla_gateway.errors import ProtocolError


def test_session_start_keeps_absent_fields_as_none() -> None:
    msg = p.parse_text('{"type": "session.start"}', 1000)
    assert msg == p.SessionStart()


def test_session_start_full() -> None:
    msg = p.parse_text(
        '{"type": "session.start", "session_id": "abc-1", "last_event_id": "17-3", "direction": "auto",'
        ' "mode": "classroom", "codec": "webm-opus", "sample_rate": 48000, "next_chunk_index": 12,'
        ' "title": "  Clase\\n 2 ", "source": "file", "extra": "ignored"}',
        1000,
    )
    assert msg == p.SessionStart(
        session_id="abc-1",
        last_event_id="17-3",
        direction="auto",
        mode="classroom",
        codec="webm-opus",
        sample_rate=48000,
        next_chunk_index=12,
        title="Clase 2",
        source="file",
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", p.BAD_JSON),
        ("nul", p.BAD_JSON),
        ("null", p.BAD_JSON),
        ("[" * 100_000, p.BAD_JSON),
        ('{"type": null}', p.UNKNOWN_TYPE),
        ('{"type": ["ping"]}', p.UNKNOWN_TYPE),
        ('{"type": "session.start", "codec": "opus"}', p.UNSUPPORTED_CODEC),
        ('{"type": "session.start", "sample_rate": 0}', p.BAD_VALUE),
        ('{"type": "session.start", "title": 5}', p.BAD_VALUE),
        ('{"type": "session.start", "source": "radio"}', p.BAD_VALUE),
        ('{"type": "settings", "direction": null, "mode": null}', p.BAD_VALUE),
    ],
)
def test_refusals_have_codes(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as e:
        p.parse_text(text, 1_000_000)
    assert e.value.code == code
    frame = e.value.frame()
    assert frame["type"] == "error" and frame["code"] == code and frame["message"]


def test_text_size_limit_counts_bytes() -> None:
    with pytest.raises(ProtocolError) as e:
        p.parse_text('{"type": "ping", "x": "' + "ñ" * 60 + '"}', 100)
    assert e.value.code == p.FRAME_TOO_LARGE


def test_other_messages() -> None:
    assert p.parse_text('{"type": "ping"}', 100) == p.Ping()
    assert p.parse_text('{"type": "session.end"}', 100) == p.SessionEnd()
    assert p.parse_text('{"type": "settings", "mode": "classroom"}', 100) == p.SettingsChange(mode="classroom")


def test_sample_rates() -> None:
    assert p.resolve_sample_rate("pcm16", None) == 16000
    assert p.resolve_sample_rate("webm-opus", 8000) == p.WEBM_SAMPLE_RATE
    with pytest.raises(ProtocolError) as e:
        p.resolve_sample_rate("pcm16", 8000)
    assert e.value.code == p.UNSUPPORTED_SAMPLE_RATE


@pytest.mark.parametrize(
    ("data", "codec", "stream_open", "result"),
    [
        (b"\x00\x00", "pcm16", False, False),
        (p.EBML_MAGIC + b"rest", "webm-opus", False, True),
        (p.EBML_MAGIC, "webm-opus", True, True),
        (b"cluster", "webm-opus", True, False),
        (b"\x00", "pcm16", False, p.BAD_PCM_FRAME),
        (b"", "pcm16", False, p.EMPTY_FRAME),
        (b"cluster", "webm-opus", False, p.UNDECODABLE_AUDIO),
        (b"\x1a\x45\xdf", "webm-opus", False, p.UNDECODABLE_AUDIO),
        (b"\x00" * 11, "webm-opus", True, p.FRAME_TOO_LARGE),
    ],
)
def test_check_audio(data: bytes, codec: str, stream_open: bool, result: object) -> None:
    if isinstance(result, bool):
        assert p.check_audio(data, codec, max_bytes=10, stream_open=stream_open) is result
    else:
        with pytest.raises(ProtocolError) as e:
            p.check_audio(data, codec, max_bytes=10, stream_open=stream_open)
        assert e.value.code == result
