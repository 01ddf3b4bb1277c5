"""Validate a Plan against its dataset and compile it to one DuckDB SELECT with sqlglot builders.

Every column reference is resolved against the dataset schema first, so a compiled plan can
never name a column that does not exist. Values become literals through sqlglot; nothing is
concatenated into SQL text. The same plan always compiles to the same SQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sqlglot import exp

from analyst_service.errors import ValidationError
from csv_analyst.v1 import dataset_pb2, plan_pb2, result_pb2, value_pb2

DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000

_AGGREGATES: dict[int, type[exp.Func]] = {
    plan_pb2.AGGREGATION_SUM: exp.Sum,
    plan_pb2.AGGREGATION_AVG: exp.Avg,
    plan_pb2.AGGREGATION_MIN: exp.Min,
    plan_pb2.AGGREGATION_MAX: exp.Max,
    plan_pb2.AGGREGATION_COUNT: exp.Count,
    plan_pb2.AGGREGATION_MEDIAN: exp.Median,
    plan_pb2.AGGREGATION_STDDEV: exp.StddevSamp,
    plan_pb2.AGGREGATION_VARIANCE: exp.Variance,
}
_NUMERIC_ONLY = {plan_pb2.AGGREGATION_SUM, plan_pb2.AGGREGATION_AVG, plan_pb2.AGGREGATION_MEDIAN,
                 plan_pb2.AGGREGATION_PERCENT, plan_pb2.AGGREGATION_RANGE, plan_pb2.AGGREGATION_STDDEV,
                 plan_pb2.AGGREGATION_VARIANCE}
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL", "BOOLEAN")
_BOOLEAN_TYPES = ("BOOLEAN", "BOOL")
_TEMPORAL_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIME")
_BUCKET_UNITS = {
    plan_pb2.TIME_BUCKET_HOUR: "hour",
    plan_pb2.TIME_BUCKET_DAY: "day",
    plan_pb2.TIME_BUCKET_WEEK: "week",
    plan_pb2.TIME_BUCKET_MONTH: "month",
    plan_pb2.TIME_BUCKET_QUARTER: "quarter",
    plan_pb2.TIME_BUCKET_YEAR: "year",
    plan_pb2.TIME_BUCKET_HOUR_OF_DAY: "hour_of_day",
    plan_pb2.TIME_BUCKET_DAY_OF_WEEK: "day_of_week",
    plan_pb2.TIME_BUCKET_MONTH_OF_YEAR: "month_of_year",
}
# Calendar parts: the DuckDB function giving the part as a number (hour 0-23, ISO weekday 1-7, month 1-12).
_CALENDAR_PARTS = {
    plan_pb2.TIME_BUCKET_HOUR_OF_DAY: exp.Hour,
    plan_pb2.TIME_BUCKET_MONTH_OF_YEAR: exp.Month,
}
# Seconds in one unit of a duration between two timestamps (SelectItem.duration_unit).
_SECONDS_PER_UNIT = {
    plan_pb2.DURATION_UNIT_SECONDS: 1,
    plan_pb2.DURATION_UNIT_MINUTES: 60,
    plan_pb2.DURATION_UNIT_HOURS: 3600,
    plan_pb2.DURATION_UNIT_UNSPECIFIED: 86400,
    plan_pb2.DURATION_UNIT_DAYS: 86400,
    plan_pb2.DURATION_UNIT_WEEKS: 7 * 86400,
}
_COMPARISONS: dict[int, type[exp.Binary]] = {
    plan_pb2.FILTER_OPERATOR_EQ: exp.EQ,
    plan_pb2.FILTER_OPERATOR_NE: exp.NEQ,
    plan_pb2.FILTER_OPERATOR_LT: exp.LT,
    plan_pb2.FILTER_OPERATOR_LE: exp.LTE,
    plan_pb2.FILTER_OPERATOR_GT: exp.GT,
    plan_pb2.FILTER_OPERATOR_GE: exp.GTE,
}
_TEXT_MATCHES = {
    plan_pb2.FILTER_OPERATOR_CONTAINS: "contains",
    plan_pb2.FILTER_OPERATOR_STARTSWITH: "starts_with",
    plan_pb2.FILTER_OPERATOR_ENDSWITH: "suffix",
}


@dataclass(frozen=True)
class ResolvedColumn:
    """A column reference resolved to its table, name and type."""

    table: str
    name: str
    type: str

    def expression(self) -> exp.Column:
        """Return the fully qualified, quoted column expression."""
        return exp.column(exp.to_identifier(self.name, quoted=True), table=exp.to_identifier(self.table, quoted=True))

    @property
    def is_numeric(self) -> bool:
        return self.type.upper().startswith(_NUMERIC_TYPES)

    @property
    def is_boolean(self) -> bool:
        return self.type.upper() in _BOOLEAN_TYPES

    @property
    def is_temporal(self) -> bool:
        return self.type.upper().startswith(_TEMPORAL_TYPES)


@dataclass
class _Scope:
    """Tables in the plan's FROM clause and the violations found so far."""

    dataset: dataset_pb2.Dataset
    tables: list[str] = field(default_factory=list)
    violations: list[tuple[str, str]] = field(default_factory=list)

    def table(self, name: str) -> dataset_pb2.Table | None:
        return next((t for t in self.dataset.tables if t.name == name), None)

    def resolve(self, reference: str, path: str) -> ResolvedColumn | None:
        """Resolve `column` or `table.column`; record a violation at `path` when impossible."""
        matches = []
        for table_name in self.tables:
            table = self.table(table_name)
            assert table is not None
            for column in table.columns:
                if column.name == reference or f"{table_name}.{column.name}" == reference:
                    matches.append(ResolvedColumn(table_name, column.name, column.type))
        exact = [m for m in matches if f"{m.table}.{m.name}" == reference]
        if exact:
            return exact[0]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            known = sorted({c.name for t in self.tables if (tb := self.table(t)) for c in tb.columns})
            self.violations.append((path, f"unknown column {reference!r}; known columns: {', '.join(known)}"))
        else:
            self.violations.append((path, f"ambiguous column {reference!r}: qualify it as table.column"))
        return None


def compile_plan(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset, max_limit: int = MAX_LIMIT) -> str:
    """Validate the plan against the dataset and compile it to DuckDB SQL.

    Args:
        plan: The plan to compile.
        dataset: The dataset it reads.
        max_limit: The largest allowed plan.limit.

    Returns:
        One SELECT statement in the DuckDB dialect.

    Raises:
        ValidationError: Listing every violation with its field path, such as `plan.select[1].column`.
    """
    return build_select(plan, dataset, max_limit).sql(dialect="duckdb")


def build_select(plan: plan_pb2.Plan, dataset: dataset_pb2.Dataset, max_limit: int = MAX_LIMIT) -> exp.Select:
    """Validate the plan and build its sqlglot SELECT expression (see compile_plan)."""
    scope = _Scope(dataset)
    if plan.dataset_id and plan.dataset_id != dataset.dataset_id:
        scope.violations.append(("plan.dataset_id", f"plan is for dataset {plan.dataset_id!r}, not {dataset.dataset_id!r}"))
    if scope.table(plan.base_table) is None:
        scope.violations.append(("plan.base_table", f"unknown table {plan.base_table!r}; known tables: "
                                 + ", ".join(t.name for t in dataset.tables)))
        raise _validation_error(scope)
    scope.tables.append(plan.base_table)
    query = exp.select().from_(_table(plan.base_table))
    for index, join in enumerate(plan.joins):
        query = _add_join(query, join, scope, f"plan.joins[{index}]")

    group_keys = [_group_key(g, scope, f"plan.group_by[{i}]") for i, g in enumerate(plan.group_by)]
    aggregating = bool(plan.group_by) or any(s.aggregation for s in plan.select)
    aliases: dict[str, exp.Expression] = {}
    projections = []
    for index, item in enumerate(plan.select):
        projection = _select_item(item, scope, f"plan.select[{index}]", group_keys if aggregating else None)
        if projection is not None:
            if projection.alias in aliases:
                scope.violations.append((f"plan.select[{index}].alias", f"duplicate output name {projection.alias!r}"))
            aliases[projection.alias] = projection
            projections.append(projection)
    if not plan.select:
        if aggregating:
            scope.violations.append(("plan.select", "an aggregating plan must list its output columns"))
        projections = [exp.Star()]
    query = query.select(*projections)

    conditions = [_filter(f, scope, f"plan.filters[{i}]") for i, f in enumerate(plan.filters)]
    for condition in conditions:
        if condition is not None:
            query = query.where(condition)
    if plan.HasField("anchor"):
        query = _anchored(query, plan.anchor, scope, aggregating)
    if plan.group_by:
        query = query.group_by(*[key for key in group_keys if key is not None])
    for index, order in enumerate(plan.order_by):
        key = _order_key(order, aliases, scope, f"plan.order_by[{index}]", group_keys if aggregating else None)
        if key is not None:
            query = query.order_by(exp.Ordered(this=key, desc=order.descending, nulls_first=False))
    if plan.limit < 0 or plan.limit > max_limit:
        scope.violations.append(("plan.limit", f"limit {plan.limit} is outside 0..{max_limit} (0 means {DEFAULT_LIMIT})"))
    # Without a limit of its own a plan shows DEFAULT_LIMIT rows; one more is fetched, so the
    # answer can say honestly that there were more (see honest_default_limit).
    query = query.limit(plan.limit or DEFAULT_LIMIT + 1)
    if scope.violations:
        raise _validation_error(scope)
    return query


def _table(name: str) -> exp.Table:
    """A quoted table reference (the dataset's own table names)."""
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def _validation_error(scope: _Scope) -> ValidationError:
    first = scope.violations[0]
    more = f" (and {len(scope.violations) - 1} more)" if len(scope.violations) > 1 else ""
    return ValidationError(
        message=f"invalid plan: {first[0]}: {first[1]}{more}",
        violations=list(scope.violations),
        metadata={"dataset_id": scope.dataset.dataset_id, "field": first[0]},
    )


def _add_join(query: exp.Select, join: plan_pb2.Join, scope: _Scope, path: str) -> exp.Select:
    if scope.table(join.table) is None:
        scope.violations.append((f"{path}.table", f"unknown table {join.table!r}"))
        return query
    if join.table in scope.tables:
        scope.violations.append((f"{path}.table", f"table {join.table!r} is already in the plan"))
        return query
    for rel in scope.dataset.relationships:
        for near, near_col, far, far_col in (
            (rel.from_table, rel.from_column, rel.to_table, rel.to_column),
            (rel.to_table, rel.to_column, rel.from_table, rel.from_column),
        ):
            if far == join.table and near in scope.tables:
                scope.tables.append(join.table)
                on = exp.EQ(
                    this=ResolvedColumn(near, near_col, "").expression(),
                    expression=ResolvedColumn(far, far_col, "").expression(),
                )
                kind = "LEFT" if join.type == plan_pb2.JOIN_TYPE_LEFT else "INNER"
                return query.join(_table(join.table), on=on, join_type=kind)
    scope.violations.append((f"{path}.table", f"no declared relationship links {join.table!r} to {', '.join(scope.tables)}"))
    return query


def _bucketed(column: ResolvedColumn, bucket: int, scope: _Scope, path: str) -> exp.Expression:
    if not bucket:
        return column.expression()
    if not column.is_temporal:
        scope.violations.append((path, f"column {column.name!r} of type {column.type} cannot be bucketed by time"))
        return column.expression()
    if bucket == plan_pb2.TIME_BUCKET_YEAR:
        # A year reads best as the number 2024, not the date 2024-01-01.
        return exp.Year(this=column.expression())
    if bucket in _CALENDAR_PARTS:
        return _CALENDAR_PARTS[bucket](this=column.expression())
    if bucket == plan_pb2.TIME_BUCKET_DAY_OF_WEEK:
        return exp.Anonymous(this="isodow", expressions=[column.expression()])
    return exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string(_BUCKET_UNITS[bucket]), column.expression()])


def _group_key(group: plan_pb2.GroupBy, scope: _Scope, path: str) -> exp.Expression | None:
    column = scope.resolve(group.column, f"{path}.column")
    return None if column is None else _bucketed(column, group.bucket, scope, f"{path}.bucket")


def default_alias(item: plan_pb2.SelectItem, base: str) -> str:
    """Return the output name of a select item without an alias.

    Args:
        item: The select item.
        base: The resolved column name (without table prefix).
    """
    if item.aggregation:
        name = plan_pb2.Aggregation.Name(item.aggregation).removeprefix("AGGREGATION_").lower()
        return name if item.column == "*" else f"{name}_{base}"
    if item.bucket:
        return f"{base}_{_BUCKET_UNITS[item.bucket]}"
    return base


def number_of(value: exp.Expression) -> exp.Expression:
    """A text value read as a number: the first number in it, thousands separators ignored."""
    text = exp.Replace(this=exp.Cast(this=value, to=exp.DataType.build("VARCHAR")),
                       expression=exp.Literal.string(","), replacement=exp.Literal.string(""))
    first_number = exp.RegexpExtract(this=text, expression=exp.Literal.string(r"-?[0-9]+(\.[0-9]+)?"),
                                     group=exp.Literal.number(0))
    return exp.TryCast(this=first_number, to=exp.DataType.build("DOUBLE"))


def year_of(value: exp.Expression, temporal: bool) -> exp.Expression:
    """A value's year: year() of a date; the first four-digit year in a text cell."""
    if temporal:
        return exp.Year(this=value)
    found = exp.RegexpExtract(this=exp.Cast(this=value, to=exp.DataType.build("VARCHAR")),
                              expression=exp.Literal.string(r"(1[0-9]{3}|20[0-9]{2})"), group=exp.Literal.number(1))
    return exp.TryCast(this=found, to=exp.DataType.build("INTEGER"))


@dataclass(frozen=True)
class _Operand:
    """A select item's value before aggregation, and what kind of value it is."""

    value: exp.Expression
    numeric: bool
    boolean: bool


def _operand(item: plan_pb2.SelectItem, column: ResolvedColumn, scope: _Scope, path: str) -> _Operand | None:
    value = _bucketed(column, item.bucket, scope, f"{path}.bucket")
    if item.as_year:
        return _Operand(year_of(value, column.is_temporal), True, False)
    if not item.minus_column:
        if item.as_number and not column.is_numeric:
            return _Operand(number_of(value), True, False)
        return _Operand(value, column.is_numeric, column.is_boolean)
    other = scope.resolve(item.minus_column, f"{path}.minus_column")
    if other is None:
        return None
    if column.is_temporal and other.is_temporal:
        unit = _SECONDS_PER_UNIT.get(item.duration_unit)
        if unit is None:
            scope.violations.append((f"{path}.duration_unit", f"unknown duration unit {item.duration_unit}"))
            return None
        if unit != 86400 or item.duration_unit:
            seconds = exp.Anonymous(this="date_diff", expressions=[exp.Literal.string("second"), other.expression(), value])
            return _Operand(exp.Div(this=seconds, expression=exp.Literal.number(f"{unit}.0")), True, False)
        if column.type.upper() == "DATE" and other.type.upper() == "DATE":
            days: exp.Expression = exp.Anonymous(this="date_diff", expressions=[
                exp.Literal.string("day"), other.expression(), value])
        else:  # timestamps: fractional days, not a count of midnights crossed
            seconds = exp.Anonymous(this="date_diff", expressions=[exp.Literal.string("second"), other.expression(), value])
            days = exp.Div(this=seconds, expression=exp.Literal.number("86400.0"))
        return _Operand(days, True, False)
    if (column.is_numeric and other.is_numeric) or item.as_number:
        left = value if column.is_numeric else number_of(value)
        right = other.expression() if other.is_numeric else number_of(other.expression())
        return _Operand(exp.Sub(this=left, expression=right), True, False)
    scope.violations.append((f"{path}.minus_column", f"cannot subtract {other.name!r} ({other.type}) from "
                             f"{column.name!r} ({column.type}): both must be dates or both numbers"))
    return None


def _percent(total: exp.Expression, item: plan_pb2.SelectItem, scope: _Scope, path: str) -> exp.Expression | None:
    conditions = [_filter(f, scope, f"{path}.share_of[{i}]") for i, f in enumerate(item.share_of)]
    if item.ratio_of and not conditions and item.column != "*":
        other = scope.resolve(item.ratio_of, f"{path}.ratio_of")
        if other is None:
            return None
        denominator = other.expression()
        if not other.is_numeric:
            if not item.as_number:
                scope.violations.append((f"{path}.ratio_of", f"column {other.name!r} ({other.type}) is not numeric; "
                                         "set as_number to read it as a number"))
                return None
            denominator = number_of(denominator)
        return exp.Div(this=exp.Mul(this=exp.Literal.number("100.0"), expression=total.copy()),
                       expression=exp.Nullif(this=exp.Sum(this=denominator), expression=exp.Literal.number(0)))
    if not conditions:
        scope.violations.append((f"{path}.share_of", "AGGREGATION_PERCENT needs at least one share_of filter"))
        return None
    if any(c is None for c in conditions):
        return None
    part = exp.Filter(this=total.copy(), expression=exp.Where(this=exp.and_(*conditions)))
    return exp.Div(this=exp.Mul(this=exp.Literal.number("100.0"), expression=part),
                   expression=exp.Nullif(this=total.copy(), expression=exp.Literal.number(0)))


def _select_item(
    item: plan_pb2.SelectItem, scope: _Scope, path: str, group_keys: list[exp.Expression | None] | None
) -> exp.Alias | None:
    aggregation = item.aggregation
    if item.share_of and aggregation != plan_pb2.AGGREGATION_PERCENT:
        scope.violations.append((f"{path}.share_of", "share_of is only used with AGGREGATION_PERCENT"))
    if item.duration_unit and not item.minus_column:
        scope.violations.append((f"{path}.duration_unit", "duration_unit is only used with minus_column"))
    if item.column == "*":
        alias = item.alias or default_alias(item, "*")
        if aggregation == plan_pb2.AGGREGATION_COUNT:
            return exp.alias_(exp.Count(this=exp.Star()), alias, quoted=True)
        if aggregation == plan_pb2.AGGREGATION_PERCENT:
            share = _percent(exp.Count(this=exp.Star()), item, scope, path)
            return None if share is None else exp.alias_(share, alias, quoted=True)
        scope.violations.append((f"{path}.column", "`*` is only allowed with AGGREGATION_COUNT or AGGREGATION_PERCENT"))
        return None
    column = scope.resolve(item.column, f"{path}.column")
    if column is None:
        return None
    alias = item.alias or default_alias(item, column.name)
    operand = _operand(item, column, scope, path)
    if operand is None:
        return None
    value = operand.value
    if aggregation in _NUMERIC_ONLY and not operand.numeric:
        scope.violations.append((f"{path}.aggregation", f"cannot {plan_pb2.Aggregation.Name(aggregation)} "
                                 f"non-numeric column {column.name!r} ({column.type}); set as_number to read it as a number"))
        return None
    if aggregation in _NUMERIC_ONLY and operand.boolean:
        # SUM of a flag counts the true rows and AVG gives the true share (a rate); DuckDB has
        # no avg(BOOLEAN), so count true as 1.
        value = exp.Cast(this=value, to=exp.DataType.build("INTEGER"))
    if aggregation == plan_pb2.AGGREGATION_COUNT_DISTINCT:
        value = exp.Count(this=exp.Distinct(expressions=[value]))
    elif aggregation == plan_pb2.AGGREGATION_PERCENT:
        share = _percent(exp.Sum(this=value), item, scope, path)
        if share is None:
            return None
        value = share
    elif aggregation == plan_pb2.AGGREGATION_RANGE:
        value = exp.Sub(this=exp.Max(this=value.copy()), expression=exp.Min(this=value))
    elif aggregation:
        value = _AGGREGATES[aggregation](this=value)
    elif group_keys is not None and value not in group_keys:
        scope.violations.append((f"{path}.column", f"column {item.column!r} must be aggregated or listed in group_by"))
        return None
    return exp.alias_(value, alias, quoted=True)


def _literal(value: value_pb2.Value, scope: _Scope, path: str) -> exp.Expression:
    kind = value.WhichOneof("kind")
    if kind == "double_value" and not math.isfinite(value.double_value):
        scope.violations.append((path, f"number {value.double_value!r} is not finite"))
        return exp.Null()
    if kind == "bool_value":
        return exp.Boolean(this=value.bool_value)
    if kind == "int_value":
        return exp.Literal.number(value.int_value)
    if kind == "double_value":
        return exp.Literal.number(repr(value.double_value))
    if kind == "string_value":
        return exp.Literal.string(value.string_value)
    return exp.Null()


def _filter(condition: plan_pb2.Filter, scope: _Scope, path: str) -> exp.Expression | None:
    column = scope.resolve(condition.column, f"{path}.column")
    if column is None:
        return None
    target = column.expression()
    if condition.as_year:
        target = year_of(target, column.is_temporal)
    elif condition.as_number and not column.is_numeric:
        target = number_of(target)
    op = condition.op
    values = [_literal(v, scope, f"{path}.values[{i}]") for i, v in enumerate(condition.values)]
    expected = {plan_pb2.FILTER_OPERATOR_IS_NULL: 0, plan_pb2.FILTER_OPERATOR_NOT_NULL: 0,
                plan_pb2.FILTER_OPERATOR_BETWEEN: 2}.get(op, 1)
    if op == plan_pb2.FILTER_OPERATOR_UNSPECIFIED:
        scope.violations.append((f"{path}.op", "operator is required"))
        return None
    if op == plan_pb2.FILTER_OPERATOR_IN:
        if not values:
            scope.violations.append((f"{path}.values", "IN needs at least one value"))
            return None
        return exp.In(this=target, expressions=values)
    if len(values) != expected:
        scope.violations.append((f"{path}.values", f"{plan_pb2.FilterOperator.Name(op)} takes {expected} value(s), got {len(values)}"))
        return None
    if op in (plan_pb2.FILTER_OPERATOR_EQ, plan_pb2.FILTER_OPERATOR_NE) and isinstance(values[0], exp.Null):
        # `= NULL` never matches in SQL; a plan that compares with null means IS [NOT] NULL.
        is_null = exp.Is(this=target, expression=exp.Null())
        return is_null if op == plan_pb2.FILTER_OPERATOR_EQ else exp.Not(this=is_null)
    if op in _COMPARISONS:
        return _COMPARISONS[op](this=target, expression=values[0])
    if op == plan_pb2.FILTER_OPERATOR_BETWEEN:
        return exp.Between(this=target, low=values[0], high=values[1])
    if op == plan_pb2.FILTER_OPERATOR_IS_NULL:
        return exp.Is(this=target, expression=exp.Null())
    if op == plan_pb2.FILTER_OPERATOR_NOT_NULL:
        return exp.Not(this=exp.Is(this=target, expression=exp.Null()))
    text = exp.Lower(this=exp.Cast(this=target, to=exp.DataType.build("VARCHAR")))
    return exp.Anonymous(this=_TEXT_MATCHES[op], expressions=[text, exp.Lower(this=values[0])])


ROW_POSITION = "rowid"


def _anchored(query: exp.Select, anchor: plan_pb2.RowAnchor, scope: _Scope, aggregating: bool) -> exp.Select:
    """Restrict the query to rows positioned relative to the anchor row (base table, file order)."""
    base = scope.tables[0]
    if not anchor.match:
        scope.violations.append(("plan.anchor.match", "an anchor needs at least one match filter"))
        return query
    if anchor.offset == 0:
        scope.violations.append(("plan.anchor.offset", "offset must be non-zero (-1: the row before, 1: the row after)"))
        return query
    # The anchor is searched in the base table alone, whatever the plan joins.
    inner = _Scope(scope.dataset, [base], scope.violations)
    matches = [_filter(f, inner, f"plan.anchor.match[{i}]") for i, f in enumerate(anchor.match)]
    if any(m is None for m in matches):
        return query
    position = exp.column(ROW_POSITION, table=exp.to_identifier(base, quoted=True))
    anchor_row = exp.Subquery(this=exp.select(exp.Min(this=position.copy()))
                              .from_(_table(base)).where(exp.and_(*matches)))
    if anchor.nearest and aggregating:
        scope.violations.append(("plan.anchor.nearest", "nearest orders rows by position; it cannot be aggregated"))
        return query
    if not anchor.nearest:
        target = exp.Add(this=anchor_row, expression=exp.Literal.number(anchor.offset))
        return query.where(exp.EQ(this=position, expression=target))
    if anchor.offset > 0:
        return query.where(exp.GT(this=position, expression=anchor_row)).order_by(exp.Ordered(this=position.copy()))
    return query.where(exp.LT(this=position, expression=anchor_row)).order_by(
        exp.Ordered(this=position.copy(), desc=True))


def _order_key(
    order: plan_pb2.OrderBy, aliases: dict[str, exp.Expression], scope: _Scope, path: str,
    group_keys: list[exp.Expression | None] | None,
) -> exp.Expression | None:
    if order.file_order:
        if order.key:
            scope.violations.append((f"{path}.key", "file_order sorts by row position; leave key empty"))
            return None
        if group_keys is not None:
            scope.violations.append((f"{path}.file_order", "file_order cannot sort an aggregated result"))
            return None
        # The runner loads each table in file order, so DuckDB's rowid is the row's position.
        return exp.column(ROW_POSITION, table=exp.to_identifier(scope.tables[0], quoted=True))
    if order.key in aliases and not order.as_number:
        return exp.column(exp.to_identifier(order.key, quoted=True))
    column = scope.resolve(order.key, f"{path}.key")
    if column is None:
        return None
    key = column.expression()
    if group_keys is not None and key not in group_keys:
        scope.violations.append((f"{path}.key", f"sort key {order.key!r} must be an output name or a grouped column"))
        return None
    if order.as_year:
        return year_of(key, column.is_temporal)
    return number_of(key) if order.as_number and not column.is_numeric else key


def honest_default_limit(result: result_pb2.ResultTable) -> None:
    """Cut the result of a plan without a limit of its own to DEFAULT_LIMIT rows, marking it
    truncated when the query had more (it fetched DEFAULT_LIMIT + 1)."""
    if len(result.rows) > DEFAULT_LIMIT:
        del result.rows[DEFAULT_LIMIT:]
        result.row_count = len(result.rows)
        result.truncated = True
