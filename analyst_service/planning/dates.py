"""Date phrases in questions: days, months, quarters, years, decades, and ranges of them.

A phrase becomes a half-open span [low, high) plus how it bounds the data ("in", "since",
"before"). The parser maps spans onto a DATE/TIMESTAMP column, or onto integer year and month
columns when a table stores those instead ("in 2008" -> `year = 2008`, "in july" -> `Month = 7`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

MONTHS = {name: i + 1 for i, name in enumerate(
    "january february march april may june july august september october november december".split())}
MONTHS.update({name[:3]: number for name, number in MONTHS.items() if name != "may"})
MONTHS["sept"] = 9
_OPENERS = {"since": "ge", "after": "gt", "from": "ge", "before": "lt", "until": "lt", "till": "lt",
            "in": "in", "during": "in", "on": "in", "of": "in", "for": "in", "over": "in", "throughout": "in"}
_RANGE_WORDS = {"to", "through", "thru", "until", "till", "and"}


@dataclass(frozen=True)
class DateSpan:
    """A date phrase of the question.

    Attributes:
        start: First token of the phrase (including an opener such as "since").
        end: One past its last token.
        low: First day of the span.
        high: First day after the span.
        bound: "in" (inside the span), "ge" (from low on), "gt" (after the span), "lt" (before low).
        month_only: Month number when the phrase names a month without a year ("in july").
        years_only: True when the phrase is made of whole years (maps onto an integer year column).
    """

    start: int
    end: int
    low: date
    high: date
    bound: str = "in"
    month_only: int = 0
    years_only: bool = False
    relative: tuple[str, int] | None = None


# "last month", "past 3 weeks", "this year": read against the data's own latest date.
RELATIVE_UNITS = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month",
                  "months": "month", "quarter": "quarter", "quarters": "quarter", "year": "year", "years": "year"}
_RELATIVE_OPENERS = {"last", "past", "previous", "this", "current", "latest", "recent", "trailing"}
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "twelve": 12}


def relative_span(unit: str, count: int, latest: date) -> tuple[date, date]:
    """The `count` calendar units ending with the one that holds `latest`, as [low, high)."""
    if unit == "day":
        return date.fromordinal(latest.toordinal() - count + 1), date.fromordinal(latest.toordinal() + 1)
    if unit == "week":
        monday = latest.toordinal() - latest.weekday()
        return date.fromordinal(monday - 7 * (count - 1)), date.fromordinal(monday + 7)
    if unit == "year":
        return date(latest.year - count + 1, 1, 1), date(latest.year + 1, 1, 1)
    months = 3 if unit == "quarter" else 1
    first_month = (latest.month - 1) // months * months  # 0-based month that starts the unit
    end_index = latest.year * 12 + first_month + months
    start_index = end_index - months * count
    return date(start_index // 12, start_index % 12 + 1, 1), date(end_index // 12, end_index % 12 + 1, 1)


def _relative(reader: _Reader, i: int) -> tuple[int, tuple[str, int]] | None:
    """A relative phrase at token i ("last month", "past 3 weeks"): (end, (unit, count))."""
    tokens = reader.tokens
    if not reader.free(i) or tokens[i] not in _RELATIVE_OPENERS:
        return None
    count, at = 1, i + 1
    if reader.free(at) and (tokens[at].isdigit() or tokens[at] in _NUMBER_WORDS):
        count = int(tokens[at]) if tokens[at].isdigit() else _NUMBER_WORDS[tokens[at]]
        at += 1
    if reader.free(at) and tokens[at] in RELATIVE_UNITS and 0 < count <= 1000:
        return at + 1, (RELATIVE_UNITS[tokens[at]], count)
    return None


_QUARTER_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": 4}


def _quarter(reader: _Reader, i: int) -> tuple[int, int]:
    """A quarter named at token i ("q2", "second quarter", "q2 of"): (its number or 0, the token after it)."""
    token = reader.tokens[i]
    if token.startswith("q") and len(token) == 2 and token[1] in "1234":
        quarter, at = int(token[1]), i + 1
    elif token in _QUARTER_ORDINALS and reader.free(i + 1) and reader.tokens[i + 1] in ("quarter", "qtr"):
        quarter, at = _QUARTER_ORDINALS[token], i + 2
    else:
        return 0, i
    return quarter, at + 1 if reader.free(at) and reader.tokens[at] == "of" else at


def is_year(token: str) -> bool:
    """True for a four-digit token between 1000 and 2100."""
    return token.isdigit() and len(token) == 4 and 1000 <= int(token) <= 2100


def _next_month(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1)


class _Reader:
    def __init__(self, tokens: list[str], used: list[bool]) -> None:
        self.tokens, self.used = tokens, used

    def free(self, i: int) -> bool:
        return 0 <= i < len(self.tokens) and not self.used[i]

    def day(self, i: int) -> int:
        if self.free(i) and self.tokens[i].isdigit() and 1 <= int(self.tokens[i]) <= 31 and len(self.tokens[i]) <= 2:
            return int(self.tokens[i])
        return 0

    def point(self, i: int, may_ok: bool) -> tuple[int, date | None, date | None, int, bool]:
        """Parse one date at token i: (end, low, high, month_only, years_only); low None when none."""
        if not self.free(i):
            return i, None, None, 0, False
        token = self.tokens[i]
        if len(token) == 10 and token[4] == "-":
            try:
                day = date.fromisoformat(token)
            except ValueError:
                return i, None, None, 0, False
            return i + 1, day, date.fromordinal(day.toordinal() + 1), 0, False
        if token in MONTHS and (token != "may" or may_ok or self.day(i + 1) or (self.free(i + 1) and is_year(self.tokens[i + 1]))):
            month, end = MONTHS[token], i + 1
            day = self.day(end)
            if day:
                end += 1
            if self.free(end) and is_year(self.tokens[end]):
                year = int(self.tokens[end])
                if day:
                    low = date(year, month, min(day, 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31))
                    return end + 1, low, date.fromordinal(low.toordinal() + 1), 0, False
                return end + 1, date(year, month, 1), _next_month(year, month), 0, False
            if day:  # a day without a year: the year comes from a neighbouring date
                return end, date(1, month, day), date(1, month, day), month, False
            return end, date(1, month, 1), date(1, month, 1), month, False
        quarter, at = _quarter(self, i)
        if quarter and self.free(at) and is_year(self.tokens[at]):  # "q3 2024", "the second quarter of 2023"
            year = int(self.tokens[at])
            return at + 1, date(year, 3 * quarter - 2, 1), _next_month(year, 3 * quarter), 0, False
        if is_year(token):
            year = int(token)
            if self.free(i + 1) and self.tokens[i + 1] == "s" and year % 10 == 0:
                return i + 2, date(year, 1, 1), date(year + 10, 1, 1), 0, True
            return i + 1, date(year, 1, 1), date(year + 1, 1, 1), 0, True
        return i, None, None, 0, False


def find_relative_dates(tokens: list[str], used: list[bool]) -> list[DateSpan]:
    """Find "last month", "in the past 3 weeks", "this year" (before "last" can read as a row's
    place in the file), marking their tokens used; they are resolved against the data later."""
    reader = _Reader(tokens, used)
    spans: list[DateSpan] = []
    for i in range(len(tokens)):
        if not reader.free(i):
            continue
        skip = 1 if tokens[i] in ("in", "during", "over", "for", "since", "from") else 0
        if skip and reader.free(i + 1) and tokens[i + 1] == "the":
            skip = 2
        found = _relative(reader, i + skip)
        if found is None:
            continue
        end, unit_count = found
        spans.append(DateSpan(i, end, date.min, date.min, "in", relative=unit_count))
        for j in range(i, end):
            used[j] = True
    return spans


def find_dates(tokens: list[str], used: list[bool]) -> list[DateSpan]:
    """Find every date phrase, marking its tokens used.

    Args:
        tokens: Question tokens.
        used: Tokens consumed by earlier passes; updated in place.

    Returns:
        The phrases in question order.
    """
    reader = _Reader(tokens, used)
    spans: list[DateSpan] = []
    i = 0
    while i < len(tokens):
        opener = tokens[i] if reader.free(i) and (tokens[i] in _OPENERS or tokens[i] == "between") else ""
        first = i + 1 if opener else i
        end, low, high, month_only, years = reader.point(first, may_ok=bool(opener))
        if low is None or high is None:
            i += 1
            continue
        # A range: "between A and B", "from A to B", "A through B", "A - B".
        if reader.free(end) and tokens[end] in _RANGE_WORDS and (opener in ("between", "from") or tokens[end] != "and"):
            end2, low2, high2, month2, years2 = reader.point(end + 1, may_ok=True)
            if low2 is not None and high2 is not None:
                if month_only and not month2:
                    low = low.replace(year=low2.year)
                    high = date.fromordinal(low.toordinal() + 1) if reader.day(first + 1) else _next_month(low2.year, low.month)
                    month_only = 0
                if month2 and not month_only:
                    low2 = low2.replace(year=low.year)
                    high2 = date.fromordinal(low2.toordinal() + 1)
                    month2 = 0
                if not month_only and not month2:
                    spans.append(DateSpan(i, end2, low, high2, "in", 0, years and years2))
                    for j in range(i, end2):
                        used[j] = True
                    i = end2
                    continue
        if opener == "between":
            i += 1
            continue
        bound = _OPENERS.get(opener, "in")
        spans.append(DateSpan(i, end, low, high, bound, month_only, years))
        for j in range(i, end):
            used[j] = True
        i = end
    return spans
