"""Date phrases onto columns: DATE/TIMESTAMP columns, or integer year and month columns."""

from __future__ import annotations

from datetime import date

from analyst_service.errors import PlannerError
from analyst_service.planning.dates import DateSpan, is_year, relative_span
from analyst_service.planning.intervals import span_columns
from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import ColumnInfo
from analyst_service.planning.spec import Condition, Group, Measure, Ref
from csv_analyst.v1 import plan_pb2

P = plan_pb2


class DateFilters(ParserState):
    """Maps time buckets and date spans onto the dataset's temporal columns."""

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
        self._refuse_separate_periods()
        pair = None if temporal else span_columns(self.index.columns)
        for span in self.date_spans:
            if pair is not None and self._within_span(span, pair):
                continue
            self._assign_span(span, ref, year_ref)

    def _refuse_separate_periods(self) -> None:
        """ "in 2023 compared with 2024", "in May and in July": periods that do not overlap cannot all hold for one
        row, and one filter per period would leave nothing; ask for them one at a time or by period."""
        periods = sorted((s.low, s.high) for s in self.date_spans
                         if s.bound == "in" and s.relative is None and not s.month_only)
        for (_, first_end), (second_start, _) in zip(periods, periods[1:]):
            if second_start >= first_end:
                phrases = ", ".join(" ".join(self.tokens[s.start:s.end]) for s in self.date_spans)
                raise PlannerError(message=f"the question names separate periods ({phrases}); a row lies in only one of "
                                           "them, so ask about each period on its own or break the answer down by year "
                                           "or month", metadata={"periods": phrases})

    def _within_span(self, span: DateSpan, pair: tuple[ColumnInfo, ColumnInfo]) -> bool:
        """One day over rows with a start and an end date: the rows whose span holds that day."""
        if span.bound != "in" or span.relative is not None or span.month_only \
                or span.high.toordinal() - span.low.toordinal() != 1:
            return False
        start, end = pair
        self.spec.conditions += [Condition((start,), P.FILTER_OPERATOR_LT, [span.high.isoformat()]),
                                 Condition((end,), P.FILTER_OPERATOR_GE, [span.low.isoformat()])]
        self.spec.assumptions.append(f"{span.low.isoformat()} read as a day inside the span from {start.name} to {end.name}")
        return True

    def _resolve_relative(self, span: DateSpan, ref: Ref) -> DateSpan:
        """Read "last month"/"past 3 weeks"/"this year" against the data's latest date (the data
        is a snapshot, not live): the calendar units ending with the one that holds that date."""
        phrase = " ".join(self.tokens[span.start:span.end])
        latest = max((c.max_value[:10] for c in ref if c.max_value), default="")
        try:
            anchor = date.fromisoformat(latest)
        except ValueError:
            raise PlannerError(message=f"the question says {phrase!r}, but the dataset has no date column whose "
                                       "latest date is known; name the dates instead") from None
        unit, count = span.relative  # type: ignore[misc]
        low, high = relative_span(unit, count, anchor)
        self.spec.assumptions.append(f"{phrase!r} read as {low.isoformat()} to {date.fromordinal(high.toordinal() - 1)}"
                                 f" (the data ends {anchor.isoformat()})")
        return DateSpan(span.start, span.end, low, high, "in")

    def _part_column(self, part: str) -> Ref:
        """An integer column holding a date part ("year", "month"), preferring one the question names."""
        columns = [c for c in self.index.columns if c.is_numeric and part in c.words and len(c.words) <= 2]
        if part == "year":  # "opened after 1950" -> a `Founded` column of years
            columns += [c for c in self.index.columns if c.year_like and c not in columns]
        named = [m.columns[0] for m in self.mentions if m.column in columns]
        return tuple(named or columns)

    def _year_text_column(self) -> Ref:
        """Text columns of written dates or periods, one the question names first."""
        columns = [c for c in self.index.columns if c.year_text]
        named = [m.columns[0] for m in self.mentions if m.column in columns]
        return tuple(dict.fromkeys(named + columns))

    def _assign_span(self, span: DateSpan, ref: Ref, year_ref: Ref) -> None:
        ops = {"ge": P.FILTER_OPERATOR_GE, "gt": P.FILTER_OPERATOR_GE, "lt": P.FILTER_OPERATOR_LT}
        if span.relative is not None:
            span = self._resolve_relative(span, ref)
        if span.month_only:
            month_ref = self._part_column("month")
            if month_ref:
                self.spec.conditions.append(Condition(month_ref, P.FILTER_OPERATOR_EQ, [span.month_only]))
                return
            years = {c.min_value[:4] for c in ref} | {c.max_value[:4] for c in ref}
            latest = max((c.max_value[:10] for c in ref if c.max_value), default="")
            if ref and span.bound in ("ge", "gt") and len(latest) == 10 and is_year(latest[:4]):
                # "since March": the latest March the data reaches.
                year = int(latest[:4]) if int(latest[5:7]) >= span.month_only else int(latest[:4]) - 1
                years = {str(year)}
                self.spec.assumptions.append(f"{self.tokens[span.end - 1]!r} read as {self.tokens[span.end - 1]} {year}, "
                                             f"the latest in the data (which ends {latest})")
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
        quarter_ref = self._part_column("quarter") if year_ref and span.bound == "in" else ()
        if quarter_ref and span.low.day == 1 and span.low.month % 3 == 1 and span.high.day == 1 \
                and (span.high.year * 12 + span.high.month) - (span.low.year * 12 + span.low.month) == 3:
            # "the third quarter of 1990" over integer year and quarter columns.
            self.spec.conditions += [Condition(year_ref, P.FILTER_OPERATOR_EQ, [span.low.year]),
                                     Condition(quarter_ref, P.FILTER_OPERATOR_EQ, [span.low.month // 3 + 1])]
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
        year_text = self._year_text_column()
        single = span.years_only and span.bound == "in" and span.high.year - span.low.year == 1
        if span.years_only and year_text and not single:  # "before 1990" on "10 August 1975" cells
            first, last = span.low.year, span.high.year - 1
            if span.bound == "in":
                self.spec.conditions.append(Condition(year_text, P.FILTER_OPERATOR_BETWEEN, [first, last], as_year=True))
            else:
                self.spec.conditions.append(Condition(year_text, ops[span.bound], [last + 1 if span.bound == "gt" else first],
                                                      as_year=True))
            return
        if single:
            year = str(span.low.year)
            holders = [c for c in self.index.columns if c.is_text and any(year in v for v in c.top_values)]
            holders = [c for c in year_text if c in holders] or holders
            if holders:  # "the 1995 finals" in a table whose Season column reads "1995-96"
                self.spec.conditions.append(Condition(holders[:1], P.FILTER_OPERATOR_CONTAINS, [year]))
                return
        if span.years_only and not ref and not any(c.is_text and c.top_values for c in self.index.columns
                                                    if any(w in ("date", "year", "season") for w in c.words)):
            # No column holds dates or years: the year names the table's subject ("the 2007 tournament").
            self.spec.ignored.append(" ".join(self.tokens[span.start:span.end]))
            return
        raise PlannerError(message="the question asks about a date but the dataset has no date, timestamp or year column")

