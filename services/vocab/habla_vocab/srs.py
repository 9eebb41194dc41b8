"""Spaced repetition: SM-2 scheduling and the daily due queue. Pure functions.

SM-2 as P. A. Wozniak published it for SuperMemo 2 (1987-1990, "Application of a computer
to improve the results obtained in working with the SuperMemo method"):

* grades (quality) 0-5; 3 or more is a correct answer;
* the first correct repetition is followed by an interval of 1 day, the second by 6,
  every later one by the previous interval times the E-Factor (rounded up to whole days);
* after each correct answer the E-Factor becomes
  ``EF + (0.1 - (5 - q) * (0.08 + (5 - q) * 0.02))``, never below 1.3, and the new E-Factor
  sets the next interval; a new item starts at 2.5;
* a grade below 3 starts the repetitions again from the beginning (next interval 1 day)
  *without changing the E-Factor*.

Only grades and their times are facts (``vocab.reviewed`` events); a card's schedule is
:func:`fold` over its reviews in time order, so replaying the log always gives the same
schedule. A card is due at its review time plus its interval. The daily due queue (what
falls due before the study day ends, with caps on reviews and new cards) is the SQL
function ``vocab_due`` in ``infra/migrations/0006_study.sql``, so the vocab service and the
gateway ask the same question the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from habla_contracts import REVIEW_GRADES

from .errors import BadGrade

__all__ = [
    "INITIAL_EASE",
    "MIN_EASE",
    "Schedule",
    "check_grade",
    "fold",
    "new_schedule",
    "review",
]

INITIAL_EASE = 2.5
MIN_EASE = 1.3


def check_grade(grade: object) -> int:
    """``grade`` if it is one of 0-5, else :class:`BadGrade` saying so."""
    if isinstance(grade, bool) or not isinstance(grade, int) or grade not in REVIEW_GRADES:
        raise BadGrade(f"a grade is an integer from 0 (forgotten) to 5 (perfect recall); got {grade!r}")
    return grade


@dataclass(frozen=True)
class Schedule:
    """A card's SM-2 state after its reviews so far."""

    due: datetime
    ease: float = INITIAL_EASE
    interval_days: int = 0
    repetitions: int = 0  # correct answers in a row
    reviews: int = 0
    lapses: int = 0  # wrong answers after at least one correct one
    last_grade: int | None = None
    last_reviewed: datetime | None = None

    @property
    def is_new(self) -> bool:
        return self.reviews == 0


def new_schedule(saved_at: datetime) -> Schedule:
    """A card never reviewed: due at once."""
    return Schedule(due=saved_at)


def review(schedule: Schedule, grade: int, at: datetime) -> Schedule:
    """The schedule after answering with ``grade`` at ``at`` (SM-2, see the module docstring)."""
    q = check_grade(grade)
    if q < 3:
        return replace(
            schedule,
            interval_days=1,
            repetitions=0,
            reviews=schedule.reviews + 1,
            lapses=schedule.lapses + (1 if schedule.repetitions > 0 else 0),
            last_grade=q,
            last_reviewed=at,
            due=at + timedelta(days=1),
        )
    ease = max(MIN_EASE, schedule.ease + 0.1 - (5 - q) * (0.08 + (5 - q) * 0.02))
    if schedule.repetitions == 0:
        interval = 1
    elif schedule.repetitions == 1:
        interval = 6
    else:
        interval = math.ceil(round(schedule.interval_days * ease, 6))
    return replace(
        schedule,
        ease=round(ease, 6),
        interval_days=interval,
        repetitions=schedule.repetitions + 1,
        reviews=schedule.reviews + 1,
        last_grade=q,
        last_reviewed=at,
        due=at + timedelta(days=interval),
    )


def fold(saved_at: datetime, reviews: Iterable[tuple[int, datetime]]) -> list[Schedule]:
    """The schedule after each of ``reviews`` (``(grade, at)`` in time order), starting from
    a new card saved at ``saved_at``. The last one is the card's current schedule."""
    out: list[Schedule] = []
    schedule = new_schedule(saved_at)
    for grade, at in reviews:
        schedule = review(schedule, grade, at)
        out.append(schedule)
    return out
