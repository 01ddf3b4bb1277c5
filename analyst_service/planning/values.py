"""Value linking: question words to the known cell values of text columns.

Known values come from the dataset profile (the most frequent values of every text column) and
from column descriptions ("one of a, b, c"). A question word links to a value when it equals it,
abbreviates or extends it ("saturdays" -> `Sat`, "democrats" -> `Democratic`, "assistant professor"
-> `AsstProf`), is an everyday alias of it ("women" -> `Female`, "ohio" -> `OH`), or names the
first words of a longer value ("nuclear" -> `Nuclear Energy`). One- and two-character values
(`B`, `f`) link only right after or before a word naming their column ("discipline B").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analyst_service.planning.schema_linking import STOPWORDS, ColumnInfo, name_words
from analyst_service.planning.vocabulary import abbreviates, value_aliases

# Words that play a structural role in questions; they never link to a cell value on their own.
CUE_WORDS = frozenset(
    "total number count average mean sum first last most least top bottom highest lowest more less "
    "than over under above below between maximum minimum max min new old year month day date time "
    "name place rank percent percentage per other same next previous before after".split()
)


@dataclass(frozen=True)
class ValueMatch:
    """Question tokens [start, end) that name one or more values of one column."""

    start: int
    end: int
    column: ColumnInfo
    values: tuple[str, ...]
    strength: float


def value_words(value: str) -> list[str]:
    """Lower-case singular words of a cell value, camel case split ("AsstProf" -> asst, prof)."""
    return name_words(value)


def _word_matches(word: str, token: str, value_word: str) -> float:
    if word == value_word or token == value_word:
        return 1.0
    if value_word in value_aliases(word) or value_word in value_aliases(token):
        return 0.9
    if len(value_word) >= 3 and word.startswith(value_word) and value_word.isalpha():
        return 0.8
    if len(word) >= 4 and value_word.startswith(word):
        return 0.8
    if abbreviates(value_word, word):
        return 0.7
    return 0.0


# A cell opening that names no value: a rank ("#1 USC*") or an away marker ("at Wake Forest*").
_PREFIX = re.compile(r"^\s*(#\s*\d+|(at|vs\.?|v\.?)(?=\s))\s+(?=[^\W\d])", flags=re.IGNORECASE)


def _without_prefix(value: str) -> str:
    """The cell without a leading rank or away marker, when a name follows it."""
    return _PREFIX.sub("", value, count=1)


def _column_named_near(column: ColumnInfo, words: list[str], start: int, end: int) -> tuple[int, int] | None:
    if start > 0 and words[start - 1] in column.words:
        return start - 1, end
    if end < len(words) and words[end] in column.words:
        return start, end + 1
    return None


def link_values(tokens: list[str], words: list[str], used: list[bool], columns: list[ColumnInfo]) -> list[ValueMatch]:
    """Find the value mentions of a question, longest and strongest first, without overlaps.

    Args:
        tokens: Question tokens.
        words: Singular forms of the tokens.
        used: Tokens already consumed by earlier passes.
        columns: Every column of the dataset.

    Returns:
        Non-overlapping matches; several values of one column on one span are merged
        ("manual" -> every `manual(...)` transmission).
    """
    candidates: list[ValueMatch] = []
    column_words = {w for c in columns for w in c.words}
    for column in columns:
        if column.is_boolean:
            continue
        for value in dict.fromkeys(column.values + column.top_values):
            vwords = value_words(_without_prefix(value))
            if not vwords:
                continue
            short = len(value.strip()) <= 2 or value.strip().replace(".", "").isdigit()
            code = value.strip().isupper() and value.strip().isalpha() and len(value.strip()) <= 4
            for start in range(len(words)):
                if used[start] or words[start] in STOPWORDS:
                    continue
                matched, score = 0, 0.0
                for offset, vword in enumerate(vwords):
                    i = start + offset
                    if i >= len(words) or used[i]:
                        break
                    s = _word_matches(words[i], tokens[i], vword)
                    if s == 0.0 or (s < 0.8 and code):
                        break  # a code (`LIN`, `OAO`) is written as it is, never abbreviated further
                    matched, score = matched + 1, score + s
                if not matched:
                    continue
                end = start + matched
                span_words = words[start:end]
                if all(w in STOPWORDS or w in CUE_WORDS for w in span_words) and span_words != vwords:
                    continue
                if matched < len(vwords):
                    # Only short values complete from their first words ("nuclear" -> Nuclear Energy);
                    # a sentence in a notes column is no value a question names by its opening, and a
                    # word whose letters merely occur in a first name ("round" and `Rod ...`) names none.
                    if len(vwords) > 3 or len(words[start]) < 4 or words[start] in CUE_WORDS \
                            or words[start] in column_words \
                            or score < 0.8 * matched:  # "the first team": the Team column, not `Team USA`
                        continue
                    strength = 0.5 * score / len(vwords)
                else:
                    strength = score / matched
                aliased = matched == 1 and vwords[0] in value_aliases(words[start])
                if short and not aliased:
                    near = _column_named_near(column, words, start, end)
                    if near is None or span_words != vwords:
                        continue
                    start, end = near
                elif len(span_words) == 1 and span_words[0] in CUE_WORDS and strength < 1.0:
                    continue
                candidates.append(ValueMatch(start, end, column, (value,), strength))
    candidates.sort(key=lambda m: (-(m.end - m.start), -m.strength, m.start))
    chosen: list[ValueMatch] = []
    taken: set[int] = set()
    for match in candidates:
        span = set(range(match.start, match.end))
        same = next((c for c in chosen if (c.start, c.end, c.column.ref) == (match.start, match.end, match.column.ref)
                     and abs(c.strength - match.strength) < 1e-9), None)
        if same is not None:
            chosen[chosen.index(same)] = ValueMatch(same.start, same.end, same.column, same.values + match.values,
                                                    same.strength)
            continue
        if span & taken:
            continue
        chosen.append(match)
        taken |= span
    return sorted(chosen, key=lambda m: m.start)

