"""A number stated as a numeric column's value: "a rating of 4", "with floors = 3".

A bare number right after "<numeric column> of" (or "=") is that column's value, compared for
equality; anything else about the number (a comparison, a count of rows to show, a year) has
been read before, so only numbers nothing else took are considered.
"""

from __future__ import annotations

from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.spec import Condition
from csv_analyst.v1 import plan_pb2


# Words after a number that make it a bound, a range end or a share rather than a value.
_BOUNDS = frozenset({"at", "or", "and", "to", "through", "thru", "until", "percent", "plus", "max", "maximum", "min",
                     "minimum", "more", "less", "fewer", "over", "under", "above", "below", "up", "tops", "k",
                     "thousand", "million", "billion", "m", "bn"})


class NumberValues(ParserState):
    """Reads stray numbers that follow "<numeric column> of"."""

    def _numbers_after_columns(self) -> None:
        for i in list(self.stray_numbers):
            if i < 2 or self.tokens[i - 1] not in ("of", "=") or self.tokens[i + 1:i + 2] and self.tokens[i + 1] in _BOUNDS:
                continue  # "a rating of 4 at most", "of 4 or more": a bound, not the value
            before = [m for m in self.mentions if m.end == i - 1 and id(m) not in self.claimed and m.column is not None]
            value = self._number(i)
            if not before or value is None or not all(c.is_numeric and not c.is_id for c in before[0].columns):
                continue
            mention = self._claim(before[0])
            self.spec.conditions.append(Condition(mention.columns, plan_pb2.FILTER_OPERATOR_EQ, [value], i))
            self.value_columns.add(mention.columns[0].ref)
            self.stray_numbers.remove(i)
            self.spec.understood.append(f"{mention.columns[0].name} = {value}")
