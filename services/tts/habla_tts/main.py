"""Bootstrap and run loop of the tts service.

``python -m habla_tts`` (or ``habla-tts``): reads :class:`TtsConfig` from the environment,
builds the Spanish and English voices (loading a Piper model takes a second or two), warms
each up with one short sentence so the first real one is fast, logs which voices speak, then
consumes ``translation.final`` and ``tutor.replied`` as consumer group ``tts`` until SIGTERM.

A local voice that cannot work (espeak-ng or a Piper file missing) stops the start with the
reason; an HTTP speech server that does not answer yet is only warned about (it may be
starting too), and its sentences carry the error until it does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from habla_contracts import Event, TranslationFinal, TutorReplied

from .config import TtsConfig
from .engines import Synthesizer
from .errors import EngineUnavailable, SynthesisFailed
from .handlers import Publish, SettingsLookup, TtsHandler
from .voices import build_synthesizer

__all__ = ["KINDS", "bootstrap", "build", "build_voices", "main"]

log = logging.getLogger("habla.tts")

KINDS = (TranslationFinal.KIND, TutorReplied.KIND)


def build_voices(config: TtsConfig, *, warm_up: bool = True) -> dict[str, Synthesizer]:
    """Language -> its engine, built and warmed up once at start."""
    voices: dict[str, Synthesizer] = {}
    for language, spec in config.voices().items():
        started = time.perf_counter()
        voice = build_synthesizer(
            spec, language, rate=config.rate, threads=config.threads, http_timeout_s=config.http_timeout_s
        )
        if warm_up:
            try:
                voice.warm_up()
            except EngineUnavailable as e:
                if voice.engine != "http":
                    raise
                log.warning("the %s voice's server does not answer yet: %s", language, e)
            except SynthesisFailed as e:  # the voice exists; one slow or failed sentence is not fatal
                log.warning("the %s voice's warm-up sentence failed: %s", language, e)
        log.info("%s voice: %s (ready in %.2f s)", language, spec, time.perf_counter() - started)
        voices[language] = voice
    return voices


def bootstrap(
    config: TtsConfig, settings_lookup: SettingsLookup, *, voices: Mapping[str, Synthesizer] | None = None
) -> TtsHandler:
    """The service's handler with its voices (pass ``voices`` to use others)."""
    return TtsHandler(settings_lookup, voices if voices is not None else build_voices(config), config)


def build(
    settings_lookup: SettingsLookup, config: TtsConfig
) -> tuple[
    Callable[[Event, Publish], None], Callable[[list[Event]], list[Event]], Callable[[Event, str, Publish], None]
]:
    """``(handle, select, give_up)`` for :func:`habla_common.service.run_consumer` (``build=``)."""
    handler = bootstrap(config, settings_lookup)
    return handler.handle, _in_order, handler.give_up


def _in_order(events: list[Event]) -> list[Event]:
    """Every message in the order it came: each is spoken, none supersedes another."""
    return events


def main() -> None:
    from habla_common.service import run_consumer

    config = TtsConfig.from_env()  # a bad setting fails before Redis or an engine is touched
    run_consumer(service="tts", group="tts", kinds=KINDS, build=lambda bus: build(bus.session_settings, config))


if __name__ == "__main__":
    main()
