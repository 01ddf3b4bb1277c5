"""The readable label of a table's rows: the name column that goes with its identifier.

Grouping by `product_id` answers "top 5 products" with numbers nobody can read; the table's
`name` (or `title`) column, nearly unique per row, says which products they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyst_service.planning.schema_linking import ColumnInfo

_LABEL_WORDS = frozenset({"name", "title", "label"})


def is_unique_key(column: ColumnInfo) -> bool:
    """True for an identifier column with a value in every row, all different (the profile's distinct count is an
    estimate, so within 3% of the row count; or the description says "unique")."""
    return column.is_id and column.row_count > 0 and not column.null_count \
        and (column.distinct_count >= 0.97 * column.row_count or "unique" in column.description_words)


def label_column(columns: Sequence[ColumnInfo], key: ColumnInfo) -> ColumnInfo | None:
    """The one text column of the key's table named like a label, nearly unique per row, when the key is the
    table's own unique identifier; else None."""
    if not is_unique_key(key):
        return None
    labels = [c for c in columns if c.table == key.table and c.is_text and set(c.words) & _LABEL_WORDS
              and c.distinct_count >= 0.9 * c.row_count]
    return labels[0] if len(labels) == 1 else None
