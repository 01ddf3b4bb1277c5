"""The offline planner's intermediate query description, before tables are chosen.

A `Spec` names columns by candidate lists (the same word may match `category` in two tables);
`builder.build_plan` picks the base table and joins, then resolves every candidate list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyst_service.planning.schema_linking import ColumnInfo

Scalar = bool | int | float | str
Ref = tuple[ColumnInfo, ...]


@dataclass
class Group:
    """A grouping key, optionally bucketed by time."""

    ref: Ref
    bucket: int = 0


@dataclass
class Condition:
    """A row filter on one column; `as_year` compares the year written in a text column."""

    ref: Ref
    op: int
    values: list[Scalar] = field(default_factory=list)
    position: int = -1
    as_year: bool = False


@dataclass
class Measure:
    """An aggregated output: `aggregation` over `ref`, or COUNT(*) of `count_table` when ref is None.

    A percentage (AGGREGATION_PERCENT) is the share of rows, or of `ref`'s total, matching `share`; with
    `ratio_of` instead, `ref`'s total as a percentage of that column's total.
    """

    aggregation: int
    ref: Ref | None = None
    count_table: str = ""
    share: list[Condition] = field(default_factory=list)
    ratio_of: Ref | None = None
    minus: Ref | None = None  # a duration: days (or `unit`) from this column to `ref`
    unit: int = 0  # plan_pb2.DurationUnit of a duration; 0 for days


@dataclass
class Spec:
    """What a question asks for.

    Attributes:
        measures: Aggregated outputs; empty for a row listing.
        groups: Grouping keys.
        conditions: Row filters (AND).
        descending: Sort direction asked for by a superlative or top-N; None when none was asked.
        limit: Row limit asked for; 0 for the default.
        order_ref: Sort column of a row listing.
        tables: Tables the question names (such as the counted entity), preferred as base table.
        understood: Human-readable pieces of what was understood, for clarification messages.
        explicit_measure: True when the question itself asked for an aggregation.
        position: "first" or "last" when the question picks rows by their place in the file.
        position_count: How many rows "the first five" asks for; 0 for one.
        ignored: Phrases deliberately left out of the plan (reported in the plan's notes).
        assumptions: How ambiguous phrases were read ("last month" against the data's latest date),
            reported in the plan's notes.
        anchor: The filter locating an anchor row ("before the row of Smith"); None for ordinary questions.
        anchor_offset: -1 for the row(s) before the anchor, +1 for those after it.
    """

    measures: list[Measure] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    descending: bool | None = None
    limit: int = 0
    order_ref: Ref | None = None
    tables: list[str] = field(default_factory=list)
    understood: list[str] = field(default_factory=list)
    explicit_measure: bool = False
    position: str = ""
    position_count: int = 0
    ignored: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    anchor: Condition | None = None
    anchor_offset: int = 0

    def refs(self) -> list[Ref]:
        """Every column candidate list the spec uses."""
        refs: list[Ref] = [m.ref for m in self.measures if m.ref]
        refs += [c.ref for m in self.measures for c in m.share]
        refs += [m.ratio_of for m in self.measures if m.ratio_of]
        refs += [g.ref for g in self.groups] + [c.ref for c in self.conditions]
        if self.order_ref:
            refs.append(self.order_ref)
        if self.anchor is not None:
            refs.append(self.anchor.ref)
        return refs

    def is_empty(self) -> bool:
        """True when nothing at all was understood."""
        return not (self.measures or self.groups or self.conditions or self.order_ref or self.position
                    or self.anchor is not None)
