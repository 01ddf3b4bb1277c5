"""Assembly: turn recognised comparisons, cues and mentions into measures, groups and filters."""

from __future__ import annotations

import re

from analyst_service.errors import PlannerError
from analyst_service.planning.cues import ADDITIVE, AGGREGATIONS, DATE_PARTS, MONEY_WORDS, NEGATIONS, PERCENT_WORDS, SHARE_SPLITS
from analyst_service.planning.counted_rows import names_rows_not_column
from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import STOPWORDS, ColumnInfo, Mention, singular
from analyst_service.planning.labels import is_unique_key, label_column
from analyst_service.planning.units import column_for_unit, measured_quantities
from analyst_service.planning.spec import Condition, Group, Measure, Ref, Scalar
from csv_analyst.v1 import plan_pb2

P = plan_pb2


# Cue kinds of a smallest or largest value: "min and max price" asks for both of one column.
_EXTREMES = frozenset({"min", "max", "min?", "max?"})
# Words asking for rows rather than a total ("list the revenue of each order").
_LISTING_WORDS = frozenset({"list", "rows", "row", "which", "each", "every", "all", "records", "entries"})


def _truth(column: ColumnInfo, value: bool) -> Scalar:
    """The cell value meaning yes/no: a boolean, or 1/0 for an integer flag column ("inmetro")."""
    return value if column.is_boolean else int(value)


class Assembler(ParserState):
    """Assigns comparisons, groups, aggregations and leftover mentions to the spec."""

    def _assign_comparisons(self) -> None:
        for start, end, op, values in self.comparisons:
            if self._compare_by_unit(start, end, op, values):
                continue
            best: tuple[int, Mention] | None = None
            for mention in self.mentions:
                column = mention.column
                years = all(isinstance(v, int) and 1000 <= v <= 2100 for v in values)
                if id(mention) in self.claimed or column is None or not (column.is_numeric or (column.is_temporal and years)):
                    continue
                if column.is_id and op != P.FILTER_OPERATOR_EQ:
                    continue  # "more than 3 line items": an id labels a row, it is no amount to compare
                distance = start - mention.end if mention.end <= start else mention.start - end
                if start <= mention.start and mention.end <= end:
                    distance = -2  # "20 units or more": the unit inside the phrase names the column
                distance += 0 if column.is_measure else 2
                if -2 <= distance <= 4 and (best is None or distance < best[0]):
                    best = (distance, mention)
            if best is None and ((op == P.FILTER_OPERATOR_GE and values == [1]) or (op == P.FILTER_OPERATOR_GT and values == [0])):
                continue  # "cities that had at least one sale": every row listed is one, so it always holds
            money = self._money_column(values) if best is None and self.mentions_money else None
            if money is not None:  # "over $40": the one column holding money
                self.spec.conditions.append(Condition((money,), op, values, start))
                self.spec.understood.append(f"{money.name} (the money column)")
                continue
            if best is None:
                measures = [c for c in self.index.columns if c.is_measure]
                raise PlannerError(
                    message=f"found a comparison with {values} but no numeric column next to it; "
                            f"numeric columns: {', '.join(c.name for c in measures) or 'none'}",
                    metadata={"candidates": ", ".join(c.name for c in measures)},
                )
            column = best[1].columns[0]
            self.spec.conditions.append(Condition(self._claim(best[1]).columns, op, values, start,
                                                  as_year=column.is_temporal))

    def _compare_by_unit(self, start: int, end: int, op: int, values: list[Scalar]) -> bool:
        """ "25 degrees or more", "over 30 acres": a unit after the number names the column it measures."""
        for i in range(start + 1, min(end + 1, len(self.tokens))):
            if self.used[i] or not re.fullmatch(r"-?\d+(\.\d+)?", self.tokens[i - 1]):
                continue
            money = "monetary" in measured_quantities(self.tokens[i])
            column = self._money_column(values) if money else column_for_unit(self.tokens[i], self.index.columns)
            if column is None and money:
                raise PlannerError(message=f"found an amount of money ({self.tokens[i]}) but not the one column holding "
                                           "it; name the column it applies to",
                                   metadata={"candidates": self._candidates(lambda c: c.is_measure)})
            if column is None:
                continue
            # The unit word itself is no mention of a column ("dollars" resembling a quantity column).
            self.mentions = [m for m in self.mentions if not m.start <= i < m.end]
            named = [m for m in self.mentions if id(m) not in self.claimed and m.column == column]
            self.spec.conditions.append(Condition(self._claim(named[0]).columns if named else (column,), op, values, start))
            self.spec.understood.append(f"{column.name} (measured in {self.tokens[i]})")
            return True
        return False

    def _money_column(self, values: list[Scalar]) -> ColumnInfo | None:
        """The one numeric column that holds money (by its name's or description's words) and whose profiled
        range holds the amounts compared with ("over $40" with a bill of 3-50 and a tip of 1-10), else None."""
        found = [c for c in self.index.columns if c.is_measure and not c.year_like
                 and (set(c.words) | set(c.description_words)) & MONEY_WORDS]
        if len(found) > 1:
            found = [c for c in found if c.number_range is not None and all(
                isinstance(v, int | float) and c.number_range[0] <= v <= c.number_range[1] for v in values)]
        named = {m.table for m in self.mentions if m.table}
        if len(found) > 1 and len(named) == 1:  # "orders over $500": the money column of the orders
            found = [c for c in found if c.table in named]
        return found[0] if len(found) == 1 else None

    def _find_entity(self) -> Mention | None:
        """The thing being ranked or listed: after `top N`, or after a leading which/what."""
        position = self.entity_position
        if position is None:
            for i, token in enumerate(self.tokens):
                if token in ("which", "what") and self.tokens[i + 1:i + 2] in ([w] for w in PERCENT_WORDS):
                    return None  # "what percent of states ...": a share of the rows, not one state
                if token in ("which", "what") and i + 1 < len(self.tokens):
                    candidate = self._next_mention(i + 1, window=0)
                    if candidate is not None and not (candidate.column and candidate.column.is_measure
                                                      and not candidate.column.year_like
                                                      and not set(candidate.column.words) & DATE_PARTS):
                        return candidate  # "which team", "in what year": the label of the answer
            return None
        return self._next_mention(position, window=1)

    def _assign_groups(self, entity: Mention | None) -> None:
        for cue in list(self.group_cues):
            if self.tokens[cue] == "across" and cue + 1 < len(self.tokens) \
                    and (self.used[cue + 1] or self.tokens[cue + 1] in ("all", "every", "both")):
                self.group_cues.remove(cue)  # "across Ohio schools", "across all schools": all of them together
                continue
            start = cue + 1
            if self.tokens[start:start + 2] in (["type", "of"], ["kind", "of"], ["sort", "of"]):
                start += 2  # "for each type of product": the column named after "of"
            mention = self._next_mention(start, window=1)
            if mention is not None and self._per_row(mention):
                self._claim(mention)
                self.group_cues.remove(cue)  # "mean price per line item": each group would be one row
                continue
            if mention is None:
                if cue + 1 < len(self.tokens) and not self.used[cue + 1] and self.tokens[cue + 1] not in STOPWORDS:
                    raise PlannerError(
                        message=f"could not find a column for {self.tokens[cue]!r} {self.tokens[cue + 1]!r}; "
                                f"candidate columns: {self._candidates(lambda c: not c.is_measure)}",
                        metadata={"word": self.tokens[cue + 1]},
                    )
                continue
            ranked = entity is not None or (self.tokens[cue] == "by" and (self.spec.limit or self.implicit_rank
                                                                          or any(c.kind.endswith("?") or c.kind in ("desc", "asc") for c in self.cues)))
            if mention.column and mention.column.is_measure and ranked \
                    and not set(mention.column.words) & DATE_PARTS:
                continue  # "top 5 categories by quantity": the measure to rank by, not a group
            self._add_group(self._claim(mention))
            following = mention.end
            while self._at(following, ("and",)) or (following < len(self.tokens) and self.tokens[following] == "and"):
                nxt = self._next_mention(following + 1, window=1)
                if nxt is None or (nxt.column and nxt.column.is_measure):
                    break
                self._add_group(self._claim(nxt))
                following = nxt.end

    def _per_row(self, mention: Mention) -> bool:
        """True for an average (or median) "per" the unique id of the rows it averages: no grouping at all."""
        column = self.index.id_column(mention.table) if mention.table else mention.column
        return column is not None and is_unique_key(column) and bool(self.cues) \
            and all(c.kind in ("avg", "median") for c in self.cues)

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
            labels = {label_column(self.index.table_columns(c.table), c) for c in ref} - {None}
            if len(labels) == 1:  # "top 5 products": each product's name beside its id
                self.spec.groups.append(Group((labels.pop(),)))  # type: ignore[arg-type]
        self.spec.understood.append(f"per {ref[0].name}")

    def _assign_aggregations(self) -> None:
        distinct = any(c.kind == "distinct" for c in self.cues)
        explicit = any(c.kind in ("avg", "sum", "count", "median", "range", "stddev", "variance") for c in self.cues)
        if explicit:  # "worst highway mpg on average", "biggest total yield": the superlative only ranks
            for cue in self.cues:
                if cue.kind in ("max?", "min?"):
                    cue.kind = "desc" if cue.kind == "max?" else "asc"
        for first, second in zip(self.cues, self.cues[1:]):
            if {first.kind, second.kind} <= _EXTREMES and first.kind.rstrip("?") != second.kind.rstrip("?") \
                    and second.start == first.end + 1 \
                    and self.tokens[first.end] == "and":
                target = self._next_mention(second.end, window=0, measure_only=True)
                if target is not None:  # "smallest and largest price": both of one column
                    self.spec.measures.append(Measure(AGGREGATIONS[first.kind], target.columns))
                    self.spec.explicit_measure = True
                    first.kind = "distinct"
        for cue in self.cues:
            if cue.kind in ("distinct", "percent"):
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
            aggregation = AGGREGATIONS[cue.kind]
            if cue.kind.endswith("?") and (self.spec.groups or self._find_entity() or self.time_entity):
                self.spec.descending = cue.kind == "max?"
                if self._is_additive(target):
                    aggregation = P.AGGREGATION_SUM  # "which month had the highest revenue": the month's total
            self._claim(target)
            self.spec.measures.append(Measure(aggregation, target.columns))
            self.spec.explicit_measure = True
            self.spec.understood.append(f"{cue.kind.rstrip('?')} of {target.columns[0].name}")

    def _is_additive(self, mention: Mention) -> bool:
        """True when the mention names an amount that adds up (revenue, quantity, cost), by its words or the column's."""
        words = {*self.words[mention.start:mention.end], *(mention.columns[0].words if mention.columns else ())}
        return bool(words & ADDITIVE)

    def _add_count(self, target: Mention | None, distinct: bool) -> None:
        self.spec.explicit_measure = True
        if target is not None:
            self._claim(target)
        column = target.column if target else None
        if target is not None and target.table:
            id_column = self.index.id_column(target.table)
            if id_column is not None and id_column.is_id and id_column.words[:-1] == self.index.table_words[target.table] \
                    and 0 < id_column.distinct_count < 0.98 * id_column.row_count:
                distinct = True  # "how many sensors": a table of readings repeats each sensor's id
            if distinct and id_column is not None:
                self.spec.measures.append(Measure(P.AGGREGATION_COUNT_DISTINCT, (id_column,)))  # type: ignore[arg-type]
            else:
                self.spec.measures.append(Measure(P.AGGREGATION_COUNT, None, target.table))
                self.spec.tables.append(target.table)
            self.spec.understood.append(f"count of {target.table}")
        elif column is not None and (column.is_boolean or column.is_flag) and not distinct:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT, None, column.table))
            negated = target is not None and self._negated(target)
            self.spec.conditions.append(Condition(target.columns, P.FILTER_OPERATOR_EQ,  # type: ignore[union-attr]
                                                  [_truth(column, not negated)], target.start))  # type: ignore[union-attr]
            self.spec.understood.append(f"count where {column.name}")
        elif column is not None and column.is_temporal and not distinct and not any(
                w in DATE_PARTS | {"date", "time", "when"} for w in self.words[target.start:target.end]):  # type: ignore[union-attr]
            # "how many people died" -> death_date: the rows with that event, not its distinct dates
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT, target.columns))  # type: ignore[union-attr]
            self.spec.understood.append(f"count of rows with {column.name}")
        elif column is not None and target is not None and not distinct and names_rows_not_column(self.tokens, target):
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT, None, column.table))  # "how many games" beside `Game site`
            self.spec.understood.append("count of rows")
        elif column is not None and (distinct or column.is_id or not column.is_numeric):
            # "how many products": count them in the table they identify (every product), not where they are referenced
            owners = sorted(target.columns, key=lambda c: self.index.id_column(c.table) != c)  # type: ignore[union-attr]
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT_DISTINCT, tuple(owners)))
            self.spec.understood.append(f"distinct count of {column.name}")
        elif column is not None and target is not None and self._holds_counts(target):
            # "how many laps did X complete", "how many points did team X score": the column already
            # holds the counts, so add them up (one matching row gives its own cell).
            self.spec.measures.append(Measure(P.AGGREGATION_SUM, target.columns))  # type: ignore[union-attr]
            self.spec.understood.append(f"sum of {column.name}")
        elif column is not None:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT, target.columns))  # type: ignore[union-attr]
            self.spec.understood.append(f"count of {column.name}")
        else:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT))
            self.spec.understood.append("count of rows")

    def _holds_counts(self, target: Mention) -> bool:
        """True when a counted column already holds counts: "Laps", "Units shipped", "# of prisoners", "gold (medals)"."""
        column = target.columns[0]
        if not column.is_measure or column.year_like or column.is_flag or set(column.words) & DATE_PARTS:
            return False
        if any(c.op == P.FILTER_OPERATOR_EQ and c.ref[0].is_text and c.ref[0].row_count
               and c.ref[0].distinct_count >= 0.9 * c.ref[0].row_count for c in self.spec.conditions):
            return True  # "how many laps did jj lehto complete": one named row's own cell
        raw = [w for w in re.split(r"[^a-z#]+", column.name.lower()) if w]
        if raw and (any(w != singular(w) for w in raw) or raw[0] in ("#", "no", "number", "num")):
            return True
        after = target.end
        return after < len(self.tokens) and not self.used[after] and self.tokens[after] not in STOPWORDS \
            and self.words[after] != self.tokens[after] and not any(m.start == after for m in self.mentions)

    def _leftovers(self, entity: Mention | None) -> None:
        for mention in self.mentions:
            if id(mention) in self.claimed:
                continue
            column = mention.column
            if mention.table:
                self.spec.tables.append(mention.table)
            elif column is not None and (column.is_boolean or column.is_flag) and column.ref not in self.value_columns:
                negated = any(self.tokens[j] in NEGATIONS for j in range(max(0, mention.start - 2), mention.start))
                if not any(c.ref and c.ref[0].ref == column.ref for c in self.spec.conditions):
                    self.spec.conditions.append(Condition(mention.columns, P.FILTER_OPERATOR_EQ,
                                                          [_truth(column, not negated)], mention.start))
                    self.spec.understood.append(f"{column.name} is {str(not negated).lower()}")
                self._claim(mention)
        ranking = self.spec.descending is not None or self.spec.limit > 0
        measures = [m for m in self.mentions if id(m) not in self.claimed and m.column and m.column.is_measure
                    and m is not entity]
        if entity is not None and id(entity) not in self.claimed and (self.spec.measures or ranking):
            if not self.spec.measures and not self.spec.groups and self._ranks_rows(entity):
                # "the 5 top salaries": the ranked thing is a quantity, so list the rows ordered by it
                self.spec.order_ref = self._claim(entity).columns
                measures = []
            elif entity.table and not self.spec.measures:
                self.spec.tables.insert(0, entity.table)
            else:
                self._add_group(self._claim(entity))
        if not self.spec.measures and measures and (self.spec.groups or ranking) and self.spec.order_ref is None:
            column = measures[0].columns[0]
            default = P.AGGREGATION_SUM if set(column.words) & ADDITIVE else P.AGGREGATION_AVG
            if self.spec.groups:
                self.spec.measures.append(Measure(default, self._claim(measures[0]).columns))
                self.spec.understood.append(f"{'sum' if default == P.AGGREGATION_SUM else 'average'} of {column.name}")
            else:
                self.spec.order_ref = self._claim(measures[0]).columns
        elif not self.spec.measures and len(measures) == 1 and not ranking and self.spec.order_ref is None \
                and entity is None and self._is_additive(measures[0]) and not set(self.tokens) & _LISTING_WORDS:
            # "revenue last month": an amount named on its own is its total, not a listing of rows
            self.spec.measures.append(Measure(P.AGGREGATION_SUM, self._claim(measures[0]).columns))
            self.spec.understood.append(f"sum of {measures[0].columns[0].name}")
        if self.spec.groups and not self.spec.measures:
            self.spec.measures.append(Measure(P.AGGREGATION_COUNT))
        if ranking and self.spec.descending is None:
            self.spec.descending = True
        if self.spec.descending is not None and not self.spec.limit and self.time_entity and entity is None:
            self.spec.limit = 1  # "which month had the fewest orders" asks for one month
        if (self.spec.descending is not None and not self.spec.limit and entity is not None
                and singular(self.tokens[entity.end - 1]) == self.tokens[entity.end - 1]):
            self.spec.limit = 1  # "which location has the highest ..." asks for one row
        if self.implicit_rank and not self.spec.limit and not self.spec.groups:
            self.spec.limit = 1  # "what was the hottest day?"


    def _distinct_listing(self) -> None:
        """ "which colours exist?", "list the different classes": the distinct values of a text column.

        Only for plain listings (no measure, grouping, ranking or position) whose subject is a plural noun
        after which/what, or any noun after distinct/different/unique; each value comes with its row count.
        """
        spec = self.spec
        if spec.measures or spec.groups or spec.order_ref or spec.position or spec.anchor is not None \
                or spec.descending is not None or spec.limit or any(c.kind == "percent" for c in self.cues):
            return  # "what percent of states ...": a share of the rows, not a listing of states
        starts = [c.end for c in self.cues if c.kind == "distinct"]
        starts += [i + 1 for i, t in enumerate(self.tokens[:2]) if t in ("which", "what")]
        for start in starts:
            j = start
            while j < len(self.tokens) and j < start + 4 and (self.used[j] or self.tokens[j] in STOPWORDS):
                j += 1
            mention = next((m for m in self.mentions if m.start == j and id(m) not in self.claimed), None)
            if mention is None or mention.column is None or not mention.column.is_text or mention.column.is_id:
                continue
            distinct = any(c.kind == "distinct" and c.end == start for c in self.cues)
            if distinct or any(self.tokens[k] != self.words[k] for k in range(mention.start, mention.end)):
                self._add_group(self._claim(mention))
                return

    def _ratio(self, start: int, end: int) -> Measure | None:
        """ "total tips come to what percentage of total bills": one column's total over another's.

        The column right after the cue is the whole; a different one before the cue, or after the
        whole, is the part.
        """
        quantities = [m for m in self.mentions if m.column and m.column.is_measure and not m.column.year_like
                      and not set(m.column.words) & DATE_PARTS]
        whole = next((m for m in quantities if end <= m.start <= end + 2), None)
        if whole is None:
            return None
        part = next((m for m in quantities if m.end <= start and m.column != whole.column), None) \
            or next((m for m in quantities if m.start > whole.end and m.column != whole.column), None)
        if part is None:
            return None
        return Measure(P.AGGREGATION_PERCENT, part.columns, ratio_of=whole.columns)

    def _ranks_rows(self, entity: Mention) -> bool:
        """True when a top-N entity is itself a quantity ("top 5 salaries"), not a label to group by."""
        column = entity.column
        return column is not None and column.is_measure and not column.year_like and not column.is_flag \
            and not set(column.words) & DATE_PARTS and self.tokens[entity.end - 1].endswith("s")

    def _assign_percent(self) -> None:
        """Turn "what percent of X are Y" into a percentage measure with Y as its share condition.

        Conditions stated after the first verb that follows the cue ("are female", "came from
        renewables") define the share; earlier ones and date phrases narrow the rows counted. A
        measure column named between the cue and that verb ("percent of iowa's electricity") is
        summed instead of counting rows. Without any condition, a column that has empty cells
        makes the share "has a value" ("for what percent of rows do we have a price").
        """
        cue = next((c for c in self.cues if c.kind == "percent"), None)
        if cue is None:
            return
        split = next((i for i in range(cue.end, len(self.tokens)) if self.tokens[i] in SHARE_SPLITS), cue.end)
        share = [c for c in self.spec.conditions if c.position >= split or (c.position >= cue.end and split == cue.end)]
        self.spec.conditions = [c for c in self.spec.conditions if all(c is not s for s in share)]
        measure = next((m for m in self.mentions if id(m) not in self.claimed and m.column and m.column.is_measure
                        and not set(m.column.words) & DATE_PARTS and cue.end <= m.start < split
                        and self.words[m.end - 1] == self.tokens[m.end - 1]), None)  # "% of the bills" counts rows
        if not share and (ratio := self._ratio(cue.start, cue.end)) is not None:
            self.spec.measures = [ratio]
            self.spec.explicit_measure = True
            self.spec.order_ref = None
            self.spec.understood.append(f"{ratio.ref[0].name} as a percentage of {ratio.ratio_of[0].name}")  # type: ignore[index]
            return
        if not share:
            negated = any(self.tokens[i] in NEGATIONS or self.words[i] in ("missing", "empty", "blank")
                          for i in range(split, len(self.tokens)))
            nullable = next((m for m in self.mentions if id(m) not in self.claimed and m.column
                             and m.column.null_count > 0 and m is not measure), None)
            if nullable is None:
                raise PlannerError(
                    message=f"understood a percentage but not of which rows; understood: "
                            f"{'; '.join(self.spec.understood) or 'nothing else'}",
                    metadata={"understood": "; ".join(self.spec.understood)})
            op = P.FILTER_OPERATOR_IS_NULL if negated else P.FILTER_OPERATOR_NOT_NULL
            share = [Condition(self._claim(nullable).columns, op)]
        ref = self._claim(measure).columns if measure is not None else None
        self.spec.measures = [Measure(P.AGGREGATION_PERCENT, ref, share=share)]
        self.spec.explicit_measure = True
        self.spec.order_ref = None
        self.spec.understood.append(f"percentage of {'rows' if ref is None else ref[0].name}")
