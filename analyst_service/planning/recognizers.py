"""Recognisers of the question parser: passes that consume cue words and link mentions.

Each pass marks the tokens it consumes so that each word plays one role: top-N, numeric
comparisons, dates, time buckets, known values, empty-state words, aggregation cues, grouping
cues, and finally column and table mentions.
"""

from __future__ import annotations

from analyst_service.planning.cues import (
    AGG_CUES,
    POSITION_WORDS,
    BUCKET_UNITS,
    BUCKET_WORDS,
    CALENDAR_PARTS,
    COMPARISONS,
    DISTINCT_WORDS,
    GROUP_CUES,
    NEGATIONS,
    EMPTY_WORDS,
    PERCENT_WORDS,
    PRESENT_WORDS,
    ROW_NOUNS,
    SPREAD_WORDS,
)
from analyst_service.planning.dates import find_dates, find_relative_dates, is_year
from analyst_service.planning.parser_state import Cue, ParserState
from analyst_service.planning.schema_linking import STOPWORDS, ColumnInfo, Mention
from analyst_service.planning.spec import Condition
from analyst_service.planning.values import link_values
from csv_analyst.v1 import plan_pb2

P = plan_pb2


_AGGREGATE_WORDS = frozenset({phrase[0] for phrase, kind in AGG_CUES.items()
                               if len(phrase) == 1 and kind not in ("count", "desc", "asc")})


class Recognizers(ParserState):
    """The token-consuming passes, run in a fixed order by `QuestionParser.parse`."""

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
            elif token in ("which", "what") and i + 2 < len(self.tokens) and not is_year(self.tokens[i + 1]) \
                    and isinstance(number := self._number(i + 1, words=True), int) and 1 < number <= 100 \
                    and self.tokens[i + 2] not in ("percent", "of", "or", "and"):
                self.spec.limit = number  # "which 3 shops have the most orders"
                self._use(i + 1, i + 2)
                self.entity_position = i + 2
                self.spec.understood.append(f"{number} of them")
            elif i + 1 < len(self.tokens) and AGG_CUES.get((self.tokens[i + 1],), "") in ("max?", "min?", "desc", "asc"):
                number = self._number(i)
                if isinstance(number, int) and 0 < number <= 1000 and not (1900 <= number <= 2100):
                    self.spec.limit = number
                    self._use(i, i + 1)

    def _positions(self) -> None:
        """File order: "the first entry", "which one came last", "the last 3 rows", "the first five integers".

        Only the words first/last/final, and not when they belong to a column name ("First Name").
        """
        for i, token in enumerate(self.tokens):
            if self.used[i] or token not in POSITION_WORDS or self.tokens[i + 1:i + 2] in (["quarter"], ["qtr"]):
                continue  # "the first quarter of 2024" is a date
            if i + 1 < len(self.tokens) and any(POSITION_WORDS[token] in c.words or token in c.words
                                                for c in self.index.link_span(self.words[i:i + 2])):
                continue
            if i > 0 and AGG_CUES.get((self.tokens[i - 1],), "") in ("max?", "min?", "desc", "asc"):
                self._use(i, i + 1)  # "highest first": the sort direction, not the first row
                continue
            number = self._number(i + 1, words=True)
            count = int(number) if isinstance(number, int) and 0 < number <= 100 and not is_year(self.tokens[i + 1]) else 0
            self.spec.position = POSITION_WORDS[token]
            self.spec.position_count = count
            self._use(i, i + (2 if count else 1))
            if i + (2 if count else 1) < len(self.tokens) and self.tokens[i + (2 if count else 1)] == "place":
                self._use(i, i + (3 if count else 2))  # "in last place": the position, not a column
            self.spec.understood.append(f"the {token} {count or ''} row(s) in file order".replace("  ", " "))
            return

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
                    value = self._number(after, words=True)
                    if value is not None:
                        self.comparisons.append((i, i + len(phrase) + 1, op, [value]))
                        self._use(i, i + len(phrase) + 1)
                        self._redundant_or_more(i + len(phrase) + 1, op)
                    break
            value = self._number(i)
            for gap in (1, 2):  # "30 or more", "20 units or more"
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

    def _redundant_or_more(self, after: int, op: int) -> None:
        """ "at least 20 points or more": the trailing "or more" (within two words) repeats the comparison."""
        same = {P.FILTER_OPERATOR_GE: ("more", "higher", "greater"), P.FILTER_OPERATOR_LE: ("less", "fewer", "lower")}
        for gap in (0, 1):
            if self._at(after + gap, ("or",)) and self.tokens[after + gap + 1:after + gap + 2] \
                    and self.tokens[after + gap + 1] in same.get(op, ()):
                self._use(after + gap, after + gap + 2)
                return

    def _relative_dates(self) -> None:
        # Only where there are dates to be relative to: in a table of seasons or years, "the
        # previous year" names a row ("the row before"), which the anchor pass reads.
        if any(c.is_temporal for c in self.index.columns):
            self.date_spans = find_relative_dates(self.tokens, self.used)

    def _dates(self) -> None:
        self.date_spans += find_dates(self.tokens, self.used)
        for span in self.date_spans:
            self.spec.understood.append(" ".join(self.tokens[span.start:span.end]))

    def _calendar_parts(self) -> None:
        """ "by hour of the day", "which day of the week", "per weekday": group by a calendar part of the dates.

        Only after a grouping cue or which/what, only when the dataset has a date column, and not when the
        part names a plain column of its own (an integer `Month`, a text `day`), which is read as that column.
        """
        dated = any(c.is_temporal for c in self.index.columns)
        for i in range(1, len(self.tokens)):
            if self.used[i] or (self.tokens[i - 1] not in GROUP_CUES | {"which", "what"}):
                continue
            for phrase, part in CALENDAR_PARTS.items():
                end = self._calendar_phrase_end(i, phrase)
                if end and self._names_plain_column(self.words[i]):
                    self._use(i + 1, end)  # "by month of the year" over a `Month` column: that column
                    return
                if end and dated:
                    self.bucket = part
                    self.time_entity = self.tokens[i - 1] in ("which", "what")
                    self._use(i - 1 if self.tokens[i - 1] in GROUP_CUES else i, end)
                    self.calendar = (i, end, part)
                    self.spec.understood.append(f"per {' '.join(self.tokens[i:end])}")
                    return

    def _calendar_phrase_end(self, i: int, phrase: tuple[str, ...]) -> int:
        """The end of "<part> of [the|a] <whole>" (or a one-word part) starting at i, else 0."""
        if self.words[i] != phrase[0]:
            return 0
        if len(phrase) == 1:
            return i + 1
        j = i + 1
        if self.tokens[j:j + 1] != ["of"]:
            return 0
        j += 2 if self.tokens[j + 1:j + 2] in (["the"], ["a"]) else 1
        return j + 1 if j < len(self.tokens) and self.words[j] == phrase[1] else 0

    def _buckets(self) -> None:
        self._calendar_parts()
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
            elif token in ("which", "what") and self.tokens[i + 1:i + 2] in ([u] for u in BUCKET_UNITS) \
                    and not self.used[i + 1] and not self._names_plain_column(self.tokens[i + 1]) \
                    and any(c.is_temporal for c in self.index.columns):
                self.bucket = BUCKET_UNITS[self.tokens[i + 1]]  # "which month had the fewest orders"
                self.time_entity = True
                self._use(i + 1, i + 2)
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
        found: dict[tuple[str, str], tuple[ColumnInfo, list[str], bool, bool, int]] = {}
        for match in link_values(self.tokens, self.words, self.used, self.index.columns):
            if self._counted_noun(match.start, match.end, match.column):
                continue
            negated = match.start > 0 and self.tokens[match.start - 1] in NEGATIONS
            partial = len(match.values) > 1 and not match.column.all_values_known
            entry = found.setdefault(match.column.ref, (match.column, [], negated, partial, match.start))
            entry[1].extend(match.values)
            self._use(match.start - (1 if negated else 0), match.end)
            self.value_columns.add(match.column.ref)
        for column, values, negated, partial, position in found.values():
            values = list(dict.fromkeys(values))
            same = tuple(c for c in self.index.columns if c.name == column.name and values[0] in c.values + c.top_values)
            if partial:
                prefix = _common_prefix(values)
                self.spec.conditions.append(Condition(same, P.FILTER_OPERATOR_STARTSWITH, [prefix], position))
            elif len(values) == 1:
                op = P.FILTER_OPERATOR_NE if negated else P.FILTER_OPERATOR_EQ
                self.spec.conditions.append(Condition(same, op, values, position))
            else:
                self.spec.conditions.append(Condition(same, P.FILTER_OPERATOR_IN, values, position))
            self.spec.understood.append(f"{column.name} {'is not' if negated else 'is'} {' or '.join(values)}")

    def _counted_noun(self, start: int, end: int, column: ColumnInfo) -> bool:
        """True for a plural noun that is a cell value but also names another column ("how many deaths" with
        a `death_date` column): the rows are the things counted, not the rows whose type is `Death`."""
        after_one = start > 0 and self.tokens[start - 1] in ("one", "1") and self.used[start - 1]  # "at least one death"
        if end - start != 1 or (self.tokens[start] == self.words[start] and not after_one):
            return False
        return any(self.words[start] in c.words and c.ref != column.ref and c.null_count == 0 and len(c.words) > 1
                   for c in self.index.columns if c.table == column.table)

    def _none_left(self) -> None:
        """ "out of stock", "out of paper": a quantity column at zero or below."""
        for i in range(len(self.tokens) - 2):
            if self.used[i] or self.tokens[i:i + 2] != ["out", "of"] or self.used[i + 2]:
                continue
            columns = [c for c in self.index.link_span([self.words[i + 2]]) if c.is_native_numeric and c.is_measure]
            if not columns:
                continue
            self.spec.conditions.append(Condition(tuple(columns), P.FILTER_OPERATOR_LE, [0], i))
            self.value_columns.add(columns[0].ref)
            self._use(i, i + 3)
            self.spec.understood.append(f"{columns[0].name} ≤ 0")

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
                    self.spec.conditions.append(Condition((column,), P.FILTER_OPERATOR_EQ, [False], i))
                else:
                    self.spec.conditions.append(Condition((column,), op, [], i))
                self.value_columns.add(column.ref)
                self._use(i, i + 1)
                self.spec.understood.append(f"{self.tokens[i]} ({column.name} is empty)")

    def _missing_values(self) -> None:
        """ "the price is missing" -> Ozone IS NULL; "with known build dates" -> IS NOT NULL.

        The state word must stand next to a column that has empty cells (at most two filler words
        apart), so "how many sales are recorded" over a column without gaps stays a plain count.
        """
        for i, word in enumerate(self.words):
            if self.used[i] or word not in EMPTY_WORDS | PRESENT_WORDS:
                continue
            found = self._column_near(i)
            if found is None:
                continue
            column, start, end = found
            # "the minimum temperature recorded", "coldest temperature ever recorded": the superlative
            # may be part of the column phrase itself.
            aggregated = any(self.tokens[j] in _AGGREGATE_WORDS for j in range(max(0, start - 2), end))
            if word in PRESENT_WORDS and aggregated:
                # Aggregates skip empty cells anyway, and the column is the measure, not a filter.
                self._use(i, i + 1)
                continue
            op = P.FILTER_OPERATOR_IS_NULL if word in EMPTY_WORDS else P.FILTER_OPERATOR_NOT_NULL
            if word in PRESENT_WORDS and any(self.tokens[j] in NEGATIONS for j in range(max(0, start - 2), start)):
                op = P.FILTER_OPERATOR_IS_NULL  # "no score listed"
            self.spec.conditions.append(Condition((column,), op, [], min(i, start)))
            self.value_columns.add(column.ref)
            self._use(i, i + 1)
            self._use(start, end)
            self.spec.understood.append(f"{column.name} {'is empty' if op == P.FILTER_OPERATOR_IS_NULL else 'has a value'}")

    def _column_near(self, i: int) -> tuple[ColumnInfo, int, int] | None:
        """A column with empty cells named within two filler words before or after token i."""
        for direction in (-1, 1):
            j = i + direction
            while 0 <= j < len(self.tokens) and abs(j - i) <= 3 and not self.used[j] \
                    and (self.tokens[j] in STOPWORDS or self.words[j] in ROW_NOUNS):
                j += direction
            for size in (2, 1):
                start = j - size + 1 if direction < 0 else j
                if start < 0 or start + size > len(self.tokens) or any(self.used[start:start + size]) \
                        or abs(j - i) > 3:
                    continue
                words = self.words[start:start + size]
                if any(w in STOPWORDS for w in words):
                    continue
                columns = [c for c in self.index.link_span(words) if c.null_count > 0]
                if columns:
                    return columns[0], start, start + size
        return None

    def _range_cues(self) -> None:
        """ "the gap between the best and worst paid", "difference between highest and lowest salary", "spread
        of salaries": MAX - MIN of one column (AGGREGATION_RANGE)."""
        for i, token in enumerate(self.tokens):
            if self.used[i] or token not in SPREAD_WORDS:
                continue
            for j in range(i + 1, min(i + 5, len(self.tokens) - 2)):
                pair = (AGG_CUES.get((self.tokens[j],), ""), self.tokens[j + 1], AGG_CUES.get((self.tokens[j + 2],), ""))
                if pair[1] == "and" and {pair[0].rstrip("?"), pair[2].rstrip("?")} == {"max", "min"} \
                        and not any(self.used[i:j + 3]):
                    self.cues.append(Cue(i, j + 3, "range"))
                    self._use(i, j + 3)
                    break
            else:
                if token in ("range", "spread") and self._at(i + 1, ("of",)) \
                        and not any(token in c.words for c in self.index.columns):
                    self.cues.append(Cue(i, i + 2, "range"))
                    self._use(i, i + 2)
                elif token in ("range", "spread") and i > 0 and not self.used[i - 1] \
                        and any(c.is_measure for c in self.index.link_span([self.words[i - 1]])) \
                        and not any(token in c.words for c in self.index.columns):
                    self.cues.append(Cue(i, i + 1, "range"))  # "the salary range"
                    self._use(i, i + 1)

    def _rate_cues(self) -> None:
        """ "return rate", "anomaly ratio": the share of rows where a yes/no column is true."""
        for i, token in enumerate(self.tokens):
            if self.used[i] or token not in ("rate", "ratio") or i == 0 or self.used[i - 1]:
                continue
            flags = [c for c in self.index.link_span([self.words[i - 1]]) if c.is_boolean]
            if not flags:
                continue
            self.cues.append(Cue(i - 1, i + 1, "percent"))
            self.spec.conditions.append(Condition((flags[0],), P.FILTER_OPERATOR_EQ, [True], i + 1))
            self.value_columns.add(flags[0].ref)
            self._use(i - 1, i + 1)
            self.spec.understood.append(f"{self.tokens[i - 1]} {token} (share of rows where {flags[0].name} is true)")

    def _agg_cues(self) -> None:
        self._rate_cues()
        self._range_cues()
        for i in range(len(self.tokens)):
            if self.used[i]:
                continue
            if self.tokens[i] in DISTINCT_WORDS:
                self.cues.append(Cue(i, i + 1, "distinct"))
                self._use(i, i + 1)
                continue
            if self.tokens[i] in PERCENT_WORDS and not (i > 0 and self._number(i - 1) is not None) and (
                    self._at(i + 1, ("of",)) or (i > 0 and self.tokens[i - 1] in ("what", "which"))):
                self.cues.append(Cue(i, i + 1, "percent"))
                self._use(i, i + 1)
                continue
            if self.tokens[i] == "for" and self._at(i + 1, ("each",)):
                self._use(i, i + 1)
                continue
            if self.tokens[i] == "by" and any(c.position == i + 1 and c.op in (P.FILTER_OPERATOR_EQ, P.FILTER_OPERATOR_IS_NULL)
                                              for c in self.spec.conditions):
                self._use(i, i + 1)  # "investment by Chrysler", "placed by guests": whose rows, not a breakdown
                continue
            if self.tokens[i] in GROUP_CUES or self._at(i, ("grouped", "by")) or self._at(i, ("broken", "down", "by")):
                self.group_cues.append(i)
                self._use(i, i + 1)
                continue
            for phrase, kind in sorted(AGG_CUES.items(), key=lambda item: -len(item[0])):
                if self._at(i, phrase):
                    if phrase == ("total",) and self._total_is_column(i):
                        break
                    if phrase == ("total",) and self._total_of_a_count(i):
                        self._use(i, i + 1)  # "the total number of X", "how many total X": one count
                        break
                    if kind in ("max?", "min?") and len(phrase) == 1 and self._implicit_measure(i):
                        # "hottest", "youngest": the word names its measure; rank the rows by it.
                        self.spec.descending = kind == "max?"
                        self.implicit_rank = True
                        break
                    self.cues.append(Cue(i, i + len(phrase), kind))
                    self._use(i, i + len(phrase))
                    break

    def _total_of_a_count(self, i: int) -> bool:
        """True for "total" before "number of"/"count of" or right after "how many": it adds nothing to the count."""
        return self._at(i + 1, ("number", "of")) or self._at(i + 1, ("count", "of")) \
            or (i >= 2 and self.tokens[i - 2:i] == ["how", "many"])

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
        column_words = {w for c in self.index.columns for w in c.words}
        while i < len(self.tokens):
            stop = self.tokens[i] in STOPWORDS and self.words[i] not in column_words  # a column named "value"
            if self.used[i] or stop or self.tokens[i] in NEGATIONS:
                i += 1
                continue
            length, columns = 0, ()
            for size in (4, 3, 2):
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


def _common_prefix(values: list[str]) -> str:
    prefix = values[0]
    for value in values[1:]:
        while not value.lower().startswith(prefix.lower()):
            prefix = prefix[:-1]
    return prefix

