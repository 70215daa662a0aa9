"""Cron expressions with time zones: parsing, next occurrences and the DST rules."""

from __future__ import annotations

import calendar
import dataclasses
import itertools
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from diquis.jobs.cron import Cron, CronError, next_occurrence, parse_timezone

ALL_MINUTES = frozenset(range(60))
ALL_HOURS = frozenset(range(24))
ALL_DAYS = frozenset(range(1, 32))
ALL_MONTHS = frozenset(range(1, 13))
ALL_WEEKDAYS = frozenset(range(7))

NEW_YORK = "America/New_York"
LONDON = "Europe/London"
BERLIN = "Europe/Berlin"
SYDNEY = "Australia/Sydney"
LORD_HOWE = "Australia/Lord_Howe"
KOLKATA = "Asia/Kolkata"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def local(tz: str, year: int, month: int, day: int, hour: int, minute: int, fold: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold)


def increasing(moments: list[datetime]) -> bool:
    return all(a < b for a, b in itertools.pairwise(moments))


def chain(expression: str, after: datetime, tz: str, count: int) -> list[datetime]:
    cron = Cron.parse(expression)
    found: list[datetime] = []
    for _ in range(count):
        after = cron.next_after(after, tz)
        found.append(after)
    return found


# -- parsing ---------------------------------------------------------------------------------


def test_star_fields_match_everything() -> None:
    cron = Cron.parse("* * * * *")
    assert cron.expression == "* * * * *"
    assert cron.second == frozenset({0})
    assert cron.minute == ALL_MINUTES
    assert cron.hour == ALL_HOURS
    assert cron.day_of_month == ALL_DAYS
    assert cron.month == ALL_MONTHS
    assert cron.day_of_week == ALL_WEEKDAYS
    assert cron.day_of_month_any and cron.day_of_week_any
    assert not cron.last_day_of_month


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", {5}),
        ("0", {0}),
        ("59", {59}),
        ("1,2,3", {1, 2, 3}),
        ("10-12", {10, 11, 12}),
        ("*/15", {0, 15, 30, 45}),
        ("*/7", {0, 7, 14, 21, 28, 35, 42, 49, 56}),
        ("10-30/10", {10, 20, 30}),
        ("10-31/10", {10, 20, 30}),
        ("50/3", {50, 53, 56, 59}),
        ("1,5-7,*/20", {0, 1, 5, 6, 7, 20, 40}),
        ("*/1", set(range(60))),
        ("*/60", {0}),
        ("3-3", {3}),
        ("07", {7}),
    ],
)
def test_minute_field_syntax(text: str, expected: set[int]) -> None:
    assert Cron.parse(f"{text} * * * *").minute == frozenset(expected)


def test_hour_day_and_month_ranges_and_steps() -> None:
    cron = Cron.parse("0 */6 1-31/10 */4 *")
    assert cron.hour == frozenset({0, 6, 12, 18})
    assert cron.day_of_month == frozenset({1, 11, 21, 31})
    assert cron.month == frozenset({1, 5, 9})
    assert Cron.parse("0 20/2 * * *").hour == frozenset({20, 22})
    assert Cron.parse("0 0 25/3 * *").day_of_month == frozenset({25, 28, 31})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("JAN", {1}),
        ("dec", {12}),
        ("Mar,jUn,SEP", {3, 6, 9}),
        ("FEB-APR", {2, 3, 4}),
        ("jan-dec/3", {1, 4, 7, 10}),
        ("1,FEB", {1, 2}),
        ("NOV-12", {11, 12}),
    ],
)
def test_month_names(text: str, expected: set[int]) -> None:
    assert Cron.parse(f"0 0 1 {text} *").month == frozenset(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SUN", {0}),
        ("sat", {6}),
        ("0", {0}),
        ("7", {0}),
        ("0,7", {0}),
        ("MON-FRI", {1, 2, 3, 4, 5}),
        ("mon-fri/2", {1, 3, 5}),
        ("5-7", {5, 6, 0}),
        ("THU-SAT", {4, 5, 6}),
        ("*/2", {0, 2, 4, 6}),
        ("1/2", {1, 3, 5}),
        ("Tue,thu", {2, 4}),
        ("0-7", {0, 1, 2, 3, 4, 5, 6}),
    ],
)
def test_day_of_week_names_and_sunday(text: str, expected: set[int]) -> None:
    cron = Cron.parse(f"0 0 * * {text}")
    assert cron.day_of_week == frozenset(expected)
    assert not cron.day_of_week_any


def test_question_mark_and_last_day() -> None:
    cron = Cron.parse("0 0 ? * ?")
    assert cron.day_of_month_any and cron.day_of_week_any
    assert cron == dataclasses.replace(Cron.parse("0 0 * * *"), expression="0 0 ? * ?")
    last = Cron.parse("0 0 L * *")
    assert last.last_day_of_month and not last.day_of_month_any
    assert last.day_of_month == frozenset()
    both = Cron.parse("0 0 1,l * *")
    assert both.last_day_of_month and both.day_of_month == frozenset({1})


def test_six_fields_put_seconds_first() -> None:
    cron = Cron.parse("*/20 30 9 * * MON")
    assert cron.second == frozenset({0, 20, 40})
    assert cron.minute == frozenset({30})
    assert cron.hour == frozenset({9})
    assert cron.day_of_week == frozenset({1})
    assert cron.interval


@pytest.mark.parametrize(
    ("macro", "equivalent"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_macros(macro: str, equivalent: str) -> None:
    cron = Cron.parse(macro)
    assert cron.expression == macro
    assert dataclasses.replace(cron, expression=equivalent) == Cron.parse(equivalent)


def test_whitespace_and_equality() -> None:
    cron = Cron.parse("  0\t12   *  * \tMON ")
    assert cron.expression == "0\t12   *  * \tMON"
    assert cron.hour == frozenset({12})
    assert Cron.parse("0 12 * * 1") == dataclasses.replace(cron, expression="0 12 * * 1")
    assert hash(Cron.parse("0 12 * * 1")) == hash(Cron.parse("0 12 * * 1"))


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("30 1 * * *", False),
        ("0,30 1,2 * * *", False),
        ("0 0 1 1 *", False),
        ("0 0 */2 * MON-FRI", False),  # day fields never make it interval-based
        ("30 * * * *", True),
        ("*/5 1 * * *", True),
        ("0-10 1 * * *", True),
        ("0 1-3 * * *", True),
        ("0 1/2 * * *", True),
        ("0 30 1 * * *", False),
        ("* 30 1 * * *", True),
        ("0,30 30 1 * * *", False),
        ("@hourly", True),
        ("@daily", False),
    ],
)
def test_interval_classification(expression: str, interval: bool) -> None:
    assert Cron.parse(expression).interval is interval


# -- errors ----------------------------------------------------------------------------------


def test_cron_error_is_a_value_error() -> None:
    assert issubclass(CronError, ValueError)


def test_out_of_range_message_is_exact() -> None:
    with pytest.raises(CronError) as info:
        Cron.parse("0 25 * * *")
    assert str(info.value) == "cron field 'hour' value '25' is out of range 0-23 in '0 25 * * *'"


@pytest.mark.parametrize(
    ("expression", "fragments"),
    [
        ("", ["empty"]),
        ("   \t ", ["empty"]),
        ("* * * *", ["4 fields", "expected 5"]),
        ("* * * * * * *", ["7 fields", "expected 5"]),
        ("60 * * * *", ["'minute'", "'60'", "out of range 0-59"]),
        ("0 24 * * *", ["'hour'", "'24'", "out of range 0-23"]),
        ("0 0 0 * *", ["'day-of-month'", "'0'", "out of range 1-31"]),
        ("0 0 32 * *", ["'day-of-month'", "'32'", "out of range 1-31"]),
        ("0 0 * 0 *", ["'month'", "'0'", "out of range 1-12"]),
        ("0 0 * 13 *", ["'month'", "'13'", "out of range 1-12"]),
        ("0 0 * * 8", ["'day-of-week'", "'8'", "out of range 0-7"]),
        ("60 0 0 * * *", ["'second'", "'60'", "out of range 0-59"]),
        ("0 1-99 * * *", ["'hour'", "'1-99'", "out of range"]),
        ("*/0 * * * *", ["'minute'", "'*/0'", "step"]),
        ("*/-1 * * * *", ["'minute'", "'*/-1'", "step"]),
        ("0 1-5/0 * * *", ["'hour'", "'1-5/0'", "step"]),
        ("0 */x * * *", ["'hour'", "'*/x'", "step"]),
        ("0 */25 * * *", ["'hour'", "'*/25'", "step out of range 1-24"]),
        ("*/ * * * *", ["'minute'", "'*/'", "step"]),
        ("30-10 * * * *", ["'minute'", "'30-10'", "inverted range"]),
        ("0 0 * DEC-JAN *", ["'month'", "'DEC-JAN'", "inverted range"]),
        ("0 0 * * FRI-MON", ["'day-of-week'", "'FRI-MON'", "inverted range"]),
        ("abc * * * *", ["'minute'", "'abc'", "not a valid value"]),
        ("1.5 * * * *", ["'minute'", "'1.5'", "not a valid value"]),
        ("-5 * * * *", ["'minute'", "'-5'", "not a valid value"]),
        ("1- * * * *", ["'minute'", "'1-'", "not a valid value"]),
        ("1-2-3 * * * *", ["'minute'", "'1-2-3'", "not a valid value"]),
        ("+5 * * * *", ["'minute'", "'+5'", "not a valid value"]),
        ("\uff15 * * * *", ["'minute'", "not a valid value"]),
        ("1,,2 * * * *", ["'minute'", "'1,,2'", "empty list item"]),
        ("1, * * * *", ["'minute'", "empty list item"]),
        ("0 L * * *", ["'hour'", "'L'", "not a valid value"]),
        ("? * * * *", ["'minute'", "'?'", "not a valid value"]),
        ("0 0 * ? *", ["'month'", "'?'", "not a valid value"]),
        ("0 0 L/2 * *", ["'day-of-month'", "'L/2'", "not a valid value"]),
        ("0 0 * JANUARY *", ["'month'", "'JANUARY'", "not a valid value"]),
        ("0 0 * * MONDAY", ["'day-of-week'", "'MONDAY'", "not a valid value"]),
        ("0 0 * JAN MON-JAN", ["'day-of-week'", "'MON-JAN'", "not a valid value"]),
        ("0 0 1 * L", ["'day-of-week'", "'L'", "not a valid value"]),
        ("@every_minute", ["unknown cron macro", "'@every_minute'"]),
        ("@reboot", ["unknown cron macro", "'@reboot'"]),
        ("0 0 30 2 *", ["never match", "'30'", "'2'"]),
        ("0 0 31 4 *", ["never match", "'31'", "'4'"]),
        ("0 0 31 APR,JUN,SEP,NOV *", ["never match", "'31'"]),
        ("0 0 30-31 FEB *", ["never match", "'30-31'"]),
    ],
)
def test_parse_errors_name_field_and_value(expression: str, fragments: list[str]) -> None:
    with pytest.raises(CronError) as info:
        Cron.parse(expression)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(CronError, match="must be a string"):
        Cron.parse(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "expression", ["0 0 31 * *", "0 0 29 2 *", "0 0 30 2 MON", "0 0 L 2 *", "0 0 30,31 2,3 *"]
)
def test_rare_but_possible_days_parse(expression: str) -> None:
    Cron.parse(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "   ", "America", "../etc/passwd", "/x"])
def test_unknown_time_zone(name: str) -> None:
    with pytest.raises(CronError) as info:
        parse_timezone(name)
    assert f"unknown time zone {name!r}" in str(info.value)
    with pytest.raises(CronError, match="unknown time zone"):
        Cron.parse("* * * * *").next_after(utc(2024, 1, 1), name)


def test_parse_timezone_known() -> None:
    assert parse_timezone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert parse_timezone("UTC") == ZoneInfo("UTC")


def test_naive_datetimes_are_rejected() -> None:
    cron = Cron.parse("* * * * *")
    with pytest.raises(CronError, match="after must be a timezone-aware datetime"):
        cron.next_after(datetime(2024, 1, 1))
    with pytest.raises(CronError, match="until must be a timezone-aware datetime"):
        cron.occurrences(utc(2024, 1, 1), datetime(2024, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_occurrence("* * * * *", datetime(2024, 1, 1))


def test_negative_limit_is_rejected() -> None:
    with pytest.raises(CronError, match="limit"):
        Cron.parse("* * * * *").occurrences(utc(2024, 1, 1), utc(2024, 1, 2), limit=-1)


def test_search_beyond_year_9999_raises() -> None:
    with pytest.raises(CronError, match="no occurrence"):
        Cron.parse("0 0 1 1 *").next_after(utc(9999, 6, 1))


# -- next_after in UTC -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("* * * * *", utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 0, 1)),
        ("* * * * *", utc(2024, 1, 1, 0, 0, 0, 1), utc(2024, 1, 1, 0, 1)),
        ("* * * * *", utc(2024, 1, 1, 0, 0, 59, 999999), utc(2024, 1, 1, 0, 1)),
        ("* * * * *", utc(2024, 12, 31, 23, 59), utc(2025, 1, 1, 0, 0)),
        ("30 * * * *", utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 1, 30)),
        ("30 * * * *", utc(2024, 1, 1, 0, 29, 59), utc(2024, 1, 1, 0, 30)),
        ("0 0 * * *", utc(2024, 1, 31, 12), utc(2024, 2, 1)),
        ("15 10 31 * *", utc(2024, 1, 31, 10, 15), utc(2024, 3, 31, 10, 15)),
        ("0 0 31 * *", utc(2024, 4, 1), utc(2024, 5, 31)),
        ("0 0 L * *", utc(2024, 1, 31), utc(2024, 2, 29)),
        ("0 0 L * *", utc(2023, 2, 1), utc(2023, 2, 28)),
        ("0 0 L * *", utc(2024, 4, 1), utc(2024, 4, 30)),
        ("0 0 15,L * *", utc(2024, 4, 16), utc(2024, 4, 30)),
        ("0 0 29 2 *", utc(2023, 1, 1), utc(2024, 2, 29)),
        ("0 0 29 2 *", utc(2024, 2, 29), utc(2028, 2, 29)),
        ("0 0 29 2 *", utc(2097, 3, 1), utc(2104, 2, 29)),
        ("0 0 29 FEB *", utc(2000, 1, 1), utc(2000, 2, 29)),
        ("0 0 30,31 2,3 *", utc(2024, 2, 1), utc(2024, 3, 30)),
        ("0 0 1 1 *", utc(2024, 1, 1), utc(2025, 1, 1)),
        ("0 9 * * MON-FRI", utc(2024, 5, 3, 9), utc(2024, 5, 6, 9)),  # Friday -> Monday
        ("0 9 * * SUN", utc(2024, 5, 3), utc(2024, 5, 5, 9)),
        ("0 9 * * 7", utc(2024, 5, 3), utc(2024, 5, 5, 9)),
        ("0 0 13 * FRI", utc(2024, 9, 1), utc(2024, 9, 6)),  # OR: a Friday first
        ("0 0 13 * FRI", utc(2024, 9, 10), utc(2024, 9, 13)),  # OR: the 13th (a Friday)
        ("0 0 13 * MON", utc(2024, 9, 10), utc(2024, 9, 13)),  # OR: the 13th, a Friday
        ("0 0 1 * MON", utc(2024, 5, 28), utc(2024, 6, 1)),  # Saturday the 1st
        ("0 0 * * MON", utc(2024, 5, 28), utc(2024, 6, 3)),  # dom * -> Mondays only
        ("0 0 1 * *", utc(2024, 5, 28), utc(2024, 6, 1)),  # dow * -> the 1st only
        ("0 0 ? * MON", utc(2024, 5, 28), utc(2024, 6, 3)),
        ("0 0 1 * ?", utc(2024, 5, 28), utc(2024, 6, 1)),
        ("0 0 */10 * MON", utc(2024, 6, 1), utc(2024, 6, 3)),  # */10 restricts: OR
        ("0 0 1 JUN MON", utc(2024, 5, 1), utc(2024, 6, 1)),  # month limits both sides
        ("0 0 1 JUN MON", utc(2024, 6, 1), utc(2024, 6, 3)),
        ("0 0 1 JUN MON", utc(2024, 6, 24), utc(2025, 6, 1)),
        ("*/20 * * * * *", utc(2024, 1, 1, 0, 0, 40), utc(2024, 1, 1, 0, 1, 0)),
        ("5 0 0 * * *", utc(2024, 1, 1, 0, 0, 5), utc(2024, 1, 2, 0, 0, 5)),
        ("0-10/5 59 23 31 12 *", utc(2024, 12, 31, 23, 59, 5), utc(2024, 12, 31, 23, 59, 10)),
        ("0-10/5 59 23 31 12 *", utc(2024, 12, 31, 23, 59, 10), utc(2025, 12, 31, 23, 59)),
        ("@yearly", utc(2024, 6, 1), utc(2025, 1, 1)),
        ("@monthly", utc(2024, 12, 15), utc(2025, 1, 1)),
        ("@weekly", utc(2024, 5, 29), utc(2024, 6, 2)),
        ("@hourly", utc(2024, 5, 29, 23, 0), utc(2024, 5, 30, 0, 0)),
    ],
)
def test_next_after_utc(expression: str, after: datetime, expected: datetime) -> None:
    result = Cron.parse(expression).next_after(after)
    assert result == expected
    assert result.tzinfo is UTC
    assert result > after


def test_after_may_be_in_any_offset_and_result_is_utc() -> None:
    after = datetime(2024, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))  # 00:00 UTC
    result = Cron.parse("0 * * * *").next_after(after)
    assert result == utc(2024, 1, 1, 1)
    assert result.tzinfo is UTC
    assert next_occurrence("0 * * * *", after) == result


def test_zoneinfo_object_and_string_are_equivalent() -> None:
    cron = Cron.parse("0 9 * * *")
    after = utc(2024, 1, 1)
    assert cron.next_after(after, BERLIN) == cron.next_after(after, ZoneInfo(BERLIN))


# -- zones without a transition in play ------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "tz", "after", "expected"),
    [
        ("30 9 * * *", KOLKATA, utc(2024, 1, 1), utc(2024, 1, 1, 4, 0)),
        ("0 0 * * *", KOLKATA, utc(2024, 1, 1), utc(2024, 1, 1, 18, 30)),
        ("0 0 1 * *", KOLKATA, utc(2024, 1, 31, 18, 30), utc(2024, 2, 29, 18, 30)),
        ("0 9 * * *", BERLIN, utc(2024, 1, 15), utc(2024, 1, 15, 8)),  # CET +01:00
        ("0 9 * * *", BERLIN, utc(2024, 7, 15), utc(2024, 7, 15, 7)),  # CEST +02:00
        ("0 9 * * MON", BERLIN, utc(2024, 7, 14, 23), utc(2024, 7, 15, 7)),
        ("0 0 * * MON", BERLIN, utc(2024, 7, 14, 21, 59), utc(2024, 7, 14, 22)),  # day in Berlin
        ("0 9 * * *", NEW_YORK, utc(2024, 1, 15), utc(2024, 1, 15, 14)),
        ("0 9 * * *", NEW_YORK, utc(2024, 7, 15), utc(2024, 7, 15, 13)),
        ("0 9 * * *", LORD_HOWE, utc(2024, 7, 15), utc(2024, 7, 15, 22, 30)),  # +10:30
        ("0 9 * * *", LORD_HOWE, utc(2024, 1, 15), utc(2024, 1, 15, 22)),  # +11:00
        ("0 9 * * *", "UTC", utc(2024, 1, 15), utc(2024, 1, 15, 9)),
    ],
)
def test_next_after_in_zones(expression: str, tz: str, after: datetime, expected: datetime) -> None:
    assert Cron.parse(expression).next_after(after, tz) == expected
    assert next_occurrence(expression, after, tz) == expected


# -- daylight saving time: clocks jump forward ------------------------------------------------
# New York 2024-03-10 02:00 EST -> 03:00 EDT (07:00Z); London 2024-03-31 01:00 -> 02:00 (01:00Z);
# Berlin 2024-03-31 02:00 -> 03:00 (01:00Z); Sydney 2024-10-06 02:00 -> 03:00 (2024-10-05 16:00Z);
# Lord Howe 2024-10-06 02:00 -> 02:30 (2024-10-05 15:30Z).


@pytest.mark.parametrize(
    ("expression", "tz", "after", "expected"),
    [
        (
            "30 2 * * *",
            NEW_YORK,
            utc(2024, 3, 9, 12),
            [utc(2024, 3, 10, 7), utc(2024, 3, 11, 6, 30)],
        ),
        ("0 2 * * *", NEW_YORK, utc(2024, 3, 9, 12), [utc(2024, 3, 10, 7), utc(2024, 3, 11, 6)]),
        (
            "59 2 * * *",
            NEW_YORK,
            utc(2024, 3, 9, 12),
            [utc(2024, 3, 10, 7), utc(2024, 3, 11, 6, 59)],
        ),
        ("59 1 * * *", NEW_YORK, utc(2024, 3, 9, 12), [utc(2024, 3, 10, 6, 59)]),
        ("0 3 * * *", NEW_YORK, utc(2024, 3, 9, 12), [utc(2024, 3, 10, 7), utc(2024, 3, 11, 7)]),
        ("30 1 * * *", LONDON, utc(2024, 3, 30, 12), [utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)]),
        ("30 2 * * *", BERLIN, utc(2024, 3, 30, 12), [utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)]),
        ("30 2 * * *", SYDNEY, utc(2024, 10, 5), [utc(2024, 10, 5, 16), utc(2024, 10, 6, 15, 30)]),
        (
            "15 2 * * *",
            LORD_HOWE,
            utc(2024, 10, 5),
            [utc(2024, 10, 5, 15, 30), utc(2024, 10, 6, 15, 15)],
        ),
        # the spring-forward shift happens once a year, not every day
        ("30 2 * * *", NEW_YORK, utc(2024, 3, 11, 12), [utc(2024, 3, 12, 6, 30)]),
    ],
)
def test_spring_forward_fixed_time_runs_once_at_gap_end(
    expression: str, tz: str, after: datetime, expected: list[datetime]
) -> None:
    assert chain(expression, after, tz, len(expected)) == expected


def test_spring_forward_interval_skips_gap_without_duplicates() -> None:
    # 01:30, 01:45 EST; 02:xx does not exist; 03:00 EDT is both the gap end and a real match
    assert chain("*/15 * * * *", utc(2024, 3, 10, 6, 20), NEW_YORK, 5) == [
        utc(2024, 3, 10, 6, 30),
        utc(2024, 3, 10, 6, 45),
        utc(2024, 3, 10, 7, 0),
        utc(2024, 3, 10, 7, 15),
        utc(2024, 3, 10, 7, 30),
    ]
    # hourly in Berlin: 01:00 CET, then 03:00 CEST (02:00 is absent), 04:00 CEST
    assert chain("0 * * * *", utc(2024, 3, 30, 23, 30), BERLIN, 4) == [
        utc(2024, 3, 31, 0),
        utc(2024, 3, 31, 1),
        utc(2024, 3, 31, 2),
        utc(2024, 3, 31, 3),
    ]


def test_spring_forward_matches_inside_gap_collapse_to_one_gap_end_occurrence() -> None:
    # Lord Howe jumps 02:00 -> 02:30: 02:00 and 02:20 fall in the gap -> one run at 02:30 (+11)
    assert chain("*/20 * * * *", utc(2024, 10, 5, 15), LORD_HOWE, 4) == [
        utc(2024, 10, 5, 15, 10),  # 01:40 +10:30
        utc(2024, 10, 5, 15, 30),  # gap end, 02:30 +11:00
        utc(2024, 10, 5, 15, 40),  # 02:40 +11:00
        utc(2024, 10, 5, 16, 0),  # 03:00 +11:00
    ]
    # only gap minutes match: one run at the gap end, then the next day
    assert chain("5,10 2 * * *", utc(2024, 3, 10), NEW_YORK, 3) == [
        utc(2024, 3, 10, 7),
        utc(2024, 3, 11, 6, 5),
        utc(2024, 3, 11, 6, 10),
    ]


def test_spring_forward_with_seconds() -> None:
    assert chain("*/20 * * * * *", utc(2024, 3, 10, 6, 59, 20), NEW_YORK, 3) == [
        utc(2024, 3, 10, 6, 59, 40),  # 01:59:40 EST
        utc(2024, 3, 10, 7, 0, 0),  # 03:00:00 EDT
        utc(2024, 3, 10, 7, 0, 20),
    ]


def test_after_exactly_at_gap_end() -> None:
    assert Cron.parse("30 2 * * *").next_after(utc(2024, 3, 10, 7), NEW_YORK) == utc(
        2024, 3, 11, 6, 30
    )
    assert Cron.parse("*/30 * * * *").next_after(utc(2024, 3, 10, 7), NEW_YORK) == utc(
        2024, 3, 10, 7, 30
    )


# -- daylight saving time: clocks jump back ---------------------------------------------------
# New York 2024-11-03 02:00 EDT -> 01:00 EST (06:00Z): 01:xx at 05:xxZ and 06:xxZ.
# London 2024-10-27 02:00 BST -> 01:00 GMT (01:00Z): 01:xx at 00:xxZ and 01:xxZ.
# Sydney 2024-04-07 03:00 AEDT -> 02:00 AEST (16:00Z on 04-06): 02:xx at 15:xxZ and 16:xxZ.
# Lord Howe 2024-04-07 02:00 -> 01:30 (15:00Z on 04-06): 01:3x-01:5x at 14:xxZ and 15:xxZ.


@pytest.mark.parametrize(
    ("expression", "tz", "after", "expected"),
    [
        (
            "30 1 * * *",
            NEW_YORK,
            utc(2024, 11, 2, 12),
            [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)],
        ),
        (
            "0,30 1 * * *",
            NEW_YORK,
            utc(2024, 11, 3),
            [utc(2024, 11, 3, 5), utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6)],
        ),
        ("0 1 * * *", NEW_YORK, utc(2024, 11, 3, 5), [utc(2024, 11, 4, 6)]),  # after 1st pass
        ("30 1 * * *", NEW_YORK, utc(2024, 11, 3, 6, 10), [utc(2024, 11, 4, 6, 30)]),
        (
            "30 1 * * *",
            LONDON,
            utc(2024, 10, 26, 12),
            [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)],
        ),
        ("30 2 * * *", SYDNEY, utc(2024, 4, 6), [utc(2024, 4, 6, 15, 30), utc(2024, 4, 7, 16, 30)]),
        (
            "45 1 * * *",
            LORD_HOWE,
            utc(2024, 4, 6),
            [utc(2024, 4, 6, 14, 45), utc(2024, 4, 7, 15, 15)],
        ),
        ("0 2 * * *", NEW_YORK, utc(2024, 11, 3), [utc(2024, 11, 3, 7), utc(2024, 11, 4, 7)]),
        (
            "0 30 1 * * *",
            NEW_YORK,
            utc(2024, 11, 3),
            [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)],
        ),
    ],
)
def test_fall_back_fixed_time_runs_once_in_first_pass(
    expression: str, tz: str, after: datetime, expected: list[datetime]
) -> None:
    assert chain(expression, after, tz, len(expected)) == expected


@pytest.mark.parametrize(
    ("expression", "tz", "after", "expected"),
    [
        (
            "30 * * * *",
            NEW_YORK,
            utc(2024, 11, 3, 4),
            [utc(2024, 11, 3, h, 30) for h in (4, 5, 6, 7, 8)],  # 00:30, 01:30 x2, 02:30 EST
        ),
        (
            "*/30 1 * * *",
            NEW_YORK,
            utc(2024, 11, 3),
            [
                utc(2024, 11, 3, 5),
                utc(2024, 11, 3, 5, 30),
                utc(2024, 11, 3, 6),
                utc(2024, 11, 3, 6, 30),
                utc(2024, 11, 4, 6),
            ],
        ),
        (
            "0-1 1 * * *",
            NEW_YORK,
            utc(2024, 11, 3),
            [
                utc(2024, 11, 3, 5),
                utc(2024, 11, 3, 5, 1),
                utc(2024, 11, 3, 6),
                utc(2024, 11, 3, 6, 1),
            ],
        ),
        (
            "30 1-2 * * *",
            LONDON,
            utc(2024, 10, 27),
            [utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 2, 30)],
        ),
        (
            "*/30 2 * * *",
            SYDNEY,
            utc(2024, 4, 6, 14),
            [
                utc(2024, 4, 6, 15),
                utc(2024, 4, 6, 15, 30),
                utc(2024, 4, 6, 16),
                utc(2024, 4, 6, 16, 30),
            ],
        ),
        (
            "*/15 1 * * *",
            LORD_HOWE,
            utc(2024, 4, 6, 13),
            [
                utc(2024, 4, 6, 14),  # 01:00 +11
                utc(2024, 4, 6, 14, 15),
                utc(2024, 4, 6, 14, 30),  # 01:30 +11
                utc(2024, 4, 6, 14, 45),  # 01:45 +11
                utc(2024, 4, 6, 15),  # 01:30 +10:30 (second pass)
                utc(2024, 4, 6, 15, 15),  # 01:45 +10:30
                utc(2024, 4, 7, 14, 30),  # next day 01:00 +10:30
            ],
        ),
    ],
)
def test_fall_back_interval_runs_in_both_passes(
    expression: str, tz: str, after: datetime, expected: list[datetime]
) -> None:
    assert chain(expression, after, tz, len(expected)) == expected


def test_after_inside_first_pass_finds_earlier_wall_time_in_second_pass() -> None:
    cron = Cron.parse("10 * * * *")
    after = local(NEW_YORK, 2024, 11, 3, 1, 50, fold=0)  # 05:50Z, first pass
    assert cron.next_after(after, NEW_YORK) == utc(2024, 11, 3, 6, 10)  # 01:10 EST
    fixed = Cron.parse("10 1 * * *")
    assert fixed.next_after(after, NEW_YORK) == utc(2024, 11, 4, 6, 10)


def test_after_inside_second_pass() -> None:
    after = local(NEW_YORK, 2024, 11, 3, 1, 20, fold=1)  # 06:20Z
    assert Cron.parse("*/30 * * * *").next_after(after, NEW_YORK) == utc(2024, 11, 3, 6, 30)
    assert Cron.parse("0 1 * * *").next_after(after, NEW_YORK) == utc(2024, 11, 4, 6)
    assert Cron.parse("40 1 * * *").next_after(after, NEW_YORK) == utc(2024, 11, 4, 6, 40)


def test_fall_back_with_seconds_interval() -> None:
    found = Cron.parse("*/30 59 1 * * *").occurrences(
        utc(2024, 11, 3, 5), utc(2024, 11, 3, 7), NEW_YORK
    )
    assert found == [
        utc(2024, 11, 3, 5, 59),
        utc(2024, 11, 3, 5, 59, 30),
        utc(2024, 11, 3, 6, 59),
        utc(2024, 11, 3, 6, 59, 30),
    ]


# -- occurrences -----------------------------------------------------------------------------


def test_occurrences_lists_strictly_after_and_until_inclusive() -> None:
    cron = Cron.parse("0 * * * *")
    found = cron.occurrences(utc(2024, 1, 1, 0), utc(2024, 1, 1, 3))
    assert found == [utc(2024, 1, 1, 1), utc(2024, 1, 1, 2), utc(2024, 1, 1, 3)]
    assert cron.occurrences(utc(2024, 1, 1, 0), utc(2024, 1, 1, 3), limit=2) == found[:2]
    assert cron.occurrences(utc(2024, 1, 1, 0), utc(2024, 1, 1, 3), limit=0) == []
    assert cron.occurrences(utc(2024, 1, 1, 3), utc(2024, 1, 1, 0)) == []
    assert cron.occurrences(utc(2024, 1, 1, 0, 1), utc(2024, 1, 1, 0, 59)) == []


def test_occurrences_default_limit_and_zone() -> None:
    cron = Cron.parse("* * * * *")
    assert len(cron.occurrences(utc(2024, 1, 1), utc(2024, 2, 1))) == 1000
    assert Cron.parse("0 0 * * *").occurrences(utc(2024, 3, 9), utc(2024, 3, 12), NEW_YORK) == [
        utc(2024, 3, 9, 5),
        utc(2024, 3, 10, 5),
        utc(2024, 3, 11, 4),
    ]


# -- cross-checks ----------------------------------------------------------------------------

Sets = tuple[frozenset[int], frozenset[int], frozenset[int], frozenset[int], frozenset[int]]


def _random_field(
    rng: random.Random, low: int, high: int, names: list[str]
) -> tuple[str, set[int]]:
    """A random field text and, computed independently, the values it stands for."""
    items: list[str] = []
    values: set[int] = set()
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice(("star", "value", "value", "range", "step", "rangestep", "startstep"))
        a, b = sorted(rng.sample(range(low, high + 1), 2))
        step = rng.randint(1, max(1, (high - low) // 2))

        def name(v: int) -> str:
            return names[v - low] if names and rng.random() < 0.5 else str(v)

        if kind == "star":
            items.append("*")
            values.update(range(low, high + 1))
        elif kind == "value":
            items.append(name(a))
            values.add(a)
        elif kind == "range":
            items.append(f"{name(a)}-{name(b)}")
            values.update(range(a, b + 1))
        elif kind == "step":
            items.append(f"*/{step}")
            values.update(range(low, high + 1, step))
        elif kind == "rangestep":
            items.append(f"{name(a)}-{name(b)}/{step}")
            values.update(range(a, b + 1, step))
        else:
            items.append(f"{name(a)}/{step}")
            values.update(range(a, high + 1, step))
    return ",".join(items), values


MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _random_expression(
    rng: random.Random, *, dense_days: bool
) -> tuple[str, Callable[[datetime], bool]]:
    minute_text, minutes = _random_field(rng, 0, 59, [])
    hour_text, hours = _random_field(rng, 0, 23, [])
    if dense_days:
        dom_text, doms = rng.choice((("*", set(range(1, 32))), ("?", set(range(1, 32)))))
        month_text, months = "*", set(range(1, 13))
        dow_text, dows = rng.choice((("*", set(range(7))), _random_field(rng, 0, 6, DAYS)))
    else:
        dom_text, doms = rng.choice((("*", set(range(1, 32))), _random_field(rng, 1, 31, [])))
        month_text, months = rng.choice(
            (("*", set(range(1, 13))), _random_field(rng, 1, 12, MONTHS))
        )
        dow_text, dows = rng.choice((("*", set(range(7))), _random_field(rng, 0, 6, DAYS)))
    dom_any = dom_text in ("*", "?")
    dow_any = dow_text == "*"

    def matches(wall: datetime) -> bool:
        if wall.minute not in minutes or wall.hour not in hours or wall.month not in months:
            return False
        dom_ok = wall.day in doms
        dow_ok = wall.isoweekday() % 7 in dows
        if dom_any or dow_any:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    return f"{minute_text} {hour_text} {dom_text} {month_text} {dow_text}", matches


def _feasible(expression: str) -> bool:
    try:
        Cron.parse(expression)
    except CronError as exc:
        assert "never match" in str(exc)
        return False
    return True


def test_cross_check_against_minute_scan_in_utc() -> None:
    rng = random.Random(20240607)
    checked = 0
    for _ in range(120):
        expression, matches = _random_expression(rng, dense_days=True)
        cron = Cron.parse(expression)
        start = utc(rng.randint(2000, 2030), rng.randint(1, 12), rng.randint(1, 28))
        start += timedelta(minutes=rng.randrange(24 * 60), seconds=rng.randrange(60))
        window = start + timedelta(days=3)
        minute = start.replace(second=0) + timedelta(minutes=1)
        expected: list[datetime] = []
        while minute <= window and len(expected) < 5:
            if matches(minute):
                expected.append(minute)
            minute += timedelta(minutes=1)
        found = cron.occurrences(start, window, limit=5)
        assert found == expected, expression
        checked += len(found)
    assert checked > 200


def test_cross_check_against_day_scan_in_utc() -> None:
    rng = random.Random(7)
    for _ in range(150):
        expression, matches = _random_expression(rng, dense_days=False)
        if not _feasible(expression):
            continue
        cron = Cron.parse(expression)
        minutes = sorted(cron.minute)
        hours = sorted(cron.hour)
        day = date(rng.randint(1990, 2090), rng.randint(1, 12), rng.randint(1, 28))
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(seconds=1)
        expected: datetime | None = None
        for _ in range(3 * 366):
            wall = datetime(day.year, day.month, day.day, hours[0], minutes[0], tzinfo=UTC)
            if matches(wall) and wall > start:
                expected = wall
                break
            day += timedelta(days=1)
        result = cron.next_after(start)
        if expected is None:
            assert result > start + timedelta(days=3 * 366 - 1), expression
        else:
            assert result == expected, expression


def _dst_oracle(
    matches: Callable[[datetime], bool],
    interval: bool,
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
) -> list[datetime]:
    """Occurrences in (start, end] found from the UTC side, one minute at a time."""
    found = []
    instant = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while instant <= end:
        here = instant.astimezone(tz)
        before = (instant - timedelta(minutes=1)).astimezone(tz)
        wall = here.replace(tzinfo=None, fold=0)
        second_pass = here.fold == 1 and here.replace(fold=0).utcoffset() != here.utcoffset()
        fires = matches(wall) and (interval or not second_pass)
        jump = here.utcoffset() - before.utcoffset()  # type: ignore[operator]
        if jump > timedelta(0):  # the gap's wall times map to this, its end
            gap = before.replace(tzinfo=None, fold=0) + timedelta(minutes=1)
            while gap < wall:
                fires = fires or matches(gap)
                gap += timedelta(minutes=1)
        if fires:
            found.append(instant)
        instant += timedelta(minutes=1)
    return found


@pytest.mark.parametrize(
    ("tz", "transition"),
    [
        (NEW_YORK, utc(2024, 3, 10, 7)),
        (NEW_YORK, utc(2024, 11, 3, 6)),
        (BERLIN, utc(2024, 3, 31, 1)),
        (BERLIN, utc(2024, 10, 27, 1)),
        (SYDNEY, utc(2024, 10, 5, 16)),
        (SYDNEY, utc(2024, 4, 6, 16)),
        (LORD_HOWE, utc(2024, 10, 5, 15, 30)),
        (LORD_HOWE, utc(2024, 4, 6, 15)),
    ],
)
def test_cross_check_dst_rules_against_utc_side_oracle(tz: str, transition: datetime) -> None:
    zone = ZoneInfo(tz)
    rng = random.Random(f"{tz}{transition}")
    start, end = transition - timedelta(hours=4), transition + timedelta(hours=4)
    for _ in range(12):
        expression, matches = _random_expression(rng, dense_days=True)
        cron = Cron.parse(expression)
        after = start + timedelta(minutes=rng.randrange(120), seconds=rng.randrange(60))
        expected = _dst_oracle(matches, cron.interval, zone, after, end)
        assert cron.occurrences(after, end, tz) == expected, expression
    # and always a fixed-time and an interval expression aimed at the transition's hours
    wall_hours = {(transition + timedelta(minutes=d)).astimezone(zone).hour for d in (-60, 0, 60)}
    hours = ",".join(str(h) for h in sorted(wall_hours))
    for expression in (f"0,15,40 {hours} * * *", f"*/10 {hours} * * *", "*/25 * * * *"):
        cron = Cron.parse(expression)

        def matches(wall: datetime, cron: Cron = cron) -> bool:
            return wall.minute in cron.minute and wall.hour in cron.hour

        expected = _dst_oracle(matches, cron.interval, zone, start, end)
        assert cron.occurrences(start, end, tz) == expected, expression


@pytest.mark.parametrize("tz", [NEW_YORK, LONDON, SYDNEY, LORD_HOWE])
def test_daily_schedules_over_years_are_unique_and_increasing(tz: str) -> None:
    zone = ZoneInfo(tz)
    start, end = utc(2023, 1, 1), utc(2027, 1, 1)
    days = (end - start).days
    for expression in ("30 2 * * *", "0 2 * * *", "30 1 * * *", "45 1 * * *", "0 0 * * *"):
        found = Cron.parse(expression).occurrences(start, end, tz, limit=5000)
        assert increasing(found), expression
        per_day = Counter(moment.astimezone(zone).date() for moment in found)
        # exactly once on each local day, whatever the clocks do
        assert set(per_day.values()) == {1}, expression
        assert days - 2 <= len(found) <= days + 1, expression


def test_hourly_schedule_counts_follow_day_length() -> None:
    zone = ZoneInfo(NEW_YORK)
    found = Cron.parse("0 * * * *").occurrences(
        utc(2024, 1, 1, 4, 59), utc(2025, 1, 1, 4), NEW_YORK, 9000
    )
    assert len(found) == len(set(found)) == 366 * 24
    assert increasing(found)
    per_day = Counter(moment.astimezone(zone).date() for moment in found)
    assert per_day[date(2024, 3, 10)] == 23
    assert per_day[date(2024, 11, 3)] == 25
    assert set(per_day.values()) == {23, 24, 25}
    # Lord Howe's 30-minute shifts: 02:00 falls into the spring gap and runs at 02:30; the fold
    # (01:30-01:59 twice) holds no full hour; so every local day has 24 runs
    zone = ZoneInfo(LORD_HOWE)
    found = Cron.parse("0 * * * *").occurrences(
        utc(2023, 12, 31, 12, 59), utc(2024, 12, 31, 12, 59), LORD_HOWE, 9000
    )
    assert increasing(found)
    per_day = Counter(moment.astimezone(zone).date() for moment in found)
    assert set(per_day.values()) == {24}
    assert utc(2024, 10, 5, 15, 30) in found


def _transition_days(tz: str, year: int) -> list[datetime]:
    """Noon UTC on each day whose UTC offset differs from the day before."""
    zone = ZoneInfo(tz)
    noon = utc(year, 1, 1, 12)
    days = []
    for _ in range(366):
        following = noon + timedelta(days=1)
        if noon.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            days.append(following)
        noon = following
    return days


@pytest.mark.parametrize("tz", [NEW_YORK, BERLIN, SYDNEY, LORD_HOWE])
def test_interval_schedules_over_transitions_are_unique_and_increasing(tz: str) -> None:
    for year in (2023, 2024, 2025):
        transitions = _transition_days(tz, year)
        assert len(transitions) == 2
        for noon in transitions:
            start, end = noon - timedelta(hours=36), noon + timedelta(hours=12)
            for expression in (
                "*/15 * * * *",
                "*/7 0-3 * * *",
                "0,30 * * * *",
                "*/20 */10 0-4 * * *",
            ):
                limit = 20_000
                found = Cron.parse(expression).occurrences(start, end, tz, limit=limit)
                assert increasing(found), expression
                assert found[0] > start
                assert len(found) < limit


def test_calendar_sanity_of_fixtures() -> None:
    # the transition dates used above are Sundays
    for day in (date(2024, 3, 10), date(2024, 11, 3), date(2024, 10, 6), date(2024, 4, 7)):
        assert calendar.weekday(day.year, day.month, day.day) == calendar.SUNDAY
