"""Column names glued from shortened words: `realcons` (real consumption), `tbilrate` (treasury
bill rate), `hs_grad` (high school graduation).

A span of question words names such a column when the column's name, with separators removed,
is the concatenation in order of a non-empty prefix of every word of the span. The span has two
words or more, and unless it has three or more (an initialism: `cpi` for consumer price index)
one word must keep three letters or more, so two single letters never make a match.
"""

from __future__ import annotations

import functools
import re


def squeeze(name: str) -> str:
    """A column name in lower case without separators ("hs_grad" -> "hsgrad")."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def glued_from(words: tuple[str, ...], name: str) -> bool:
    """True when `name` (squeezed) is a prefix of each word in turn, concatenated.

    Args:
        words: Lower-case question words, at least two.
        name: The column name.

    Returns:
        Whether the words, each shortened to a non-empty prefix, spell the whole name.
    """
    target = squeeze(name)
    return len(words) >= 2 and all(w.isalpha() for w in words) and _spells(words, target, 0, len(words) >= 3)


@functools.cache
def _spells(words: tuple[str, ...], target: str, start: int, long_part: bool) -> bool:
    if not words:
        return start == len(target) and long_part
    word, rest = words[0], words[1:]
    for size in range(min(len(word), len(target) - start), 0, -1):
        if target.startswith(word[:size], start) and _spells(rest, target, start + size, long_part or size >= 3):
            return True
    return False


# Words a glued name ends with to say it holds the whole amount of what its head abbreviates.
_WHOLE_TAILS = ("total", "tot", "all")


def whole_of(word: str, column_word: str) -> bool:
    """True when a one-word column name is a shortening of `word` glued to "total" (`revtotal`).

    "revenue" alone names `revtotal`, the whole amount, and not `revgrowth` or `revdomestic`,
    whose tails narrow the quantity down. The head keeps three letters or more and is a prefix of
    the word, so short heads never match by accident.
    """
    for tail in _WHOLE_TAILS:
        head = column_word[: -len(tail)]
        if column_word.endswith(tail) and len(head) >= 3 and len(word) > len(head) and word.startswith(head):
            return True
    return False
