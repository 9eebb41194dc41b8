"""What is spoken, and in which language (pure: an event and the session's settings in).

The session's ``speak`` setting (:data:`~habla_contracts.SPEAK_SETTINGS`, from the bus's
session settings; ``auto`` when unset) decides:

* a practice partner's reply (:class:`TutorReplied`) is spoken in Spanish unless ``off``,
  a failed one (its short apology) too;
* a live translation (:class:`TranslationFinal`, revision 0, status ``ok`` or ``fallback``,
  not empty) is spoken when ``on``, or when ``auto`` and it is Spanish: English to Spanish,
  the Spanish said to the person in front of the user. Never in practice mode, where the
  partner's reply is what is spoken. Re-translations (revision > 0) are never spoken.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from habla_contracts import SPEAK_SETTINGS, Event, TranslationFinal, TutorReplied, spoken

__all__ = ["ToSay", "speak_setting", "what_to_say"]

log = logging.getLogger("habla.tts")


@dataclass(frozen=True)
class ToSay:
    text: str
    language: str  # es | en


def speak_setting(settings: Mapping[str, str]) -> str:
    """The session's ``speak`` setting; ``auto`` when unset or not one of SPEAK_SETTINGS."""
    value = settings.get("speak", "auto") or "auto"
    if value not in SPEAK_SETTINGS:
        log.warning("unknown speak setting %r; speaking as with 'auto'", value)
        return "auto"
    return value


def what_to_say(event: Event, settings: Mapping[str, str]) -> ToSay | None:
    """The text ``event`` has spoken and its language, or ``None`` when it stays silent.
    The rule is :func:`habla_contracts.spoken`, which clients waiting for the audio share."""
    speak, mode = speak_setting(settings), settings.get("mode", "conversation")
    if isinstance(event, TutorReplied):
        say = ToSay(event.reply, "es")
        revision, status = 0, event.status
    elif isinstance(event, TranslationFinal):
        say = ToSay(event.translation, event.target_language)
        revision, status = event.revision, event.status
    else:
        return None
    if not say.language or not spoken(
        event.KIND,
        speak=speak,
        mode=mode,
        text=say.text,
        target_language=say.language,
        status=status if isinstance(event, TranslationFinal) else "ok",
        revision=revision,
    ):
        return None
    return say
