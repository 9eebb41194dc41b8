"""Ingest's external dependencies behind small Protocols.

* ``SpeechDetector``: a speech probability per 512-sample frame. ``SileroDetector``
  runs the ONNX Silero VAD bundled in the ``silero-vad`` wheel (stateful: one per
  session).
* ``ChunkDecoder``: the bytes a client sends, in order, to 16 kHz mono int16.
  ``Pcm16Decoder`` for raw PCM16 and ``WebmOpusDecoder`` (see :mod:`.webm`) for the
  WebM/Opus stream of a browser's MediaRecorder.
* ``decode_file``: a whole recording (wav, mp3, m4a, ogg, webm) via PyAV, for replay.
* ``CheckpointStore``: where a session's ``Checkpoint`` (timeline, utterance numbering,
  decoder hand-over) survives the process; ``RedisCheckpointStore`` keeps it in the
  hash ``ingest:<session>`` (one HSET + EXPIRE round trip per chunk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
import numpy.typing as npt

from habla_common.audio import AudioDecodeError, decode_audio

from .domain import FRAME, SAMPLE_RATE
from .errors import DecodeError, UnsupportedAudio
from .webm import WebmOpusDecoder

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "ChunkDecoder",
    "Pcm16Decoder",
    "RedisCheckpointStore",
    "SileroDetector",
    "SpeechDetector",
    "WebmOpusDecoder",
    "decode_file",
    "make_decoder",
]

Pcm = npt.NDArray[np.int16]


class SpeechDetector(Protocol):
    def probability(self, frame: npt.NDArray[np.float32]) -> float:
        """Speech probability of one 512-sample float frame at 16 kHz."""
        ...

    def reset(self) -> None: ...


class SileroDetector:
    """Silero VAD (ONNX, CPU) from the ``silero-vad`` wheel; no download.

    Stateful (an LSTM state and 64 samples of context carry from frame to frame), so
    keep one per audio stream. Importing ``silero_vad`` sets torch to one thread
    for the whole process; the model itself runs in onnxruntime on one thread.
    """

    def __init__(self) -> None:
        try:
            import torch
            from silero_vad import load_silero_vad
        except ImportError as e:
            raise RuntimeError(
                "Silero VAD needs the silero-vad, torch and onnxruntime packages: "
                "install habla-ingest with its dependencies (pip install -e services/ingest)"
            ) from e
        self._torch = torch
        self._model: Any = load_silero_vad(onnx=True)

    def probability(self, frame: npt.NDArray[np.float32]) -> float:
        if frame.shape != (FRAME,):
            raise ValueError(f"Silero wants frames of {FRAME} samples, got {frame.shape}")
        x = self._torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32))
        return float(self._model(x, SAMPLE_RATE).item())

    def reset(self) -> None:
        self._model.reset_states()


class ChunkDecoder(Protocol):
    def feed(self, data: bytes) -> Pcm:
        """Decode the next bytes of the stream; returns every sample they completed.

        Raises DecodeError for bytes that cannot be decoded; the decoder stays usable
        for the chunks that follow."""
        ...

    def close(self) -> Pcm:
        """End of stream: returns whatever was still held back."""
        ...

    def checkpoint(self) -> tuple[bytes, bytes | None]:
        """(init segment, held bytes) for :meth:`restore` in another process; held bytes
        None: the restored decoder has to resync."""
        ...

    def restore(self, init: bytes, pending: bytes | None) -> None:
        """Go on with a stream another decoder checkpointed (on a fresh decoder)."""
        ...


class Pcm16Decoder:
    """Raw PCM16 little-endian mono; resampled to 16 kHz if sent at another rate."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        if not 8000 <= sample_rate <= 192_000:
            raise UnsupportedAudio(f"pcm16 at {sample_rate} Hz is not supported (8000..192000 Hz)")
        self.sample_rate = sample_rate
        self._resampler = (
            None if sample_rate == SAMPLE_RATE else av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        )

    def feed(self, data: bytes) -> Pcm:
        if len(data) % 2:
            raise DecodeError(
                f"pcm16 chunk has an odd length ({len(data)} bytes): PCM16 samples are 2 bytes each; "
                "send whole samples per chunk"
            )
        pcm = np.frombuffer(data, dtype="<i2").astype(np.int16)
        if self._resampler is None or not len(pcm):
            return pcm
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        return _concat(_pcm(self._resampler.resample(frame)))

    def close(self) -> Pcm:
        if self._resampler is None:
            return np.zeros(0, np.int16)
        return _concat(_pcm(self._resampler.resample(None)))

    def checkpoint(self) -> tuple[bytes, bytes | None]:
        return b"", b""  # stateless but for the resampler's few samples of delay

    def restore(self, init: bytes, pending: bytes | None) -> None:
        pass


@dataclass(frozen=True)
class Checkpoint:
    """A session's state after its chunk ``last_chunk`` was handled and its events published."""

    last_chunk: int
    position: int  # session audio in samples up to the segmenter's next frame
    unframed: bytes  # samples after ``position`` not yet framed (int16 LE, under one frame)
    next_index: int  # the index the next utterance gets (an utterance in progress: its own)
    utterances: int  # utterances of the session so far (for AudioDrained)
    epoch: int
    codec: str
    sample_rate: int
    init: bytes | None = None  # the decoder's init segment; None on save: as stored
    pending: bytes | None = None  # bytes the decoder held; None: it resyncs on restore


class CheckpointStore(Protocol):
    def load(self, session_id: str) -> Checkpoint | None: ...

    def save(self, session_id: str, checkpoint: Checkpoint) -> None: ...


class RedisCheckpointStore:
    """Checkpoints in the hash ``ingest:<session>``, expiring with the session's other keys."""

    def __init__(self, client: Any, ttl_s: int = 7 * 24 * 3600, prefix: str = "ingest:") -> None:
        self._r = client
        self.ttl_s = ttl_s
        self.prefix = prefix

    def load(self, session_id: str) -> Checkpoint | None:
        raw: dict[bytes, bytes] = self._r.hgetall(self.prefix + session_id)
        if not raw or b"last_chunk" not in raw:
            return None
        return Checkpoint(
            last_chunk=int(raw[b"last_chunk"]),
            position=int(raw[b"position"]),
            unframed=raw.get(b"unframed", b""),
            next_index=int(raw[b"next_index"]),
            utterances=int(raw[b"utterances"]),
            epoch=int(raw.get(b"epoch", b"0")),
            codec=raw[b"codec"].decode(),
            sample_rate=int(raw[b"sample_rate"]),
            init=raw.get(b"init", b""),
            pending=raw[b"pending"][1:] if raw.get(b"pending") else None,
        )

    def save(self, session_id: str, checkpoint: Checkpoint) -> None:
        c = checkpoint
        fields: dict[str, Any] = {
            "last_chunk": c.last_chunk,
            "position": c.position,
            "unframed": c.unframed,
            "next_index": c.next_index,
            "utterances": c.utterances,
            "epoch": c.epoch,
            "codec": c.codec,
            "sample_rate": c.sample_rate,
            "pending": b"" if c.pending is None else b"+" + c.pending,  # b"": resync
        }
        if c.init is not None:
            fields["init"] = c.init
        key = self.prefix + session_id
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, self.ttl_s)
        pipe.execute()


def make_decoder(codec: str, sample_rate: int, *, resume: bool = False) -> ChunkDecoder:
    """The decoder for a session's codec. ``resume``: the stream is joined mid-way."""
    if codec == "pcm16":
        return Pcm16Decoder(sample_rate)
    if codec == "webm-opus":
        return WebmOpusDecoder(resume=resume)
    raise UnsupportedAudio(f"codec {codec!r} is not supported; use pcm16 or webm-opus")


def decode_file(path: str | Path) -> Pcm:
    """A whole audio file (first audio stream) as 16 kHz mono int16."""
    try:
        return decode_audio(path)
    except AudioDecodeError as e:
        raise DecodeError(str(e)) from e


def _pcm(frames: list[av.AudioFrame]) -> list[Pcm]:
    """Packed s16 mono frames as int16 arrays."""
    return [f.to_ndarray().reshape(-1).astype(np.int16, copy=False) for f in frames]


def _concat(parts: list[Pcm]) -> Pcm:
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)
