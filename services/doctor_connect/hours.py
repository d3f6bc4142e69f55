"""Working hours: the days and the daily time span a doctor works, in the practice's time
zone. `"mon-fri 08:00-16:00"`, `"mon,wed 09:00-12:00"`, `"daily 00:00-24:00"` (around the
clock); a span may run past midnight (`"daily 22:00-06:00"`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AROUND_THE_CLOCK = "daily 00:00-24:00"


class HoursError(ValueError):
    pass


def _minutes(clock: str) -> int:
    try:
        hours, minutes = clock.split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError:
        raise HoursError(f"not a time: {clock!r}") from None
    if not (0 <= int(minutes) < 60 and 0 <= value <= 24 * 60):
        raise HoursError(f"not a time: {clock!r}")
    return value


def _days(spec: str) -> frozenset[int]:
    if spec in ("daily", "every day", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise HoursError(f"not a day or day range: {part!r}")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


@dataclass(frozen=True)
class WorkingHours:
    text: str
    days: frozenset[int]  # 0 = Monday
    start: int  # minutes after midnight
    end: int  # may be <= start: the span ends the next day

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        parts = text.strip().lower().split()
        if len(parts) != 2 or "-" not in parts[1]:
            raise HoursError(f"expected 'DAYS HH:MM-HH:MM', got {text!r}")
        first, last = parts[1].split("-", 1)
        return cls(" ".join(parts), _days(parts[0]), _minutes(first), _minutes(last))

    @property
    def around_the_clock(self) -> bool:
        return len(self.days) == 7 and self.start == 0 and self.end == 24 * 60

    def _spans(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The spans starting on `day` (naive local times)."""
        if day.weekday() not in self.days:
            return []
        midnight = dt.datetime.combine(day, dt.time())
        end = self.end if self.end > self.start else self.end + 24 * 60
        return [(midnight + dt.timedelta(minutes=self.start), midnight + dt.timedelta(minutes=end))]

    def contains(self, when: dt.datetime) -> bool:
        """Whether `when` (naive local time) is within the hours."""
        if self.around_the_clock:
            return True
        for offset in (-1, 0):
            for start, end in self._spans(when.date() + dt.timedelta(days=offset)):
                if start <= when < end:
                    return True
        return False

    def next_start(self, when: dt.datetime) -> dt.datetime | None:
        """`when` itself when within the hours, else the next time they begin (within a
        week); None when the hours name no day."""
        if self.contains(when):
            return when
        for offset in range(8):
            for start, _ in self._spans(when.date() + dt.timedelta(days=offset)):
                if start >= when:
                    return start
        return None
