"""Rows that span a period: a start date column and an end date column of the same table.

"who chaired the board on 3 May 1990" asks for the row whose span holds that day, not the row
that started on it. A table whose date columns are exactly one start and one end (named with
`start`/`begin`/`from`/`open` and `end`/`finish`/`until`/`close` words) holds spans.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyst_service.planning.schema_linking import ColumnInfo

_START_WORDS = frozenset({"start", "begin", "beginning", "from", "open", "opened", "opening", "since", "entry", "first"})
_END_WORDS = frozenset({"end", "ending", "finish", "finished", "until", "to", "close", "closed", "closing", "exit", "last",
                        "stop"})


def span_columns(columns: Sequence[ColumnInfo]) -> tuple[ColumnInfo, ColumnInfo] | None:
    """The (start, end) date columns of the one table whose date columns are exactly such a pair, else None."""
    tables = {c.table for c in columns if c.is_temporal}
    if len(tables) != 1:
        return None
    dated = [c for c in columns if c.is_temporal]
    starts = [c for c in dated if set(c.words) & _START_WORDS and not set(c.words) & _END_WORDS]
    ends = [c for c in dated if set(c.words) & _END_WORDS and not set(c.words) & _START_WORDS]
    if len(dated) != 2 or len(starts) != 1 or len(ends) != 1:
        return None
    return starts[0], ends[0]
