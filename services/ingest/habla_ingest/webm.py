"""Streaming decoder for the WebM/Opus byte stream of a browser's MediaRecorder.

MediaRecorder with a timeslice hands out pieces of ONE WebM file: the first piece
carries the EBML header and the track description, later pieces cut clusters and
blocks at arbitrary bytes. So the decoder lives as long as the session and walks
the Matroska element structure incrementally: every complete SimpleBlock (or
BlockGroup) is decoded at once with PyAV's Opus decoder and resampled to 16 kHz
mono, so ``feed()`` returns all audio the bytes so far complete, synchronously,
with no thread, probing or read-ahead. A partial element waits for the next chunk.

Why not PyAV's matroska demuxer on a pipe: it works (about 1 ms per chunk, run on a
thread that blocks for input), but after garbage in mid-stream it misreads sizes and
silently skips seconds of good audio before it resyncs. Walking the structure here
catches the first bad element and loses only the garbage.

Errors and recovery (what we chose):

* Elements are checked against the IDs MediaRecorder streams use, with plausible
  sizes; block track numbers and flags are checked too. Anything else is garbage.
* On garbage the decoder resyncs in the same call: it scans forward for the next
  Cluster, a SimpleBlock whose successor is also a valid element, or a new EBML
  header, and goes on decoding from there. Then it raises ``DecodeError``; the audio
  decoded in that call is not lost, it comes out of the next call.
* A fresh decoder whose first bytes are not the EBML header raises at once (and
  still picks the stream up at a sync point if the bytes hold one). While
  resyncing, every ``resync_bytes`` (4 KiB) without a sync point raise again, so a
  client sending garbage keeps hearing about it.
* A chunk whose bytes hold a new EBML header (MediaRecorder restarted) starts a new
  stream; the session's timeline just continues.
* ``resume=True`` joins a stream mid-way (e.g. the session's state was lost): the
  first sync point is taken and the track is assumed to be Opus 48 kHz.
* ``checkpoint()`` / ``restore()``: what another process needs to go on with the
  stream exactly: the stream's init segment (EBML header up to the first Cluster,
  captured as it goes by) and the bytes held at an element boundary. A restored
  decoder walks the init segment (track, codec private) and continues with the
  held bytes; if there were none to hand over (resyncing, or skipping an element)
  it resumes at the next sync point.

Not supported (raise ``DecodeError``): laced blocks and codecs other than Opus.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

from .errors import DecodeError

__all__ = ["CLUSTER_ID", "EBML_MAGIC", "OpusTrack", "WebmOpusDecoder", "find_sync"]

Pcm = npt.NDArray[np.int16]

OUT_RATE = 16000
_OPUS_TB = Fraction(1, 48000)
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
CLUSTER_ID = b"\x1f\x43\xb6\x75"

EBML, SEGMENT, CLUSTER = 0x1A45DFA3, 0x18538067, 0x1F43B675
TRACKS, SIMPLE_BLOCK, BLOCK_GROUP, BLOCK, TIMECODE = 0x1654AE6B, 0xA3, 0xA0, 0xA1, 0xE7
TRACK_ENTRY, TRACK_NUMBER, TRACK_TYPE, CODEC_ID, CODEC_PRIVATE = 0xAE, 0xD7, 0x83, 0x86, 0x63A2
AUDIO, CHANNELS, DISCARD_PADDING = 0xE1, 0x9F, 0x75A2
MAX_BLOCK = 16 * 1024  # an Opus block of 120 ms at 510 kbit/s is under 8 KiB
MAX_INIT = 256 * 1024  # an init segment (EBML header .. first Cluster) longer than this is not kept

ENTERED = {SEGMENT, CLUSTER}  # masters we step into (the only ones that may have unknown size)
PARSED = {EBML, TRACKS, SIMPLE_BLOCK, BLOCK_GROUP}  # payload read whole and looked at
MAX_SIZE: dict[int, int] = {  # every other element MediaRecorder writes is skipped
    EBML: 4096,
    TRACKS: 64 * 1024,
    SIMPLE_BLOCK: MAX_BLOCK,
    BLOCK_GROUP: MAX_BLOCK + 256,
    TIMECODE: 8,
    0xA7: 8,  # Position
    0xAB: 8,  # PrevSize
    0x5854: 1024,  # SilentTracks
    0xEC: 64 * 1024,  # Void
    0xBF: 4,  # CRC-32
    0x114D9B74: 1 << 20,  # SeekHead
    0x1549A966: 1 << 20,  # Info
    0x1C53BB6B: 1 << 22,  # Cues
    0x1254C367: 1 << 20,  # Tags
    0x1043A770: 1 << 20,  # Chapters
}


class _Garbage(Exception):
    """Bytes that are not a valid element here (internal; becomes DecodeError)."""


class _Unsupported(Exception):
    """A valid stream we cannot decode (internal; becomes DecodeError)."""


@dataclass(frozen=True)
class OpusTrack:
    number: int = 1
    channels: int = 1
    codec_private: bytes = b""

    def opus_head(self) -> bytes:
        if self.codec_private[:8] == b"OpusHead":
            return self.codec_private
        # version 1, channels, pre-skip 0, 48 kHz, gain 0, mapping family 0
        return b"OpusHead" + struct.pack("<BBHIhB", 1, self.channels, 0, 48000, 0, 0)


# --- EBML primitives ----------------------------------------------------------------


def _id_at(buf: bytes | bytearray, p: int) -> tuple[int, int] | None:
    """(element id, its length) at ``p``; None if cut off. Raises _Garbage."""
    first = buf[p]
    length = 9 - first.bit_length()
    if length > 4:
        raise _Garbage(f"byte 0x{first:02x} cannot start an element id")
    if p + length > len(buf):
        return None
    return int.from_bytes(buf[p : p + length], "big"), length


def _size_at(buf: bytes | bytearray, p: int) -> tuple[int | None, int] | None:
    """(size or None if 'unknown', its length) at ``p``; None if cut off. Raises _Garbage."""
    first = buf[p]
    length = 9 - first.bit_length()
    if length > 8:
        raise _Garbage("invalid element size")
    if p + length > len(buf):
        return None
    value = int.from_bytes(buf[p : p + length], "big") & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), length


def _children(payload: bytes) -> Iterator[tuple[int, bytes]]:
    """The child elements of a master element held whole in memory."""
    p = 0
    while p < len(payload):
        eid = _id_at(payload, p)
        size = _size_at(payload, p + eid[1]) if eid and p + eid[1] < len(payload) else None
        if eid is None or size is None or size[0] is None:
            raise _Garbage("truncated child element")
        start = p + eid[1] + size[1]
        if start + size[0] > len(payload):
            raise _Garbage("child element overruns its parent")
        yield eid[0], payload[start : start + size[0]]
        p = start + size[0]


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big")


def parse_tracks(payload: bytes) -> OpusTrack:
    """The first audio track of a Tracks element (must be Opus)."""
    for eid, entry in _children(payload):
        if eid != TRACK_ENTRY:
            continue
        fields = dict(_children(entry))
        if _uint(fields.get(TRACK_TYPE, b"")) != 2:
            continue
        codec = fields.get(CODEC_ID, b"").decode("ascii", "replace")
        if codec != "A_OPUS":
            raise _Unsupported(f"the audio track is {codec!r}, not Opus; record with audio/webm;codecs=opus")
        audio = dict(_children(fields.get(AUDIO, b"")))
        return OpusTrack(
            number=_uint(fields.get(TRACK_NUMBER, b"\x01")),
            channels=_uint(audio.get(CHANNELS, b"\x01")) or 1,
            codec_private=fields.get(CODEC_PRIVATE, b""),
        )
    raise _Unsupported("the WebM stream has no audio track")


# --- resync -------------------------------------------------------------------------


def _is_block(buf: bytes | bytearray, p: int, track: int | None) -> bool | None:
    """A plausible SimpleBlock at ``p`` followed by another plausible element."""
    size = _size_at(buf, p + 1) if p + 1 < len(buf) else None
    if size is None or size[0] is None:
        return None if size is None else False
    body = p + 1 + size[1]
    if body + 4 > len(buf):
        return None
    tn = buf[body]
    if not 4 <= size[0] <= MAX_BLOCK or tn < 0x81 or (track is not None and tn != 0x80 | track) or buf[body + 3] & 0x76:
        return False
    nxt = body + size[0]
    if nxt + 4 > len(buf):
        return None
    return buf[nxt] in (SIMPLE_BLOCK, BLOCK_GROUP) or bytes(buf[nxt : nxt + 4]) in (CLUSTER_ID, EBML_MAGIC)


def _is_cluster(buf: bytes | bytearray, p: int) -> bool | None:
    size = _size_at(buf, p + 4) if p + 4 < len(buf) else None
    if size is None or p + 4 + size[1] >= len(buf):
        return None
    return buf[p + 4 + size[1]] == TIMECODE


def find_sync(buf: bytes | bytearray, track: int | None = None) -> int | None:
    """Offset of the first point a walk can resume at: an EBML header, a Cluster or a
    SimpleBlock (of ``track``, any if None) whose successor checks out; None yet."""
    pos = 0
    while pos < len(buf):
        hits = [h for h in (buf.find(EBML_MAGIC, pos), buf.find(CLUSTER_ID, pos), buf.find(b"\xa3", pos)) if h >= 0]
        if not hits:
            return None
        p = min(hits)
        try:
            if buf[p : p + 4] == EBML_MAGIC or (buf[p : p + 4] == CLUSTER_ID and _is_cluster(buf, p)):
                return p
            if buf[p] == SIMPLE_BLOCK and _is_block(buf, p, track):
                return p
        except _Garbage:
            pass
        pos = p + 1
    return None


# --- the decoder --------------------------------------------------------------------


class WebmOpusDecoder:
    """One session's WebM/Opus stream to 16 kHz mono int16; see the module docstring."""

    def __init__(self, *, resume: bool = False, resync_bytes: int = 4 * 1024) -> None:
        self.resync_bytes = resync_bytes
        self._buf = bytearray()
        self._skip = 0  # payload bytes of a skipped element still to come
        self._synced = not resume  # False: looking for a sync point
        self._fresh = not resume  # nothing accepted yet: the first bytes must start a stream
        self._track: OpusTrack | None = None
        self._codec: av.AudioCodecContext | None = None
        self._resampler: av.AudioResampler | None = None
        self._carry: list[Pcm] = []
        self._refused: str | None = None  # why the current stream's track cannot be decoded
        self._pts = 0  # 48 kHz samples decoded (packet timestamps for the Opus decoder)
        self._init = bytearray()  # the current stream's first bytes, until its first Cluster
        self._init_open = False
        self.init_segment = b""  # EBML header up to the first Cluster of the current stream
        self.bad_packets = 0
        self.resyncs = 0

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of an element or for a sync point."""
        return len(self._buf)

    def feed(self, data: bytes) -> Pcm:
        if data[:4] == EBML_MAGIC and (self._buf or self._skip):
            self._buf.clear()  # MediaRecorder restarted: the old stream's cut-off tail is moot
            self._skip, self._synced = 0, True
        self._capture_init(data)
        self._buf += data
        out, errors = self._carry, []
        self._carry = []
        if self._fresh and len(self._buf) >= 4:
            self._fresh = False
            if self._buf[:4] != EBML_MAGIC:
                errors.append(
                    f"the stream does not start with the EBML header 1a45dfa3 of MediaRecorder's first chunk "
                    f"(got {bytes(self._buf[:8]).hex()})"
                )
                self._synced = False
        while self._buf and not self._fresh:
            if self._skip:
                n = min(self._skip, len(self._buf))
                del self._buf[:n]
                self._skip -= n
                continue
            if not self._synced:
                problem = self._resync()
                if problem:
                    errors.append(problem)
                if not self._synced:
                    break
            try:
                if not self._step(out):
                    break  # the next element is not complete yet
            except _Garbage as e:
                errors.append(f"garbage in the WebM stream ({e})")
                del self._buf[:1]
                self._synced = False
                self.resyncs += 1
            except _Unsupported as e:
                errors.append(str(e))
        if self._refused and not errors:
            errors.append(self._refused)
        if errors:
            self._carry = out
            why = "; ".join(dict.fromkeys(errors))
            raise DecodeError(f"webm-opus: {why}; decoding goes on at the next valid block")
        return _concat(out)

    def close(self) -> Pcm:
        out = self._carry
        self._carry = []
        if self._resampler is not None:
            out.extend(_arrays(self._resampler.resample(None)))
        self._buf.clear()
        self._skip, self._synced, self._fresh = 0, False, False
        self._codec, self._resampler, self._refused = None, None, None
        return _concat(out)

    def reset(self) -> None:
        """Forget buffered bytes; the next ones are picked up at a sync point."""
        self._buf.clear()
        self._skip, self._synced = 0, False

    def checkpoint(self) -> tuple[bytes, bytes | None]:
        """(init segment, held bytes): enough for :meth:`restore` in another process to
        go on with the next chunk. Held bytes are None where they cannot be handed over
        (resyncing, or in the middle of a skipped element): the restored decoder resyncs."""
        exact = self._synced and not self._skip and not self._fresh and not self._init_open
        return self.init_segment, bytes(self._buf) if exact else None

    def restore(self, init: bytes, pending: bytes | None) -> None:
        """Continue a stream from a :meth:`checkpoint` of another decoder (call it first)."""
        if init[:4] == EBML_MAGIC:
            self._buf.clear()
            self._skip, self._synced, self._fresh = 0, True, False
            self._buf += init
            out: list[Pcm] = []
            try:
                while self._buf:
                    if self._skip:
                        n = min(self._skip, len(self._buf))
                        del self._buf[:n]
                        self._skip -= n
                    elif not self._step(out):
                        break
            except (_Garbage, _Unsupported):
                pass  # a damaged init segment: the track is taken from the first block then
            self.init_segment = init
        self._buf.clear()
        self._skip, self._fresh, self._init_open = 0, False, False
        if pending is None:
            self._synced = False
        else:
            self._buf += pending
            self._synced = True

    def _capture_init(self, data: bytes) -> None:
        if data[:4] == EBML_MAGIC:
            self._init.clear()
            self._init_open = True
        if not self._init_open:
            return
        self._init += data
        at = self._init.find(CLUSTER_ID)
        if at >= 0 or len(self._init) > MAX_INIT:
            self.init_segment = bytes(self._init[:at]) if at >= 0 else b""
            self._init.clear()
            self._init_open = False

    # --- walking ---------------------------------------------------------------

    def _resync(self) -> str | None:
        at = find_sync(self._buf, self._track.number if self._track else None)
        if at is not None:
            del self._buf[:at]
            self._synced = True
            return None
        if len(self._buf) < self.resync_bytes:
            return None  # wait for more bytes
        n, head = len(self._buf), bytes(self._buf[:8]).hex()
        del self._buf[: max(0, n - 2048)]  # keep a tail: a sync point may straddle chunks
        return f"{n} bytes without WebM/Opus data (starting {head}); is the client sending another codec?"

    def _step(self, out: list[Pcm]) -> bool:
        """Consume one element (header) from the buffer; False if it is incomplete."""
        buf = self._buf
        eid = _id_at(buf, 0)
        if eid is None or eid[1] >= len(buf):
            return False
        size = _size_at(buf, eid[1])
        if size is None:
            return False
        head = eid[1] + size[1]
        if eid[0] in ENTERED:
            del buf[:head]
            return True
        limit = MAX_SIZE.get(eid[0])
        if limit is None:
            raise _Garbage(f"unexpected element 0x{eid[0]:X}")
        if size[0] is None or size[0] > limit:
            raise _Garbage(f"element 0x{eid[0]:X} of implausible size {size[0]}")
        if eid[0] not in PARSED:
            del buf[:head]
            self._skip = size[0]
            return True
        if len(buf) < head + size[0]:
            return False
        payload = bytes(buf[head : head + size[0]])
        del buf[: head + size[0]]
        self._element(eid[0], payload, out)
        return True

    def _element(self, eid: int, payload: bytes, out: list[Pcm]) -> None:
        if eid == EBML:  # a new stream begins
            self._track, self._codec, self._refused = None, None, None
        elif eid == TRACKS:
            self._track, self._codec, self._refused = None, None, None
            try:
                self._track = parse_tracks(payload)
            except _Unsupported as e:
                self._refused = str(e)
                raise
        elif eid == SIMPLE_BLOCK:
            self._block(payload, out)
        elif eid == BLOCK_GROUP:
            children = dict(_children(payload))
            if BLOCK in children:
                before = sum(len(a) for a in out)
                self._block(children[BLOCK], out)
                padding_ns = int.from_bytes(children.get(DISCARD_PADDING, b""), "big", signed=True)
                _trim_end(out, min(padding_ns * OUT_RATE // 1_000_000_000, sum(len(a) for a in out) - before))

    def _block(self, payload: bytes, out: list[Pcm]) -> None:
        tn = payload[0] if payload else 0
        if tn < 0x81 or len(payload) < 4:
            raise _Garbage("malformed block header")
        if self._refused:
            return  # a track we cannot decode; reported on every feed
        if self._track is None:  # joined mid-stream: take the first track seen
            self._track = OpusTrack(number=tn & 0x7F)
        if tn & 0x7F != self._track.number:
            return  # another track's block
        if payload[3] & 0x06:
            raise _Garbage("laced blocks are not supported")
        self._decode(payload[4:], out)

    def _decode(self, packet: bytes, out: list[Pcm]) -> None:
        if self._codec is None:
            assert self._track is not None
            codec = av.CodecContext.create("opus", "r")
            assert isinstance(codec, av.AudioCodecContext)
            codec.extradata = self._track.opus_head()
            codec.sample_rate = 48000
            self._codec = codec
            if self._resampler is None:
                self._resampler = av.AudioResampler(format="s16", layout="mono", rate=OUT_RATE)
        assert self._resampler is not None
        pkt = av.Packet(packet)
        pkt.pts, pkt.time_base = self._pts, _OPUS_TB
        try:
            frames = self._codec.decode(pkt)
        except av.FFmpegError:
            self.bad_packets += 1  # a damaged Opus packet: skip it, keep the stream
            return
        for frame in frames:
            self._pts += frame.samples
            out.extend(_arrays(self._resampler.resample(frame)))


def _trim_end(out: list[Pcm], n: int) -> None:
    """Drop ``n`` samples from the end (a block's DiscardPadding)."""
    while n > 0 and out:
        if len(out[-1]) <= n:
            n -= len(out.pop())
        else:
            out[-1] = out[-1][:-n]
            n = 0


def _arrays(frames: list[av.AudioFrame]) -> list[Pcm]:
    return [f.to_ndarray().reshape(-1).astype(np.int16, copy=False) for f in frames]


def _concat(parts: list[Pcm]) -> Pcm:
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)
