"""Durations: "average time to resolve", "how long", "resolution time in days".

A duration is the number of days between two date or timestamp columns of one table
(SelectItem.minus_column), aggregated (average by default). The start and end columns are told
apart by their names ("created"/"opened"/"start" vs "resolved"/"closed"/"end") or, failing that,
by which column's dates come later in the data.
"""

from __future__ import annotations

from analyst_service.errors import PlannerError
from analyst_service.planning.cues import DURATION_UNITS
from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import ColumnInfo
from analyst_service.planning.spec import Measure
from csv_analyst.v1 import plan_pb2

P = plan_pb2

DURATION_PHRASES: tuple[tuple[str, ...], ...] = (
    ("how", "long"), ("time", "to"), ("time", "taken"), ("time", "it", "take"), ("duration",), ("turnaround",),
    ("lead", "time"), ("resolution", "time"), ("processing", "time"), ("handling", "time"), ("day", "between"),
    ("day", "to"), ("cycle", "time"), ("it", "take"), ("it", "took"),
)
DURATION_AGGREGATIONS = {"average": P.AGGREGATION_AVG, "avg": P.AGGREGATION_AVG, "mean": P.AGGREGATION_AVG,
                         "typical": P.AGGREGATION_AVG, "median": P.AGGREGATION_MEDIAN, "longest": P.AGGREGATION_MAX,
                         "maximum": P.AGGREGATION_MAX, "max": P.AGGREGATION_MAX, "shortest": P.AGGREGATION_MIN,
                         "minimum": P.AGGREGATION_MIN, "min": P.AGGREGATION_MIN, "total": P.AGGREGATION_SUM}
START_WORDS = {"created", "create", "opened", "open", "start", "started", "begin", "began", "ordered", "order",
               "placed", "submitted", "received", "joined", "arrival", "arrived", "reported", "requested", "from"}
END_WORDS = {"resolved", "resolve", "closed", "close", "end", "ended", "finished", "finish", "completed",
             "complete", "delivered", "delivery", "shipped", "ship", "returned", "left", "departure", "to", "done",
             "solved", "fixed"}


def _role(column: ColumnInfo) -> str:
    words = set(column.words)
    if words & END_WORDS:
        return "end"
    if words & START_WORDS:
        return "start"
    return ""


def choose_pair(columns: list[ColumnInfo]) -> tuple[ColumnInfo, ColumnInfo] | None:
    """(start, end) among one table's temporal columns, or None when they cannot be told apart."""
    starts = [c for c in columns if _role(c) == "start"]
    ends = [c for c in columns if _role(c) == "end"]
    if len(starts) == 1 and len(ends) == 1:
        return starts[0], ends[0]
    if len(columns) == 2 and all(c.min_value for c in columns):
        first, second = sorted(columns, key=lambda c: c.min_value)
        return first, second
    return None


class Durations(ParserState):
    """The duration pass: turns a duration phrase into a measure over two date columns."""

    def _durations(self) -> None:
        found = next(((i, len(p)) for i in range(len(self.tokens)) for p in DURATION_PHRASES
                      if self._at(i, p) and not any(self.used[i:i + len(p)])), None)
        if found is None:
            return
        by_table: dict[str, list[ColumnInfo]] = {}
        for column in self.index.columns:
            if column.is_temporal:
                by_table.setdefault(column.table, []).append(column)
        candidates = {t: cols for t, cols in by_table.items() if len(cols) >= 2}
        if not candidates:
            return  # "how long" about a numeric column ("how long is the track"): not a duration
        named = [t for t in candidates if t in self.spec.tables] or list(candidates)
        pair = choose_pair(candidates[named[0]]) if len(named) == 1 else None
        if pair is None:
            names = ", ".join(f"{c.table}.{c.name}" for cols in candidates.values() for c in cols)
            raise PlannerError(message=f"the question asks for a duration; name its start and end among: {names}",
                               metadata={"candidates": names})
        start, end = pair
        i, length = found
        self._use(i, i + length)
        aggregation = P.AGGREGATION_AVG
        for j, word in enumerate(self.tokens):
            if not self.used[j] and word in DURATION_AGGREGATIONS:
                aggregation = DURATION_AGGREGATIONS[word]
                self._use(j, j + 1)
                break
        unit = self._duration_unit()
        # Words that name the two columns ("resolve", "created") are part of the duration.
        stems = {w[:5] for w in start.words + end.words if len(w) >= 4}
        for j, word in enumerate(self.words):
            if not self.used[j] and (word[:5] in stems or word in ("day", "it", "take", "took", "in")):
                self._use(j, j + 1)
        self.spec.measures.append(Measure(aggregation, ref=(end,), minus=(start,), unit=unit))
        self.spec.explicit_measure = True
        unit_name = P.DurationUnit.Name(unit).removeprefix("DURATION_UNIT_").lower() if unit else "days"
        self.spec.understood.append(f"{unit_name} from {start.name} to {end.name}")

    def _duration_unit(self) -> int:
        """The unit a duration is asked in: "in hours", "how many minutes", "hours to resolve"; 0 (days) when none.

        The unit word is consumed. A unit word followed by "of" ("hour of the day") names a calendar part,
        not the duration's unit.
        """
        for j, word in enumerate(self.words):
            if self.used[j] or word not in DURATION_UNITS or self.tokens[j + 1:j + 2] == ["of"]:
                continue
            self._use(j, j + 1)
            if j > 0 and self.tokens[j - 1] == "in":
                self._use(j - 1, j)
            if j > 1 and self.tokens[j - 2:j] == ["how", "many"]:
                self._use(j - 2, j)  # "how many hours did it take": the unit, not a count
            return DURATION_UNITS[word]
        return 0
