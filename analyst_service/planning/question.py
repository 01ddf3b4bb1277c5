"""Parse a question into a `Spec` using cue words and schema linking.

`QuestionParser` composes the recognisers (token-consuming passes), the assembler and the date
filters; see `parser_state` for how the work is split.
"""

from __future__ import annotations

from analyst_service.errors import PlannerError
from analyst_service.planning.anchors import Anchors
from analyst_service.planning.assembly import Assembler
from analyst_service.planning.date_filters import DateFilters
from analyst_service.planning.durations import Durations
from analyst_service.planning.recognizers import Recognizers
from analyst_service.planning.schema_linking import SchemaIndex
from analyst_service.planning.spec import Condition, Spec
from csv_analyst.v1 import plan_pb2

P = plan_pb2


class QuestionParser(Recognizers, Anchors, Assembler, DateFilters, Durations):
    """Parses one question against one dataset's schema index."""

    def parse(self) -> Spec:
        """Run every pass and assemble the Spec.

        Returns:
            The spec; possibly empty when nothing was understood.

        Raises:
            PlannerError: When a part of the question was recognised but cannot be mapped.
        """
        self._relative_dates()
        self._top_n()
        self._positions()
        self._comparisons()
        self._dates()
        self._buckets()
        self._values()
        self._anchor()
        self._empty_states()
        self._missing_values()
        self._durations()
        self._agg_cues()
        self._mentions()
        self._assemble()
        return self.spec

    def _assemble(self) -> None:
        for i in list(self.stray_numbers):  # "4-cylinder", "6 cylinders": a value of the next column
            mention = self._next_mention(i + 1, window=0)
            value = self._number(i)
            if mention is not None and mention.column is not None and mention.column.is_numeric and value is not None:
                self.spec.conditions.append(Condition(self._claim(mention).columns, P.FILTER_OPERATOR_EQ, [value]))
                self.value_columns.add(mention.column.ref)
                self.stray_numbers.remove(i)
        self._assign_comparisons()
        entity = self._find_entity()
        self._assign_groups(entity)
        self._assign_aggregations()
        self._leftovers(entity)
        self._distinct_listing()
        self._assign_dates()
        self._assign_percent()
        self._check_anchor()
        if not self.spec.measures and self.spec.order_ref is None:
            ranges = [c for c in self.spec.conditions if c.op in (P.FILTER_OPERATOR_GT, P.FILTER_OPERATOR_GE,
                                                                  P.FILTER_OPERATOR_LT, P.FILTER_OPERATOR_LE)]
            if ranges:  # list rows in the order of the compared column, largest first for "more than"
                self.spec.order_ref = ranges[0].ref
                self.spec.descending = ranges[0].op in (P.FILTER_OPERATOR_GT, P.FILTER_OPERATOR_GE)


def parse_question(question: str, index: SchemaIndex) -> tuple[Spec, list[str]]:
    """Parse a question.

    Args:
        question: The user's question.
        index: The dataset's schema index.

    Returns:
        The spec and the content words that matched nothing in the schema.

    Raises:
        PlannerError: When a recognised part of the question cannot be mapped.
    """
    parser = QuestionParser(question, index)
    spec = parser.parse()
    if parser.stray_numbers:
        # A number the plan does not use would silently widen the answer ("90 degrees" unplaced).
        numbers = ", ".join(parser.tokens[i] for i in parser.stray_numbers)
        raise PlannerError(
            message=f"understood {'; '.join(spec.understood) or 'nothing'}, but could not place the number(s) "
                    f"{numbers} on a column; name the column it applies to",
            metadata={"numbers": numbers, "understood": "; ".join(spec.understood)},
        )
    return spec, parser.unlinked
