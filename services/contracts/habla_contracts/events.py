"""Habla's event types.

Every event is a frozen dataclass with an envelope (``event_id``, ``session_id``,
``seq``, ``occurred_at``) and a class-level ``KIND`` (also its stream name) and ``V``
(schema version). Three class flags say where an event goes:

* ``FACT``: recorded in the Postgres event log (finals are facts).
* ``CLIENT``: copied to the session's outbox so sockets of the session see it.
* ``MAXLEN``: partial streams are trimmed to about this many entries (0 = never
  trimmed by length; consumed entries are trimmed once every group has acked them).

Evolution rules: add fields only with defaults, never change a field's type, and a
breaking change gets a new kind. Upcasters live in :mod:`habla_contracts.codec`.
``seq`` is assigned by the bus when the event is published (per-session counter),
so producers leave it at 0.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "ADMIN_SESSION",
    "AUDIO_CODECS",
    "DIRECTIONS",
    "EVENT_TYPES",
    "MODES",
    "REVIEW_GRADES",
    "SPEAKER_COLORS",
    "SPEAKER_ROLES",
    "SPEAK_SETTINGS",
    "TRANSLATION_STATUSES",
    "VOCAB_ITEM_KINDS",
    "VOCAB_SESSION",
    "AudioChunkReceived",
    "AudioDrained",
    "AudioFlushed",
    "AudioRejected",
    "CardReviewed",
    "CorrectionDetected",
    "Event",
    "IdiomDetected",
    "RetranslationCompleted",
    "RetranslationRequested",
    "SessionDeleted",
    "SessionEnded",
    "SessionSettingsChanged",
    "SessionStarted",
    "SpeakerAssigned",
    "SpeakerJoined",
    "SpeakerRenamed",
    "SpeakerRoleSuggested",
    "SpeechStarted",
    "SpeechSynthesized",
    "SpeechTurn",
    "SpeechWindow",
    "TermSaved",
    "TopicSummarized",
    "TranscriptFinal",
    "TranscriptPartial",
    "TranslationFinal",
    "TranslationPartial",
    "TutorReplied",
    "UtteranceSegmented",
    "VocabItemDeleted",
    "VocabItemSaved",
    "VoiceprintDeleted",
    "VoiceprintSaved",
    "derived_id",
    "new_id",
    "source_language",
    "spoken",
]

DIRECTIONS = ("es-en", "en-es", "auto")
MODES = ("conversation", "classroom", "practice")
# Whether the session speaks: "auto" speaks what is said to someone in Spanish (translations
# into Spanish, the practice partner's replies), "on" every translation and reply, "off" nothing.
SPEAK_SETTINGS = ("auto", "on", "off")
AUDIO_CODECS = ("pcm16", "webm-opus")

_NAMESPACE = uuid.UUID("0f3c2a1e-6d7b-4d0e-9a55-6b1d2f0c7e11")


def new_id() -> str:
    """A fresh random event id."""
    return str(uuid.uuid4())


def derived_id(*parts: object) -> str:
    """A deterministic id from its inputs.

    Handlers derive the ids of the events they produce from the id of the event they
    consume, so a redelivered input republishes the same ids and the bus drops the
    duplicates.
    """
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


def source_language(direction: str) -> str | None:
    """Spoken language for a session direction (``None`` = detect per utterance)."""
    return {"es-en": "es", "en-es": "en"}.get(direction)


def spoken(
    kind: str,
    *,
    speak: str,
    mode: str,
    text: str,
    target_language: str = "",
    status: str = "ok",
    revision: int = 0,
) -> bool:
    """Whether the tts stage speaks a translation final or a practice reply, by the session's
    ``speak`` setting (one of SPEAK_SETTINGS) and ``mode``: the tts service decides with it,
    and a client waiting for a turn's audio knows from it what will come.

    Practice replies are spoken unless ``off``. Live translations (revision 0, with text,
    not ``untranslated``) are spoken when ``on``, or when ``auto`` and they are Spanish (EN→ES:
    said to the person in front of the user); never in practice mode, where the reply speaks."""
    if speak == "off" or not text.strip():
        return False
    if kind == "tutor.replied":
        return True
    if kind == "translation.final":
        if revision != 0 or status not in ("ok", "fallback") or mode == "practice":
            return False
        return speak == "on" or target_language == "es"
    return False


@dataclass(frozen=True, kw_only=True)
class Event:
    KIND: ClassVar[str] = ""
    V: ClassVar[int] = 1
    FACT: ClassVar[bool] = False
    CLIENT: ClassVar[bool] = False
    MAXLEN: ClassVar[int] = 0

    session_id: str
    event_id: str = field(default_factory=new_id)
    seq: int = 0
    occurred_at: float = field(default_factory=time.time)

    def client_view(self) -> dict[str, Any]:
        """The JSON-safe payload sent to sockets (bytes fields are left out)."""
        from dataclasses import asdict

        return {k: v for k, v in asdict(self).items() if not isinstance(v, bytes)}


# --- session lifecycle -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SessionStarted(Event):
    KIND: ClassVar[str] = "session.started"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    direction: str = "es-en"
    mode: str = "conversation"
    codec: str = "pcm16"
    source: str = "live"  # live | file | api
    title: str = ""
    speak: str = "auto"  # one of SPEAK_SETTINGS
    topic: str = ""  # practice mode: what the learner wants to talk about


@dataclass(frozen=True, kw_only=True)
class SessionSettingsChanged(Event):
    KIND: ClassVar[str] = "session.settings_changed"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    direction: str | None = None
    mode: str | None = None
    speak: str | None = None
    topic: str | None = None


@dataclass(frozen=True, kw_only=True)
class SessionEnded(Event):
    KIND: ClassVar[str] = "session.ended"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    reason: str = "client"


# Deletions of whole sessions are recorded here, outside the session they delete (whose
# facts are removed), so the tombstone outlives them and a rebuild sees it.
ADMIN_SESSION = "admin"


@dataclass(frozen=True, kw_only=True)
class SessionDeleted(Event):
    """The user deleted session ``deleted_session``, explicitly and confirmed: its facts,
    read models and stored audio go, and so do the vocabulary contexts heard in it
    (an item left with none is deleted). ``session_id`` is ADMIN_SESSION; the event id
    derives from the deleted session's id, so asking twice is one deletion."""

    KIND: ClassVar[str] = "session.deleted"
    FACT: ClassVar[bool] = True

    deleted_session: str = ""
    reason: str = "user"

    @classmethod
    def of(cls, deleted_session: str, *, reason: str = "user") -> SessionDeleted:
        return cls(
            session_id=ADMIN_SESSION,
            event_id=derived_id("session.deleted", deleted_session),
            deleted_session=deleted_session,
            reason=reason,
        )


# --- audio -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AudioChunkReceived(Event):
    """Audio bytes as the client sent them, in order, per session.

    ``chunk_index`` counts the client's chunks from 0; the gateway derives the event
    id from it, so a chunk the phone resends after a reconnect is dropped as a
    duplicate. ``final`` marks the end of the session's audio (``data`` is empty).
    """

    KIND: ClassVar[str] = "audio.chunk"

    chunk_index: int = 0
    codec: str = "pcm16"
    sample_rate: int = 16000
    data: bytes = b""
    received_at: float = 0.0
    final: bool = False
    # the end of a turn (a recording posted to the speech API, a push-to-talk release):
    # the utterance in progress ends here and AudioFlushed says how many there are so far;
    # the session goes on (``data`` is empty)
    flush: bool = False
    # False: a recording sent whole (the speech API), not speech as it happens: no live
    # windows are cut from it (nobody watches its captions grow), so the stages go straight
    # to the finals
    live: bool = True


@dataclass(frozen=True, kw_only=True)
class AudioRejected(Event):
    """Audio the pipeline could not use (undecodable bytes, wrong codec)."""

    KIND: ClassVar[str] = "audio.rejected"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    code: str = ""
    message: str = ""
    chunk_index: int = -1


@dataclass(frozen=True, kw_only=True)
class AudioDrained(Event):
    """The session's audio ended and every utterance in it has been segmented.

    ``utterances`` is how many UtteranceSegmented events the session produced in all,
    so a reader knows how many finals to wait for.
    """

    KIND: ClassVar[str] = "audio.drained"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterances: int = 0
    audio_ms: int = 0


@dataclass(frozen=True, kw_only=True)
class AudioFlushed(Event):
    """A turn's audio (up to a ``flush`` chunk) has been segmented; the session goes on.

    ``utterances`` counts every UtteranceSegmented of the session so far (as AudioDrained
    does at the end), so a reader waiting for one turn's finals knows which indices are
    its own: those from the previous flush's count up to this one."""

    KIND: ClassVar[str] = "audio.flushed"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    chunk_index: int = 0  # the flush chunk
    utterances: int = 0
    audio_ms: int = 0


# --- speech segmentation (ingest) --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SpeechStarted(Event):
    """Voice activity began. Times are milliseconds of session audio."""

    KIND: ClassVar[str] = "speech.started"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    utterance_id: str = ""
    index: int = 0
    start_ms: int = 0  # where the utterance's audio starts (a little pre-roll before the voice)
    received_at: float = 0.0  # when the gateway got the audio that showed speech
    onset_ms: int = 0  # the first voiced frame


@dataclass(frozen=True, kw_only=True)
class SpeechWindow(Event):
    """Audio of the utterance so far, while it continues (for live partials)."""

    KIND: ClassVar[str] = "speech.window"
    MAXLEN: ClassVar[int] = 50  # each carries up to INGEST_MAX_UTTERANCE_S of audio; only the newest matters

    utterance_id: str = ""
    index: int = 0
    window_index: int = 0
    start_ms: int = 0
    end_ms: int = 0
    sample_rate: int = 16000
    pcm: bytes = b""  # PCM16 little-endian mono
    received_at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class UtteranceSegmented(Event):
    """A finished utterance: speech up to a pause (or a cap split, or the end)."""

    KIND: ClassVar[str] = "speech.segmented"
    FACT: ClassVar[bool] = True

    utterance_id: str = ""
    index: int = 0
    start_ms: int = 0
    end_ms: int = 0
    sample_rate: int = 16000
    pcm: bytes = b""  # PCM16 little-endian mono, start_ms..end_ms
    reason: str = "pause"  # pause | cap | end
    received_at: float = 0.0  # when the gateway got the audio that ended it
    speech_end_ms: int = 0  # where the voice stopped; end_ms runs on through the pause that ended it


@dataclass(frozen=True, kw_only=True)
class SpeechTurn(Event):
    """One speaker's stretch of a segmented utterance: the work item the asr stage reads.

    The diarize stage turns every :class:`UtteranceSegmented` into one or more turns (more
    when the speaker changes without a pause). The first turn keeps the utterance's id, so
    a live card becomes its final card in place; later turns get derived ids and share
    the utterance's ``index`` with a higher ``part``. Not a fact: the log already holds
    the audio (``speech.segmented``) and the split (``speaker.assigned``)."""

    KIND: ClassVar[str] = "speech.turn"

    utterance_id: str = ""
    parent_id: str = ""
    index: int = 0
    part: int = 0
    parts: int = 1
    speaker: str = ""
    start_ms: int = 0
    end_ms: int = 0
    sample_rate: int = 16000
    pcm: bytes = b""  # PCM16 little-endian mono, start_ms..end_ms
    reason: str = "pause"
    received_at: float = 0.0
    speech_end_ms: int = 0


# --- speakers (diarize) ------------------------------------------------------------

SPEAKER_ROLES = ("instructor", "student")

# Colour-blind-safe palette (Okabe-Ito, then Tol's muted): speaker n gets SPEAKER_COLORS[(n - 1) % 10].
SPEAKER_COLORS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#882255",
    "#117733",
    "#AA4499",
    "#999933",
)


@dataclass(frozen=True, kw_only=True)
class SpeakerAssigned(Event):
    """Who spoke segmented utterance ``index``: its turns, in order.

    ``turns`` holds ``{utterance_id, part, start_ms, end_ms, speaker, similarity}`` per
    turn (times in session audio); ``speaker`` is the first turn's. ``similarity`` is the
    cosine between the turn's voice and its speaker's centroid before the update (1.0 for
    a speaker opened by it, 0.0 for a fragment too short to judge, which inherits)."""

    KIND: ClassVar[str] = "speaker.assigned"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterance_id: str = ""
    index: int = 0
    speaker: str = ""
    turns: tuple[dict[str, Any], ...] = ()
    embed_ms: int = 0
    backend: str = ""


@dataclass(frozen=True, kw_only=True)
class SpeakerJoined(Event):
    """A new voice in the session. ``label`` is what to show until the user names it:
    "Speaker 2", or the name of a stored voiceprint it matched ("You" for the user)."""

    KIND: ClassVar[str] = "speaker.joined"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    speaker: str = ""
    number: int = 0
    label: str = ""
    color: str = ""
    voiceprint_id: str = ""
    is_user: bool = False
    similarity: float = 0.0  # to the voiceprint it matched


@dataclass(frozen=True, kw_only=True)
class SpeakerRenamed(Event):
    """A speaker got a name: from the user (``source`` "user"), or from a stored voiceprint
    recognised after it joined ("voiceprint"). Applies to every utterance of the session,
    past and future. ``remember`` asks to keep the voiceprint so the person is recognised
    in later sessions; ``is_user`` marks the voice as the user's own."""

    KIND: ClassVar[str] = "speaker.renamed"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    speaker: str = ""
    name: str = ""
    remember: bool = False
    is_user: bool = False
    source: str = "user"  # user | voiceprint


@dataclass(frozen=True, kw_only=True)
class SpeakerRoleSuggested(Event):
    """Classroom mode: who seems to be teaching. ``evidence`` says why (talk share,
    questions, correction cues) so the suggestion can be judged, never silently applied."""

    KIND: ClassVar[str] = "speaker.role_suggested"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    speaker: str = ""
    role: str = "student"  # one of SPEAKER_ROLES
    confidence: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class VoiceprintSaved(Event):
    """A voice kept across sessions (opt-in): a person the user named with "remember", or
    the user's own enrolled voice. ``embedding`` is float32 little-endian, ``dim`` long,
    comparable only with embeddings of the same ``backend``. ``session_id`` is the session
    it came from ("enrolment" for ``habla voices enroll``)."""

    KIND: ClassVar[str] = "voiceprint.saved"
    FACT: ClassVar[bool] = True

    voiceprint_id: str = ""
    name: str = ""
    is_user: bool = False
    backend: str = ""
    dim: int = 0
    embedding: bytes = b""
    speech_ms: int = 0  # how much speech it was averaged over
    speaker: str = ""  # the session speaker it came from, if any


@dataclass(frozen=True, kw_only=True)
class VoiceprintDeleted(Event):
    """The user asked to forget a stored voice."""

    KIND: ClassVar[str] = "voiceprint.deleted"
    FACT: ClassVar[bool] = True

    voiceprint_id: str = ""

    @classmethod
    def of_save(cls, session_id: str, voiceprint_id: str, saved_at: str) -> VoiceprintDeleted:
        """The deletion of the save made at ``saved_at`` (ISO time), published under the
        session the voice came from: deleting one save twice, from any client, is one event."""
        return cls(
            session_id=session_id,
            event_id=derived_id("voiceprint.deleted", voiceprint_id, saved_at),
            voiceprint_id=voiceprint_id,
        )


# --- transcription (asr) -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TranscriptPartial(Event):
    """Best-effort live caption: ``committed`` never changes, ``tentative`` may."""

    KIND: ClassVar[str] = "asr.partial"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    utterance_id: str = ""
    index: int = 0
    window_index: int = 0
    committed: str = ""
    tentative: str = ""
    language: str = ""
    audio_end_ms: int = 0
    received_at: float = 0.0  # when the gateway got the audio it is about (stage latency)


@dataclass(frozen=True, kw_only=True)
class TranscriptFinal(Event):
    """The transcript of one utterance. Empty ``text`` means no speech was found
    (``dropped`` says why), so every utterance gets exactly one final."""

    KIND: ClassVar[str] = "asr.final"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterance_id: str = ""
    index: int = 0
    start_ms: int = 0
    end_ms: int = 0
    text: str = ""
    language: str = ""
    language_probability: float = 0.0
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    dropped: str = ""  # "" | no_speech | hallucination | empty | asr_failed
    asr_ms: int = 0
    model: str = ""
    speech_end_ms: int = 0  # where the voice stopped (end_ms includes the pause after it)
    received_at: float = 0.0  # when the gateway got the audio it is about (stage latency)
    speaker: str = ""  # session speaker id ("S1", ...) from the diarize stage; "" = unknown
    part: int = 0  # which speaker turn of utterance ``index`` this is (see SpeechTurn)
    parts: int = 1  # how many turns utterance ``index`` was split into
    parent_id: str = ""  # the segmented utterance this turn came from ("" = itself)


# --- translation (translate) -------------------------------------------------------
#
# Nested values (corrections, idioms) are tuples of plain dicts so the one msgpack codec
# carries them unchanged; their keys are documented on each field.

TRANSLATION_STATUSES = ("ok", "fallback", "untranslated", "empty")


@dataclass(frozen=True, kw_only=True)
class TranslationPartial(Event):
    """The rough live translation of an utterance's committed words.

    ``text`` only grows within an utterance: every partial's text starts with the
    previous one's, so the English the user already saw is never rewritten."""

    KIND: ClassVar[str] = "translation.partial"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    utterance_id: str = ""
    index: int = 0
    window_index: int = 0
    source: str = ""  # the committed source words this translation covers
    text: str = ""
    source_language: str = ""
    target_language: str = ""
    translate_ms: int = 0
    received_at: float = 0.0  # when the gateway got the audio it is about (stage latency)


@dataclass(frozen=True, kw_only=True)
class TranslationFinal(Event):
    """The corrected source and natural translation of one final transcript.

    Exactly one per utterance and revision (revision 0 is the live one; a
    re-translation from the log appends revision 1, 2, ...). ``status`` is never
    silent about failure: ``untranslated`` means every attempt, including the
    fallback, still produced the source language or a copy of it."""

    KIND: ClassVar[str] = "translation.final"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterance_id: str = ""
    index: int = 0
    transcript_id: str = ""  # event id of the TranscriptFinal translated
    revision: int = 0
    source_text: str = ""  # as heard
    corrected: str = ""  # source after the corrections
    corrections: tuple[dict[str, Any], ...] = ()  # {heard, fixed, reason}
    translation: str = ""
    idioms: tuple[dict[str, Any], ...] = ()  # {phrase, canonical, literal, meaning, start, end, origin}
    speaker: str = ""
    source_language: str = ""
    target_language: str = ""
    detected_language: str = ""  # language of ``translation`` as detected
    status: str = "ok"  # one of TRANSLATION_STATUSES
    attempts: int = 1
    reused: str = ""  # "" | partial | cache: what earlier work this final reused
    express: bool = False  # late, so translated in one plain call (no corrections, no retries)
    model: str = ""
    translate_ms: int = 0
    speech_end_ms: int = 0  # copied from the transcript, for end-of-speech latency
    received_at: float = 0.0  # when the gateway got the audio it is about (stage latency)


@dataclass(frozen=True, kw_only=True)
class IdiomDetected(Event):
    """An idiom of the project's database found in a final transcript, published
    before the model translates it. ``start``/``end`` index the transcript text."""

    KIND: ClassVar[str] = "idiom.detected"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterance_id: str = ""
    index: int = 0
    idiom_id: str = ""
    canonical: str = ""
    phrase: str = ""  # as heard
    start: int = 0
    end: int = 0
    literal: str = ""
    meaning: str = ""
    region: str = ""
    register: str = ""


@dataclass(frozen=True, kw_only=True)
class CorrectionDetected(Event):
    """A repair in classroom mode: someone (usually the teacher) corrected what was
    said, in the same utterance ("no, se dice ...") or the next one."""

    KIND: ClassVar[str] = "correction.detected"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterance_id: str = ""  # the utterance that holds the correction
    index: int = 0
    corrected_utterance_id: str = ""  # the utterance corrected ("" = the same one)
    said: str = ""
    correct: str = ""
    why: str = ""
    cue: str = ""  # what gave it away: "no, se dice", "mejor dicho", "repetition", ...
    speaker: str = ""
    corrected_speaker: str = ""


@dataclass(frozen=True, kw_only=True)
class TopicSummarized(Event):
    """A short running summary of what the session is about, kept up to date every few
    utterances and given to the translator as context."""

    KIND: ClassVar[str] = "topic.summarized"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    summary: str = ""
    upto_index: int = 0
    model: str = ""


@dataclass(frozen=True, kw_only=True)
class TutorReplied(Event):
    """Practice mode: the conversation partner's answer to one learner utterance.

    ``reply`` is Spanish at the learner's estimated ``level`` (a CEFR band, A1..C2, from
    his own utterances so far; ``level_evidence`` says from what: words, share of rare
    words, mean length, errors per utterance); ``reply_translation`` is its English.
    ``corrections`` ({said, correct, why}) are the learner's mistakes in the line answered;
    each is also published as a :class:`CorrectionDetected` card. Exactly one per learner
    final with text (the consumer's give-up publishes an apology with ``status`` "failed")."""

    KIND: ClassVar[str] = "tutor.replied"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    utterance_id: str = ""  # the learner's utterance answered
    index: int = 0
    transcript_id: str = ""  # event id of the TranscriptFinal answered
    said: str = ""  # the learner's line as transcribed
    reply: str = ""
    reply_translation: str = ""
    corrections: tuple[dict[str, Any], ...] = ()  # {said, correct, why}
    level: str = ""  # CEFR band
    level_evidence: dict[str, Any] = field(default_factory=dict)
    topic: str = ""
    status: str = "ok"  # ok | failed
    model: str = ""
    llm_ms: int = 0
    speaker: str = ""  # the learner's speaker id
    speech_end_ms: int = 0
    received_at: float = 0.0  # when the gateway got the audio answered (stage latency)


@dataclass(frozen=True, kw_only=True)
class SpeechSynthesized(Event):
    """Spoken audio of one sentence of a translation or a practice reply (tts stage).

    A text is spoken sentence by sentence, each published as soon as it is synthesised,
    so playback starts before the whole text is spoken: ``chunk`` counts them from 0 and
    ``last`` marks the text's final one. ``audio`` is a WAV file (PCM16 mono at
    ``sample_rate``); sockets get it base64-encoded as ``audio``. A sentence that failed
    to synthesise has no audio and says why in ``error``."""

    KIND: ClassVar[str] = "tts.audio"
    CLIENT: ClassVar[bool] = True
    MAXLEN: ClassVar[int] = 1000

    utterance_id: str = ""  # the utterance whose translation or reply this speaks
    index: int = 0
    spoken_id: str = ""  # event id of the TranslationFinal or TutorReplied spoken
    spoken_kind: str = ""  # its kind
    chunk: int = 0
    last: bool = False
    text: str = ""  # the sentence spoken
    language: str = ""
    engine: str = ""  # espeak | piper | http
    voice: str = ""
    sample_rate: int = 0
    audio: bytes = b""  # WAV
    audio_ms: int = 0
    synth_ms: int = 0
    error: str = ""
    received_at: float = 0.0  # when the gateway got the audio this answers (stage latency)

    def client_view(self) -> dict[str, Any]:
        import base64

        view = super().client_view()
        view["audio"] = base64.b64encode(self.audio).decode("ascii")
        return view


@dataclass(frozen=True, kw_only=True)
class TermSaved(Event):
    """The user saved something to study: an idiom, a word, a phrase or a correction.

    Saved idioms join the idiom database; saved words and phrases become the
    translator's glossary; the vocab stage makes each a :class:`VocabItemSaved` to study."""

    KIND: ClassVar[str] = "term.saved"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    term_id: str = ""
    term_kind: str = "word"  # idiom | word | phrase | correction
    text: str = ""  # source-language form (canonical form for idioms)
    meaning: str = ""
    literal: str = ""
    example: str = ""
    utterance_id: str = ""
    language: str = "es"


@dataclass(frozen=True, kw_only=True)
class RetranslationRequested(Event):
    """A session's finals are to be translated again (by ``habla retranslate``)."""

    KIND: ClassVar[str] = "translation.requested"
    FACT: ClassVar[bool] = True

    revision: int = 0
    model: str = ""
    backend: str = ""
    job_id: str = ""


@dataclass(frozen=True, kw_only=True)
class RetranslationCompleted(Event):
    """A re-translation finished: ``count`` utterances got revision ``revision``."""

    KIND: ClassVar[str] = "translation.completed"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    revision: int = 0
    model: str = ""
    count: int = 0
    untranslated: int = 0
    elapsed_s: float = 0.0


# --- vocabulary and study (vocab) --------------------------------------------------

VOCAB_ITEM_KINDS = ("idiom", "word", "phrase", "correction")
REVIEW_GRADES = (0, 1, 2, 3, 4, 5)  # SM-2 quality: 0-2 forgotten, 3 hard, 4 good, 5 easy
# Reviews and deletions belong to no listening session: they go to this one, so they are
# ordered among themselves and partitioned together.
VOCAB_SESSION = "vocab"


@dataclass(frozen=True, kw_only=True)
class VocabItemSaved(Event):
    """One saved context of a vocabulary item, ready to study.

    The vocab stage turns each :class:`TermSaved` into one of these: the canonical form
    (lemma of a word, an idiom's canonical form), the sentence as heard with its
    translation and speaker, and a short compressed clip of the original speech.
    ``item_id`` derives from ``language`` and ``canonical``, so saving the same item again
    (another sentence, another session) adds a context to the one item. ``session_id`` is
    the session it was heard in. ``band`` is 1 (among the most common words) to 5 (rare)
    from ``zipf`` (wordfreq's Zipf frequency, 0 when unknown)."""

    KIND: ClassVar[str] = "vocab.saved"
    FACT: ClassVar[bool] = True
    CLIENT: ClassVar[bool] = True

    item_id: str = ""
    term_id: str = ""  # the term.saved event it came from
    item_kind: str = "word"  # one of VOCAB_ITEM_KINDS
    canonical: str = ""
    text: str = ""  # as the user selected it
    language: str = "es"
    meaning: str = ""
    literal: str = ""
    utterance_id: str = ""
    heard: str = ""  # the sentence as transcribed
    corrected: str = ""  # the sentence after corrections from context
    translation: str = ""
    speaker: str = ""  # session speaker id
    speaker_name: str = ""  # the speaker's name or label when it was saved
    start_ms: int = 0  # the clip, in session audio
    end_ms: int = 0
    clip: bytes = b""  # compressed audio of the original speech ("" = none)
    clip_format: str = ""  # "mp3" when there is a clip
    zipf: float = 0.0
    band: int = 0


@dataclass(frozen=True, kw_only=True)
class CardReviewed(Event):
    """The user graded a vocabulary item while studying (``grade`` one of REVIEW_GRADES).

    Only the grade and its time are facts; the schedule (SM-2 ease, interval, due date)
    is computed from the item's reviews in order, so a rebuild gives the same schedule.
    ``session_id`` is VOCAB_SESSION."""

    KIND: ClassVar[str] = "vocab.reviewed"
    FACT: ClassVar[bool] = True

    item_id: str = ""
    grade: int = 0
    answer_ms: int = 0  # how long the user took to answer, when known


@dataclass(frozen=True, kw_only=True)
class VocabItemDeleted(Event):
    """The user removed a vocabulary item: its contexts and reviews up to now are gone
    from the study views; saving it again later starts it afresh. ``session_id`` is
    VOCAB_SESSION."""

    KIND: ClassVar[str] = "vocab.deleted"
    FACT: ClassVar[bool] = True

    item_id: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        SessionStarted,
        SessionSettingsChanged,
        SessionEnded,
        SessionDeleted,
        AudioChunkReceived,
        AudioRejected,
        AudioDrained,
        AudioFlushed,
        SpeechStarted,
        SpeechWindow,
        UtteranceSegmented,
        SpeechTurn,
        SpeakerAssigned,
        SpeakerJoined,
        SpeakerRenamed,
        SpeakerRoleSuggested,
        VoiceprintSaved,
        VoiceprintDeleted,
        TranscriptPartial,
        TranscriptFinal,
        TranslationPartial,
        TranslationFinal,
        IdiomDetected,
        CorrectionDetected,
        TopicSummarized,
        TutorReplied,
        SpeechSynthesized,
        TermSaved,
        RetranslationRequested,
        RetranslationCompleted,
        VocabItemSaved,
        CardReviewed,
        VocabItemDeleted,
    )
}
