"""What several named rows have in common: "A and B are both in which county?".

A question that names two or more rows (an IN filter on one column) and asks "which <column>" of
them wants that column's value(s), once each: listing the rows would repeat the shared value once
per row. The plan then selects the asked column, grouped, so that a shared value comes back once
and different values each come back (nothing is hidden). "both" in such a question says the same.
"""

from __future__ import annotations

from analyst_service.planning.parser_state import ParserState
from csv_analyst.v1 import plan_pb2

P = plan_pb2


def select_shared_value(parser: ParserState, plan: plan_pb2.Plan, entity_column: str) -> bool:
    """Turn a listing of several named rows into the distinct values of the column asked for.

    Args:
        parser: The parsed question.
        plan: The plan built for it; changed in place.
        entity_column: The column named after which/what, or "" when none.

    Returns:
        True when the plan was changed.
    """
    if not entity_column or plan.select or plan.group_by or plan.HasField("anchor") or plan.joins or plan.limit:
        return False
    named = [f for f in plan.filters if f.op == P.FILTER_OPERATOR_IN and len(f.values) >= 2]
    if len(named) != 1 or named[0].column == entity_column:
        return False
    plan.select.append(P.SelectItem(column=entity_column, alias=entity_column))
    plan.group_by.append(P.GroupBy(column=entity_column))
    del plan.order_by[:]
    plan.order_by.append(P.OrderBy(key=entity_column))
    if "both" in parser.unlinked:
        parser.unlinked.remove("both")
    return True
