"""Things that happened: "how many tickets were closed" over a `closed_on` date left empty until then.

A passive past participle ("were closed", "have been shipped") that is the first word of a date
column with empty cells asks for the rows where that date is filled in: the event happened. The
negative form ("unresolved") is read by `Recognizers._empty_states`.
"""

from __future__ import annotations

from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import ColumnInfo
from analyst_service.planning.spec import Condition
from csv_analyst.v1 import plan_pb2

_BE_FORMS = frozenset({"was", "were", "been", "is", "are", "be", "got", "get", "gets", "being"})


def event_column(word: str, columns: list[ColumnInfo]) -> ColumnInfo | None:
    """The one date column with empty cells whose name opens with this past participle ("closed" -> closed_on)."""
    if not word.endswith("ed"):
        return None
    found = [c for c in columns if c.is_temporal and c.null_count > 0 and c.words[:1] == (word,)]
    return found[0] if len(found) == 1 else None


def unread_event(tokens: list[str], word: str, columns: list[ColumnInfo]) -> bool:
    """True for a passive participle ("were closed") over a dataset that records when things happen (a date column
    with empty cells) but whose name it is not: it may say which rows, so it is never excused as a mere verb."""
    if not word.endswith("ed") or not any(c.is_temporal and c.null_count > 0 for c in columns):
        return False
    return any(token == word and any(t in _BE_FORMS for t in tokens[max(0, i - 2):i]) for i, token in enumerate(tokens))


class HappenedStates(ParserState):
    """Recognises a passive participle naming the date column of an event."""

    def _happened(self) -> None:
        if self.date_spans or self.bucket or self.calendar:
            return  # "closed in May", "closed per week": the date column is read by the date passes
        for i, word in enumerate(self.tokens):
            if self.used[i] or not any(t in _BE_FORMS for t in self.tokens[max(0, i - 2):i]):
                continue
            column = event_column(word, self.index.columns)
            if column is None or any(t in ("not", "never", "t") for t in self.tokens[max(0, i - 2):i]):
                continue
            self.spec.conditions.append(Condition((column,), plan_pb2.FILTER_OPERATOR_NOT_NULL, [], i))
            self.value_columns.add(column.ref)
            self._use(i, i + 1)
            self.spec.understood.append(f"{word} ({column.name} has a value)")
