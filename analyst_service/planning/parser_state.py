"""Shared state of the question parser: tokens, consumed flags, mentions, and small helpers.

The parser is split by responsibility into mixins over this state: `recognizers` (cue-word passes
that consume tokens), `assembly` (turning what was recognised into measures, groups and filters),
and `date_filters` (date phrases onto date, year and month columns). `question` composes them.
"""

from __future__ import annotations

import re

from dataclasses import dataclass

from analyst_service.planning.cues import NEGATIONS
from analyst_service.planning.dates import DateSpan
from analyst_service.planning.schema_linking import Mention, SchemaIndex, singular, tokenize
from analyst_service.planning.spec import Scalar, Spec
from analyst_service.planning.vocabulary import NUMBER_WORDS


@dataclass
class Cue:
    """An aggregation or ordering cue word spanning tokens [start, end)."""

    start: int
    end: int
    kind: str


class ParserState:
    """Tokens of one question and what the parser has recognised so far."""

    def __init__(self, question: str, index: SchemaIndex) -> None:
        """Tokenize the question.

        Args:
            question: The user's question.
            index: The dataset's schema index.
        """
        self.index = index
        self.tokens = tokenize(question)
        self.mentions_money = bool(re.search(r"[$€£]\s*\d|\d\s*(?:dollars?|euros?|pounds?|usd|eur|gbp)\b", question,
                                             flags=re.IGNORECASE))
        self.words = [singular(t) for t in self.tokens]
        self.used = [False] * len(self.tokens)
        self.spec = Spec()
        self.date_spans: list[DateSpan] = []
        self.bucket = 0
        self.calendar: tuple[int, int, int] | None = None  # (start, end, TimeBucket) of "hour of the day"
        self.time_entity = False  # "which month ...": one time bucket is the answer's label
        self.comparisons: list[tuple[int, int, int, list[Scalar]]] = []
        self.cues: list[Cue] = []
        self.group_cues: list[int] = []
        self.mentions: list[Mention] = []
        self.claimed: set[int] = set()
        self.value_columns: set[tuple[str, str]] = set()
        self.entity_position: int | None = None
        self.implicit_rank = False
        self.stray_numbers: list[int] = []
        self.unlinked: list[str] = []

    # -- token helpers -------------------------------------------------------------------------

    def _at(self, i: int, phrase: tuple[str, ...]) -> bool:
        end = i + len(phrase)
        return end <= len(self.tokens) and tuple(self.tokens[i:end]) == phrase and not any(self.used[i:end])

    def _use(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.used[i] = True

    def _number(self, i: int, words: bool = False) -> Scalar | None:
        """The number at token i ("40", "2.5", "100 k"; also "two" when `words`), or None."""
        if i >= len(self.tokens) or self.used[i]:
            return None
        token = self.tokens[i]
        if words and token in NUMBER_WORDS:
            return NUMBER_WORDS[token]
        try:
            value: Scalar = float(token) if "." in token else int(token)
        except ValueError:
            return None
        multiplier = {"k": 1_000, "thousand": 1_000, "m": 1_000_000, "million": 1_000_000,
                      "billion": 1_000_000_000, "bn": 1_000_000_000}.get(self.tokens[i + 1] if i + 1 < len(self.tokens) else "")
        if multiplier:
            value = value * multiplier
            self.used[i + 1] = True
        return value


    def _next_mention(self, position: int, window: int = 4, measure_only: bool = False) -> Mention | None:
        for mention in self.mentions:
            if id(mention) in self.claimed or mention.start < position or mention.start > position + window:
                continue
            column = mention.column
            if column is not None and column.ref in self.value_columns:
                continue
            if measure_only and (column is None or not (column.is_measure)):
                continue
            return mention
        return None

    def _negated(self, mention: Mention) -> bool:
        """True when a negation word stands right before the mention ("non-smokers")."""
        return any(self.tokens[j] in NEGATIONS for j in range(max(0, mention.start - 2), mention.start))

    def _claim(self, mention: Mention) -> Mention:
        self.claimed.add(id(mention))
        return mention

    def _candidates(self, keep: object) -> str:
        chosen = [c for c in self.index.columns if keep(c)]  # type: ignore[operator]
        return ", ".join(dict.fromkeys(c.name for c in chosen)) or "none"

