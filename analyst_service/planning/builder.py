"""Turn a `Spec` into a `Plan`: choose the base table and joins, resolve columns, name outputs, sort.

Joins only follow declared relationships from the referencing (many) side to the referenced
(one) side, so joining never multiplies the rows being aggregated.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

from analyst_service.errors import PlannerError
from analyst_service.planning.explain import explain
from analyst_service.planning.schema_linking import ColumnInfo, SchemaIndex
from analyst_service.planning.spec import Condition, Group, Measure, Ref, Scalar, Spec
from csv_analyst.v1 import plan_pb2, value_pb2

P = plan_pb2
_UNITS = {P.TIME_BUCKET_HOUR: "hour", P.TIME_BUCKET_DAY: "day", P.TIME_BUCKET_WEEK: "week",
          P.TIME_BUCKET_MONTH: "month", P.TIME_BUCKET_QUARTER: "quarter", P.TIME_BUCKET_YEAR: "year",
          P.TIME_BUCKET_HOUR_OF_DAY: "hour_of_day", P.TIME_BUCKET_DAY_OF_WEEK: "day_of_week",
          P.TIME_BUCKET_MONTH_OF_YEAR: "month_of_year"}
# Aggregations whose result changes when a row is repeated by a join (a percentage of a column's total sums it).
_FAN_OUT_SENSITIVE = {P.AGGREGATION_SUM, P.AGGREGATION_AVG, P.AGGREGATION_COUNT, P.AGGREGATION_MEDIAN,
                      P.AGGREGATION_PERCENT, P.AGGREGATION_STDDEV, P.AGGREGATION_VARIANCE}


def reachable(index: SchemaIndex, base: str) -> dict[str, int]:
    """Tables reachable from base along many-to-one relationships, with their hop distance."""
    distance = {base: 0}
    queue = deque([base])
    while queue:
        table = queue.popleft()
        for rel in index.dataset.relationships:
            if rel.from_table == table and rel.to_table not in distance:
                distance[rel.to_table] = distance[table] + 1
                queue.append(rel.to_table)
    return distance


def _choose_base(spec: Spec, index: SchemaIndex) -> tuple[str, dict[str, int]]:
    order: list[str] = list(spec.tables)
    for measure in spec.measures:
        order += [c.table for c in measure.ref or ()]
    counts: dict[str, int] = {}
    for ref in spec.refs():
        for table in dict.fromkeys(c.table for c in ref):
            counts[table] = counts.get(table, 0) + 1
    order += sorted(counts, key=lambda t: -counts[t])
    order += [t.name for t in index.dataset.tables]
    additive = [m.ref for m in spec.measures if m.ref and m.aggregation in _FAN_OUT_SENSITIVE]
    possible = []
    for base in dict.fromkeys(order):
        tables = reachable(index, base)
        if all(any(c.table in tables for c in ref) for ref in spec.refs()):
            possible.append(base)
            # Summing or averaging a column of a joined (one-side) table would count it once per base row.
            if all(any(c.table == base for c in ref) for ref in additive):
                if all(t in tables for t in spec.tables[:1]):
                    return base, tables
    fallback = [b for b in possible if all(any(c.table == b for c in ref) for ref in additive)]
    if fallback:
        return fallback[0], reachable(index, fallback[0])
    if possible:
        measure = ", ".join(f"{ref[0].table}.{ref[0].name}" for ref in additive)
        raise PlannerError(
            message=f"{measure} is stored once per {additive[0][0].table} row, but the question also needs columns of "
                    f"a table with several rows per {additive[0][0].table} row, so summing or averaging it would "
                    "count it several times; ask about a column of that table instead",
            metadata={"measure": measure},
        )
    names = sorted({f"{c.table}.{c.name}" for ref in spec.refs() for c in ref[:1]})
    raise PlannerError(message=f"the question needs {', '.join(names)}, which no declared relationship connects",
                       metadata={"columns": ", ".join(names)})


class _Resolver:
    """Resolves candidate lists against the chosen base and records the joins they need."""

    def __init__(self, index: SchemaIndex, base: str, tables: dict[str, int]) -> None:
        self.index, self.base, self.tables = index, base, tables
        self.used: list[str] = []

    def column(self, ref: Ref) -> ColumnInfo:
        best = min((c for c in ref if c.table in self.tables), key=lambda c: self.tables[c.table])
        if best.table != self.base and best.table not in self.used:
            self.used.append(best.table)
        return best

    def joins(self) -> list[str]:
        """Tables to join in an order where each links to one already present."""
        needed = set(self.used)
        for table in list(needed):
            needed |= self._path(table)
        return [t for t in sorted(self.tables, key=lambda t: (self.tables[t], t)) if t in needed and t != self.base]

    def _path(self, target: str) -> set[str]:
        previous: dict[str, str] = {}
        queue = deque([self.base])
        while queue:
            table = queue.popleft()
            for rel in self.index.dataset.relationships:
                if rel.from_table == table and rel.to_table not in previous:
                    previous[rel.to_table] = table
                    queue.append(rel.to_table)
        path, node = set(), target
        while node in previous and node != self.base:
            path.add(node)
            node = previous[node]
        return path


def _value(scalar: Scalar) -> value_pb2.Value:
    if isinstance(scalar, bool):
        return value_pb2.Value(bool_value=scalar)
    if isinstance(scalar, int):
        return value_pb2.Value(int_value=scalar)
    if isinstance(scalar, float):
        return value_pb2.Value(double_value=scalar)
    return value_pb2.Value(string_value=scalar)


def _filter(reference: str, column: ColumnInfo, condition: Condition) -> plan_pb2.Filter:
    numbers = bool(condition.values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in condition.values)
    as_year = condition.as_year and numbers and not column.is_numeric
    return P.Filter(column=reference, op=condition.op, values=[_value(v) for v in condition.values],
                    as_number=column.numeric_text and numbers and not as_year, as_year=as_year)


def build_plan(spec: Spec, index: SchemaIndex) -> plan_pb2.Plan:
    """Build the plan for a spec.

    Args:
        spec: What the question asks for.
        index: The dataset's schema index.

    Returns:
        A plan with dataset_id, base table, joins, select, filters, group_by, order_by, limit and
        explanation set.

    Raises:
        PlannerError: When the spec is empty or its columns cannot be joined.
    """
    if spec.is_empty() and not spec.tables:
        raise PlannerError(message="the question does not name anything in the dataset")
    base, tables = _choose_base(spec, index)
    resolver = _Resolver(index, base, tables)
    resolved_groups = [(resolver.column(g.ref), g.bucket) for g in spec.groups]
    resolved_measures = [(m, resolver.column(m.ref) if m.ref else None) for m in spec.measures]
    resolved_conditions = [(resolver.column(c.ref), c) for c in spec.conditions]
    share_columns = {id(c): resolver.column(c.ref) for m in spec.measures for c in m.share}
    ratio_columns = {id(m): resolver.column(m.ratio_of) for m in spec.measures if m.ratio_of}
    minus_columns = {id(m): resolver.column(m.minus) for m in spec.measures if m.minus}
    order_column = resolver.column(spec.order_ref) if spec.order_ref else None
    anchor_column = resolver.column(spec.anchor.ref) if spec.anchor is not None else None
    if anchor_column is not None and anchor_column.table != base:
        raise PlannerError(message=f"rows before or after a named row are found in one table's file order, but "
                                   f"{anchor_column.table}.{anchor_column.name} is not a column of {base}",
                           metadata={"column": f"{anchor_column.table}.{anchor_column.name}", "base_table": base})
    joins = resolver.joins()

    def ref(column: ColumnInfo) -> str:
        return f"{column.table}.{column.name}" if joins else column.name

    plan = plan_pb2.Plan(dataset_id=index.dataset.dataset_id, base_table=base, limit=spec.limit)
    plan.joins.extend(plan_pb2.Join(table=t, type=P.JOIN_TYPE_INNER) for t in joins)
    aliases: list[str] = []

    def alias(name: str) -> str:
        unique, n = name, 2
        while unique in aliases:
            unique, n = f"{name}_{n}", n + 1
        aliases.append(unique)
        return unique

    group_aliases = []
    for column, bucket in resolved_groups:
        name = alias(_UNITS[bucket] if bucket else column.name)
        group_aliases.append((name, bucket))
        plan.select.append(P.SelectItem(column=ref(column), bucket=bucket, alias=name))
        plan.group_by.append(P.GroupBy(column=ref(column), bucket=bucket))
    measure_aliases = []
    for measure, column in resolved_measures:
        agg = measure.aggregation
        if column is None and measure.count_table and measure.count_table != base:
            column = index.id_column(measure.count_table)
            agg = P.AGGREGATION_COUNT_DISTINCT
            resolver.column((column,))  # type: ignore[arg-type]
        agg_name = P.Aggregation.Name(agg).removeprefix("AGGREGATION_").lower()
        unit = P.DurationUnit.Name(measure.unit).removeprefix("DURATION_UNIT_").lower() if measure.unit else "days"
        name = alias(agg_name if column is None else f"{agg_name}_{unit}" if id(measure) in minus_columns
                     else f"{agg_name}_{column.name}")
        measure_aliases.append(name)
        item = P.SelectItem(column="*" if column is None else ref(column), aggregation=agg, alias=name,
                            as_number=column is not None and column.numeric_text)
        if id(measure) in minus_columns:
            item.minus_column = ref(minus_columns[id(measure)])
            item.duration_unit = measure.unit
        if id(measure) in ratio_columns:
            item.ratio_of = ref(ratio_columns[id(measure)])
        for condition in measure.share:
            item.share_of.append(_filter(ref(share_columns[id(condition)]), share_columns[id(condition)], condition))
        plan.select.append(item)
    for column, condition in resolved_conditions:
        plan.filters.append(_filter(ref(column), column, condition))
    _exclude_summary_rows(plan, index, base, resolved_conditions, ref)
    if spec.anchor is not None and anchor_column is not None:
        _anchor(plan, spec, anchor_column, ref(anchor_column))
    _order(plan, spec, group_aliases, measure_aliases, order_column, ref)
    plan.explanation = explain(plan)
    return plan


def _anchor(plan: plan_pb2.Plan, spec: Spec, column: ColumnInfo, reference: str) -> None:
    """Locate rows relative to the anchor row: exactly one row away, or the nearest passing the filters.

    With conditions of its own ("the previous home game before Oslo"), or asking for "the
    first" row on that side, the question wants the nearest matching rows; otherwise the neighbour.
    """
    assert spec.anchor is not None
    nearest = bool(spec.conditions) or bool(spec.position) or spec.limit > 0
    plan.anchor.CopyFrom(P.RowAnchor(match=[_filter(reference, column, spec.anchor)], offset=spec.anchor_offset,
                                     nearest=nearest))
    if nearest and not plan.limit and not any(item.aggregation for item in plan.select):
        plan.limit = spec.position_count or 1


_SUMMARY = re.compile(r"^\s*(grand\s+)?totals?\s*:?\s*$", flags=re.IGNORECASE)


def _exclude_summary_rows(plan: plan_pb2.Plan, index: SchemaIndex, base: str,
                          conditions: list[tuple[ColumnInfo, Condition]], ref: Callable[[ColumnInfo], str]) -> None:
    """Leave out a table's own "Total" row (common in copied tables) unless the question asks about it.

    Only text columns without empty cells qualify, so that the `<>` filter drops nothing else.
    """
    asked = {column.ref for column, _ in conditions}
    for column in index.table_columns(base):
        if not column.is_text or column.null_count or column.ref in asked:
            continue
        totals = [v for v in column.top_values if _SUMMARY.match(v)]
        if totals:
            plan.filters.append(P.Filter(column=ref(column), op=P.FILTER_OPERATOR_NE, values=[_value(totals[0])]))
            plan.notes = (plan.notes + " " if plan.notes else "") + f"Left out the summary row {column.name} = {totals[0]!r}."
            return


def _order(plan: plan_pb2.Plan, spec: Spec, groups: list[tuple[str, int]], measures: list[str],
           order_column: ColumnInfo | None, ref: object) -> None:
    if measures and spec.descending is not None:
        plan.order_by.append(P.OrderBy(key=measures[0], descending=spec.descending))
        plan.order_by.extend(P.OrderBy(key=name) for name, _ in groups)
    elif measures and groups:
        timed = [name for name, bucket in groups if bucket]
        if timed:
            plan.order_by.extend(P.OrderBy(key=name) for name, _ in groups)
        else:
            plan.order_by.append(P.OrderBy(key=measures[0], descending=True))
            plan.order_by.extend(P.OrderBy(key=name) for name, _ in groups)
    elif spec.position and not measures and not groups and spec.anchor is None:
        plan.order_by.append(P.OrderBy(file_order=True, descending=spec.position == "last"))
        plan.limit = spec.position_count or 1
    elif order_column is not None:
        plan.order_by.append(P.OrderBy(key=ref(order_column), descending=bool(spec.descending),  # type: ignore[operator]
                                       as_number=order_column.numeric_text))


def spec_from_plan(plan: plan_pb2.Plan, index: SchemaIndex) -> Spec:
    """Rebuild a Spec from an earlier plan so that a follow-up question can refine it.

    Args:
        plan: The previous plan of the thread.
        index: The dataset's schema index.

    Returns:
        A spec that builds the same query.
    """
    tables = [plan.base_table] + [j.table for j in plan.joins]

    def lookup(reference: str) -> Ref:
        table, _, name = reference.rpartition(".")
        matches = [c for c in index.columns if c.name == name and (c.table == table or (not table and c.table in tables))]
        matches.sort(key=lambda c: c.table != plan.base_table)
        if not matches:
            raise PlannerError(message=f"the previous plan references unknown column {reference!r}")
        return tuple(matches[:1])

    spec = Spec(tables=[plan.base_table], limit=plan.limit, explicit_measure=True)
    for item in plan.select:
        if item.aggregation:
            count_table = plan.base_table if item.column == "*" else ""
            spec.measures.append(Measure(item.aggregation, None if item.column == "*" else lookup(item.column), count_table))
    spec.groups = [Group(lookup(g.column), g.bucket) for g in plan.group_by]
    for condition in plan.filters:
        values: list[Scalar] = []
        for value in condition.values:
            kind = value.WhichOneof("kind")
            values.append(getattr(value, kind) if kind and kind != "null_value" else "")
        spec.conditions.append(Condition(lookup(condition.column), condition.op, values))
    measure_aliases = {item.alias for item in plan.select if item.aggregation}
    if plan.order_by:
        first = plan.order_by[0]
        if first.key in measure_aliases and plan.limit:
            spec.descending = first.descending
        elif not measure_aliases and first.key:
            spec.order_ref = lookup(first.key)
            spec.descending = first.descending
    return spec
