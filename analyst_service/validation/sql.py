"""The read-only SQL policy, checked on the sqlglot AST (DuckDB dialect).

An allowlist, not a keyword denylist: exactly one statement; the root is a SELECT or a set
operation (a WITH clause hangs off it); every table reference is a dataset table or a CTE of the
query; table functions are refused; scalar and aggregate functions pass only when they are on
the allowlist of pure functions below. Parentheses nested deeper than MAX_NESTING are refused
before parsing (the parser recurses per level; the compiled sqlglotc parser goes deeper than the
pure-Python one before it raises, so the limit is ours, not the parser's), and anything that fails
to parse, or raises while parsing, is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.tokens import Token, TokenType

from analyst_service.errors import SqlPolicyError
from analyst_service.validation.exfiltration import check_exfiltration

MAX_SQL_CHARS = 20_000
# Parenthesis (and so subquery) nesting allowed; analysts' queries stay far below it.
MAX_NESTING = 64

_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except)
_DUCKDB = Dialect.get_or_raise("duckdb")

# Typed sqlglot function classes that are pure (no I/O, no settings, no sleeping).
ALLOWED_FUNCTION_CLASSES = frozenset("""
And Or Xor Collate RegexpILike RegexpFullMatch JSONExtract JSONExtractScalar
Abs AnyValue ApproxDistinct ArgMax ArgMin ArrayAgg Avg BitwiseAnd Case Cast Ceil Coalesce Concat ConcatWs
Contains Corr Count CountIf CovarPop CovarSamp CurrentDate CurrentTimestamp Date DateAdd DateDiff DateSub
DateTrunc Day DayOfMonth DayOfWeek DayOfWeekIso DayOfYear Exp Extract First FirstValue Floor Greatest
GroupConcat Hour If Initcap Lag Last LastValue Lead Least Left Length Levenshtein Ln Log
LogicalAnd LogicalOr Lower Max MD5 Median Min Minute Mod Mode Month NthValue Nullif Nvl2 PercentRank
PercentileCont PercentileDisc Pow Quantile Quarter Rank DenseRank RegexpExtract RegexpLike
RegexpReplace Repeat Replace Reverse Right Round RowNumber Second Sign SplitPart Sqrt StartsWith EndsWith
Stddev StddevPop StddevSamp StrPosition StrToDate StrToTime Substring Sum TimeToStr TimeToUnix
TimestampTrunc ToChar Trim TryCast Trunc UnixToTime Upper Variance VariancePop Week WeekOfYear Year
CumeDist Ntile Struct Array Explode Unnest DateFromParts TsOrDsToDate TimeStrToTime Exists DateBin ArraySize
BitwiseAndAgg BitwiseOrAgg BitwiseXorAgg IsInf IsNan ArrayDistinct Pad TimestampFromParts Split Dayname Monthname
""".split())

# Function names that sqlglot leaves as Anonymous and that are pure DuckDB functions.
ALLOWED_FUNCTION_NAMES = frozenset("""
date_part datepart now today like_escape ilike_escape suffix prefix strip_accents nfc_normalize lpad rpad
ltrim rtrim instr position ascii chr bit_length list_value array_length len regexp_split_to_array
string_split str_split list_aggregate list_sort list_distinct cardinality isnan isinf isfinite
even gcd lcm factorial radians degrees pi sin cos tan asin acos atan atan2 cot cbrt ceiling
make_date make_timestamp dayname monthname last_day yearweek isodow isoyear era decade
century millennium microsecond millisecond epoch_ms epoch_us julian age date_diff datediff date_sub
date_add time_bucket strftime strptime try_strptime to_days to_hours to_minutes to_seconds to_months
to_years to_weeks hash arg_max arg_min argmax argmin max_by min_by favg fsum sumkahan kahan_sum product
bool_and bool_or entropy kurtosis skewness quantile quantile_cont quantile_disc mad histogram
regr_slope regr_intercept regr_r2 regr_count var_samp var_pop stddev_samp stddev_pop covar_pop covar_samp
approx_quantile reservoir_quantile bit_and bit_or bit_xor string_agg listagg list array_agg
formatreadablesize format_bytes format printf to_base bar row_number rank dense_rank ntile lag lead
first_value last_value nth_value percent_rank cume_dist round_even roundbankers trunc signbit
""".split())


def check_sql(sql: str, tables: Iterable[str] | Mapping[str, Sequence[str]]) -> exp.Expression:
    """Check that `sql` is one read-only query over `tables`.

    Args:
        sql: The SQL text.
        tables: Names of the dataset's tables, or a mapping of each table name to its column
            names (an empty list when unknown). With a mapping the exfiltration heuristic
            (`validation.exfiltration`) runs too.

    Returns:
        The parsed statement.

    Raises:
        SqlPolicyError: Naming the first rule the statement breaks.
    """
    if not sql.strip():
        raise _refuse("the SQL is empty", "empty")
    if len(sql) > MAX_SQL_CHARS:
        raise _refuse(f"the SQL is {len(sql)} characters; the limit is {MAX_SQL_CHARS}", "too_long")
    try:
        tokens = _DUCKDB.tokenize(sql)
        if _nesting(tokens) > MAX_NESTING:
            raise _refuse(f"the SQL nests parentheses more than {MAX_NESTING} deep", "too_deep")
        statements = [s for s in _DUCKDB.parser().parse(tokens, sql) if s is not None]
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError, TypeError) as error:
        raise _refuse(f"the SQL could not be parsed safely: {type(error).__name__}", "unparsable") from error
    if len(statements) != 1:
        raise _refuse(f"exactly one statement is allowed, found {len(statements)}", "statement_count")
    statement = statements[0]
    if not isinstance(statement, _ROOTS):
        raise _refuse(f"only SELECT queries are allowed, not {type(statement).__name__.upper()}", "statement_type")
    try:
        _check_tree(statement, {t.lower() for t in tables})
        if isinstance(tables, Mapping):
            check_exfiltration(statement, tables)
    except RecursionError as error:
        raise _refuse("the SQL is nested too deeply", "too_deep") from error
    return statement


def _nesting(tokens: Iterable[Token]) -> int:
    """The deepest parenthesis nesting among the SQL's tokens (so not inside strings or comments)."""
    depth = deepest = 0
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
    return deepest


def _check_tree(statement: exp.Expression, tables: set[str]) -> None:
    for node in statement.walk():
        if isinstance(node, (exp.DML, exp.DDL, exp.Command, exp.Pragma, exp.Set, exp.Placeholder,
                             exp.Parameter, exp.Into, exp.Use, exp.Transaction)):
            raise _refuse(f"{type(node).__name__.upper()} is not allowed in a read-only query", "statement_type")
        if isinstance(node, exp.Table):
            _check_table_shape(node)
        elif isinstance(node, exp.Func):
            name = function_name(node)
            if name not in ALLOWED_FUNCTION_NAMES and type(node).__name__ not in ALLOWED_FUNCTION_CLASSES:
                raise _refuse(f"function {name}() is not on the allowlist", "function", name)
    # Table names resolve per scope: a CTE only shadows tables inside the query that defines it.
    try:
        scopes = traverse_scope(statement)
    except (sqlglot.errors.SqlglotError, RecursionError) as error:
        raise _refuse(f"the query's scopes could not be resolved: {type(error).__name__}", "unparsable") from error
    seen = 0
    for scope in scopes:
        for table in scope.tables:
            seen += 1
            if table.name.lower() not in tables and table.name not in scope.cte_sources:
                raise _refuse(f"unknown table {table.name!r}; allowed tables: {', '.join(sorted(tables))}",
                              "table", table.name)
    if seen < sum(1 for _ in statement.find_all(exp.Table)):
        raise _refuse("a table reference could not be resolved to a scope", "table")


def function_name(node: exp.Func) -> str:
    """The lower-case SQL name of a function node (the written name for unknown functions)."""
    return node.name.lower() if isinstance(node, exp.Anonymous) else type(node).sql_name().lower()


def _check_table_shape(table: exp.Table) -> None:
    if not isinstance(table.this, exp.Identifier):
        this = table.this
        name = function_name(this) if isinstance(this, exp.Func) else type(this).__name__.lower()
        raise _refuse(f"table functions such as {name}() are not allowed; query the dataset's tables", "table_function", name)
    if table.args.get("db") or table.args.get("catalog"):
        raise _refuse(f"qualified table {table.sql('duckdb')} is not allowed; use the dataset's table names", "table", table.sql("duckdb"))


def _refuse(message: str, rule: str, subject: str = "") -> SqlPolicyError:
    metadata = {"rule": rule}
    if subject:
        metadata["subject"] = subject
    return SqlPolicyError(message=message, violations=[("sql", message)], metadata=metadata)
