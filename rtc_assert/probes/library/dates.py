"""Calendar and clock arithmetic with exact answers (scorer ``exact``).

Easy: the weekday some days from a given weekday, and a clock time some hours and minutes
later. Hard: the date some days after a date (leap years included), the weekday of a date,
the days between two dates, and when a schedule of sessions and breaks ends. Weekday names
come from this module, never from the locale.
"""

from __future__ import annotations

import datetime as dt
import random

from rtc_assert.probes.library.family import Difficulty, Example, Family

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _clock(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def _date(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    start = dt.date(first_year, 1, 1).toordinal()
    return dt.date.fromordinal(rng.randrange(start, dt.date(last_year, 12, 31).toordinal() + 1))


def _easy(rng: random.Random) -> tuple[str, str, str]:
    if rng.randrange(2) == 0:
        today, days = rng.randrange(7), rng.randrange(2, 100)
        text = (
            f"Today is {WEEKDAYS[today]}. What day of the week will it be in {days} days?"
            "\n\nAnswer with the name of the day only."
        )
        return text, WEEKDAYS[(today + days) % 7], "weekday_after"
    start, hours, minutes = rng.randrange(24 * 60), rng.randrange(1, 12), rng.randrange(1, 60)
    text = (
        f"It is {_clock(start)} on a 24-hour clock. What time will it be {hours} hours and "
        f"{minutes} minutes later?\n\nAnswer as HH:MM only."
    )
    return text, _clock(start + 60 * hours + minutes), "clock_after"


def _hard(rng: random.Random) -> tuple[str, str, str]:
    template = rng.randrange(4)
    if template == 0:
        day, days = _date(rng, 1990, 2040), rng.randrange(20, 400)
        text = (
            f"What is the date {days} days after {day.isoformat()}?\n\nAnswer as YYYY-MM-DD only."
        )
        return text, (day + dt.timedelta(days=days)).isoformat(), "date_after"
    if template == 1:
        day = _date(rng, 1900, 2099)
        text = (
            f"What day of the week is {day.isoformat()}?\n\nAnswer with the name of the day only."
        )
        return text, WEEKDAYS[day.weekday()], "weekday_of_date"
    if template == 2:
        first = _date(rng, 1995, 2035)
        later = first + dt.timedelta(days=rng.randrange(15, 300))
        text = (
            f"How many days after {first.isoformat()} is {later.isoformat()}?"
            "\n\nAnswer with the number only."
        )
        return text, str((later - first).days), "days_between"
    start = rng.randrange(7 * 60, 15 * 60, 5)
    sessions, length, gap = rng.randrange(3, 7), rng.randrange(20, 70, 5), rng.randrange(5, 20, 5)
    text = (
        f"A workshop starts at {_clock(start)} and has {sessions} sessions of {length} "
        f"minutes each, with a {gap}-minute break between consecutive sessions. At what time "
        "does the last session end?\n\nAnswer as HH:MM (24-hour clock) only."
    )
    return text, _clock(start + sessions * length + (sessions - 1) * gap), "schedule_end"


def make(rng: random.Random, difficulty: Difficulty, index: int) -> Example:
    """One calendar or clock question of the given difficulty."""
    del index
    text, answer, kind = _easy(rng) if difficulty == "easy" else _hard(rng)
    return Example(prompt=text, answer=answer, scorer="exact", kind=kind)


FAMILY = Family(
    name="calendar",
    version="1",
    seed=202,
    description="calendar and clock arithmetic: weekdays, dates, times (exact answers)",
    make=make,
)
