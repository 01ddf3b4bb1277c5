"""Parse a question into a `Spec` using cue words and schema linking.

The parser consumes tokens in a fixed order so that each word plays one role: top-N, numeric
comparisons, dates, time buckets, known values, empty-state words, aggregation cues, grouping
cues, and finally column and table mentions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from analyst_service.errors import PlannerError
from analyst_service.planning.cues import (
    ADDITIVE,
    AGG_CUES,
    AGGREGATIONS,
    BUCKET_UNITS,
    BUCKET_WORDS,
    COMPARISONS,
    DISTINCT_WORDS,
    GROUP_CUES,
    NEGATIONS,
    ROW_NOUNS,
)
from analyst_service.planning.dates import DateSpan, find_dates, is_year
from analyst_service.planning.schema_linking import STOPWORDS, ColumnInfo, Mention, SchemaIndex, singular, tokenize
from analyst_service.planning.spec import Condition, Group, Measure, Ref, Scalar, Spec
from analyst_service.planning.values import link_values
from csv_analyst.v1 import plan_pb2

P = plan_pb2
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
        self.date_spans: list[DateSpan] = []
        self.bucket = 0
        self.comparisons: list[tuple[int, int, int, list[Scalar]]] = []
        self.cues: list[_Cue] = []
        self.group_cues: list[int] = []
        self.mentions: list[Mention] = []
        self.claimed: set[int] = set()
        self.value_columns: set[tuple[str, str]] = set()
        self.entity_position: int | None = None
        self.implicit_rank = False
        self.stray_numbers: list[int] = []
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
            elif i + 1 < len(self.tokens) and self.tokens[i + 1] in ("top", "bottom") and isinstance(self._number(i), int):
                self.spec.limit = int(self._number(i) or 0)
                self.spec.descending = self.tokens[i + 1] == "top"
                self._use(i, i + 2)
                self.entity_position = i + 2
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
                    after = i + len(phrase)
                    if after + 1 < len(self.tokens) and is_year(self.tokens[after]) and self.tokens[after + 1] in (
                            "to", "through", "thru", "until", "and"):
                        break  # "over 2010 through 2012" is a date range
                    value = self._number(after)
                    if value is not None:
                        self.comparisons.append((i, i + len(phrase) + 1, op, [value]))
                        self._use(i, i + len(phrase) + 1)
                    break
            value = self._number(i)
            for gap in (1, 2):  # "30 or more", "90 degrees or more"
                if value is not None and (self._at(i + gap, ("or", "more")) or self._at(i + gap, ("or", "less"))
                                          or self._at(i + gap, ("or", "fewer")) or self._at(i + gap, ("or", "higher"))
                                          or self._at(i + gap, ("or", "lower"))):
                    op = P.FILTER_OPERATOR_GE if self.tokens[i + gap + 1] in ("more", "higher") else P.FILTER_OPERATOR_LE
                    self.comparisons.append((i, i + gap + 2, op, [value]))
                    self._use(i, i + 1)
                    self._use(i + gap, i + gap + 2)
                    break
        for _, _, op, values in self.comparisons:
            self.spec.understood.append(f"{P.FilterOperator.Name(op).removeprefix('FILTER_OPERATOR_').lower()} "
                                        + " and ".join(str(v) for v in values))

    def _dates(self) -> None:
        self.date_spans = find_dates(self.tokens, self.used)
        for span in self.date_spans:
            self.spec.understood.append(" ".join(self.tokens[span.start:span.end]))

    def _buckets(self) -> None:
        for i, token in enumerate(self.tokens):
            if self.used[i]:
                continue
            if token in BUCKET_WORDS:
                self.bucket = BUCKET_WORDS[token]
                self._use(i, i + 1)
            elif token in GROUP_CUES | {"a", "over"} and i + 1 < len(self.tokens) and not self.used[i + 1] \
                    and self.words[i + 1] in BUCKET_UNITS and not self._names_plain_column(self.words[i + 1]):
                self.bucket = BUCKET_UNITS[self.words[i + 1]]
                self._use(i, i + 2)
            elif self._at(i, ("over", "time")):
                self.bucket = P.TIME_BUCKET_MONTH
                self._use(i, i + 2)
            else:
                continue
            self.spec.understood.append(f"per {P.TimeBucket.Name(self.bucket).removeprefix('TIME_BUCKET_').lower()}")

    def _names_plain_column(self, word: str) -> bool:
        """True when a non-temporal column is named exactly `word` (an integer `Month`, a text `day`)."""
        columns = [c for c in self.index.columns if c.words == (word,)]
        return bool(columns) and not any(c.is_temporal for c in columns)

    def _values(self) -> None:
        found: dict[tuple[str, str], tuple[ColumnInfo, list[str], bool, bool]] = {}
        for match in link_values(self.tokens, self.words, self.used, self.index.columns):
            negated = match.start > 0 and self.tokens[match.start - 1] in NEGATIONS
            partial = len(match.values) > 1 and not match.column.all_values_known
            entry = found.setdefault(match.column.ref, (match.column, [], negated, partial))
            entry[1].extend(match.values)
            self._use(match.start - (1 if negated else 0), match.end)
            self.value_columns.add(match.column.ref)
        for column, values, negated, partial in found.values():
            values = list(dict.fromkeys(values))
            same = tuple(c for c in self.index.columns if c.name == column.name and values[0] in c.values + c.top_values)
            if partial:
                prefix = _common_prefix(values)
                self.spec.conditions.append(Condition(same, P.FILTER_OPERATOR_STARTSWITH, [prefix]))
            elif len(values) == 1:
                op = P.FILTER_OPERATOR_NE if negated else P.FILTER_OPERATOR_EQ
                self.spec.conditions.append(Condition(same, op, values))
            else:
                self.spec.conditions.append(Condition(same, P.FILTER_OPERATOR_IN, values))
            self.spec.understood.append(f"{column.name} {'is not' if negated else 'is'} {' or '.join(values)}")

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
                    if kind in ("max?", "min?") and len(phrase) == 1 and self._implicit_measure(i):
                        # "hottest", "youngest": the word names its measure; rank the rows by it.
                        self.spec.descending = kind == "max?"
                        self.implicit_rank = True
                        break
                    self.cues.append(_Cue(i, i + len(phrase), kind))
                    self._use(i, i + len(phrase))
                    break

    def _implicit_measure(self, i: int) -> bool:
        """True when a superlative word itself names a numeric column ("hottest" -> temp)."""
        if self.tokens[i] in ("highest", "lowest", "largest", "smallest", "biggest", "greatest", "best", "worst"):
            return False
        return any(c.is_measure for c in self.index.link_span([self.words[i]]))

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
            if table and any(c.words == (self.words[i],) for c in self.index.columns):
                table = ""  # "avg tip" over a table named tips: the column is the better reading
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
                else:
                    self.stray_numbers.append(i)
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

    def _negated(self, mention: Mention) -> bool:
        """True when a negation word stands right before the mention ("non-smokers")."""
        return any(self.tokens[j] in NEGATIONS for j in range(max(0, mention.start - 2), mention.start))

    def _claim(self, mention: Mention) -> Mention:
        self.claimed.add(id(mention))
        return mention

    def _assemble(self) -> None:
        for i in list(self.stray_numbers):  # "4-cylinder", "6 cylinders": a value of the next column
            mention = self._next_mention(i + 1, window=0)
            value = self._number(i)
            if mention is not None and mention.column is not None and mention.column.is_numeric and value is not None:
                self.spec.conditions.append(Condition(self._claim(mention).columns, P.FILTER_OPERATOR_EQ, [value]))
                self.value_columns.add(mention.column.ref)
                self.stray_numbers.remove(i)
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
                if start <= mention.start and mention.end <= end:
                    distance = -2  # "90 degrees or more": the unit inside the phrase names the column
                distance += 0 if column.is_measure else 2
                if -2 <= distance <= 4 and (best is None or distance < best[0]):
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
            if self.tokens[cue] == "across" and cue + 1 < len(self.tokens) and self.used[cue + 1]:
                continue  # "across michigan counties": a value filter, not a grouping
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
        explicit = any(c.kind in ("avg", "sum", "count") for c in self.cues)
        if explicit:  # "worst highway mpg on average", "biggest total yield": the superlative only ranks
            for cue in self.cues:
                if cue.kind in ("max?", "min?"):
                    cue.kind = "desc" if cue.kind == "max?" else "asc"
        for first, second in zip(self.cues, self.cues[1:]):
            if first.kind.endswith("?") and second.kind.endswith("?") and second.start == first.end + 1 \
                    and self.tokens[first.end] == "and":
                target = self._next_mention(second.end, window=0, measure_only=True)
                if target is not None:  # "lowest and highest salary": both of one column
                    self.spec.measures.append(Measure(AGGREGATIONS[first.kind], target.columns))
                    self.spec.explicit_measure = True
                    first.kind = "distinct"
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
            negated = target is not None and self._negated(target)
            self.spec.conditions.append(Condition(target.columns, P.FILTER_OPERATOR_EQ, [not negated]))  # type: ignore[union-attr]
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
        if self.implicit_rank and not self.spec.limit and not self.spec.groups:
            self.spec.limit = 1  # "what was the hottest day?"

    def _assign_dates(self) -> None:
        temporal = [m for m in self.mentions if id(m) not in self.claimed and m.column and m.column.is_temporal]
        ref: Ref = temporal[0].columns if temporal else tuple(c for c in self.index.columns if c.is_temporal)
        year_ref = self._part_column("year")
        if self.bucket == P.TIME_BUCKET_YEAR and year_ref:
            self.spec.groups.insert(0, Group(year_ref))
            self.bucket = 0
        elif self.bucket == P.TIME_BUCKET_MONTH and (month_ref := self._part_column("month")) and not ref:
            self.spec.groups.insert(0, Group(month_ref))
            self.bucket = 0
        if self.bucket and not ref:
            raise PlannerError(message="the question asks about time but the dataset has no date or timestamp column")
        if self.bucket:
            self.spec.groups.insert(0, Group(ref, self.bucket))
        if self.spec.groups and not self.spec.measures:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT))
        for span in self.date_spans:
            self._assign_span(span, ref, year_ref)

    def _part_column(self, part: str) -> Ref:
        """An integer column holding a date part ("year", "month"), preferring one the question names."""
        columns = [c for c in self.index.columns if c.is_numeric and part in c.words and len(c.words) <= 2]
        named = [m.columns[0] for m in self.mentions if m.column in columns]
        return tuple(named or columns)

    def _assign_span(self, span: DateSpan, ref: Ref, year_ref: Ref) -> None:
        ops = {"ge": P.FILTER_OPERATOR_GE, "gt": P.FILTER_OPERATOR_GE, "lt": P.FILTER_OPERATOR_LT}
        if span.month_only:
            month_ref = self._part_column("month")
            if month_ref:
                self.spec.conditions.append(Condition(month_ref, P.FILTER_OPERATOR_EQ, [span.month_only]))
                return
            years = {c.min_value[:4] for c in ref} | {c.max_value[:4] for c in ref}
            if ref and len(years) == 1 and is_year(next(iter(years))):
                year = int(next(iter(years)))
                low = span.low.replace(year=year)
                high = date(year + low.month // 12, low.month % 12 + 1, 1) if span.low == span.high else span.high.replace(year=year)
                span = DateSpan(span.start, span.end, low, high, span.bound)
            else:
                raise PlannerError(message=f"the question names the month {self.tokens[span.start:span.end][-1]!r} "
                                           "without a year, and the data spans several years; add the year")
        if ref and not (span.years_only and year_ref and not any(m.column in ref for m in self.mentions)):
            low, high = span.low.isoformat(), span.high.isoformat()
            if span.bound == "in":
                self.spec.conditions += [Condition(ref, P.FILTER_OPERATOR_GE, [low]), Condition(ref, P.FILTER_OPERATOR_LT, [high])]
            else:
                self.spec.conditions.append(Condition(ref, ops[span.bound], [high if span.bound == "gt" else low]))
            return
        if year_ref and span.years_only:
            first, last = span.low.year, span.high.year - 1
            if span.bound == "in":
                if first == last:
                    self.spec.conditions.append(Condition(year_ref, P.FILTER_OPERATOR_EQ, [first]))
                else:
                    self.spec.conditions.append(Condition(year_ref, P.FILTER_OPERATOR_BETWEEN, [first, last]))
            else:
                self.spec.conditions.append(Condition(year_ref, ops[span.bound], [last + 1 if span.bound == "gt" else first]))
            return
        raise PlannerError(message="the question asks about a date but the dataset has no date, timestamp or year column")

    def _candidates(self, keep: object) -> str:
        chosen = [c for c in self.index.columns if keep(c)]  # type: ignore[operator]
        return ", ".join(dict.fromkeys(c.name for c in chosen)) or "none"


def _common_prefix(values: list[str]) -> str:
    prefix = values[0]
    for value in values[1:]:
        while not value.lower().startswith(prefix.lower()):
            prefix = prefix[:-1]
    return prefix


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
    if parser.stray_numbers:
        # A number the plan does not use would silently widen the answer ("90 degrees" unplaced).
        numbers = ", ".join(parser.tokens[i] for i in parser.stray_numbers)
        raise PlannerError(
            message=f"understood {'; '.join(spec.understood) or 'nothing'}, but could not place the number(s) "
                    f"{numbers} on a column; name the column it applies to",
            metadata={"numbers": numbers, "understood": "; ".join(spec.understood)},
        )
    return spec, parser.unlinked
