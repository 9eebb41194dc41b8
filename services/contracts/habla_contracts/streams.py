"""Stream names and who reads what.

Each event kind has its own stream family, split into ``partitions`` shards by a
stable hash of the session id: ``<kind>:<p>``. A consumer group holds a lease on each
shard it reads, so exactly one worker of a service reads a session's events, in
order, while several workers share the sessions. Every session also has an outbox,
``session:<id>:events``, holding the events its sockets are shown.
"""

from __future__ import annotations

import zlib

from .events import EVENT_TYPES, Event

__all__ = [
    "DEFAULT_PARTITIONS",
    "TOPOLOGY",
    "dead_letter_key",
    "fact_kinds",
    "groups_reading",
    "outbox_key",
    "partition_of",
    "stream_key",
]

DEFAULT_PARTITIONS = 4

# consumer group -> kinds it reads. Every process creates all of these groups before
# it publishes, so no stream is trimmed before a group that needs it exists.
TOPOLOGY: dict[str, tuple[str, ...]] = {
    "ingest": ("audio.chunk",),
    "diarize": ("speech.segmented", "asr.final", "speaker.renamed", "voiceprint.saved", "voiceprint.deleted"),
    "asr": ("speech.turn", "speech.window"),
    "translate": ("asr.final", "asr.partial", "term.saved"),
    "tts": ("translation.final", "tutor.replied"),
    "vocab": ("term.saved", "vocab.saved", "vocab.reviewed", "vocab.deleted", "translation.final", "session.deleted"),
    "recorder": tuple(k for k, c in EVENT_TYPES.items() if c.FACT),
}


def fact_kinds() -> tuple[str, ...]:
    return TOPOLOGY["recorder"]


def groups_reading(kind: str) -> list[str]:
    return [g for g, kinds in TOPOLOGY.items() if kind in kinds]


def partition_of(session_id: str, partitions: int) -> int:
    return zlib.crc32(session_id.encode()) % partitions


def stream_key(kind: str, partition: int) -> str:
    return f"{kind}:{partition}"


def outbox_key(session_id: str) -> str:
    return f"session:{session_id}:events"


def dead_letter_key(kind: str) -> str:
    return f"{kind}.dead"


def event_stream(event: Event, partitions: int) -> str:
    return stream_key(event.KIND, partition_of(event.session_id, partitions))
