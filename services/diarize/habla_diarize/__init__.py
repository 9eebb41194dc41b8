"""Habla's speaker stage: who is speaking, turns inside utterances, names, roles, voiceprints."""

from .config import DiarizeConfig
from .domain import SessionSpeakers, Speaker, Turn, Voiceprint
from .embedders import PyannoteEmbedder, ResemblyzerEmbedder, SpeakerEmbedder, Windows, build_embedder
from .enrol import enrol
from .errors import DiarizeError, EmbedderUnavailable, EmbeddingFailed, EnrolmentFailed
from .handlers import DiarizeHandler

__all__ = [
    "DiarizeConfig",
    "DiarizeError",
    "DiarizeHandler",
    "EmbedderUnavailable",
    "EmbeddingFailed",
    "EnrolmentFailed",
    "PyannoteEmbedder",
    "ResemblyzerEmbedder",
    "SessionSpeakers",
    "Speaker",
    "SpeakerEmbedder",
    "Turn",
    "Voiceprint",
    "Windows",
    "build_embedder",
    "enrol",
]
