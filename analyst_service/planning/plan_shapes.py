"""Plan shapes that answer a different question than the one asked, found after a plan is built.

Each check looks at the question's words and the finished plan and returns `Leftover`s when the
plan's shape cannot be what the words ask for, so that the planner asks instead of answering.
They are general rules about how questions over small tables are put, not about particular tables:

- a verb whose dictionary form names a column ("won" beside a `Wins` column) says which column the
  question is about; a plan that never reads that column answers about another one;
- "how many more", "how much more": a difference between rows, which no plan here computes;
- "which ..." or "who ...": the answer is a label, so a plan that returns one ungrouped total
  has dropped the thing asked for;
- "the first" or "the last" row in file order is the answer only when no verb names an event
  whose order might differ ("the first lighthouse built": see `event_order`), and a question
  asking for the first rows is not answered over all of them;
- the answer is never a sum of a year column, and a year column is never compared with a number
  that is no year.
"""

from __future__ import annotations

from analyst_service.planning.accounting import FILLER_WORDS, Leftover, names_the_rows, plan_columns
from analyst_service.planning.event_order import event_words
from analyst_service.planning.lexicon import can_be_verb, verb_base
from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import ColumnInfo
from csv_analyst.v1 import plan_pb2

P = plan_pb2
_RANGES = frozenset({P.FILTER_OPERATOR_LT, P.FILTER_OPERATOR_LE, P.FILTER_OPERATOR_GT, P.FILTER_OPERATOR_GE,
                     P.FILTER_OPERATOR_BETWEEN})
# The smallest number read as a year when compared with a year column ("after 1990"); smaller ones
# ("lower than 2nd") are places, counts or ranks.
_SMALLEST_YEAR = 1000


def _columns_by_reference(parser: ParserState, plan: plan_pb2.Plan) -> dict[str, ColumnInfo]:
    tables = {plan.base_table, *(j.table for j in plan.joins)}
    found: dict[str, ColumnInfo] = {}
    for column in parser.index.columns:
        if column.table in tables:
            found.setdefault(column.name.lower(), column)
            found[f"{column.table}.{column.name}".lower()] = column
    return found


def verb_naming_a_column(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """An unmatched verb whose dictionary form is a column's word ("won" and `Wins`), the column unused."""
    used = plan_columns(plan)
    found = []
    for word in dict.fromkeys(parser.unlinked):
        if not can_be_verb(word):
            continue
        base = verb_base(word)
        if base is None or base == word:
            continue  # an uninflected word matched no column by name already
        for column in parser.index.columns:
            if base in column.words and column.name.lower() not in used \
                    and f"{column.table}.{column.name}".lower() not in used:
                found.append(Leftover(word, f"name the column {column.name}, which the plan does not use"))
                break
    return found


def difference_asked(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """ "how many more ...", "how much more ...", "how much less ...": a difference between rows."""
    tokens = parser.tokens
    for i in range(len(tokens) - 2):
        if tokens[i] == "how" and tokens[i + 1] in ("many", "much") and tokens[i + 2] in ("more", "less", "fewer"):
            if tokens[i + 3:i + 4] != ["than"]:
                return [Leftover(" ".join(tokens[i:i + 3]), "ask for a difference between rows, which plans cannot compute")]
    return []


def label_dropped(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """ "which ..."/"who ..." answered with a single ungrouped total: the label asked for is missing."""
    tokens = parser.tokens
    opener = next((t for t in tokens[:3] if t in ("which", "who", "whom", "whose")), None)
    aggregates = [item for item in plan.select if item.aggregation]
    if opener is None or not aggregates or plan.group_by or plan.HasField("anchor"):
        return []
    if any(not item.aggregation for item in plan.select):
        return []
    return [Leftover(opener, "ask for a row or a label, but the plan returns one total")]


def year_arithmetic(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """A sum of a year column, or a year column compared with a number that is no year."""
    columns = _columns_by_reference(parser, plan)
    found = []
    aggregates = [item for item in plan.select if item.aggregation]
    main = columns.get(aggregates[0].column.lower()) if aggregates else None
    if main is not None and main.year_like and aggregates[0].aggregation == P.AGGREGATION_SUM:
        # The answer's value is a sum of years (a further summed year column beside the answer is
        # only noise, "all years combined").
        found.append(Leftover(main.name.lower(), "add up years, which is no quantity"))
    for condition in plan.filters:
        column = columns.get(condition.column.lower())
        if column is None or not column.year_like or condition.op not in _RANGES:
            continue
        numbers = [v.int_value or v.double_value for v in condition.values
                   if v.WhichOneof("kind") in ("int_value", "double_value")]
        if any(abs(n) < _SMALLEST_YEAR for n in numbers):
            found.append(Leftover(column.name.lower(), "compare years with a number that is no year"))
    return found


def _file_order(plan: plan_pb2.Plan) -> bool:
    return bool(plan.order_by) and plan.order_by[0].file_order


def position_by_event(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """ "which lighthouse was built first" read as the first row of the file, when the verb (or a noun made
    from it) names a column ("Builder") that dates nothing: the verb names the event ordered."""
    if not _file_order(plan) or plan.HasField("anchor"):
        return []
    named = {w for c in parser.index.table_columns(plan.base_table) for w in c.words}
    return [Leftover(word, "name an event whose order the file order need not follow")
            for word in dict.fromkeys(parser.unlinked)
            if word not in FILLER_WORDS and can_be_verb(word) and not names_the_rows(parser, word)
            and event_words(word) & named and len(event_words(word)) > 1]


def position_dropped(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """ "the first three ..." over a plan that neither takes rows in file order nor locates a row."""
    if not parser.spec.position or _file_order(plan) or plan.HasField("anchor") \
            or any(o.file_order for o in plan.order_by):
        return []
    return [Leftover(parser.spec.position, "pick rows by their place in the table, which the plan does not do")]


def shape_leftovers(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """Every plan-shape problem found (see the module docstring)."""
    return [*verb_naming_a_column(parser, plan), *difference_asked(parser, plan), *label_dropped(parser, plan),
            *year_arithmetic(parser, plan), *position_by_event(parser, plan), *position_dropped(parser, plan)]
