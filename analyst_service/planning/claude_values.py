"""Filter values checked against the profile before a Claude plan is accepted.

A plan can compile and still answer nothing: `country = 'japan'` on a column whose values are
`Japan`, `Germany`. When a text column's profile lists every distinct value, an equality or IN
literal that is not among them can only match no row, so it goes back to the model as a
correction naming the spellings that exist ("'japan' is not a value of customers.country;
'Japan' is"). Columns with more distinct values than the profile keeps are not judged.
"""

from __future__ import annotations

import difflib

from csv_analyst.v1 import dataset_pb2, plan_pb2

_CHECKED_OPS = {plan_pb2.FILTER_OPERATOR_EQ, plan_pb2.FILTER_OPERATOR_IN}
_TEXT_TYPES = ("VARCHAR", "TEXT", "STRING", "CHAR")


def _column(dataset: dataset_pb2.Dataset, base_table: str, reference: str) -> tuple[str, dataset_pb2.Column] | None:
    table, _, name = reference.rpartition(".")
    table = table or base_table
    for t in dataset.tables:
        if t.name == table:
            for c in t.columns:
                if c.name == name:
                    return f"{t.name}.{c.name}", c
    return None


def _filters(plan: plan_pb2.Plan) -> list[tuple[str, plan_pb2.Filter]]:
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
    problems: list[tuple[str, str]] = []
    for path, condition in _filters(plan):
        if condition.op not in _CHECKED_OPS or condition.as_number or condition.as_year:
            continue
        found = _column(dataset, plan.base_table, condition.column)
        if found is None:
            continue
        name, column = found
        profile = column.profile
        known = list(profile.top_values)
        complete = bool(known) and len(known) >= profile.distinct_count
        if not column.type.upper().startswith(_TEXT_TYPES) or not complete:
            continue
        for j, value in enumerate(condition.values):
            if value.WhichOneof("kind") != "string_value" or value.string_value in known:
                continue
            literal = value.string_value
            same = [k for k in known if k.casefold() == literal.strip().casefold()]
            close = same or difflib.get_close_matches(literal, known, n=3, cutoff=0.6)
            hint = f"{', '.join(repr(k) for k in close)} {'is' if len(close) == 1 else 'are'}" if close \
                else f"its values are {', '.join(repr(k) for k in known[:10])}{' ...' if len(known) > 10 else ''}"
            problems.append((f"{path}.values[{j}]", f"{literal!r} is not a value of {name}, so the filter matches no "
                                                   f"row; {hint}"))
    return problems
