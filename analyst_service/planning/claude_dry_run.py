"""The whole plan, run once in the sandbox before a Claude proposal is accepted.

Checking each filter literal (see `claude_values`) misses what only the whole query shows: a
condition that fails in the engine (a cast that cannot convert), or several filters that together
match nothing. So, after a proposal compiles and passes the policy and the value checks, its SQL
runs once as `SELECT 1 FROM (<plan's SQL>) LIMIT 1` through `PlanningContext.probe` (a sandbox
with a short time limit, within the run's deadline):

- the engine's error comes back to the model as a correction (QUERY_ERROR);
- an empty result comes back as a correction only when a filter value is not among the column's
  profiled values (`'japan'` where the data says `Japan`; a `contains` text no profiled value
  holds), naming the spellings that exist. When every filter value is a known one, the empty
  answer is the answer, and the plan is accepted.

A probe that cannot run (busy sandbox, no time left) judges nothing. The caller feeds each
problem back once: the same plan proposed again stands.
"""

from __future__ import annotations

import difflib

import sqlglot
from sqlglot import exp

from analyst_service.planning.base import ProbeQueryError
from analyst_service.planning.claude_values import Probe, filters, located_column
from csv_analyst.v1 import dataset_pb2, plan_pb2

_TEXT_TYPES = ("VARCHAR", "TEXT", "STRING", "CHAR")
# How each text operator matches a cell (the compiler's contains/starts/ends ignore case).
_MATCHERS = {
    plan_pb2.FILTER_OPERATOR_EQ: lambda cell, literal: cell == literal,
    plan_pb2.FILTER_OPERATOR_IN: lambda cell, literal: cell == literal,
    plan_pb2.FILTER_OPERATOR_CONTAINS: lambda cell, literal: literal.lower() in cell.lower(),
    plan_pb2.FILTER_OPERATOR_STARTSWITH: lambda cell, literal: cell.lower().startswith(literal.lower()),
    plan_pb2.FILTER_OPERATOR_ENDSWITH: lambda cell, literal: cell.lower().endswith(literal.lower()),
}


def dry_run_sql(sql: str) -> str:
    """`SELECT 1 FROM (<sql>) AS dry_run LIMIT 1`: does the whole query run, and return a row?"""
    query = sqlglot.parse_one(sql, dialect="duckdb")
    return exp.select("1").from_(query.subquery("dry_run")).limit(1).sql(dialect="duckdb")


def unprofiled_values(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset) -> list[tuple[str, str]]:
    """Text filter values that match none of their column's profiled values, with a hint each.

    Args:
        plan: A plan that compiles.
        dataset: The profiled dataset.

    Returns:
        (field path, problem) pairs, in filter order.
    """
    found: list[tuple[str, str]] = []
    for path, condition in filters(plan):
        matches = _MATCHERS.get(condition.op)
        located = located_column(dataset, plan.base_table, condition.column)
        if matches is None or located is None or condition.as_number or condition.as_year \
                or not located[1].type.upper().startswith(_TEXT_TYPES):
            continue
        table, column = located
        known = list(column.profile.top_values)
        if not known:
            continue
        for j, value in enumerate(condition.values):
            literal = value.string_value if value.WhichOneof("kind") == "string_value" else None
            if literal is None or any(matches(cell, literal) for cell in known):
                continue
            folded = [cell for cell in known if matches(cell.casefold(), literal.strip().casefold())]
            close = folded[:3] or difflib.get_close_matches(literal, known, n=3, cutoff=0.6) or \
                [cell for cell in known if difflib.get_close_matches(literal.lower(), _pieces(cell), n=1, cutoff=0.75)][:3]
            hint = f"closest profiled values: {', '.join(repr(c) for c in close)}" if close else \
                f"profiled values: {', '.join(repr(c) for c in known[:10])}{' ...' if len(known) > 10 else ''}"
            found.append((f"{path}.values[{j}]",
                          f"{literal!r} matches none of the profiled values of {table}.{column.name}; {hint}"))
    return found


def _pieces(cell: str) -> list[str]:
    """A cell's words, for a hint when a `contains` text is a misspelt word of a value."""
    return cell.lower().split()


async def dry_run_problems(plan: plan_pb2.Plan, sql: str, dataset: dataset_pb2.Dataset,
                           probe: Probe) -> list[tuple[str, str]]:
    """Run the plan's SQL once; what its error or its empty result says is wrong with the plan.

    Args:
        plan: The proposal (it compiled and passed the policy).
        sql: Its compiled SQL.
        dataset: The profiled dataset.
        probe: Runs a small SELECT in a sandbox (see `PlanningContext.probe`).

    Returns:
        (field path, problem) pairs; empty when the plan returned a row, returned nothing with
        only known filter values, or the dry run could not run.
    """
    try:
        rows = await probe(dry_run_sql(sql))
    except ProbeQueryError as error:
        return [("plan", f"the plan's query failed when run over the data: {error}")]
    if rows is None or rows:
        return []
    return [(path, f"the plan returns no row: {problem}") for path, problem in unprofiled_values(plan, dataset)]
