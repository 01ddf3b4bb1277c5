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
from analyst_service.planning.happened import HappenedStates
from analyst_service.planning.number_values import NumberValues
from analyst_service.planning.number_words import number_word_values
from analyst_service.planning.recognizers import Recognizers
from analyst_service.planning.schema_linking import SchemaIndex
from analyst_service.planning.spec import Condition, Spec
from csv_analyst.v1 import plan_pb2

P = plan_pb2
ORDINALS = {"second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
            "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12}


class QuestionParser(Recognizers, Anchors, Assembler, DateFilters, Durations, HappenedStates, NumberValues):
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
        self._happened()
        self._none_left()
        self._missing_values()
        self._durations()
        self._agg_cues()
        self._mentions()
        self._assemble()
        return self.spec

    def _ordinal_values(self) -> None:
        """ "the second quarter", "third grade": an ordinal before a whole-number column is a value of it.

        ("first" and "last" pick rows by position and are read elsewhere.)
        """
        for i, token in enumerate(self.tokens):
            if token not in ORDINALS or self.used[i] or token not in self.unlinked:
                continue
            mention = self._next_mention(i + 1, window=0)
            column = mention.column if mention is not None else None
            if column is None or not column.is_native_numeric or column.is_id or column.number_range is None \
                    or not column.number_range[0] <= ORDINALS[token] <= column.number_range[1]:
                continue
            self.spec.conditions.append(Condition(self._claim(mention).columns, P.FILTER_OPERATOR_EQ,  # type: ignore[union-attr]
                                                    [ORDINALS[token]], i))
            self.value_columns.add(column.ref)
            self.used[i] = True
            self.unlinked.remove(token)
            self.spec.understood.append(f"{column.name} = {ORDINALS[token]}")

    def _assemble(self) -> None:
        self._ordinal_values()
        self._numbers_after_columns()
        for i in list(self.stray_numbers):  # "4-cylinder", "6 cylinders": a value of the next column
            mention = self._next_mention(i + 1, window=0)
            value = self._number(i)
            if mention is not None and mention.column is not None and mention.column.is_numeric and value is not None:
                self.spec.conditions.append(Condition(self._claim(mention).columns, P.FILTER_OPERATOR_EQ, [value]))
                self.value_columns.add(mention.column.ref)
                self.stray_numbers.remove(i)
        number_word_values(self)
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
    """Parse a question (see `parse_question_traced`); return the spec and the unmatched words."""
    spec, parser = parse_question_traced(question, index)
    return spec, parser.unlinked


def parse_question_traced(question: str, index: SchemaIndex) -> tuple[Spec, QuestionParser]:
    """Parse a question.

    Args:
        question: The user's question.
        index: The dataset's schema index.

    Returns:
        The spec and the parser, whose state says which words played which part.

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
    return spec, parser
