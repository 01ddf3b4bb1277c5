"""Whether "how many <things>" counts the rows or the distinct values of a column the things resemble.

"How many games had ..." over a table of games with a `Game site` column: the plural names only a
part of that column's name, so it names what one row is (a game), not the column's values (the
sites); counting the sites' distinct values answers another question. A plural that names a
column in full ("how many teams" over `Team`) still counts that column's distinct values.
"""

from __future__ import annotations

from analyst_service.planning.schema_linking import Mention, singular


def names_rows_not_column(tokens: list[str], mention: Mention) -> bool:
    """True when the counted plural names only the opening part of a text column's longer name
    (a column of numbers written as text holds amounts, which "how many" adds up instead).

    Args:
        tokens: The question's tokens.
        mention: The column mention right after the count cue.

    Returns:
        True when the rows should be counted instead of the column's distinct values.
    """
    column = mention.column
    if column is None or len(mention.columns) != 1 or not column.is_text or column.numeric_text or column.is_id:
        return False
    words = [singular(t) for t in tokens[mention.start:mention.end]]
    plural = tokens[mention.end - 1] != words[-1]
    return plural and len(column.words) > len(words) and list(column.words[:len(words)]) == words
