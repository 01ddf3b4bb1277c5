"""Cue words of the offline planner's question parser: time buckets, comparisons, aggregations.

Kept apart from the parser so the vocabulary can grow without the parsing logic growing with it.
"""

from __future__ import annotations

from csv_analyst.v1 import plan_pb2

P = plan_pb2
BUCKET_WORDS = {
    "hourly": P.TIME_BUCKET_HOUR, "daily": P.TIME_BUCKET_DAY, "weekly": P.TIME_BUCKET_WEEK,
    "monthly": P.TIME_BUCKET_MONTH, "quarterly": P.TIME_BUCKET_QUARTER, "yearly": P.TIME_BUCKET_YEAR,
    "annual": P.TIME_BUCKET_YEAR, "annually": P.TIME_BUCKET_YEAR,
}
BUCKET_UNITS = {"hour": P.TIME_BUCKET_HOUR, "day": P.TIME_BUCKET_DAY, "date": P.TIME_BUCKET_DAY,
                "week": P.TIME_BUCKET_WEEK, "month": P.TIME_BUCKET_MONTH, "quarter": P.TIME_BUCKET_QUARTER,
                "year": P.TIME_BUCKET_YEAR}
COMPARISONS: list[tuple[tuple[str, ...], int]] = sorted([
    (("more", "than"), P.FILTER_OPERATOR_GT), (("greater", "than"), P.FILTER_OPERATOR_GT),
    (("higher", "than"), P.FILTER_OPERATOR_GT), (("larger", "than"), P.FILTER_OPERATOR_GT),
    (("bigger", "than"), P.FILTER_OPERATOR_GT), (("over",), P.FILTER_OPERATOR_GT),
    (("above",), P.FILTER_OPERATOR_GT), (("exceeding",), P.FILTER_OPERATOR_GT),
    (("at", "least"), P.FILTER_OPERATOR_GE), (("no", "less", "than"), P.FILTER_OPERATOR_GE),
    (("less", "than"), P.FILTER_OPERATOR_LT), (("fewer", "than"), P.FILTER_OPERATOR_LT),
    (("lower", "than"), P.FILTER_OPERATOR_LT), (("smaller", "than"), P.FILTER_OPERATOR_LT),
    (("under",), P.FILTER_OPERATOR_LT), (("below",), P.FILTER_OPERATOR_LT),
    (("at", "most"), P.FILTER_OPERATOR_LE), (("no", "more", "than"), P.FILTER_OPERATOR_LE),
    (("up", "to"), P.FILTER_OPERATOR_LE), (("equal", "to"), P.FILTER_OPERATOR_EQ),
    (("exactly",), P.FILTER_OPERATOR_EQ), (("equals",), P.FILTER_OPERATOR_EQ),
], key=lambda item: -len(item[0]))
AGG_CUES: dict[tuple[str, ...], str] = {
    ("how", "many"): "count", ("number", "of"): "count", ("count", "of"): "count", ("count",): "count",
    ("how", "much"): "sum", ("sum", "of"): "sum", ("sum",): "sum", ("total",): "sum",
    ("add", "up"): "sum", ("adds", "up"): "sum", ("added", "up"): "sum", ("combined",): "sum",
    ("median",): "median",
    ("standard", "deviation"): "stddev", ("std", "dev"): "stddev", ("stdev",): "stddev", ("stddev",): "stddev",
    ("variance",): "variance",
    ("average",): "avg", ("avg",): "avg", ("mean",): "avg", ("typical",): "avg",
    ("maximum",): "max", ("max",): "max", ("peak",): "max?", ("peaked",): "max?",
    ("minimum",): "min", ("min",): "min",
    ("highest",): "max?", ("largest",): "max?", ("biggest",): "max?", ("greatest",): "max?",
    ("lowest",): "min?", ("smallest",): "min?", ("shortest",): "min?", ("youngest",): "min?",
    ("longest",): "max?", ("oldest",): "max?", ("strongest",): "max?", ("hottest",): "max?",
    ("coldest",): "min?", ("best",): "max?", ("worst",): "min?", ("fastest",): "max?", ("slowest",): "min?",
    ("earliest",): "min?", ("latest",): "max?", ("cheapest",): "min?", ("weakest",): "min?",
    ("widest",): "max?", ("narrowest",): "min?",
    ("most",): "desc", ("least",): "asc", ("fewest",): "asc",
}
AGGREGATIONS = {"count": P.AGGREGATION_COUNT, "sum": P.AGGREGATION_SUM, "avg": P.AGGREGATION_AVG,
                "max": P.AGGREGATION_MAX, "min": P.AGGREGATION_MIN, "median": P.AGGREGATION_MEDIAN, "max?": P.AGGREGATION_MAX,
                "min?": P.AGGREGATION_MIN, "range": P.AGGREGATION_RANGE,
                "stddev": P.AGGREGATION_STDDEV, "variance": P.AGGREGATION_VARIANCE}
# Units a duration may be asked in ("resolution time in hours"), after "in" or "of".
DURATION_UNITS = {"second": P.DURATION_UNIT_SECONDS,
                  "minute": P.DURATION_UNIT_MINUTES,
                  "hour": P.DURATION_UNIT_HOURS, "hr": P.DURATION_UNIT_HOURS,
                  "day": P.DURATION_UNIT_DAYS, "week": P.DURATION_UNIT_WEEKS, "wk": P.DURATION_UNIT_WEEKS}
# Calendar parts ("by hour of the day", "per day of the week", "month of the year"): part word, whole words.
CALENDAR_PARTS = {("hour", "day"): P.TIME_BUCKET_HOUR_OF_DAY, ("day", "week"): P.TIME_BUCKET_DAY_OF_WEEK,
                  ("weekday",): P.TIME_BUCKET_DAY_OF_WEEK, ("month", "year"): P.TIME_BUCKET_MONTH_OF_YEAR}
GROUP_CUES = {"per", "by", "each", "every", "across"}
DISTINCT_WORDS = {"distinct", "unique", "different"}
NEGATIONS = {"not", "no", "never", "without", "non", "didn", "don", "doesn", "isn", "wasn", "weren", "missed",
             "except", "excluding"}
ROW_NOUNS = {"row", "record", "entry", "line", "reading", "observation", "measurement", "event"}
ADDITIVE = {"quantity", "qty", "unit", "total", "amount", "revenue", "sale", "sales", "count", "cost",
            "stock", "spend", "volume", "value", "profit", "fee", "tax"}
# Column-name and description words of columns that hold money ("$40" compares with such a column).
MONEY_WORDS = frozenset({"price", "cost", "bill", "fee", "fare", "salary", "wage", "pay", "revenue", "sale", "sales",
                         "income", "spend", "amount", "dollar", "euro", "usd", "eur", "gbp", "money", "budget",
                         "prize", "earning", "profit", "payment", "charge"})
# Words that pick rows by their position in the file (the table's own order).
POSITION_WORDS = {"first": "first", "last": "last", "final": "last"}
# Words asking for a share ("what percent of the bills ...", "the share of women").
PERCENT_WORDS = frozenset({"percent", "percentage", "proportion", "fraction", "share", "pct"})
# Words after which a percentage question states the condition whose share it asks for
# ("what % of faculty | are female", "what percent of 2020 orders | came from Paris").
SHARE_SPLITS = frozenset({"are", "is", "were", "was", "have", "has", "had", "came", "come", "comes", "do", "does",
                          "did", "that", "who", "with", "get", "got", "went", "go"})
# Column words naming a part of a date: such columns label rows, they are not quantities to add up.
DATE_PARTS = frozenset({"year", "month", "day", "week", "hour", "minute", "quarter", "weekday"})
# Words saying a cell is empty ("the price is missing") or has a value ("with known build dates").
EMPTY_WORDS = frozenset({"missing", "empty", "blank", "null", "unknown", "unrecorded", "unreported"})
PRESENT_WORDS = frozenset({"known", "recorded", "available", "listed", "reported"})
# Words that ask for the spread between a column's largest and smallest values.
SPREAD_WORDS = frozenset({"gap", "difference", "spread", "range", "span"})
