"""When a reminder falls due: wall-clock times in the household's time zone.

A reminder is kept as a local time of day ("08:00") and a repeat (`intents.repeat`): a
senior who takes a pill at eight takes it at eight in summer and in winter. So occurrences
are computed per local date, and each is known by its local date and time (its *key*),
which is what makes it fire once:
- a time that does not exist on the day the clocks go forward (02:30) falls due at the
  instant it would have been without the change (03:30 by the new clock);
- a time that happens twice when the clocks go back (02:30) falls due the first time.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intents.repeat import WEEKDAYS

LOCALTIME = "/etc/localtime"

ONCE, DAILY, DAYS, HOURS = "once", "daily", "days", "hours"


class ScheduleError(ValueError):
    """A schedule that cannot be kept (a clock time or repeat that does not exist)."""


def time_zone(name: str) -> dt.tzinfo:
    """The household's zone by IANA name; empty: this machine's local zone."""
    if not name:
        return local_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def local_zone() -> dt.tzinfo:
    """This machine's zone with its rules (`TZ`, else /etc/localtime), so that a clock
    change is followed; only without either, the offset it has now."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open(LOCALTIME, "rb") as rules:
            return ZoneInfo.from_file(rules, key="localtime")
    except (OSError, ValueError):
        fixed = dt.datetime.now().astimezone().tzinfo
        assert fixed is not None
        return fixed


def household_clock(tz: dt.tzinfo) -> Callable[[], dt.datetime]:
    """The household's wall clock: what "today" and "at eight" mean to the senior."""
    return lambda: dt.datetime.now(tz)


def parse_clock(at: str) -> dt.time:
    try:
        hour, minute = (int(part) for part in at.split(":"))
        return dt.time(hour, minute)
    except ValueError:
        raise ScheduleError(f"{at!r} is not a time of day (HH:MM, 00:00-23:59)") from None


def local_moment(day: dt.date, at: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The instant `day` `at` means in `tz`: the first of two on the night the clocks go
    back; on the night they go forward, the instant it would have been under the old
    offset (02:30 → 03:30 by the new clock)."""
    moment = dt.datetime.combine(day, at).replace(tzinfo=tz, fold=0)
    return moment.astimezone(dt.UTC).astimezone(tz)


def schedule_of(
    at: str,
    days: list[str] | tuple[str, ...] | None = None,
    every_hours: int | None = None,
    date: str | None = None,
) -> Schedule:
    """A schedule from a caregiver's fields: a date makes a one-off, `every_hours` a
    repeat within the day, `days` certain weekdays; none of them: every day."""
    if date:
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            raise ScheduleError(f"{date!r} is not a date (YYYY-MM-DD)") from None
        return Schedule(ONCE, at, date=date)
    if every_hours is not None:
        return Schedule(HOURS, at, every_hours=every_hours)
    if days is not None:
        return Schedule(DAYS, at, days=tuple(days))
    return Schedule(DAILY, at)


@dataclass(frozen=True)
class Occurrence:
    key: str  # local date and time as said, e.g. "2026-03-29T02:30": unique per reminder
    at: dt.datetime  # the instant, aware


@dataclass(frozen=True)
class Schedule:
    kind: str  # once | daily | days | hours
    at: str  # HH:MM local: the time, or the first time of the day for `hours`
    date: str | None = None  # once: YYYY-MM-DD
    days: tuple[str, ...] | None = None  # days: mon..sun
    every_hours: int | None = None  # hours: 1..12

    def __post_init__(self) -> None:
        parse_clock(self.at)
        if self.kind == ONCE and not self.date:
            raise ScheduleError("a one-off reminder needs a date")
        if self.kind == DAYS and (not self.days or set(self.days) - set(WEEKDAYS)):
            raise ScheduleError(f"weekdays must be some of {', '.join(WEEKDAYS)}")
        if self.kind == HOURS and not (self.every_hours and 1 <= self.every_hours <= 12):
            raise ScheduleError("every N hours needs N between 1 and 12")
        if self.kind not in (ONCE, DAILY, DAYS, HOURS):
            raise ScheduleError(f"unknown repeat {self.kind!r}")

    @classmethod
    def from_repeat(cls, repeat: str, at: str, today: dt.date) -> Schedule:
        """From the intent's `repeat` slot (see intents.repeat) and time."""
        kind, _, rest = repeat.partition(":")
        if kind == ONCE:
            day = today + dt.timedelta(days=1 if rest == "tomorrow" else 0)
            return cls(ONCE, at, date=day.isoformat())
        if kind == DAYS:
            return cls(DAYS, at, days=tuple(rest.split(",")))
        if kind == HOURS:
            return cls(HOURS, at, every_hours=int(rest))
        return cls(DAILY, at)

    def times_of_day(self) -> list[dt.time]:
        first = parse_clock(self.at)
        if self.kind != HOURS:
            return [first]
        assert self.every_hours is not None
        start = first.hour * 60 + first.minute
        return [
            dt.time(minute // 60, minute % 60)
            for minute in range(start, 24 * 60, self.every_hours * 60)
        ]

    def on(self, day: dt.date) -> bool:
        if self.kind == ONCE:
            return day.isoformat() == self.date
        if self.kind == DAYS:
            assert self.days is not None
            return WEEKDAYS[day.weekday()] in self.days
        return True

    def once_at(self, tz: dt.tzinfo) -> dt.datetime | None:
        """A one-off's instant, however far ahead; None for a repeat."""
        if self.kind != ONCE:
            return None
        assert self.date is not None
        return local_moment(dt.date.fromisoformat(self.date), parse_clock(self.at), tz)

    def has_passed(self, now: dt.datetime, tz: dt.tzinfo) -> bool:
        """A one-off whose time is not after `now`; a repeat never passes."""
        moment = self.once_at(tz)
        return moment is not None and moment.astimezone(dt.UTC) <= now.astimezone(dt.UTC)

    def between(self, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> Iterator[Occurrence]:
        """Occurrences with start < at <= end, in time order. (Compared in UTC: Python
        compares two times of one zone by their wall clocks, wrong across a change.)"""
        start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        first = start.astimezone(tz).date() - dt.timedelta(days=1)
        last = end.astimezone(tz).date()
        day = first
        while day <= last:
            if self.on(day):
                for at in self.times_of_day():
                    moment = local_moment(day, at, tz)
                    if start < moment <= end:
                        yield Occurrence(f"{day.isoformat()}T{at:%H:%M}", moment)
            day += dt.timedelta(days=1)

    @property
    def repeat(self) -> str:
        """As an intent's `repeat` slot (intents.repeat), with a date for a one-off."""
        if self.kind == ONCE:
            return f"once:{self.date}"
        if self.kind == DAYS:
            assert self.days is not None
            return "days:" + ",".join(self.days)
        if self.kind == HOURS:
            return f"hours:{self.every_hours}"
        return DAILY
