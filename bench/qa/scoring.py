"""Execution-accuracy scoring for the open question sets in ../shared/bench.

Pure functions, no I/O. They implement the "Scoring: execution accuracy" section of the sets'
README exactly:

* real-dev compares a gold *table*: same row count, and every gold column equals a different
  result column (a bipartite matching), as a multiset of normalised values, or as a sequence when
  ``order_matters``. Extra result columns are allowed and column names never matter.
* wtq-dev compares a gold *answer list*: some single result column, as a multiset, equals the
  gold answers under a lenient value match in the spirit of WikiTableQuestions' evaluator (equal
  normalised text, equal numbers at 4 significant digits, or the same date).

Both return a :class:`Verdict` whose ``reason`` says in one line why an answer was wrong.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SIGNIFICANT_DIGITS = 4
"""Numbers are compared after rounding to this many significant digits (README: 38.1148 ~ 38.11)."""

SUCCEEDED = "SUCCEEDED"


@dataclass(frozen=True)
class Verdict:
    """Whether one answer is correct and, when it is not, why.

    Attributes:
        correct: True when the answer counts as correct.
        kind: "correct", "status" (the question was not answered: status or error code),
            or "wrong_answer" (answered, but the rows do not match the gold).
        reason: One line for the failure list; empty when correct.
    """

    correct: bool
    kind: str
    reason: str = ""


CORRECT = Verdict(True, "correct")


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------

def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Round a number to ``digits`` significant digits (-0.0 becomes 0.0).

    Args:
        value: Any finite or infinite float.
        digits: Number of significant digits to keep.

    Returns:
        The rounded float; NaN and infinities are returned unchanged.
    """
    if math.isnan(value) or math.isinf(value) or value == 0:
        return 0.0 if value == 0 else value
    return float(f"{value:.{digits - 1}e}") + 0.0


# A plain number, with optional thousands commas ("1,234.5"), as a whole string.
_STRICT_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?",
                            re.IGNORECASE)


def parse_strict_number(text: str) -> float | None:
    """Read a string that is entirely a number (``1,234`` included), else None.

    Args:
        text: The string, already trimmed by the caller or not.

    Returns:
        The number as a float, or None when the text is not just a number.
    """
    text = text.strip()
    if not _STRICT_NUMBER.fullmatch(text):
        return None
    number = float(text.replace(",", ""))
    return None if math.isnan(number) or math.isinf(number) else number


def match_all(left: Sequence[Any], right: Sequence[Any], compatible: Callable[[int, int], bool]) -> bool:
    """Whether every item of ``left`` can be paired with a different item of ``right``.

    A maximum bipartite matching (Kuhn's augmenting paths); the inputs here are a few columns or a
    few answers, so the O(V*E) cost does not matter.

    Args:
        left: Items that must all be matched.
        right: Candidates; each can be used once.
        compatible: compatible(i, j) says whether left[i] may pair with right[j].

    Returns:
        True when a matching covers all of ``left``.
    """
    if len(left) > len(right):
        return False
    edges = [[j for j in range(len(right)) if compatible(i, j)] for i in range(len(left))]
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    return all(augment(i, set()) for i in range(len(left)))


def status_verdict(answer: Mapping[str, Any] | None) -> Verdict | None:
    """The verdict for an answer that was not SUCCEEDED (or is missing), else None.

    Args:
        answer: One output object of ``csv-analyst ask --json``, or None when no line came back.

    Returns:
        A "status" verdict naming the status and error code, or None when the status is SUCCEEDED.
    """
    if answer is None:
        return Verdict(False, "status", "NO_ANSWER: no output line for this question (dropped, or its batch hit the time limit)")
    status = str(answer.get("status") or "MISSING")
    if status == SUCCEEDED:
        return None
    error = answer.get("error")
    if isinstance(error, Mapping):
        code = str(error.get("code") or "UNKNOWN")
        message = str(error.get("message") or "").strip()
        return Verdict(False, "status", f"{status} {code}: {message}" if message else f"{status} {code}")
    return Verdict(False, "status", status)


def result_rows(answer: Mapping[str, Any]) -> list[list[Any]]:
    """The answer's rows as lists (a missing or malformed ``rows`` counts as no rows)."""
    rows = answer.get("rows")
    if not isinstance(rows, list):
        return []
    return [list(row) if isinstance(row, (list, tuple)) else [row] for row in rows]


def result_columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Split rows into ``width`` columns; a short row contributes a NULL to its missing cells."""
    return [[row[j] if j < len(row) else None for row in rows] for j in range(width)]


def _preview(values: Sequence[Any], limit: int = 3) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


# ---------------------------------------------------------------------------------------------
# real-dev: gold tables
# ---------------------------------------------------------------------------------------------

# An ISO date, optionally followed by a midnight time ("T00:00:00", " 00:00:00.000", "+00").
_ISO_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")
_ISO_MONTH = re.compile(r"(\d{4})-(\d{2})")


def _iso_date(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) of an ISO date or midnight timestamp; day 0 for ``YYYY-MM``."""
    month = _ISO_MONTH.fullmatch(text)
    if month:
        year, mon = int(month[1]), int(month[2])
        return (year, mon, 0) if 1 <= mon <= 12 else None
    match = _ISO_DATE_TIME.fullmatch(text)
    if not match:
        return None
    year, mon, day = int(match[1]), int(match[2]), int(match[3])
    if not (1 <= mon <= 12 and 1 <= day <= 31):
        return None
    time_parts = [match[4], match[5], match[6], match[7]]
    if any(part is not None and int(part) != 0 for part in time_parts):
        return None  # a timestamp that is not at midnight is not a date
    return year, mon, day


def normalise_real(value: Any) -> Hashable:
    """The comparison key of one real-dev value.

    * NULL stays NULL (and equals only NULL).
    * ``true``/``false`` (booleans, or those words as text) become 1/0.
    * Numbers and strings that read as numbers (``1,234`` included) are rounded to 4
      significant digits.
    * A midnight timestamp becomes its date, and a first-of-month date becomes ``YYYY-MM``.
    * Other text is trimmed and compared ignoring case.

    Args:
        value: A JSON value from the gold or from a result row.

    Returns:
        A hashable key; two values are equal under the README's rules when their keys are equal.
    """
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("number", 1.0 if value else 0.0)
    if isinstance(value, (int, float)):
        return ("number", round_significant(float(value)))
    text = str(value).strip()
    lowered = text.casefold()
    if lowered in ("true", "false"):
        return ("number", 1.0 if lowered == "true" else 0.0)
    number = parse_strict_number(text)
    if number is not None:
        return ("number", round_significant(number))
    date = _iso_date(text)
    if date is not None:
        year, month, day = date
        return ("month", year, month) if day in (0, 1) else ("date", year, month, day)
    return ("text", lowered)


def score_real(gold: Sequence[Sequence[Any]], order_matters: bool, answer: Mapping[str, Any] | None) -> Verdict:
    """Score one real-dev answer against its gold table.

    Args:
        gold: The gold rows (each a list of JSON values).
        order_matters: Whether columns are compared as sequences instead of multisets.
        answer: The CLI's output object for the question, or None when it gave none.

    Returns:
        The verdict.
    """
    failed = status_verdict(answer)
    if failed is not None:
        return failed
    assert answer is not None
    rows = result_rows(answer)
    if len(rows) != len(gold):
        return Verdict(False, "wrong_answer", f"row count {len(rows)}, gold has {len(gold)}")
    if not gold:
        return CORRECT
    gold_width = max(len(row) for row in gold)
    result_width = max((len(row) for row in rows), default=0)
    if result_width < gold_width:
        return Verdict(False, "wrong_answer", f"{result_width} result column(s), gold has {gold_width}")

    def keyed(columns: list[list[Any]]) -> list[Hashable]:
        if order_matters:
            return [tuple(normalise_real(v) for v in column) for column in columns]
        return [frozenset(Counter(normalise_real(v) for v in column).items()) for column in columns]

    gold_columns = result_columns(gold, gold_width)
    answer_columns = result_columns(rows, result_width)
    gold_keys, answer_keys = keyed(gold_columns), keyed(answer_columns)
    if match_all(gold_keys, answer_keys, lambda i, j: gold_keys[i] == answer_keys[j]):
        return CORRECT
    unmatched = [i for i in range(gold_width) if gold_keys[i] not in answer_keys]
    if unmatched:
        i = unmatched[0]
        return Verdict(False, "wrong_answer",
                       f"gold column {i + 1} {_preview(gold_columns[i])} equals no result column "
                       f"(result {_preview(rows[0])} ...)")
    return Verdict(False, "wrong_answer", "gold columns need the same result column twice")


# ---------------------------------------------------------------------------------------------
# wtq-dev: answer lists
# ---------------------------------------------------------------------------------------------

_FOOTNOTES = re.compile(r"((?<!^)\[[^\]]*\]|\[\d+\]|[•♦†‡*#+])*$")
_TRAILING_PARENTHESIS = re.compile(r"(?<!^)( \([^)]*\))*$")
_SURROUNDING_QUOTES = re.compile(r'^"([^"]*)"$')


def normalise_wtq_text(text: str) -> str:
    """Normalise answer text the way WikiTableQuestions' official evaluator does.

    Removes accents, makes curly quotes and dashes plain, repeatedly strips trailing footnote
    marks (``[1]``, ``*``, ``†``, ``+``), a trailing parenthesis (``Rome (1960)`` -> ``rome``) and
    surrounding double quotes, then a final period; collapses white space; ignores case.

    Args:
        text: The raw text.

    Returns:
        The normalised text.
    """
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn")
    text = re.sub(r"[‘’´`]", "'", text)
    text = re.sub(r"[“”]", '"', text)
    text = re.sub(r"[‐‑‒–—―−]", "-", text)
    while True:
        before = text
        text = _FOOTNOTES.sub("", text.strip())
        text = _TRAILING_PARENTHESIS.sub("", text.strip())
        text = _SURROUNDING_QUOTES.sub(r"\1", text.strip())
        if text == before:
            break
    if text.endswith("."):
        text = text[:-1]
    return re.sub(r"\s+", " ", text).lower().strip()


_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}
# A lenient gold number: optional currency sign, digits with "," or single-space thousands
# separators, and then only a suffix with no digits that starts with "%", a letter or a space
# ("45%", "2nd", "17 years", "4.60 m"), so "1-2" and "3:45" stay text.
_LENIENT_NUMBER = re.compile(
    r"(?P<sign>[-+]?)\s*[$€£¥₹]?\s*(?P<number>\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?P<rest>[^\d]*)")
_ORDINAL_OR_UNIT = re.compile(r"(?:%|[a-z]+)?(?:\s+\D*)?")


def parse_gold_number(text: str) -> float | None:
    """Read a gold answer leniently as a number, or None.

    ``1,234``, ``98 453``, ``$50``, ``45%``, ``17 years``, ``4.60 m``, ``2nd`` and ``two`` are
    numbers; a date (``June 28, 1998``, ``1998-06-28``) or text with more digits after the number
    (``1-2``, ``3:45``) is not.

    Args:
        text: The gold answer as written.

    Returns:
        The number, or None.
    """
    normalised = normalise_wtq_text(text)
    if normalised in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[normalised])
    if parse_gold_date(text) is not None and not re.fullmatch(r"\d{4}", normalised):
        return None
    match = _LENIENT_NUMBER.fullmatch(normalised)
    if not match:
        return None
    rest = match["rest"]
    if rest and not _ORDINAL_OR_UNIT.fullmatch(rest):
        return None
    number = float(match["number"].replace(",", "").replace(" ", ""))
    return -number if match["sign"] == "-" else number


def parse_result_number(value: Any) -> float | None:
    """A result value as a number: a JSON number, or a string entirely a number once normalised.

    Args:
        value: A value from a result row.

    Returns:
        The number, or None (booleans and NULL are not numbers).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    return parse_strict_number(normalise_wtq_text(str(value)))


_MONTHS = {name: index for index, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"),
     ("nov", "november"), ("dec", "december")], start=1) for name in names}
_MONTH_NAME = r"(?P<month>[a-z]+)\.?"
_GOLD_DATE_FORMS = [
    re.compile(rf"{_MONTH_NAME}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})"),  # June 28, 1998
    re.compile(rf"(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_NAME},?\s+(?P<year>\d{{4}})"),  # 28 June 1998
    re.compile(rf"{_MONTH_NAME},?\s+(?P<year>\d{{4}})"),  # June 1998
]

DateKey = tuple[int, int, int]
"""(year, month, day); day 0 means the date is only known to the month."""


def parse_gold_date(text: str) -> DateKey | None:
    """Read a gold answer as a date: ``June 28, 1998``, ``28 June 1998``, ``June 1998`` or ISO.

    Args:
        text: The gold answer as written.

    Returns:
        (year, month, day), day 0 for a month-only date, or None.
    """
    normalised = normalise_wtq_text(text)
    for form in _GOLD_DATE_FORMS:
        match = form.fullmatch(normalised)
        if match and match["month"] in _MONTHS:
            day = int(match.groupdict().get("day") or 0)
            if day <= 31:
                return int(match["year"]), _MONTHS[match["month"]], day
    return _iso_date(normalised.upper())


def parse_result_date(value: Any) -> DateKey | None:
    """A result value as a date: ISO ``YYYY-MM-DD`` or ``YYYY-MM``, a DATE, or a midnight timestamp."""
    if not isinstance(value, str):
        return None
    return _iso_date(value.strip())


def dates_match(gold: DateKey, result: DateKey) -> bool:
    """Same year, month and day; a month-only gold also accepts a first-of-month result date.

    A month bucket comes back from DuckDB as the first day of the month (real-dev's rule says
    such a date equals ``YYYY-MM``), so ``June 1998`` matches ``1998-06`` and ``1998-06-01``.
    """
    if gold == result:
        return True
    return gold[2] == 0 and gold[:2] == result[:2] and result[2] == 1


def wtq_values_match(gold: str, value: Any) -> bool:
    """Whether one gold answer and one result value match (text, number or date).

    Args:
        gold: A gold answer as written in the question file.
        value: A value from a result row (JSON number, string, boolean or NULL).

    Returns:
        True when their normalised texts are equal, or both are numbers equal at 4 significant
        digits, or both are the same date.
    """
    if value is None:
        return False
    value_text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if normalise_wtq_text(gold) == normalise_wtq_text(value_text):
        return True
    gold_number, result_number = parse_gold_number(gold), parse_result_number(value)
    if gold_number is not None and result_number is not None:
        if round_significant(gold_number) == round_significant(result_number):
            return True
    gold_date, result_date = parse_gold_date(gold), parse_result_date(value)
    return gold_date is not None and result_date is not None and dates_match(gold_date, result_date)


def score_wtq(gold: Sequence[Sequence[Any]], order_matters: bool, answer: Mapping[str, Any] | None) -> Verdict:
    """Score one wtq-dev answer against its gold answer list.

    Args:
        gold: The gold rows, one answer per row (the first value of each row is the answer).
        order_matters: Whether the column must list the answers in the gold order.
        answer: The CLI's output object for the question, or None when it gave none.

    Returns:
        The verdict.
    """
    failed = status_verdict(answer)
    if failed is not None:
        return failed
    assert answer is not None
    answers = ["" if not row or row[0] is None else str(row[0]) for row in gold]
    rows = result_rows(answer)
    if len(rows) != len(answers):
        return Verdict(False, "wrong_answer", f"row count {len(rows)}, gold has {len(answers)} answer(s)"
                       f" {_preview(answers)}")
    width = max((len(row) for row in rows), default=0)
    for column in result_columns(rows, width):
        if order_matters:
            if all(wtq_values_match(g, v) for g, v in zip(answers, column, strict=True)):
                return CORRECT
        elif match_all(answers, column, lambda i, j, column=column: wtq_values_match(answers[i], column[j])):
            return CORRECT
    return Verdict(False, "wrong_answer", f"no result column equals the gold {_preview(answers)} "
                   f"(result {_preview(rows[0]) if rows else '[]'} ...)")


SCORERS: dict[str, Callable[[Sequence[Sequence[Any]], bool, Mapping[str, Any] | None], Verdict]] = {
    "real-dev": score_real,
    "wtq-dev": score_wtq,
}
"""The scoring rule of each known set, by set name."""
