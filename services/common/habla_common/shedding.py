"""Load shedding: when a consumer falls behind the live audio, live partials thin out
first; finals are never dropped.

Every event about audio carries ``received_at``, the wall-clock time the gateway received
that audio. A consumer's :class:`LoadShedder` watches how far behind the live audio it is
(``behind``: at each read, now minus the oldest ``received_at`` among the messages read, so
the age of the oldest one that was waiting for it; 0 for an empty read) and keeps a level:

* 0, normal: everything is handled;
* 1, thin (``behind`` ≥ ``thin_at_s``): a live partial is handled only if the last one of
  its utterance finished at least ``thin_interval_s`` ago; the rest are acked without work;
* 2, finals only (``behind`` ≥ ``finals_only_at_s``): every live partial is acked
  without work.

A level is entered at once, and left one step at a time only after ``behind`` has stayed
under ``recover`` × that level's entry threshold for ``hold_s`` seconds (hysteresis: a
consumer that sheds its backlog reads fresh messages at once, which alone would make it
flap back).

Why these measures: the services' ``select`` already keeps only the newest partial of an
utterance, and a new one arrives every second, so the partial a consumer picks is always
fresh; what shows it is behind is how long the messages it read had been waiting (which is
how long its last batch took). And thinning counts from the end of the last partial, not its
start, so it still frees the CPU when one partial takes longer than the interval.

Which kinds are best-effort is the service's call (``speech.window`` for asr,
``asr.partial`` for translate); every other kind always goes through.

Metrics: ``habla_consumer_behind_seconds{service}``, ``habla_shed_level{service}`` and
``habla_shed_total{service,kind}`` (partials acked without work). :func:`current_level`
tells a handler how loaded its process's consumer is (one consumer per process;
:func:`habla_common.service.run_consumer` installs its shedder), so the handler can put
off optional work.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from habla_contracts import Event

from .settings import ShedPolicy

__all__ = [
    "BEHIND_SECONDS",
    "FINALS_ONLY",
    "NORMAL",
    "SHED",
    "SHED_LEVEL",
    "THIN",
    "LoadShedder",
    "ShedPolicy",
    "current_level",
    "install",
]

log = logging.getLogger("habla.shedding")

NORMAL, THIN, FINALS_ONLY = 0, 1, 2
_NAMES = {NORMAL: "normal", THIN: "thinning live partials", FINALS_ONLY: "finals only"}

BEHIND_SECONDS = Gauge(
    "habla_consumer_behind_seconds", "How far behind the live audio the consumer's latest read was", ["service"]
)
SHED_LEVEL = Gauge("habla_shed_level", "Load-shedding level: 0 normal, 1 thin partials, 2 finals only", ["service"])
SHED = Counter("habla_shed", "Live partials acked without work because the consumer was behind", ["service", "kind"])

_installed: list[LoadShedder] = []  # the shedder of this process's consumer (run_consumer installs it)


def install(shedder: LoadShedder | None) -> None:
    """Make ``shedder`` the one :func:`current_level` reports (None: none)."""
    _installed[:] = [shedder] if shedder is not None else []


def current_level() -> int:
    """The shedding level of this process's consumer: 0 when none is installed."""
    installed = list(_installed)
    return installed[0].level if installed else NORMAL


def _key(event: Event) -> tuple[str, str]:
    """The live line a partial belongs to."""
    return (event.session_id, str(getattr(event, "utterance_id", "")))


class LoadShedder:
    """One consumer's shedding state. Not thread-safe: the consumer's loop owns it."""

    def __init__(self, policy: ShedPolicy, service: str, *, max_utterances: int = 1024, sheds: bool = True) -> None:
        """``sheds`` False: a consumer with nothing to shed (no best-effort kinds) only reports
        how far behind it is; its level stays 0."""
        if max_utterances < 1:
            raise ValueError("max_utterances must be at least 1")
        self.policy, self.service, self.max_utterances = policy, service, max_utterances
        self.sheds = sheds
        self.level = NORMAL
        self.behind = 0.0
        self._entry = {THIN: policy.thin_at_s, FINALS_ONLY: policy.finals_only_at_s}
        self._last_above = {THIN: -math.inf, FINALS_ONLY: -math.inf}  # last time behind ≥ recover × entry
        self._kept: OrderedDict[tuple[str, str], float] = OrderedDict()  # utterance -> last partial kept
        BEHIND_SECONDS.labels(service).set(0.0)
        SHED_LEVEL.labels(service).set(NORMAL)

    def observe(self, events: Iterable[Event], now: float) -> int:
        """Take in a batch read at wall-clock ``now`` (empty: nothing was waiting); returns the level."""
        stamps = [t for e in events if (t := float(getattr(e, "received_at", 0.0) or 0.0)) > 0]
        behind = max(0.0, now - min(stamps)) if stamps else 0.0
        self.behind = behind
        for level, entry in self._entry.items():
            if behind >= self.policy.recover * entry:
                self._last_above[level] = now
        if not self.sheds:
            BEHIND_SECONDS.labels(self.service).set(behind)
            return NORMAL
        up = max((lv for lv, entry in self._entry.items() if behind >= entry), default=NORMAL)
        if up > self.level:
            self._set(up)
        elif (
            self.level > NORMAL
            and behind < self.policy.recover * self._entry[self.level]
            and now - self._last_above[self.level] >= self.policy.hold_s
        ):
            self._set(self.level - 1)
        BEHIND_SECONDS.labels(self.service).set(behind)
        return self.level

    def keep(self, event: Event, now: float) -> bool:
        """Whether to handle best-effort ``event`` at the current level; a refusal is counted."""
        key = _key(event)
        last = self._kept.get(key)
        if self.level == NORMAL or (self.level == THIN and (last is None or now - last >= self.policy.thin_interval_s)):
            self._remember(key, now)
            return True
        SHED.labels(self.service, event.KIND).inc()
        return False

    def done(self, event: Event, now: float) -> None:
        """Best-effort ``event`` finished at ``now``: the thinning interval counts from here."""
        self._remember(_key(event), now)

    def _remember(self, key: tuple[str, str], now: float) -> None:
        self._kept[key] = now
        self._kept.move_to_end(key)
        while len(self._kept) > self.max_utterances:
            self._kept.popitem(last=False)

    @property
    def tracked(self) -> int:
        """Utterances whose last kept partial is remembered (at most ``max_utterances``)."""
        return len(self._kept)

    def _set(self, level: int) -> None:
        log.log(
            logging.WARNING if level == FINALS_ONLY else logging.INFO,
            "%s is %.1f s behind the live audio: shedding level %d (%s)",
            self.service,
            self.behind,
            level,
            _NAMES[level],
        )
        self.level = level
        SHED_LEVEL.labels(self.service).set(level)
