"""Competing readings: when a question has more than one plan that explains it equally well.

The offline planner builds one plan per question; this module looks at that plan and the parse
and names the other plans the same words could mean. When there are any, the planner asks
(`ClarificationNeededError`) with every reading, most likely first, instead of picking one.

Each recogniser is small and answers for one kind of ambiguity:

- `per_group_superlative`: "which shop has the highest price" with several rows per shop can mean
  the shop whose average price is highest or the shop with the single highest price. When most
  groups are one row (a table of counties, a few names repeated) the column names the rows
  themselves and the single record is meant, so nothing is asked; nor when the question says it
  means single records ("the highest single price", "the highest price ever").
"""

from __future__ import annotations

from analyst_service.planning.explain import explain
from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import SchemaIndex
from csv_analyst.v1 import plan_pb2

P = plan_pb2
_EXTREMES = {P.AGGREGATION_MAX, P.AGGREGATION_MIN}
# Words saying a superlative is about single records, not groups' typical values.
_SINGLE_RECORD_WORDS = frozenset({"ever", "single", "individual", "reading", "measured"})
# A grouping column with at least this many distinct values per row names the rows themselves.
_NAMES_THE_ROWS = 0.5


def _group_column_is_unique(plan: plan_pb2.Plan, index: SchemaIndex) -> bool:
    name = plan.group_by[0].column.rpartition(".")[2]
    tables = {plan.base_table, *(j.table for j in plan.joins)}
    columns = [c for c in index.columns if c.name == name and c.table in tables]
    return bool(columns) and all(c.row_count and c.distinct_count >= _NAMES_THE_ROWS * c.row_count for c in columns)


def per_group_superlative(parser: ParserState, plan: plan_pb2.Plan) -> list[plan_pb2.Plan]:
    """The other reading of a per-group superlative: the groups' average instead of their extreme.

    Returns:
        [the plan as built, the average reading] when both apply, else [].
    """
    implicit = any(cue.kind in ("max?", "min?") for cue in parser.cues)
    measures = [item for item in plan.select if item.aggregation]
    if not implicit or len(plan.group_by) != 1 or plan.group_by[0].bucket or len(measures) != 1 \
            or measures[0].aggregation not in _EXTREMES or measures[0].minus_column \
            or set(parser.tokens) & _SINGLE_RECORD_WORDS or _group_column_is_unique(plan, parser.index):
        return []
    average = plan_pb2.Plan()
    average.CopyFrom(plan)
    item = next(i for i in average.select if i.aggregation)
    old_alias, item.aggregation = item.alias, P.AGGREGATION_AVG
    item.alias = "avg_" + old_alias.split("_", 1)[1] if "_" in old_alias else "avg"
    for order in average.order_by:
        if order.key == old_alias:
            order.key = item.alias
    average.explanation = explain(average)
    return [plan, average]


def competing_readings(parser: ParserState, plan: plan_pb2.Plan) -> list[plan_pb2.Plan]:
    """Every reading of the question when more than one explains it equally well, else [] (at most three)."""
    for recogniser in (per_group_superlative,):
        readings = recogniser(parser, plan)
        if readings:
            return readings[:3]
    return []
