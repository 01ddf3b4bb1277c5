"""Parse a question into a `Spec` using cue words and schema linking.

The parser consumes tokens in a fixed order so that each word plays one role: top-N, numeric
comparisons, dates, time buckets, known values, empty-state words, aggregation cues, grouping
cues, and finally column and table mentions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from analyst_service.errors import PlannerError
from analyst_service.planning.schema_linking import STOPWORDS, ColumnInfo, Mention, SchemaIndex, singular, tokenize
from analyst_service.planning.spec import Condition, Group, Measure, Ref, Scalar, Spec
from csv_analyst.v1 import plan_pb2

P = plan_pb2
MONTHS = {name: i + 1 for i, name in enumerate(
    "january february march april may june july august september october november december".split())}
MONTHS.update({name[:3]: number for name, number in MONTHS.items() if name != "may"})
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
    ("average",): "avg", ("avg",): "avg", ("mean",): "avg", ("typical",): "avg",
    ("maximum",): "max", ("max",): "max", ("peak",): "max",
    ("minimum",): "min", ("min",): "min",
    ("highest",): "max?", ("largest",): "max?", ("biggest",): "max?", ("greatest",): "max?",
    ("lowest",): "min?", ("smallest",): "min?",
    ("most",): "desc", ("least",): "asc", ("fewest",): "asc",
}
AGGREGATIONS = {"count": P.AGGREGATION_COUNT, "sum": P.AGGREGATION_SUM, "avg": P.AGGREGATION_AVG,
                "max": P.AGGREGATION_MAX, "min": P.AGGREGATION_MIN, "max?": P.AGGREGATION_MAX,
                "min?": P.AGGREGATION_MIN}
GROUP_CUES = {"per", "by", "each", "every", "across"}
DISTINCT_WORDS = {"distinct", "unique", "different"}
NEGATIONS = {"not", "no", "never", "without", "non", "didn", "don", "doesn", "isn", "wasn", "weren", "missed",
             "except", "excluding"}
ROW_NOUNS = {"row", "record", "entry", "line", "reading", "observation", "measurement", "event"}
ADDITIVE = {"quantity", "qty", "unit", "total", "amount", "revenue", "sale", "sales", "count", "cost",
            "stock", "spend", "volume", "value", "profit", "fee", "tax"}


@dataclass
class _Cue:
    start: int
    end: int
    kind: str


class QuestionParser:
    """Parses one question against one dataset's schema index."""

    def __init__(self, question: str, index: SchemaIndex) -> None:
        """Tokenize the question.

        Args:
            question: The user's question.
            index: The dataset's schema index.
        """
        self.index = index
        self.tokens = tokenize(question)
        self.words = [singular(t) for t in self.tokens]
        self.used = [False] * len(self.tokens)
        self.spec = Spec()
        self.date_conditions: list[tuple[int, Scalar]] = []
        self.bucket = 0
        self.comparisons: list[tuple[int, int, int, list[Scalar]]] = []
        self.cues: list[_Cue] = []
        self.group_cues: list[int] = []
        self.mentions: list[Mention] = []
        self.claimed: set[int] = set()
        self.value_columns: set[tuple[str, str]] = set()
        self.entity_position: int | None = None
        self.unlinked: list[str] = []

    # -- token helpers -------------------------------------------------------------------------

    def _at(self, i: int, phrase: tuple[str, ...]) -> bool:
        end = i + len(phrase)
        return end <= len(self.tokens) and tuple(self.tokens[i:end]) == phrase and not any(self.used[i:end])

    def _use(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.used[i] = True

    def _number(self, i: int) -> Scalar | None:
        if i >= len(self.tokens) or self.used[i]:
            return None
        token = self.tokens[i]
        try:
            value: Scalar = float(token) if "." in token else int(token)
        except ValueError:
            return None
        multiplier = {"k": 1_000, "thousand": 1_000, "m": 1_000_000, "million": 1_000_000,
                      "billion": 1_000_000_000, "bn": 1_000_000_000}.get(self.tokens[i + 1] if i + 1 < len(self.tokens) else "")
        if multiplier:
            value = value * multiplier
            self.used[i + 1] = True
        return value

    # -- passes --------------------------------------------------------------------------------

    def parse(self) -> Spec:
        """Run every pass and assemble the Spec.

        Returns:
            The spec; possibly empty when nothing was understood.

        Raises:
            PlannerError: When a part of the question was recognised but cannot be mapped.
        """
        self._top_n()
        self._comparisons()
        self._dates()
        self._buckets()
        self._values()
        self._empty_states()
        self._agg_cues()
        self._mentions()
        self._assemble()
        return self.spec

    def _top_n(self) -> None:
        for i, token in enumerate(self.tokens):
            if self.used[i]:
                continue
            if token in ("top", "bottom"):
                number = self._number(i + 1)
                self.spec.descending = token == "top"
                self.spec.limit = int(number) if isinstance(number, int) and number > 0 else 0
                self._use(i, i + (2 if self.spec.limit else 1))
                self.spec.understood.append(f"{token} {self.spec.limit or ''}".strip())
                self.entity_position = i + (2 if self.spec.limit else 1)
            elif i + 1 < len(self.tokens) and AGG_CUES.get((self.tokens[i + 1],), "") in ("max?", "min?", "desc", "asc"):
                number = self._number(i)
                if isinstance(number, int) and 0 < number <= 1000 and not (1900 <= number <= 2100):
                    self.spec.limit = number
                    self._use(i, i + 1)

    def _comparisons(self) -> None:
        for i in range(len(self.tokens)):
            if self._at(i, ("between",)):
                low, high = self._number(i + 1), self._number(i + 3)
                if low is not None and high is not None and self._at(i + 2, ("and",)):
                    self.comparisons.append((i, i + 4, P.FILTER_OPERATOR_BETWEEN, [low, high]))
                    self._use(i, i + 4)
                continue
            for phrase, op in COMPARISONS:
                if self._at(i, phrase):
                    value = self._number(i + len(phrase))
                    if value is not None:
                        self.comparisons.append((i, i + len(phrase) + 1, op, [value]))
                        self._use(i, i + len(phrase) + 1)
                    break
            value = self._number(i)
            if value is not None and (self._at(i + 1, ("or", "more")) or self._at(i + 1, ("or", "less"))
                                      or self._at(i + 1, ("or", "fewer"))):
                op = P.FILTER_OPERATOR_GE if self.tokens[i + 2] == "more" else P.FILTER_OPERATOR_LE
                self.comparisons.append((i, i + 3, op, [value]))
                self._use(i, i + 3)
        for _, _, op, values in self.comparisons:
            self.spec.understood.append(f"{P.FilterOperator.Name(op).removeprefix('FILTER_OPERATOR_').lower()} "
                                        + " and ".join(str(v) for v in values))

    def _dates(self) -> None:
        for i, token in enumerate(self.tokens):
            if self.used[i]:
                continue
            prefix = self.tokens[i - 1] if i > 0 and not self.used[i - 1] else ""
            span: tuple[date, date] | None = None
            end = i + 1
            if len(token) == 10 and token[4] == "-":
                day = date.fromisoformat(token)
                span = (day, date.fromordinal(day.toordinal() + 1))
            elif token in MONTHS and i + 1 < len(self.tokens) and _is_year(self.tokens[i + 1]):
                year, month = int(self.tokens[i + 1]), MONTHS[token]
                span = (date(year, month, 1), date(year + month // 12, month % 12 + 1, 1))
                end = i + 2
            elif token.startswith("q") and len(token) == 2 and i + 1 < len(self.tokens) and _is_year(self.tokens[i + 1]):
                year, quarter = int(self.tokens[i + 1]), int(token[1])
                span = (date(year, 3 * quarter - 2, 1), date(year + quarter // 4, (3 * quarter) % 12 + 1, 1))
                end = i + 2
            elif _is_year(token):
                span = (date(int(token), 1, 1), date(int(token) + 1, 1, 1))
            if span is None:
                continue
            start, stop = span[0].isoformat(), span[1].isoformat()
            if prefix in ("since", "after", "from"):
                self.date_conditions.append((P.FILTER_OPERATOR_GE, start if prefix != "after" else stop))
            elif prefix in ("before", "until", "till"):
                self.date_conditions.append((P.FILTER_OPERATOR_LT, start))
            else:
                self.date_conditions += [(P.FILTER_OPERATOR_GE, start), (P.FILTER_OPERATOR_LT, stop)]
            self._use(i - (1 if prefix in ("since", "after", "from", "before", "until", "till", "in", "during") else 0), end)
            self.spec.understood.append(" ".join(self.tokens[i:end]))

    def _buckets(self) -> None:
        for i, token in enumerate(self.tokens):
            if self.used[i]:
                continue
            if token in BUCKET_WORDS:
                self.bucket = BUCKET_WORDS[token]
                self._use(i, i + 1)
            elif token in GROUP_CUES | {"a", "over"} and i + 1 < len(self.tokens) and not self.used[i + 1] \
                    and self.words[i + 1] in BUCKET_UNITS:
                self.bucket = BUCKET_UNITS[self.words[i + 1]]
                self._use(i, i + 2)
            elif self._at(i, ("over", "time")):
                self.bucket = P.TIME_BUCKET_MONTH
                self._use(i, i + 2)
            else:
                continue
            self.spec.understood.append(f"per {P.TimeBucket.Name(self.bucket).removeprefix('TIME_BUCKET_').lower()}")

    def _values(self) -> None:
        found: dict[tuple[tuple[str, str], ...], tuple[list[ColumnInfo], list[str], bool]] = {}
        matches: dict[tuple[int, int], tuple[str, list[ColumnInfo]]] = {}
        for column in self.index.columns:
            for value in column.values:
                value_words = [singular(w) for w in tokenize(value)]
                if not value_words or (len(value_words) == 1 and value_words[0] in STOPWORDS):
                    continue
                for i in range(len(self.words) - len(value_words) + 1):
                    if self.words[i:i + len(value_words)] == value_words and not any(self.used[i:i + len(value_words)]):
                        matches.setdefault((i, i + len(value_words)), (value, []))[1].append(column)
        for (start, end), (value, columns) in sorted(matches.items()):
            negated = start > 0 and self.tokens[start - 1] in NEGATIONS
            key = tuple(c.ref for c in columns)
            entry = found.setdefault(key, (columns, [], negated))
            entry[1].append(value)
            self._use(start - (1 if negated else 0), end)
            self.value_columns.update(key)
        for columns, values, negated in found.values():
            if len(values) == 1:
                op = P.FILTER_OPERATOR_NE if negated else P.FILTER_OPERATOR_EQ
            else:
                op = P.FILTER_OPERATOR_IN
            self.spec.conditions.append(Condition(tuple(columns), op, list(dict.fromkeys(values))))
            self.spec.understood.append(f"{columns[0].name} {'is not' if negated else 'is'} {' or '.join(values)}")

    def _empty_states(self) -> None:
        for i, word in enumerate(self.words):
            if self.used[i]:
                continue
            columns = [c for c in self.index.columns if word in c.null_states]
            op = P.FILTER_OPERATOR_IS_NULL
            if not columns and word.startswith("un") and len(word) > 4:
                columns = list(self.index.link_span([word[2:]]))
                op = P.FILTER_OPERATOR_IS_NULL
            if columns:
                column = columns[0]
                if column.is_boolean:
                    self.spec.conditions.append(Condition((column,), P.FILTER_OPERATOR_EQ, [False]))
                else:
                    self.spec.conditions.append(Condition((column,), op))
                self.value_columns.add(column.ref)
                self._use(i, i + 1)
                self.spec.understood.append(f"{self.tokens[i]} ({column.name} is empty)")

    def _agg_cues(self) -> None:
        for i in range(len(self.tokens)):
            if self.used[i]:
                continue
            if self.tokens[i] in DISTINCT_WORDS:
                self.cues.append(_Cue(i, i + 1, "distinct"))
                self._use(i, i + 1)
                continue
            if self.tokens[i] == "for" and self._at(i + 1, ("each",)):
                self._use(i, i + 1)
                continue
            if self.tokens[i] in GROUP_CUES or self._at(i, ("grouped", "by")) or self._at(i, ("broken", "down", "by")):
                self.group_cues.append(i)
                self._use(i, i + 1)
                continue
            for phrase, kind in sorted(AGG_CUES.items(), key=lambda item: -len(item[0])):
                if self._at(i, phrase):
                    if phrase == ("total",) and self._total_is_column(i):
                        break
                    self.cues.append(_Cue(i, i + len(phrase), kind))
                    self._use(i, i + len(phrase))
                    break

    def _total_is_column(self, i: int) -> bool:
        """`total` names a column unless a numeric column follows ("total revenue")."""
        if not any("total" in c.words for c in self.index.columns):
            return False
        for j in range(i + 1, min(i + 3, len(self.tokens))):
            if self.used[j] or self.tokens[j] in STOPWORDS:
                continue
            columns = self.index.link_span([self.words[j]])
            return not any(c.is_measure for c in columns)
        return True

    def _mentions(self) -> None:
        i = 0
        while i < len(self.tokens):
            if self.used[i] or self.tokens[i] in STOPWORDS or self.tokens[i] in NEGATIONS:
                i += 1
                continue
            length, columns = 0, ()
            for size in (3, 2):
                words = self.words[i:i + size]
                if len(words) == size and not any(self.used[i:i + size]) and not any(w in STOPWORDS for w in words):
                    columns = self.index.link_span(words)
                    if columns:
                        length = size
                        break
            table = "" if length else self.index.table_for_word(self.tokens[i])
            if not length and not table:
                columns = self.index.link_span([self.words[i]])
                length = 1 if columns else 0
            if table:
                self.mentions.append(Mention(i, i + 1, table=table))
                i += 1
            elif length:
                self.mentions.append(Mention(i, i + length, columns=columns))
                i += length
            else:
                if self.words[i] in ROW_NOUNS:
                    self.spec.understood.append("rows")
                elif not self.tokens[i].replace(".", "").isdigit():
                    self.unlinked.append(self.tokens[i])
                i += 1

    # -- assembly ------------------------------------------------------------------------------

    def _next_mention(self, position: int, window: int = 4, measure_only: bool = False) -> Mention | None:
        for mention in self.mentions:
            if id(mention) in self.claimed or mention.start < position or mention.start > position + window:
                continue
            column = mention.column
            if column is not None and column.ref in self.value_columns:
                continue
            if measure_only and (column is None or not (column.is_measure)):
                continue
            return mention
        return None

    def _claim(self, mention: Mention) -> Mention:
        self.claimed.add(id(mention))
        return mention

    def _assemble(self) -> None:
        self._assign_comparisons()
        entity = self._find_entity()
        self._assign_groups(entity)
        self._assign_aggregations()
        self._leftovers(entity)
        self._assign_dates()
        if not self.spec.measures and self.spec.order_ref is None:
            ranges = [c for c in self.spec.conditions if c.op in (P.FILTER_OPERATOR_GT, P.FILTER_OPERATOR_GE,
                                                                  P.FILTER_OPERATOR_LT, P.FILTER_OPERATOR_LE)]
            if ranges:  # list rows in the order of the compared column, largest first for "more than"
                self.spec.order_ref = ranges[0].ref
                self.spec.descending = ranges[0].op in (P.FILTER_OPERATOR_GT, P.FILTER_OPERATOR_GE)

    def _assign_comparisons(self) -> None:
        for start, end, op, values in self.comparisons:
            best: tuple[int, Mention] | None = None
            for mention in self.mentions:
                column = mention.column
                if id(mention) in self.claimed or column is None or not (column.is_numeric or column.is_temporal):
                    continue
                distance = start - mention.end if mention.end <= start else mention.start - end
                distance += 0 if column.is_measure else 2
                if 0 <= distance <= 4 and (best is None or distance < best[0]):
                    best = (distance, mention)
            if best is None:
                measures = [c for c in self.index.columns if c.is_measure]
                raise PlannerError(
                    message=f"found a comparison with {values} but no numeric column next to it; "
                            f"numeric columns: {', '.join(c.name for c in measures) or 'none'}",
                    metadata={"candidates": ", ".join(c.name for c in measures)},
                )
            self.spec.conditions.append(Condition(self._claim(best[1]).columns, op, values))

    def _find_entity(self) -> Mention | None:
        """The thing being ranked or listed: after `top N`, or after a leading which/what."""
        position = self.entity_position
        if position is None:
            for i, token in enumerate(self.tokens):
                if token in ("which", "what") and i + 1 < len(self.tokens):
                    candidate = self._next_mention(i + 1, window=0)
                    if candidate is not None and not (candidate.column and candidate.column.is_measure):
                        return candidate
            return None
        return self._next_mention(position, window=1)

    def _assign_groups(self, entity: Mention | None) -> None:
        for cue in self.group_cues:
            mention = self._next_mention(cue + 1, window=1)
            if mention is None:
                if cue + 1 < len(self.tokens) and not self.used[cue + 1] and self.tokens[cue + 1] not in STOPWORDS:
                    raise PlannerError(
                        message=f"could not find a column for {self.tokens[cue]!r} {self.tokens[cue + 1]!r}; "
                                f"candidate columns: {self._candidates(lambda c: not c.is_measure)}",
                        metadata={"word": self.tokens[cue + 1]},
                    )
                continue
            if mention.column and mention.column.is_measure and (entity is not None or self.tokens[cue] == "by"):
                continue  # "top 5 categories by quantity": the measure to rank by, not a group
            self._add_group(self._claim(mention))
            following = mention.end
            while self._at(following, ("and",)) or (following < len(self.tokens) and self.tokens[following] == "and"):
                nxt = self._next_mention(following + 1, window=1)
                if nxt is None or (nxt.column and nxt.column.is_measure):
                    break
                self._add_group(self._claim(nxt))
                following = nxt.end

    def _add_group(self, mention: Mention) -> None:
        ref: Ref
        if mention.table:
            column = self.index.id_column(mention.table)
            if column is None:
                return
            ref = (column,)
        else:
            ref = mention.columns
        if ref[0].is_temporal:
            self.spec.groups.append(Group(ref, self.bucket or P.TIME_BUCKET_DAY))
            self.bucket = 0
        else:
            self.spec.groups.append(Group(ref))
        self.spec.understood.append(f"per {ref[0].name}")

    def _assign_aggregations(self) -> None:
        distinct = any(c.kind == "distinct" for c in self.cues)
        for cue in self.cues:
            if cue.kind == "distinct":
                continue
            if cue.kind in ("desc", "asc"):
                self.spec.descending = cue.kind == "desc"
                target = self._next_mention(cue.end, window=2)
                if target is not None and target.table:
                    self._claim(target)
                    self._add_count(target, False)
                continue
            if cue.kind == "count":
                self._add_count(self._next_mention(cue.end, window=3), distinct)
                continue
            target = self._next_mention(cue.end, window=0 if cue.kind.endswith("?") else 4, measure_only=True)
            if target is None and cue.kind.endswith("?"):
                self.spec.descending = cue.kind == "max?"
                continue
            if target is None:
                target = self._next_mention(0, window=len(self.tokens), measure_only=True)
            if target is None:
                raise PlannerError(
                    message=f"understood {cue.kind.rstrip('?')} but no numeric column matches "
                            f"{', '.join(self.unlinked) or 'the question'}; numeric columns: "
                            f"{self._candidates(lambda c: c.is_measure)}",
                    metadata={"aggregation": cue.kind.rstrip("?"), "unmatched": ", ".join(self.unlinked)},
                )
            if cue.kind.endswith("?") and (self.spec.groups or self._find_entity()):
                self.spec.descending = cue.kind == "max?"
            self._claim(target)
            self.spec.measures.append(Measure(AGGREGATIONS[cue.kind], target.columns))
            self.spec.explicit_measure = True
            self.spec.understood.append(f"{cue.kind.rstrip('?')} of {target.columns[0].name}")

    def _add_count(self, target: Mention | None, distinct: bool) -> None:
        self.spec.explicit_measure = True
        if target is not None:
            self._claim(target)
        column = target.column if target else None
        if target is not None and target.table:
            if distinct and (id_column := self.index.id_column(target.table)) is not None:
                self.spec.measures.append(Measure(P.AGGREGATION_COUNT_DISTINCT, (id_column,)))
            else:
                self.spec.measures.append(Measure(P.AGGREGATION_COUNT, None, target.table))
                self.spec.tables.append(target.table)
            self.spec.understood.append(f"count of {target.table}")
        elif column is not None and column.is_boolean and not distinct:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT, None, column.table))
            self.spec.conditions.append(Condition(target.columns, P.FILTER_OPERATOR_EQ, [True]))  # type: ignore[union-attr]
            self.spec.understood.append(f"count where {column.name}")
        elif column is not None and (distinct or column.is_id or not column.is_numeric):
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT_DISTINCT, target.columns))  # type: ignore[union-attr]
            self.spec.understood.append(f"distinct count of {column.name}")
        elif column is not None:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT, target.columns))  # type: ignore[union-attr]
            self.spec.understood.append(f"count of {column.name}")
        else:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT))
            self.spec.understood.append("count of rows")

    def _leftovers(self, entity: Mention | None) -> None:
        for mention in self.mentions:
            if id(mention) in self.claimed:
                continue
            column = mention.column
            if mention.table:
                self.spec.tables.append(mention.table)
            elif column is not None and column.is_boolean and column.ref not in self.value_columns:
                negated = any(self.tokens[j] in NEGATIONS for j in range(max(0, mention.start - 2), mention.start))
                if not any(c.ref and c.ref[0].ref == column.ref for c in self.spec.conditions):
                    self.spec.conditions.append(Condition(mention.columns, P.FILTER_OPERATOR_EQ, [not negated]))
                    self.spec.understood.append(f"{column.name} is {str(not negated).lower()}")
                self._claim(mention)
        ranking = self.spec.descending is not None or self.spec.limit > 0
        measures = [m for m in self.mentions if id(m) not in self.claimed and m.column and m.column.is_measure]
        if entity is not None and id(entity) not in self.claimed and (self.spec.measures or ranking):
            if entity.table and not self.spec.measures:
                self.spec.tables.insert(0, entity.table)
            else:
                self._add_group(self._claim(entity))
        if not self.spec.measures and measures and (self.spec.groups or ranking):
            column = measures[0].columns[0]
            default = P.AGGREGATION_SUM if set(column.words) & ADDITIVE else P.AGGREGATION_AVG
            if self.spec.groups:
                self.spec.measures.append(Measure(default, self._claim(measures[0]).columns))
                self.spec.understood.append(f"{'sum' if default == P.AGGREGATION_SUM else 'average'} of {column.name}")
            else:
                self.spec.order_ref = self._claim(measures[0]).columns
        if self.spec.groups and not self.spec.measures:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT))
        if ranking and self.spec.descending is None:
            self.spec.descending = True
        if (self.spec.descending is not None and not self.spec.limit and entity is not None
                and not self.tokens[entity.end - 1].endswith("s")):
            self.spec.limit = 1  # "which location has the highest ..." asks for one row

    def _assign_dates(self) -> None:
        temporal = [m for m in self.mentions if id(m) not in self.claimed and m.column and m.column.is_temporal]
        ref: Ref = temporal[0].columns if temporal else tuple(c for c in self.index.columns if c.is_temporal)
        if (self.bucket or self.date_conditions) and not ref:
            raise PlannerError(message="the question asks about time but the dataset has no date or timestamp column")
        if self.bucket:
            self.spec.groups.insert(0, Group(ref, self.bucket))
            if not self.spec.measures:
                self.spec.measures.append(Measure(P.AGGREGATION_COUNT))
        for op, value in self.date_conditions:
            self.spec.conditions.append(Condition(ref, op, [value]))

    def _candidates(self, keep: object) -> str:
        chosen = [c for c in self.index.columns if keep(c)]  # type: ignore[operator]
        return ", ".join(dict.fromkeys(c.name for c in chosen)) or "none"


def _is_year(token: str) -> bool:
    return token.isdigit() and len(token) == 4 and 1900 <= int(token) <= 2100


def parse_question(question: str, index: SchemaIndex) -> tuple[Spec, list[str]]:
    """Parse a question.

    Args:
        question: The user's question.
        index: The dataset's schema index.

    Returns:
        The spec and the content words that matched nothing in the schema.

    Raises:
        PlannerError: When a recognised part of the question cannot be mapped.
    """
    parser = QuestionParser(question, index)
    spec = parser.parse()
    return spec, parser.unlinked
