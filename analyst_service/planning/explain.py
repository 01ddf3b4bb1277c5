"""One-sentence explanations generated from a Plan alone (never from the question)."""

from __future__ import annotations

from csv_analyst.v1 import plan_pb2, value_pb2

P = plan_pb2
_AGGREGATIONS = {P.AGGREGATION_SUM: "sum", P.AGGREGATION_AVG: "average", P.AGGREGATION_MIN: "minimum",
                 P.AGGREGATION_MAX: "maximum", P.AGGREGATION_COUNT: "count",
                 P.AGGREGATION_COUNT_DISTINCT: "number of distinct", P.AGGREGATION_MEDIAN: "median",
                 P.AGGREGATION_PERCENT: "percentage", P.AGGREGATION_RANGE: "range (maximum minus minimum)",
                 P.AGGREGATION_STDDEV: "standard deviation", P.AGGREGATION_VARIANCE: "variance"}
_OPERATORS = {P.FILTER_OPERATOR_EQ: "=", P.FILTER_OPERATOR_NE: "≠", P.FILTER_OPERATOR_LT: "<",
              P.FILTER_OPERATOR_LE: "≤", P.FILTER_OPERATOR_GT: ">", P.FILTER_OPERATOR_GE: "≥",
              P.FILTER_OPERATOR_CONTAINS: "contains", P.FILTER_OPERATOR_STARTSWITH: "starts with",
              P.FILTER_OPERATOR_ENDSWITH: "ends with"}
_UNITS = {P.TIME_BUCKET_HOUR: "hour", P.TIME_BUCKET_DAY: "day", P.TIME_BUCKET_WEEK: "week",
          P.TIME_BUCKET_MONTH: "month", P.TIME_BUCKET_QUARTER: "quarter", P.TIME_BUCKET_YEAR: "year",
          P.TIME_BUCKET_HOUR_OF_DAY: "hour of the day (0-23)", P.TIME_BUCKET_DAY_OF_WEEK: "day of the week (1 = Monday)",
          P.TIME_BUCKET_MONTH_OF_YEAR: "month of the year (1-12)"}
_DURATION_UNITS = {P.DURATION_UNIT_SECONDS: "seconds", P.DURATION_UNIT_MINUTES: "minutes",
                   P.DURATION_UNIT_HOURS: "hours", P.DURATION_UNIT_WEEKS: "weeks"}


def _text(value: value_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return "null"
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return f"{value.double_value:g}"
    return str(getattr(value, kind))


def _filter(condition: plan_pb2.Filter) -> str:
    values = [_text(v) for v in condition.values]
    if condition.op == P.FILTER_OPERATOR_IS_NULL:
        return f"{condition.column} is empty"
    if condition.op == P.FILTER_OPERATOR_NOT_NULL:
        return f"{condition.column} is not empty"
    if condition.op == P.FILTER_OPERATOR_IN:
        return f"{condition.column} in ({', '.join(values)})"
    if condition.op == P.FILTER_OPERATOR_BETWEEN and len(values) == 2:
        return f"{condition.column} between {values[0]} and {values[1]}"
    return f"{condition.column} {_OPERATORS.get(condition.op, '?')} {' '.join(values)}"


def _item(item: plan_pb2.SelectItem) -> str:
    if item.aggregation == P.AGGREGATION_COUNT and item.column == "*":
        return "count of rows"
    if item.aggregation == P.AGGREGATION_PERCENT and item.ratio_of:
        return f"total of {item.column} as a percentage of the total of {item.ratio_of}"
    if item.aggregation == P.AGGREGATION_PERCENT and item.share_of:
        of = "rows" if item.column == "*" else f"the total of {item.column}"
        return f"percentage of {of} where {' and '.join(_filter(f) for f in item.share_of)}"
    name = _AGGREGATIONS.get(item.aggregation, "")
    if item.minus_column:
        unit = _DURATION_UNITS.get(item.duration_unit, "days")
        return f"{name} of the {unit} from {item.minus_column} to {item.column}"
    if item.aggregation == P.AGGREGATION_COUNT_DISTINCT:
        return f"{name} {item.column}"
    return f"{name} of {item.column}"


def explain(plan: plan_pb2.Plan) -> str:
    """Describe a plan in one sentence, such as "Sum of total per month of order_date, in time order.".

    Args:
        plan: The plan to describe.

    Returns:
        One English sentence ending with a period.
    """
    measures = [_item(s) for s in plan.select if s.aggregation]
    if measures:
        text = " and ".join(measures)
    else:
        columns = [s.column for s in plan.select]
        text = ("columns " + ", ".join(columns) if columns else "all columns") + f" of {plan.base_table}"
    if plan.group_by:
        keys = [f"{_UNITS[g.bucket]} of {g.column}" if g.bucket else g.column for g in plan.group_by]
        text += " per " + " and ".join(keys)
    text += f" over {plan.base_table}" if measures else ""
    if plan.joins:
        text += " joined with " + ", ".join(j.table for j in plan.joins)
    if plan.filters:
        text += " where " + " and ".join(_filter(f) for f in plan.filters)
    if plan.HasField("anchor") and plan.anchor.match:
        side = "before" if plan.anchor.offset < 0 else "after"
        where = " and ".join(_filter(f) for f in plan.anchor.match)
        if plan.anchor.nearest:
            text += f", in the rows {side} the first row where {where}, nearest first"
        else:
            distance = abs(plan.anchor.offset)
            text += f", in the row {'' if distance == 1 else f'{distance} rows '}{side} the first row where {where}"
    if plan.order_by:
        first = plan.order_by[0]
        is_time = any(g.bucket for g in plan.group_by) and not first.descending and not plan.limit
        if is_time:
            text += ", in time order"
        elif plan.limit:
            text += f", {'highest' if first.descending else 'lowest'} {plan.limit} by {first.key}"
        else:
            text += f", sorted by {first.key}{' descending' if first.descending else ''}"
    return text[0].upper() + text[1:] + "."
