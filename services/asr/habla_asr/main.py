"""Bootstrap and run loop of the asr service.

``python -m habla_asr`` (or ``habla-asr``): reads :class:`AsrConfig` from the
environment, loads and warms up the model, then consumes ``speech.turn`` (utterances as
split into speaker turns by the diarize stage) and ``speech.window`` as consumer group
``asr`` until SIGTERM. Live windows are best-effort: when the service falls behind the
live audio they are thinned, then dropped (:mod:`habla_common.shedding`); turns never are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from habla_contracts import Event, SpeechTurn, SpeechWindow

from .adapters import FasterWhisperTranscriber, Transcriber
from .config import AsrConfig
from .handlers import AsrHandler, Publish, SettingsLookup

__all__ = ["BEST_EFFORT", "KINDS", "bootstrap", "build", "main"]

KINDS = (SpeechTurn.KIND, SpeechWindow.KIND)
BEST_EFFORT = (SpeechWindow.KIND,)  # shed when behind; every turn still gets its final


class SettingsSource(Protocol):
    """The part of the bus the handler needs (``habla_common.bus.EventBus`` has it)."""

    def session_settings(self, session_id: str) -> Mapping[str, str]: ...


def bootstrap(
    config: AsrConfig,
    settings_lookup: SettingsLookup,
    *,
    transcriber: Transcriber | None = None,
) -> AsrHandler:
    """The service's handler with its dependencies; pass ``transcriber`` to override the model."""
    return AsrHandler(transcriber or FasterWhisperTranscriber.from_config(config), config, settings_lookup)


def build(
    bus: SettingsSource, config: AsrConfig, **overrides: Any
) -> tuple[
    Callable[[Event, Publish], None],
    Callable[[list[Event]], list[Event]],
    Callable[[Event, str, Publish], None],
]:
    """``(handle, select, give_up)`` for :func:`habla_common.service.run_consumer` (``build=``)."""
    handler = bootstrap(config, bus.session_settings, **overrides)
    return handler.handle, handler.select, handler.give_up


def main() -> None:
    from habla_common.service import run_consumer

    config = AsrConfig.from_env()  # a bad setting fails before Redis or the model is touched
    run_consumer(service="asr", group="asr", kinds=KINDS, build=lambda bus: build(bus, config), best_effort=BEST_EFFORT)


if __name__ == "__main__":
    main()
