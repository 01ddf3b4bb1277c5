"""A number stated as a numeric column's value: "a rating of 4", "with floors = 3", "customer 42".

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
        self._numbers_naming_rows()
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

    def _numbers_naming_rows(self) -> None:
        """ "customer 42", "ticket 1310": a whole number right after a word for identified things is one id."""
        # A bare four-digit number was read as a year ("order 1001"); right after such a word it is an id.
        years = {s.start: s for s in self.date_spans if s.end - s.start == 1 and self.tokens[s.start].isdigit()}
        for i in sorted(set(self.stray_numbers) | set(years)):
            before = [m for m in self.mentions if m.end == i and id(m) not in self.claimed]
            value = int(self.tokens[i]) if i in years else self._number(i)
            if not before or not isinstance(value, int) or self.tokens[i + 1:i + 2] and self.tokens[i + 1] in _BOUNDS:
                continue
            mention = before[0]
            key = self.index.id_column(mention.table) if mention.table else mention.column
            candidates = (key,) if mention.table else mention.columns
            if key is None or not all(c.is_id and c.number_range is not None
                                      and c.number_range[0] <= value <= c.number_range[1] for c in candidates):
                continue
            self._claim(mention)
            self.spec.conditions.append(Condition(candidates, plan_pb2.FILTER_OPERATOR_EQ, [value], i))
            self.value_columns.add(key.ref)
            if i in years:
                self.date_spans.remove(years[i])
            else:
                self.stray_numbers.remove(i)
            self.spec.understood.append(f"{key.name} = {value}")
