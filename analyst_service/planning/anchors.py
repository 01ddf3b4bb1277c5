"""Rows relative to a named row in file order: "who is listed before Smith?", "the title after X".

A direction word (before, after, previous, next, ...) followed closely by a cell value of a text
column makes that value the anchor: the first row in file order holding it. The question then asks
about the row right before or after it, or, when it also states other conditions ("before the
game in Oslo, which was the previous home game?"), about the nearest row on
that side that passes them.
"""

from __future__ import annotations

from analyst_service.errors import PlannerError
from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.spec import Condition
from csv_analyst.v1 import plan_pb2

P = plan_pb2

# Direction words: -1 looks at the rows before the anchor, +1 at the rows after it.
ANCHOR_WORDS = {
    "before": -1, "previous": -1, "prior": -1, "preceding": -1, "above": -1, "preceded": -1,
    "after": 1, "next": 1, "following": 1, "below": 1, "followed": 1, "succeeding": 1,
}
# How many tokens may stand between a direction word and its anchor value
# ("previous in the table to Smith", "after she was in X").
_WINDOW = 6


class Anchors(ParserState):
    """Finds a direction word with an anchor value after it and moves that value's filter to the anchor."""

    def _anchor(self) -> None:
        """Run after the value pass: needs the value conditions and their token positions."""
        for i, token in enumerate(self.tokens):
            if self.used[i] or token not in ANCHOR_WORDS:
                continue
            condition = self._anchor_value(i)
            if condition is None:
                continue
            offset = ANCHOR_WORDS[token]
            words = [j for j, t in enumerate(self.tokens) if t in ANCHOR_WORDS and not self.used[j]]
            if any(ANCHOR_WORDS[self.tokens[j]] != offset for j in words):
                return  # "before" and "after" in one question: no single direction
            for j in words:
                self._use(j, j + 1)
            self.spec.conditions = [c for c in self.spec.conditions if c is not condition]
            self.spec.anchor = condition
            self.spec.anchor_offset = offset
            value = condition.values[0]
            self.spec.understood.append(f"the row {'before' if offset < 0 else 'after'} "
                                        f"{condition.ref[0].name} = {value} in file order")
            return

    def _anchor_value(self, i: int) -> Condition | None:
        """The first single-value text filter starting within the window after token i."""
        following = sorted((c for c in self.spec.conditions if c.position > i), key=lambda c: c.position)
        if not following:
            return None
        condition = following[0]
        if condition.position > i + _WINDOW or condition.op != P.FILTER_OPERATOR_EQ or len(condition.values) != 1 \
                or not isinstance(condition.values[0], str) or not condition.ref[0].is_text:
            return None
        between = self.tokens[i + 1:condition.position]
        if any(self.used[j] for j in range(i + 1, condition.position)) or any(t in ANCHOR_WORDS for t in between):
            return None  # a number, a date or another filter sits in between
        return condition

    def _check_anchor(self) -> None:
        """Refuse what the anchor cannot answer: counting the rows on one side of it."""
        if self.spec.anchor is None:
            return
        counted = [m for m in self.spec.measures if m.aggregation in (P.AGGREGATION_COUNT, P.AGGREGATION_COUNT_DISTINCT,
                                                                        P.AGGREGATION_PERCENT)]
        if counted:
            anchor = self.spec.anchor
            raise PlannerError(
                message=f"understood {'; '.join(self.spec.understood)}, but counting the rows "
                        f"{'before' if self.spec.anchor_offset < 0 else 'after'} the row where "
                        f"{anchor.ref[0].name} = {anchor.values[0]} is not supported; ask for that row instead",
                metadata={"understood": "; ".join(self.spec.understood), "anchor_column": anchor.ref[0].name})
