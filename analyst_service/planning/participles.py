"""Active and passive participles of one verb name different things.

"returning customers" are customers who come back; a `returned` column says an order was sent
back. "-ing" describes who acts, "-ed" what was done to the row, so the two forms of one verb
never link a question word to a column name.
"""

from __future__ import annotations


def opposite_participles(word: str, other: str) -> bool:
    """True when one word ends in "-ing" and the other in "-ed" ("returning" / "returned")."""
    return (word.endswith("ing") and other.endswith("ed")) or (word.endswith("ed") and other.endswith("ing"))
