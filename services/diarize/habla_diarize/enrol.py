"""Enrolling a voice from a recording: the user's own (so his speech is labelled as his from
the first sentence) or a person he names before a session.

:func:`enrol` turns a few seconds of one person's speech into a ``voiceprint.saved`` fact,
embedded with the same backend the service runs, so the diarize service recognises that
voice in every later session (and the recorder lists it with the other voiceprints). Each
enrolment is its own little session (``enrolment-<id>``), so deleting it later follows it
on the same shard and its sequence numbers never meet another session's.
"""

from __future__ import annotations

import uuid

import numpy as np
import numpy.typing as npt

from habla_contracts import VoiceprintSaved, derived_id

from .domain import MIN_VOICED, frame_levels, quiet_level, voiced_fraction
from .embedders import SpeakerEmbedder, check_audio, mean_voice
from .errors import EnrolmentFailed

__all__ = ["MIN_ENROL_SPEECH_MS", "enrol"]

MIN_ENROL_SPEECH_MS = 3000  # voiced time (loud 20 ms frames); a voice learnt from less is not reliable
_FRAME_MS = 20


def enrol(
    audio: npt.NDArray[np.float32], embedder: SpeakerEmbedder, *, name: str, is_user: bool = False, hop_ms: int = 200
) -> VoiceprintSaved:
    """The voiceprint of the one voice in ``audio`` (16 kHz mono float32), as a fact to publish.

    Raises :class:`EnrolmentFailed` for a blank name or a recording with too little speech."""
    label = " ".join(name.split())
    if not label:
        raise EnrolmentFailed("a voiceprint needs a name (the user's own voice too: e.g. 'Me')")
    wav = check_audio(audio)
    levels = frame_levels(wav, _FRAME_MS)
    speech_ms = int(np.count_nonzero(levels > quiet_level(levels))) * _FRAME_MS if levels.size else 0
    if speech_ms < MIN_ENROL_SPEECH_MS:
        raise EnrolmentFailed(
            f"this recording has {speech_ms / 1000:.1f} s of speech; enrolling a voice needs at least "
            f"{MIN_ENROL_SPEECH_MS // 1000} s of one person speaking (10-30 s is better)"
        )
    windows = embedder.windows(wav, hop_ms)
    voice = mean_voice(windows, usable=voiced_fraction(windows, levels) >= MIN_VOICED)
    session = f"enrolment-{uuid.uuid4().hex[:16]}"
    return VoiceprintSaved(
        session_id=session,
        event_id=derived_id(session, "voiceprint.saved"),
        voiceprint_id=derived_id(session, "voiceprint"),
        name=label,
        is_user=is_user,
        backend=embedder.name,
        dim=int(voice.size),
        embedding=voice.astype("<f4").tobytes(),
        speech_ms=speech_ms,
    )
