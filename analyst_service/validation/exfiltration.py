"""The exfiltration heuristic (issue 3, layer 5): refuse bulk row-by-row dumps of a table.

A query is refused when its output exposes most columns of one dataset table row by row
without a LIMIT of at most `WIDE_QUERY_MAX_LIMIT` rows, or packs most columns of a table into
collecting aggregates (string_agg, list, array_agg, ...), which put every row into one cell and
so escape any LIMIT. Summary aggregates (count, sum, avg, min, max, ...) expose nothing.

The analysis follows columns through CTEs, derived tables, set operations, `*`, `t.*`, whole-row
references (`SELECT orders FROM orders` is a struct of the whole row) and expressions that
combine columns (`concat_ws(',', *)`). It is a heuristic on top of the row cap and byte caps, not
a proof: it over-approximates where names are ambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from analyst_service.errors import SqlPolicyError

# A LIMIT at or below this many rows makes a wide query acceptable. It equals the compiler's
# MAX_LIMIT so that every compiled plan (which always carries a LIMIT) passes.
WIDE_QUERY_MAX_LIMIT = 10_000
# "Most columns": strictly more than this fraction of a table's columns...
WIDE_COLUMN_FRACTION = 0.5
# ... and at least this many of them (a one-column table is not a bulk dump of a record).
WIDE_MIN_COLUMNS = 2
# Marks "every column of this table" when the table's columns are unknown (ad-hoc CSVs before
# profiling): `*` of such a table counts as all of its columns.
ALL_COLUMNS = "*"

# Aggregates that reduce many rows to a statistic expose no row values.
_SUMMARY_AGGREGATES: tuple[type[exp.Expression], ...] = (
    exp.Count, exp.CountIf, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Median, exp.Stddev, exp.StddevPop,
    exp.StddevSamp, exp.Variance, exp.VariancePop, exp.Corr, exp.CovarPop, exp.CovarSamp, exp.ApproxDistinct,
    exp.Quantile, exp.PercentileCont, exp.PercentileDisc, exp.LogicalAnd, exp.LogicalOr, exp.BitwiseAndAgg,
    exp.BitwiseOrAgg, exp.BitwiseXorAgg, exp.Kurtosis, exp.Skewness, exp.RegrSlope, exp.RegrIntercept, exp.RegrR2,
    exp.RegrCount, exp.Rank, exp.DenseRank, exp.PercentRank, exp.CumeDist, exp.Ntile, exp.RowNumber,
)
_SUMMARY_NAMES = frozenset("""
favg fsum sumkahan kahan_sum product entropy mad approx_quantile reservoir_quantile quantile_cont
quantile_disc bool_and bool_or bit_and bit_or bit_xor regr_slope regr_intercept regr_r2 regr_count
var_samp var_pop stddev_samp stddev_pop covar_pop covar_samp kurtosis skewness
""".split())
# Aggregates that keep every value they see (one cell can hold the whole table).
_COLLECTING_AGGREGATES: tuple[type[exp.Expression], ...] = (exp.ArrayAgg, exp.GroupConcat)
_COLLECTING_NAMES = frozenset("string_agg listagg list array_agg group_concat histogram".split())

Pair = tuple[str, str]


@dataclass
class _Output:
    """One output column: the base (table, column) pairs it shows row by row and in collections."""

    name: str
    rows: set[Pair] = field(default_factory=set)
    collected: set[Pair] = field(default_factory=set)


def check_exfiltration(statement: exp.Expression, columns: Mapping[str, Sequence[str]]) -> None:
    """Refuse a statement that dumps most columns of a table row by row.

    Args:
        statement: A statement that passed the read-only policy.
        columns: Column names of every dataset table (an empty list when not known yet).

    Raises:
        SqlPolicyError: With rule `exfiltration`, the table, and a suggestion.
    """
    known = {t.lower(): [c.lower() for c in cols] for t, cols in columns.items()}
    exposed: set[Pair] = set()
    for output in _Analyzer(known).outputs(statement, {}):
        exposed |= output.rows | output.collected
    for table, table_columns in known.items():
        shown = {c for t, c in exposed if t == table}
        total = len(table_columns)
        count = total if ALL_COLUMNS in shown else len(shown & set(table_columns))
        if ALL_COLUMNS in shown and not total:
            count = total = WIDE_MIN_COLUMNS  # unknown schema: `*` is every column
        if count >= WIDE_MIN_COLUMNS and count > WIDE_COLUMN_FRACTION * total:
            message = (f"the query returns {count} of the {total} columns of table {table!r} row by row without a "
                       f"LIMIT of at most {WIDE_QUERY_MAX_LIMIT} rows; add a LIMIT, aggregate (GROUP BY with COUNT, "
                       f"SUM, AVG...), or select only the columns you need")
            raise SqlPolicyError(message=message, violations=[("sql", message)], metadata={
                "rule": "exfiltration", "subject": table, "columns_selected": str(count),
                "columns_total": str(total), "max_limit": str(WIDE_QUERY_MAX_LIMIT),
                "suggestion": "add a LIMIT, aggregate, or pick columns"})


def _limited(query: exp.Expression) -> bool:
    limit = query.args.get("limit")
    if not isinstance(limit, (exp.Limit, exp.Fetch)):
        return False
    value = limit.args.get("expression") or limit.args.get("count")
    if not (isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()):
        return False  # an expression, a percentage, a parameter: treated as no limit
    return int(value.this) <= WIDE_QUERY_MAX_LIMIT


@dataclass
class _Analyzer:
    columns: dict[str, list[str]]

    def outputs(self, query: exp.Expression, ctes: dict[str, exp.Expression]) -> list[_Output]:
        """The output columns of a query and the base columns behind each."""
        while isinstance(query, (exp.Subquery, exp.Paren)):
            inner = query.this
            if isinstance(query, exp.Subquery) and _limited(query):
                return self._bounded(self.outputs(inner, ctes))
            query = inner
        ctes = dict(ctes)
        for cte in getattr(query, "ctes", []) or []:
            ctes[cte.alias_or_name.lower()] = cte.this
        if isinstance(query, exp.SetOperation):
            left = self.outputs(query.left, ctes)
            right = self.outputs(query.right, ctes)
            if len(left) == len(right):
                for a, b in zip(left, right, strict=True):
                    a.rows |= b.rows
                    a.collected |= b.collected
            else:  # branches we could not line up: every left output may show any right column
                for a in left:
                    for b in right:
                        a.rows |= b.rows
                        a.collected |= b.collected
            result = left
        elif isinstance(query, exp.Select):
            result = self._select(query, ctes)
        else:
            return []
        return self._bounded(result) if _limited(query) else result

    @staticmethod
    def _bounded(outputs: list[_Output]) -> list[_Output]:
        return [_Output(o.name, set(), o.collected) for o in outputs]

    def _sources(self, select: exp.Select, ctes: dict[str, exp.Expression]) -> dict[str, list[_Output]]:
        sources: dict[str, list[_Output]] = {}
        from_ = select.args.get("from_") or select.args.get("from")
        nodes = [from_.this] if from_ is not None else []
        nodes += [join.this for join in select.args.get("joins") or []]
        for node in nodes:
            alias = node.alias_or_name.lower()
            if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
                name = node.name.lower()
                if name in ctes:
                    sources[alias] = self.outputs(ctes[name], {k: v for k, v in ctes.items() if k != name})
                elif name in self.columns:
                    cols = self.columns[name] or [ALL_COLUMNS]
                    sources[alias] = [_Output(c, {(name, c)}) for c in cols]
            elif isinstance(node, (exp.Subquery, exp.Select, exp.SetOperation)):
                sources[alias] = self.outputs(node, ctes)
        return sources

    def _select(self, select: exp.Select, ctes: dict[str, exp.Expression]) -> list[_Output]:
        sources = self._sources(select, ctes)
        result: list[_Output] = []
        for projection in select.expressions:
            if isinstance(projection, exp.Star):
                excluded = _excluded(projection)
                result += [_Output(o.name, set(o.rows), set(o.collected))
                           for outs in sources.values() for o in outs if o.name not in excluded]
                continue
            if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                outs = sources.get(projection.table.lower(), [])
                excluded = _excluded(projection.this)
                result += [_Output(o.name, set(o.rows), set(o.collected)) for o in outs if o.name not in excluded]
                continue
            output = _Output(projection.alias_or_name.lower())
            self._collect(projection, sources, ctes, output, collecting=False)
            result.append(output)
        return result

    def _collect(self, node: exp.Expression, sources: dict[str, list[_Output]], ctes: dict[str, exp.Expression],
                 output: _Output, collecting: bool) -> None:
        if _is_summary(node):
            return
        if _is_collecting(node):
            collecting = True
        if isinstance(node, (exp.Subquery, exp.Select, exp.SetOperation)):
            # A scalar subquery yields one value per row: only what it collects counts.
            for inner in self.outputs(node, ctes):
                output.collected |= inner.collected | (inner.rows if collecting else set())
            return
        found: list[_Output] = []
        if isinstance(node, exp.Star):
            found = [o for outs in sources.values() for o in outs]
        elif isinstance(node, exp.Column):
            found = self._resolve(node, sources)
        for source_output in found:
            if collecting:
                output.collected |= source_output.rows | source_output.collected
            else:
                output.rows |= source_output.rows
                output.collected |= source_output.collected
        if found or isinstance(node, (exp.Column, exp.Star)):
            return
        for child in node.iter_expressions():
            self._collect(child, sources, ctes, output, collecting)

    @staticmethod
    def _resolve(column: exp.Column, sources: dict[str, list[_Output]]) -> list[_Output]:
        name = column.name.lower()
        if isinstance(column.this, exp.Star):
            return list(sources.get(column.table.lower(), []))
        qualifier = column.table.lower()
        candidates = {qualifier: sources[qualifier]} if qualifier in sources else ({} if qualifier else sources)
        found = [o for outs in candidates.values() for o in outs if o.name == name]
        for outs in candidates.values():  # a table whose columns are unknown may hold any name
            found += [_Output(name, {(t, name) for t, _ in o.rows}) for o in outs if o.name == ALL_COLUMNS]
        if not found and not qualifier and name in sources:
            return list(sources[name])  # `SELECT orders FROM orders`: the whole row as a struct
        return found


def _is_summary(node: exp.Expression) -> bool:
    if isinstance(node, _SUMMARY_AGGREGATES):
        return True
    return isinstance(node, exp.Anonymous) and node.name.lower() in _SUMMARY_NAMES


def _is_collecting(node: exp.Expression) -> bool:
    if isinstance(node, _COLLECTING_AGGREGATES):
        return True
    return isinstance(node, exp.Anonymous) and node.name.lower() in _COLLECTING_NAMES


def _excluded(star: exp.Expression) -> set[str]:
    """Column names removed by `* EXCLUDE (...)` (sqlglot names the argument `except_` or `except`)."""
    names = star.args.get("except_") or star.args.get("except") or []
    return {e.name.lower() for e in names}
