"""Speech segmentation as a pure state machine.

``Segmenter`` is fed 16 kHz mono samples in pieces of any size. It cuts them into
512-sample frames (32 ms, Silero's frame at 16 kHz), asks an injected function for
each frame's speech probability and turns the probabilities into outputs:

* ``SpeechBegan`` once an utterance has at least ``min_speech_ms`` of voice
  (shorter blips are dropped without a trace);
* ``Window`` — the utterance's audio so far — first ``first_window_ms`` after the
  speech onset, then every ``window_ms`` while speech goes on (none during a pause);
* ``Utterance`` when a pause of ``silence_ms`` ends it (reason ``pause``), when it
  reaches ``max_utterance_ms`` (reason ``cap``: split at the quietest point of its
  last 30 %, the rest carries on as the next utterance), or at ``finish()``
  (reason ``end``).

Hysteresis as in Silero's own iterator: speech starts at ``p >= threshold``; a pause
starts at the first frame with ``p < threshold - 0.15`` and is cancelled by a frame
with ``p >= threshold``. Utterances get ``speech_pad_ms`` of pre-roll and post-roll,
never overlapping the previous one. All positions are sample counts on one grid, so
the outputs do not depend on how the audio was chunked. No I/O, no clocks.
Memory is bounded: outside an utterance only the pre-roll frames are kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "FRAME",
    "SAMPLE_RATE",
    "Output",
    "Segmenter",
    "SegmenterOptions",
    "SpeechBegan",
    "SpeechProb",
    "Utterance",
    "Window",
    "to_int16",
]

SAMPLE_RATE = 16000
FRAME = 512  # samples per VAD frame at 16 kHz (32 ms)

SpeechProb = Callable[[npt.NDArray[np.float32]], float]


@dataclass(frozen=True)
class SegmenterOptions:
    threshold: float = 0.5
    silence_ms: int = 500
    speech_pad_ms: int = 200
    min_speech_ms: int = 250
    first_window_ms: int = 450
    window_ms: int = 1000
    max_window_ms: int = 28_000
    max_utterance_ms: int = 20_000
    cap_search_fraction: float = 0.3

    @property
    def neg_threshold(self) -> float:
        return max(self.threshold - 0.15, 0.01)


@dataclass(frozen=True)
class SpeechBegan:
    index: int
    start_ms: int  # where the utterance's audio starts (with pre-roll)
    onset_ms: int = -1  # the first voiced frame

    def __post_init__(self) -> None:
        if self.onset_ms < 0:
            object.__setattr__(self, "onset_ms", self.start_ms)


@dataclass(frozen=True)
class Window:
    index: int
    window_index: int
    start_ms: int
    end_ms: int
    pcm: bytes  # int16 little-endian mono 16 kHz


@dataclass(frozen=True)
class Utterance:
    index: int
    start_ms: int
    end_ms: int
    pcm: bytes  # int16 little-endian mono 16 kHz
    reason: str  # pause | cap | end
    speech_end_ms: int = -1  # where the voice stopped; end_ms runs on to where the pause was decided

    def __post_init__(self) -> None:
        if self.speech_end_ms < 0:
            object.__setattr__(self, "speech_end_ms", self.end_ms)


Output = SpeechBegan | Window | Utterance


def to_int16(samples: npt.NDArray[np.generic]) -> npt.NDArray[np.int16]:
    """Samples as int16: int16 passes through, floats in [-1, 1] are scaled."""
    a = np.asarray(samples).reshape(-1)
    if a.dtype == np.int16:
        return a.astype(np.int16, copy=False)
    if np.issubdtype(a.dtype, np.floating):
        return (np.clip(a, -1.0, 1.0) * 32767.0).astype(np.int16)
    raise TypeError(f"samples must be int16 or float, got {a.dtype}")


def _frames(ms: int) -> int:
    return max(0, round(ms * SAMPLE_RATE / 1000 / FRAME))


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


@dataclass
class _Open:
    """An utterance in progress (a candidate until it has enough speech)."""

    start: int  # sample of its first frame (pre-roll included)
    onset: int  # sample where speech was first seen
    frames: list[npt.NDArray[np.int16]] = field(default_factory=list)
    energy: list[float] = field(default_factory=list)
    index: int = -1  # assigned when confirmed
    voiced_end: int = 0  # end of the last frame with p >= threshold
    silence_since: int | None = None
    window_index: int = 0
    next_window_at: int = 0
    last_window_end: int = 0

    @property
    def end(self) -> int:
        return self.start + FRAME * len(self.frames)

    @property
    def confirmed(self) -> bool:
        return self.index >= 0

    def pcm(self, start: int, end: int) -> bytes:
        first, last = (start - self.start) // FRAME, (end - self.start + FRAME - 1) // FRAME
        if first >= last:
            return b""
        skip = start - (self.start + first * FRAME)
        audio = np.concatenate(self.frames[first:last])[skip : skip + end - start]
        return audio.astype("<i2", copy=False).tobytes()


class Segmenter:
    """Voice-activity segmenter; see the module docstring."""

    def __init__(
        self,
        options: SegmenterOptions,
        speech_prob: SpeechProb,
        *,
        first_index: int = 0,
        start_sample: int = 0,
    ) -> None:
        self.options = options
        self._prob = speech_prob
        self._pad = _frames(options.speech_pad_ms) * FRAME
        self._silence = max(1, _frames(options.silence_ms)) * FRAME
        self._min_speech = _frames(options.min_speech_ms) * FRAME
        self._first_window = options.first_window_ms * SAMPLE_RATE // 1000
        self._window = max(FRAME, options.window_ms * SAMPLE_RATE // 1000)
        self._max_window = options.max_window_ms * SAMPLE_RATE // 1000
        self._cap = max(4 * FRAME, options.max_utterance_ms * SAMPLE_RATE // 1000)
        self._preroll: deque[tuple[int, npt.NDArray[np.int16]]] = deque(maxlen=max(1, self._pad // FRAME))
        self._tail = np.zeros(0, np.int16)
        self._pos = start_sample  # start of the next frame
        self._floor = start_sample  # pre-roll never reaches before this
        self._utt: _Open | None = None
        self.next_index = first_index
        self.utterances = 0  # Utterance outputs so far

    @property
    def position(self) -> int:
        """Samples of session audio seen so far."""
        return self._pos + len(self._tail)

    @property
    def position_ms(self) -> int:
        return _ms(self.position)

    @property
    def in_speech(self) -> bool:
        return self._utt is not None and self._utt.confirmed

    @property
    def frame_position(self) -> int:
        """Start of the next frame: ``position`` less the samples not yet framed."""
        return self._pos

    @property
    def unframed(self) -> npt.NDArray[np.int16]:
        """The samples after ``frame_position`` (fewer than a frame), waiting for more."""
        return self._tail

    @property
    def open_index(self) -> int | None:
        """Index of the confirmed utterance in progress, if any."""
        return self._utt.index if self._utt is not None and self._utt.confirmed else None

    def push(self, samples: npt.NDArray[np.generic]) -> list[Output]:
        """Feed samples (int16, or float in [-1, 1]); returns what they completed."""
        pcm = to_int16(samples)
        if len(self._tail):
            pcm = np.concatenate([self._tail, pcm])
        n = len(pcm) // FRAME * FRAME
        self._tail = pcm[n:].copy()
        out: list[Output] = []
        for i in range(0, n, FRAME):
            frame = pcm[i : i + FRAME]
            self._step(frame, out)
        return out

    def finish(self) -> list[Output]:
        """End of audio: emit the utterance in progress (reason ``end``)."""
        out: list[Output] = []
        utt = self._utt
        if utt is not None and utt.confirmed:
            end = utt.end
            if utt.silence_since is not None:
                end = min(end, utt.silence_since + self._pad)
            pcm = utt.pcm(utt.start, end)
            if len(self._tail) and utt.silence_since is None:
                pcm += self._tail.astype("<i2", copy=False).tobytes()
                end += len(self._tail)
            out.append(Utterance(utt.index, _ms(utt.start), _ms(end), pcm, "end"))
            self.utterances += 1
        self._pos += len(self._tail)
        self._tail = np.zeros(0, np.int16)
        self._floor = self._pos
        self._utt = None
        self._preroll.clear()
        return out

    # --- one frame -------------------------------------------------------------

    def _step(self, frame: npt.NDArray[np.int16], out: list[Output]) -> None:
        s = self._pos
        self._pos += FRAME
        p = float(self._prob(frame.astype(np.float32) / 32768.0))
        utt = self._utt
        if utt is None:
            if p >= self.options.threshold:
                self._open(s, frame)
            else:
                self._preroll.append((s, frame.copy()))
            return
        utt.frames.append(frame.copy())
        utt.energy.append(float(np.sqrt(np.mean(frame.astype(np.float32) ** 2))))
        if p >= self.options.threshold:
            utt.silence_since = None
            utt.voiced_end = s + FRAME
        elif p < self.options.neg_threshold and utt.silence_since is None:
            utt.silence_since = s
        if not utt.confirmed and utt.voiced_end - utt.onset >= self._min_speech:
            self._confirm(utt, out)
        if utt.silence_since is not None and utt.end - utt.silence_since >= self._silence:
            self._close(utt, out)
        elif utt.end - utt.start >= self._cap:
            if utt.confirmed:
                self._split(utt, out)
            else:  # never had enough voice in all this time: not speech
                self._utt = None
                self._floor = utt.end
        elif utt.confirmed:
            self._maybe_window(utt, out)

    def _open(self, s: int, frame: npt.NDArray[np.int16]) -> None:
        pre = [(fs, f) for fs, f in self._preroll if fs >= max(self._floor, s - self._pad)]
        start = pre[0][0] if pre else s
        utt = _Open(start=start, onset=s, voiced_end=s + FRAME)
        for _, f in pre:
            utt.frames.append(f)
            utt.energy.append(float(np.sqrt(np.mean(f.astype(np.float32) ** 2))))
        utt.frames.append(frame.copy())
        utt.energy.append(float(np.sqrt(np.mean(frame.astype(np.float32) ** 2))))
        self._preroll.clear()
        self._utt = utt

    def _confirm(self, utt: _Open, out: list[Output]) -> None:
        utt.index = self.next_index
        self.next_index += 1
        utt.next_window_at = utt.onset + self._first_window
        utt.last_window_end = utt.start
        out.append(SpeechBegan(utt.index, _ms(utt.start), _ms(utt.onset)))

    def _maybe_window(self, utt: _Open, out: list[Output]) -> None:
        end = utt.end
        if end < utt.next_window_at or utt.silence_since is not None or utt.voiced_end <= utt.last_window_end:
            return  # not due, in a pause (the final may be near), or nothing new said
        start = max(utt.start, end - self._max_window)
        out.append(Window(utt.index, utt.window_index, _ms(start), _ms(end), utt.pcm(start, end)))
        utt.window_index += 1
        utt.last_window_end = end
        utt.next_window_at += self._window  # on a fixed grid from the first window
        if utt.next_window_at <= end:  # a pause skipped some: the next one a period from now
            utt.next_window_at = end + self._window

    def _close(self, utt: _Open, out: list[Output]) -> None:
        assert utt.silence_since is not None
        # The utterance keeps the whole pause up to this decision: the audio is here anyway,
        # and Whisper transcribes the last words more reliably with silence after them.
        end = utt.end
        speech_end = utt.silence_since  # the first frame the voice was gone
        if utt.confirmed:
            out.append(
                Utterance(utt.index, _ms(utt.start), _ms(end), utt.pcm(utt.start, end), "pause", _ms(speech_end))
            )
            self.utterances += 1
        first_after = (end - utt.start) // FRAME
        for k in range(first_after, len(utt.frames)):
            self._preroll.append((utt.start + k * FRAME, utt.frames[k]))
        self._floor = end
        self._utt = None

    def _split(self, utt: _Open, out: list[Output]) -> None:
        """Cut at the quietest frame of the last part; the rest goes on as a new utterance."""
        n = len(utt.frames)
        lo = max(1, int(n * (1 - self.options.cap_search_fraction)))
        energy = np.asarray(utt.energy, dtype=np.float64)
        smooth = np.convolve(energy, np.ones(3) / 3, mode="same")
        k = lo + int(np.argmin(smooth[lo:n]))
        cut = utt.start + k * FRAME
        out.append(Utterance(utt.index, _ms(utt.start), _ms(cut), utt.pcm(utt.start, cut), "cap"))
        self.utterances += 1
        rest = _Open(
            start=cut,
            onset=cut,
            frames=utt.frames[k:],
            energy=utt.energy[k:],
            voiced_end=max(cut, utt.voiced_end),
            silence_since=None if utt.silence_since is None else max(cut, utt.silence_since),
        )
        self._utt = rest
        self._confirm(rest, out)
        rest.next_window_at = rest.end  # a caption for the carried-over audio right away
        self._maybe_window(rest, out)
