"""Filter values checked against the data before a Claude plan is accepted.

A plan can compile and still answer nothing: `country = 'japan'` on a column whose values are
`Japan`, `Germany`. When a text column's profile lists every distinct value, an equality or IN
literal that is not among them can only match no row, so it goes back to the model as a
correction naming the spellings that exist ("'japan' is not a value of customers.country;
'Japan' is"). For a column with more values than the profile keeps, a dry run in the sandbox
(`PlanningContext.probe`: a `LIMIT 1` look-up, then the case-insensitive spellings that do exist)
decides, for at most `MAX_PROBES` literals per proposal.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable

from sqlglot import exp

from analyst_service.planning.base import ProbeQueryError
from csv_analyst.v1 import dataset_pb2, plan_pb2

MAX_PROBES = 3
Probe = Callable[[str], Awaitable[list[list[str]] | None]]

_CHECKED_OPS = {plan_pb2.FILTER_OPERATOR_EQ, plan_pb2.FILTER_OPERATOR_IN}
_TEXT_TYPES = ("VARCHAR", "TEXT", "STRING", "CHAR")


def located_column(dataset: dataset_pb2.Dataset, base_table: str, reference: str) -> tuple[str, dataset_pb2.Column] | None:
    table, _, name = reference.rpartition(".")
    table = table or base_table
    for t in dataset.tables:
        if t.name == table:
            for c in t.columns:
                if c.name == name:
                    return t.name, c
    return None


def filters(plan: plan_pb2.Plan) -> list[tuple[str, plan_pb2.Filter]]:
    found = [(f"plan.filters[{i}]", f) for i, f in enumerate(plan.filters)]
    found += [(f"plan.anchor.match[{i}]", f) for i, f in enumerate(plan.anchor.match)]
    for i, item in enumerate(plan.select):
        found += [(f"plan.select[{i}].share_of[{j}]", f) for j, f in enumerate(item.share_of)]
    return found


def value_problems(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset) -> list[tuple[str, str]]:
    """Equality and IN literals that no row can hold, with the spellings that exist.

    Args:
        plan: A plan that compiles.
        dataset: The profiled dataset.

    Returns:
        (field path, problem) pairs; empty when every checked literal is a known value.
    """
    return [(path, _problem(literal, f"{table}.{column.name}", list(column.profile.top_values), True))
            for path, table, column, literal, complete in _literals(plan, dataset) if complete]


def _literals(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset
              ) -> list[tuple[str, str, dataset_pb2.Column, str, bool]]:
    """(path, table, column, literal, profile complete) of text literals not among the profiled values."""
    found: list[tuple[str, str, dataset_pb2.Column, str, bool]] = []
    for path, condition in filters(plan):
        if condition.op not in _CHECKED_OPS or condition.as_number or condition.as_year:
            continue
        located = located_column(dataset, plan.base_table, condition.column)
        if located is None or not located[1].type.upper().startswith(_TEXT_TYPES):
            continue
        table, column = located
        known = list(column.profile.top_values)
        complete = bool(known) and len(known) >= column.profile.distinct_count
        for j, value in enumerate(condition.values):
            if value.WhichOneof("kind") == "string_value" and value.string_value not in known:
                found.append((f"{path}.values[{j}]", table, column, value.string_value, complete))
    return found


def _problem(literal: str, name: str, known: list[str], listed: bool) -> str:
    same = [k for k in known if k.casefold() == literal.strip().casefold()]
    close = same or difflib.get_close_matches(literal, known, n=3, cutoff=0.6)
    if close:
        hint = f"{', '.join(repr(k) for k in close)} {'is' if len(close) == 1 else 'are'}"
    elif listed:
        hint = f"its values are {', '.join(repr(k) for k in known[:10])}{' ...' if len(known) > 10 else ''}"
    else:
        hint = "no value differs from it only in case or spaces"
    return f"{literal!r} is not a value of {name}, so the filter matches no row; {hint}"


def _sql(table: str, column: str, literal: str, spellings: bool) -> str:
    """`SELECT 1 ... = literal LIMIT 1`, or the distinct values equal to it ignoring case and spaces."""
    cell = exp.column(column, quoted=True)
    source = exp.Table(this=exp.to_identifier(table, quoted=True))
    if not spellings:
        return exp.select("1").from_(source).where(exp.EQ(this=cell, expression=exp.Literal.string(literal))) \
            .limit(1).sql(dialect="duckdb")
    folded = exp.Lower(this=exp.Trim(this=exp.cast(cell, "VARCHAR")))
    return exp.select(cell).distinct().from_(source).where(
        exp.EQ(this=folded, expression=exp.Literal.string(literal.strip().lower()))).limit(5).sql(dialect="duckdb")


async def probed_problems(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset, probe: Probe) -> list[tuple[str, str]]:
    """Literals of columns the profile does not fully list that a dry run finds in no row.

    Args:
        plan: A plan that compiles.
        dataset: The profiled dataset.
        probe: Runs a small SELECT in a sandbox (see `PlanningContext.probe`).

    Returns:
        (field path, problem) pairs; a probe that could not run judges nothing.
    """
    problems: list[tuple[str, str]] = []
    unjudged = [(path, table, column, literal) for path, table, column, literal, complete in _literals(plan, dataset)
                if not complete]  # value_problems judged the others from the profile
    for path, table, column, literal in unjudged[:MAX_PROBES]:
        try:
            hit = await probe(_sql(table, column.name, literal, spellings=False))
            if hit is None or hit:
                continue
            spellings = await probe(_sql(table, column.name, literal, spellings=True)) or []
        except ProbeQueryError:
            continue  # the whole-plan dry run reports the query's error
        problems.append((path, _problem(literal, f"{table}.{column.name}", [r[0] for r in spellings if r], False)))
    return problems
