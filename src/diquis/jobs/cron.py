"""Cron expressions evaluated on the wall clock of a time zone, for recurring jobs.

Syntax
------
Five fields ``minute hour day-of-month month day-of-week``, or six with ``second`` first
(as Hangfire/Cronos allow). Each field is ``*`` or a comma list of items; an item is a value
``a``, a range ``a-b``, or ``*``/``a``/``a-b`` followed by a step ``/n`` (``a/n`` means
``a-max/n``). Months accept ``JAN``-``DEC``, days of week ``SUN``-``SAT`` (``0`` and ``7`` are
both Sunday); names are case-insensitive. ``?`` means ``*`` in day-of-month and day-of-week,
and ``L`` in day-of-month is the last day of the month. Macros: ``@yearly``, ``@annually``,
``@monthly``, ``@weekly``, ``@daily``, ``@midnight``, ``@hourly``.

Day-of-month and day-of-week combine as in Vixie cron: if both fields are restricted (neither is
exactly ``*`` or ``?``) a day matches when *either* matches; otherwise only the restricted one
constrains. (Unlike Vixie cron, ``*/2`` counts as restricted: only a bare ``*``/``?`` does not.)

Time zones and daylight saving time (the rules of Hangfire's Cronos library)
---------------------------------------------------------------------------
The expression is matched against the wall clock of ``tz``; results are aware UTC datetimes.

* Clocks jump forward (a gap): a matching wall time inside the gap runs once, at the instant the
  gap ends (the first valid instant). All matches inside one gap collapse into that single
  instant, which is also the ordinary occurrence of the wall time at the gap's end if that
  matches, so ``*/15 * * * *`` across New York's 02:00->03:00 jump gives 01:45, 03:00, 03:15 and
  ``30 2 * * *`` gives 03:00 on that day.
* Clocks jump back (a fold, wall times that occur twice): an *interval* expression fires in both
  passes; a *fixed-time* expression fires only in the first (daylight-time) pass. An expression
  is interval-based when its second, minute or hour field contains ``*``, a range or a step
  (``30 * * * *``, ``*/5 1 * * *``, ``0-10 1 * * *``); lists of plain values stay fixed-time
  (``30 1 * * *``, ``0,30 1,2 * * *``). The implicit second of a five-field expression is fixed.

Every result is strictly later than ``after``, so successive calls give unique, strictly
increasing instants.
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import JobError

__all__ = ["Cron", "CronError", "next_occurrence", "parse_timezone"]


class CronError(JobError, ValueError):
    """A cron expression or time zone that cannot be used."""


_MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DOW_NAMES = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}

#: Longest stretch searched for a matching day: Feb 29 can be 8 years away (2096 -> 2104).
_MAX_SEARCH_YEARS = 10
#: Safety bound on candidate wall times skipped by the DST rules in one search.
_MAX_CANDIDATES = 200_000
_ONE_SECOND = timedelta(seconds=1)
_DAYS_IN_MONTH_MAX = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]


_SECOND = _FieldSpec("second", 0, 59, {})
_MINUTE = _FieldSpec("minute", 0, 59, {})
_HOUR = _FieldSpec("hour", 0, 23, {})
_DAY_OF_MONTH = _FieldSpec("day-of-month", 1, 31, {})
_MONTH = _FieldSpec("month", 1, 12, _MONTH_NAMES)
_DAY_OF_WEEK = _FieldSpec("day-of-week", 0, 7, _DOW_NAMES)


def _field_error(spec: _FieldSpec, value: str, problem: str, expression: str) -> CronError:
    return CronError(f"cron field {spec.name!r} value {value!r} {problem} in {expression!r}")


def _parse_value(spec: _FieldSpec, token: str, item: str, expression: str) -> int:
    upper = token.upper()
    if upper in spec.names:
        return spec.names[upper]
    if not (token.isascii() and token.isdigit()):
        raise _field_error(spec, item, "is not a valid value", expression)
    number = int(token)
    if not spec.low <= number <= spec.high:
        raise _field_error(spec, item, f"is out of range {spec.low}-{spec.high}", expression)
    return number


def _parse_field(
    spec: _FieldSpec, text: str, expression: str, *, allow_last: bool = False
) -> tuple[frozenset[int], bool, bool]:
    """Parse one field: (values, has ``L``, is interval-like: contains ``*``, range or step)."""
    values: set[int] = set()
    last = False
    interval = False
    for item in text.split(","):
        if not item:
            raise _field_error(spec, text, "has an empty list item", expression)
        if allow_last and item.upper() == "L":
            last = True
            continue
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            interval = True
            if not (step_text.isascii() and step_text.isdigit()):
                raise _field_error(
                    spec, item, "has a step that is not a positive integer", expression
                )
            step = int(step_text)
            limit = spec.high - spec.low + 1
            if not 1 <= step <= limit:
                raise _field_error(spec, item, f"has a step out of range 1-{limit}", expression)
        # ``*`` and ``a/n`` in day-of-week stop at Saturday, or ``1/2`` would add 7 = Sunday
        top = 6 if spec is _DAY_OF_WEEK else spec.high
        if base == "*":
            interval = True
            low, high = spec.low, top
        elif "-" in base:
            interval = True
            first, _, second = base.partition("-")
            low = _parse_value(spec, first, item, expression)
            high = _parse_value(spec, second, item, expression)
            if low > high:
                raise _field_error(spec, item, "is an inverted range", expression)
        else:
            low = _parse_value(spec, base, item, expression)
            high = top if slash else low
        values.update(range(low, high + 1, step))
    if spec is _DAY_OF_WEEK and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values), last, interval


def parse_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; CronError naming it if it is unknown."""
    if not isinstance(name, str) or not name.strip():
        raise CronError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CronError(f"unknown time zone {name!r}") from exc


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return parse_timezone(tz) if isinstance(tz, str) else tz


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise CronError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


def _offset_at(timestamp: int, tz: tzinfo) -> timedelta:
    offset = datetime.fromtimestamp(timestamp, tz).utcoffset()
    assert offset is not None
    return offset


def _transition(low: int, high: int, tz: tzinfo) -> int:
    """The first whole-second timestamp in (low, high] with the offset in force at ``high``."""
    target = _offset_at(high, tz)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(middle, tz) == target:
            high = middle
        else:
            low = middle
    return high


def _as_timestamp(wall: datetime, offset: timedelta) -> int:
    """Whole-second POSIX timestamp of naive ``wall`` read with UTC offset ``offset``."""
    return int((wall - offset).replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; build it with :meth:`Cron.parse`."""

    expression: str
    minute: frozenset[int]
    hour: frozenset[int]
    day_of_month: frozenset[int]
    month: frozenset[int]
    day_of_week: frozenset[int]
    #: ``frozenset({0})`` for five-field expressions
    second: frozenset[int] = frozenset({0})
    #: ``L`` in day-of-month: the last day of each month also matches
    last_day_of_month: bool = False
    #: day-of-month / day-of-week is a bare ``*`` or ``?`` (does not restrict the day)
    day_of_month_any: bool = True
    day_of_week_any: bool = True
    #: fires in both passes of a DST fold (second, minute or hour has ``*``, a range or a step)
    interval: bool = False
    _seconds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _minutes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _hours: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_seconds", tuple(sorted(self.second)))
        object.__setattr__(self, "_minutes", tuple(sorted(self.minute)))
        object.__setattr__(self, "_hours", tuple(sorted(self.hour)))

    @classmethod
    def parse(cls, expression: str) -> Cron:
        """Parse ``expression``; CronError naming the bad field and value if it is invalid."""
        if not isinstance(expression, str):
            raise CronError(f"cron expression must be a string, got {type(expression).__name__}")
        text = expression.strip()
        if not text:
            raise CronError("cron expression is empty")
        if text.startswith("@"):
            macro = _MACROS.get(text.lower())
            if macro is None:
                known = ", ".join(_MACROS)
                raise CronError(f"unknown cron macro {text!r}; expected one of {known}")
            return dataclasses.replace(cls.parse(macro), expression=text)
        parts = text.split()
        if len(parts) not in (5, 6):
            raise CronError(
                f"cron expression {text!r} has {len(parts)} fields; expected 5 "
                "(minute hour day-of-month month day-of-week) or 6 (second first)"
            )
        interval = False
        second: frozenset[int] = frozenset({0})
        if len(parts) == 6:
            second, _, interval = _parse_field(_SECOND, parts.pop(0), text)
        minute_text, hour_text, dom_text, month_text, dow_text = parts
        minute, _, minute_interval = _parse_field(_MINUTE, minute_text, text)
        hour, _, hour_interval = _parse_field(_HOUR, hour_text, text)
        dom_any = dom_text == "?" or dom_text == "*"
        dow_any = dow_text == "?" or dow_text == "*"
        dom, last, _ = _parse_field(
            _DAY_OF_MONTH, "*" if dom_any else dom_text, text, allow_last=True
        )
        month, _, _ = _parse_field(_MONTH, month_text, text)
        dow, _, _ = _parse_field(_DAY_OF_WEEK, "*" if dow_any else dow_text, text)
        if dow_any and not dom_any and not last:
            longest = max(_DAYS_IN_MONTH_MAX[m - 1] for m in month)
            if min(dom) > longest:
                raise CronError(
                    f"cron expression {text!r} can never match: day-of-month {dom_text!r} "
                    f"does not occur in month {month_text!r}"
                )
        return cls(
            expression=text,
            minute=minute,
            hour=hour,
            day_of_month=dom,
            month=month,
            day_of_week=dow,
            second=second,
            last_day_of_month=last,
            day_of_month_any=dom_any,
            day_of_week_any=dow_any,
            interval=interval or minute_interval or hour_interval,
        )

    # -- wall-clock matching -------------------------------------------------------------

    def _day_matches(self, year: int, month: int, day: int, days_in_month: int) -> bool:
        dom_ok = (
            self.day_of_month_any
            or day in self.day_of_month
            or (self.last_day_of_month and day == days_in_month)
        )
        dow_ok = self.day_of_week_any or (calendar.weekday(year, month, day) + 1) % 7 in (
            self.day_of_week
        )
        if self.day_of_month_any or self.day_of_week_any:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def _time_on_or_after(self, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
        hours, minutes, seconds = self._hours, self._minutes, self._seconds
        i = bisect_left(hours, hour)
        if i < len(hours) and hours[i] == hour:
            j = bisect_left(minutes, minute)
            if j < len(minutes) and minutes[j] == minute:
                k = bisect_left(seconds, second)
                if k < len(seconds):
                    return hour, minute, seconds[k]
                j += 1
            if j < len(minutes):
                return hour, minutes[j], seconds[0]
            i += 1
        if i < len(hours):
            return hours[i], minutes[0], seconds[0]
        return None

    def _next_wall(self, start: datetime) -> datetime:
        """The first naive wall time >= ``start`` (whole seconds) that the fields match."""
        year, month, day = start.year, start.month, start.day
        clock = (start.hour, start.minute, start.second)
        last_year = year + _MAX_SEARCH_YEARS
        while year <= last_year and year <= 9999:
            if month in self.month:
                days = calendar.monthrange(year, month)[1]
                while day <= days:
                    if self._day_matches(year, month, day, days):
                        found = self._time_on_or_after(*clock)
                        if found is not None:
                            return datetime(year, month, day, *found)
                    day += 1
                    clock = (0, 0, 0)
            month += 1
            day = 1
            clock = (0, 0, 0)
            if month > 12:
                month = 1
                year += 1
        raise CronError(
            f"cron expression {self.expression!r} has no occurrence within "
            f"{_MAX_SEARCH_YEARS} years after {start.isoformat()}"
        )

    # -- time zones ----------------------------------------------------------------------

    def _instants(self, wall: datetime, tz: tzinfo) -> list[int]:
        """The UTC timestamps at which matching wall time ``wall`` fires (DST rules)."""
        offset0 = wall.replace(tzinfo=tz, fold=0).utcoffset()
        offset1 = wall.replace(tzinfo=tz, fold=1).utcoffset()
        assert offset0 is not None and offset1 is not None
        if offset0 == offset1:
            return [_as_timestamp(wall, offset0)]
        if offset0 > offset1:  # fold: the wall time occurs twice, first in daylight time
            first = _as_timestamp(wall, offset0)
            return [first, _as_timestamp(wall, offset1)] if self.interval else [first]
        # gap: the wall time never exists; fire when the gap ends
        return [_transition(_as_timestamp(wall, offset1), _as_timestamp(wall, offset0), tz)]

    def _search(self, start: datetime, after: float, tz: tzinfo) -> int:
        wall = start
        for _ in range(_MAX_CANDIDATES):
            wall = self._next_wall(wall)
            later = [instant for instant in self._instants(wall, tz) if instant > after]
            if later:
                return min(later)
            wall += _ONE_SECOND
        raise CronError(
            f"cron expression {self.expression!r}: search gave up at {wall.isoformat()}"
        )

    def next_after(self, after: datetime, tz: str | ZoneInfo = "UTC") -> datetime:
        """The first occurrence strictly after ``after`` (aware), as an aware UTC datetime."""
        _require_aware("after", after)
        zone = _zone(tz)
        after_ts = after.timestamp()
        local = after.astimezone(zone)
        wall = local.replace(tzinfo=None, microsecond=0)
        best = self._search(wall + _ONE_SECOND, after_ts, zone)
        if self.interval and local.fold == 0:
            offset0 = local.utcoffset()
            offset1 = local.replace(fold=1).utcoffset()
            assert offset0 is not None and offset1 is not None
            if offset0 > offset1:
                # ``after`` lies in the first pass of a fold: the second pass, which starts at
                # the transition and replays earlier wall times, may hold an earlier occurrence.
                low = int(after_ts // 1)
                change = _transition(low, low + int((offset0 - offset1).total_seconds()), zone)
                fold_start = datetime.fromtimestamp(change, zone).replace(tzinfo=None)
                best = min(best, self._search(fold_start, after_ts, zone))
        return datetime.fromtimestamp(best, UTC)

    def occurrences(
        self,
        after: datetime,
        until: datetime,
        tz: str | ZoneInfo = "UTC",
        limit: int = 1000,
    ) -> list[datetime]:
        """Successive occurrences strictly after ``after`` and at or before ``until``.

        At most ``limit`` are returned (the earliest ones).
        """
        _require_aware("after", after)
        _require_aware("until", until)
        if limit < 0:
            raise CronError(f"limit must be >= 0, got {limit}")
        zone = _zone(tz)
        found: list[datetime] = []
        current = after
        while len(found) < limit:
            if current >= until:
                break
            current = self.next_after(current, zone)
            if current > until:
                break
            found.append(current)
        return found


@functools.lru_cache(maxsize=256)
def _parse_cached(expression: str) -> Cron:
    return Cron.parse(expression)


def next_occurrence(expression: str, after: datetime, tz: str = "UTC") -> datetime:
    """Parse ``expression`` and return its first occurrence strictly after ``after``, in UTC."""
    return _parse_cached(expression).next_after(after, tz)
