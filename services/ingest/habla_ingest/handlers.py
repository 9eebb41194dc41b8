"""AudioChunkReceived in; SpeechStarted, SpeechWindow, UtteranceSegmented out.

One ``_Session`` per live session: its decoder (by codec), its Silero detector and
its segmenter. Chunks of a session arrive in order (the consumer reads a session's
shard in order, one worker at a time).

Redelivery: ids are derived from the session and the utterance index, so the same
chunk sequence republishes the same ids and the bus drops the duplicates. The
events of the last chunk are kept, so a chunk redelivered after a failed publish
republishes exactly them; older chunks are skipped.

A ``flush`` chunk ends a turn (a recording posted to the speech API): the utterance in
progress is emitted and AudioFlushed counts the utterances so far; the session goes on.

A session ends on a ``final`` chunk (flush, AudioDrained) or when it has been idle
for ``session_idle_s`` or is the least recently used beyond ``max_sessions`` (flush,
no AudioDrained). A small tombstone keeps its utterance index and timeline, so a
session that comes back continues where it was.

Crash/restart: with a ``CheckpointStore`` every handled chunk leaves a checkpoint
(after its events were published): last chunk index, audio position (and the
unframed samples), next utterance index, utterances so far, codec and the decoder's
hand-over (webm: init segment and held bytes). A session first seen by this process
continues from its checkpoint: chunks up to ``last_chunk`` are skipped (their events
are out), the timeline, numbering and AudioDrained count go on. An utterance in
progress at the crash restarts at the checkpoint's position under its own index
(its audio before that is lost; its SpeechStarted and first windows were published
already, the bus drops their re-derived ids). Silero's state starts afresh.

A session first seen mid-way with no checkpoint (``chunk_index > 0``; no store, or
it expired) starts a new *epoch*: utterance indices start at that chunk index and
ids include the epoch, so they cannot collide with what an earlier process
published. Its times restart at 0 and its AudioDrained counts only this epoch.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from habla_contracts import (
    AudioChunkReceived,
    AudioDrained,
    AudioFlushed,
    AudioRejected,
    Event,
    SpeechStarted,
    SpeechWindow,
    UtteranceSegmented,
    derived_id,
)

from .adapters import Checkpoint, CheckpointStore, ChunkDecoder, SileroDetector, SpeechDetector, make_decoder
from .config import IngestConfig
from .domain import SAMPLE_RATE, Output, Segmenter, SpeechBegan, Utterance, Window
from .errors import DecodeError, UnsupportedAudio

__all__ = ["IngestHandler", "Publish"]

log = logging.getLogger("habla.ingest")

Publish = Callable[[Event], object]
DetectorFactory = Callable[[], SpeechDetector]
DecoderFactory = Callable[[str, int, bool], ChunkDecoder]  # codec, sample rate, resume


def _make_decoder(codec: str, sample_rate: int, resume: bool) -> ChunkDecoder:
    return make_decoder(codec, sample_rate, resume=resume)


@dataclass
class _Session:
    session_id: str
    codec: str
    sample_rate: int
    decoder: ChunkDecoder
    segmenter: Segmenter
    epoch: int
    utterances_before: int
    last_chunk: int = -1
    last_events: tuple[Event, ...] = ()
    received_at: float = 0.0
    seen_at: float = 0.0
    saved_init: bytes = b""  # the init segment the checkpoint holds


@dataclass(frozen=True)
class _Tombstone:
    epoch: int
    next_index: int
    position: int  # samples of session audio so far
    utterances: int
    last_chunk: int


class IngestHandler:
    def __init__(
        self,
        config: IngestConfig,
        *,
        detector_factory: DetectorFactory | None = None,
        decoder_factory: DecoderFactory | None = None,
        clock: Callable[[], float] | None = None,
        max_tombstones: int = 4096,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.config = config
        self._options = config.segmenter_options()
        self._detector_factory = detector_factory or SileroDetector
        self._decoder_factory = decoder_factory or _make_decoder
        self._clock = clock or time.monotonic
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._tombs: OrderedDict[str, _Tombstone] = OrderedDict()
        self._max_tombstones = max_tombstones
        self._checkpoints = checkpoints

    @property
    def live_sessions(self) -> list[str]:
        return list(self._sessions)

    def handle(self, event: Event, publish: Publish) -> None:
        if not isinstance(event, AudioChunkReceived):
            return
        now = self._clock()
        state = self._sessions.get(event.session_id)
        if state is not None and event.chunk_index <= state.last_chunk:
            if event.chunk_index == state.last_chunk:  # redelivered: same events, same ids
                for ev in state.last_events:
                    publish(ev)
                self._save(state)
                if event.final:
                    self._forget(state)
            return
        if state is None:
            tomb = self._tombs.get(event.session_id)
            if tomb is not None and event.chunk_index <= tomb.last_chunk:
                return  # already handled before the session was flushed
            saved = self._checkpoints.load(event.session_id) if tomb is None and self._checkpoints else None
            if saved is not None and event.chunk_index <= saved.last_chunk:
                return  # handled (events published) by an earlier process
            self._evict(now, publish, keep=1)
            try:
                state = self._open(event, tomb, saved)
            except UnsupportedAudio as e:
                publish(self._rejected(event, "unsupported_codec", str(e)))
                return
        self._sessions.move_to_end(event.session_id)
        state.seen_at = now
        events = self._process(state, event)
        state.last_chunk, state.last_events, state.received_at = event.chunk_index, tuple(events), event.received_at
        for ev in events:
            publish(ev)
        self._save(state)
        if event.final:
            self._forget(state)
        self._evict(now, publish, keep=0)

    def flush_all(self, publish: Publish) -> None:
        """Emit every session's utterance in progress and forget them (shutdown)."""
        for state in list(self._sessions.values()):
            self._flush(state, publish)

    # --- sessions --------------------------------------------------------------

    def _open(self, event: AudioChunkReceived, tomb: _Tombstone | None, saved: Checkpoint | None) -> _Session:
        if saved is not None:
            return self._restore(event, saved)
        resume = event.chunk_index > 0
        if tomb is not None:
            epoch, first, position, before = tomb.epoch, tomb.next_index, tomb.position, tomb.utterances
        else:
            epoch, first, position, before = event.chunk_index, event.chunk_index, 0, 0
            if resume:
                log.warning("session %s joined at chunk %d: new epoch", event.session_id, event.chunk_index)
        decoder = self._decoder_factory(event.codec, event.sample_rate, resume)
        detector = self._detector_factory()
        segmenter = Segmenter(self._options, detector.probability, first_index=first, start_sample=position)
        state = _Session(event.session_id, event.codec, event.sample_rate, decoder, segmenter, epoch, before)
        self._sessions[event.session_id] = state
        log.info("session %s opened (%s, chunk %d)", event.session_id, event.codec, event.chunk_index)
        return state

    def _restore(self, event: AudioChunkReceived, saved: Checkpoint) -> _Session:
        decoder = self._decoder_factory(saved.codec, saved.sample_rate, True)
        decoder.restore(saved.init or b"", saved.pending)
        detector = self._detector_factory()
        segmenter = Segmenter(
            self._options, detector.probability, first_index=saved.next_index, start_sample=saved.position
        )
        segmenter.push(np.frombuffer(saved.unframed, dtype="<i2").astype(np.int16))  # under a frame: no output
        state = _Session(
            event.session_id, saved.codec, saved.sample_rate, decoder, segmenter, saved.epoch, saved.utterances
        )
        state.last_chunk, state.saved_init = saved.last_chunk, saved.init or b""
        self._sessions[event.session_id] = state
        log.info(
            "session %s restored at chunk %d (%d ms, next utterance %d)",
            event.session_id,
            event.chunk_index,
            segmenter.position_ms,
            saved.next_index,
        )
        return state

    def _save(self, state: _Session) -> None:
        """Checkpoint the session (after the events of its last chunk were published)."""
        if self._checkpoints is None or state.last_chunk < 0:
            return
        seg = state.segmenter
        init, pending = state.decoder.checkpoint()
        open_index = seg.open_index
        self._checkpoints.save(
            state.session_id,
            Checkpoint(
                last_chunk=state.last_chunk,
                position=seg.frame_position,
                unframed=seg.unframed.astype("<i2", copy=False).tobytes(),
                next_index=seg.next_index if open_index is None else open_index,
                utterances=state.utterances_before + seg.utterances,
                epoch=state.epoch,
                codec=state.codec,
                sample_rate=state.sample_rate,
                init=None if init == state.saved_init else init,
                pending=pending,
            ),
        )
        state.saved_init = init

    def _forget(self, state: _Session) -> None:
        self._sessions.pop(state.session_id, None)
        seg = state.segmenter
        self._tombs[state.session_id] = _Tombstone(
            state.epoch, seg.next_index, seg.position, state.utterances_before + seg.utterances, state.last_chunk
        )
        self._tombs.move_to_end(state.session_id)
        while len(self._tombs) > self._max_tombstones:
            self._tombs.popitem(last=False)
        log.info("session %s closed after %d ms of audio", state.session_id, seg.position_ms)

    def _flush(self, state: _Session, publish: Publish) -> None:
        outputs = state.segmenter.push(state.decoder.close()) + state.segmenter.finish()
        events = [self._map(state, o, state.received_at) for o in outputs]
        self._forget(state)
        for ev in events:
            publish(ev)
        self._save(state)

    def _evict(self, now: float, publish: Publish, *, keep: int) -> None:
        """Flush idle sessions and the least recently used beyond the limit (room for ``keep``)."""
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            idle = now - oldest.seen_at >= self.config.session_idle_s
            if not idle and len(self._sessions) + keep <= self.config.max_sessions:
                return
            log.info("session %s flushed (%s)", oldest.session_id, "idle" if idle else "too many sessions")
            self._flush(oldest, publish)

    # --- one chunk -------------------------------------------------------------

    def _process(self, state: _Session, event: AudioChunkReceived) -> list[Event]:
        events: list[Event] = []
        outputs: list[Output] = []
        if (event.codec, event.sample_rate) != (state.codec, state.sample_rate):
            outputs += state.segmenter.push(state.decoder.close())
            try:
                state.decoder = self._decoder_factory(event.codec, event.sample_rate, False)
                state.codec, state.sample_rate = event.codec, event.sample_rate
            except UnsupportedAudio as e:
                events.append(self._rejected(event, "unsupported_codec", str(e)))
                return events + [self._map(state, o, event.received_at) for o in outputs]
        if event.data:
            try:
                pcm = state.decoder.feed(event.data)
            except DecodeError as e:
                log.warning("session %s chunk %d: %s", event.session_id, event.chunk_index, e)
                events.append(self._rejected(event, "undecodable_audio", str(e)))
                pcm = np.zeros(0, np.int16)
            outputs += state.segmenter.push(pcm)
        if event.final:
            outputs += state.segmenter.push(state.decoder.close())
            outputs += state.segmenter.finish()
        elif event.flush:  # end of a turn: the utterance in progress ends, the stream goes on
            outputs += state.segmenter.finish()
        if not event.live:  # a whole recording: no live windows
            outputs = [o for o in outputs if not isinstance(o, Window)]
        events += [self._map(state, o, event.received_at) for o in outputs]
        if event.flush and not event.final:
            events.append(
                AudioFlushed(
                    session_id=state.session_id,
                    event_id=self._id(state, "audio.flushed", event.chunk_index),
                    chunk_index=event.chunk_index,
                    utterances=state.utterances_before + state.segmenter.utterances,
                    audio_ms=state.segmenter.position_ms,
                )
            )
        if event.final:
            events.append(
                AudioDrained(
                    session_id=state.session_id,
                    event_id=derived_id(state.session_id, "audio.drained", event.chunk_index),
                    utterances=state.utterances_before + state.segmenter.utterances,
                    audio_ms=state.segmenter.position_ms,
                )
            )
        return events

    # --- mapping ---------------------------------------------------------------

    def _id(self, state: _Session, *parts: object) -> str:
        if state.epoch:
            return derived_id(state.session_id, f"epoch{state.epoch}", *parts)
        return derived_id(state.session_id, *parts)

    def _map(self, state: _Session, out: Output, received_at: float) -> Event:
        sid = state.session_id
        utt_id = self._id(state, "utterance", out.index)
        if isinstance(out, SpeechBegan):
            return SpeechStarted(
                session_id=sid,
                event_id=self._id(state, "speech.started", out.index),
                utterance_id=utt_id,
                index=out.index,
                start_ms=out.start_ms,
                onset_ms=out.onset_ms,
                received_at=received_at,
            )
        if isinstance(out, Window):
            return SpeechWindow(
                session_id=sid,
                event_id=self._id(state, "speech.window", out.index, out.window_index),
                utterance_id=utt_id,
                index=out.index,
                window_index=out.window_index,
                start_ms=out.start_ms,
                end_ms=out.end_ms,
                sample_rate=SAMPLE_RATE,
                pcm=out.pcm,
                received_at=received_at,
            )
        assert isinstance(out, Utterance)
        return UtteranceSegmented(
            session_id=sid,
            event_id=self._id(state, "speech.segmented", out.index),
            utterance_id=utt_id,
            index=out.index,
            start_ms=out.start_ms,
            end_ms=out.end_ms,
            speech_end_ms=out.speech_end_ms,
            sample_rate=SAMPLE_RATE,
            pcm=out.pcm,
            reason=out.reason,
            received_at=received_at,
        )

    @staticmethod
    def _rejected(event: AudioChunkReceived, code: str, message: str) -> AudioRejected:
        return AudioRejected(
            session_id=event.session_id,
            event_id=derived_id(event.session_id, "audio.rejected", event.chunk_index),
            code=code,
            message=message,
            chunk_index=event.chunk_index,
        )
