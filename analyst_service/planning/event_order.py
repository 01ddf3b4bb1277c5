"""The first or last row by the time of an event the question names ("the first lighthouse lit").

A question picking "the first" or "the last" row reads, by default, the table's file order. When
it names an event with a verb ("built", "established", "opened") and the table has one column
that dates that event (a year or date column whose name is the verb or a word derived from it:
"established" and `Establishment`, "opened" and `Year opened`), the first row is the earliest such
event, which the file order need not follow. WordNet gives the verb's dictionary form and the
nouns derived from it.
"""

from __future__ import annotations

import functools

from analyst_service.planning.lexicon import can_be_verb, is_verb_form, verb_base, wordnet
from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import ColumnInfo
from csv_analyst.v1 import plan_pb2

P = plan_pb2


@functools.cache
def event_words(word: str) -> frozenset[str]:
    """The verb's forms that a column naming its event may use: the word, its dictionary form and
    the nouns WordNet derives from that form ("established" -> establish, establishment)."""
    base = verb_base(word)
    reader = wordnet()
    if base is None or reader is None:
        return frozenset({word})
    found = {word, base}
    for synset in reader.synsets(base, "v")[:3]:
        for lemma in synset.lemmas():
            if lemma.name() == base:
                found.update(form.name().lower() for form in lemma.derivationally_related_forms()
                             if form.synset().pos() == "n" and form.name().isalpha())
    return frozenset(found)


def _dates_events(column: ColumnInfo) -> bool:
    return column.is_temporal or column.year_like or column.year_text


def candidate_verbs(parser: ParserState) -> list[str]:
    """Words that may name an event: unmatched words and words of column mentions that read as verbs
    ("library opened" resembling `Opening`)."""
    mentioned = [parser.tokens[i] for m in parser.mentions if m.columns for i in range(m.start, m.end)]
    return list(dict.fromkeys([*parser.unlinked, *(w for w in mentioned if is_verb_form(w) or w.endswith("ed"))]))


def event_column(parser: ParserState, table: str) -> tuple[str, ColumnInfo] | None:
    """The unmatched verb and the one dated column of `table` named by it, or None."""
    for word in candidate_verbs(parser):
        if not can_be_verb(word):
            continue
        forms = event_words(word)
        if len(forms) < 2:
            continue
        columns = [c for c in parser.index.table_columns(table) if _dates_events(c) and set(c.words) & forms]
        if len(columns) == 1:
            return word, columns[0]
    return None


def order_by_event(parser: ParserState, plan: plan_pb2.Plan) -> str:
    """Replace a first/last-in-file-order ranking by the order of the named event's dates.

    Args:
        parser: The parsed question.
        plan: The plan built for it; changed in place.

    Returns:
        The verb that now orders the rows, or "" when the plan was left as it was.
    """
    if len(plan.order_by) != 1 or not plan.order_by[0].file_order or plan.HasField("anchor") or plan.joins:
        return ""
    found = event_column(parser, plan.base_table)
    if found is None:
        return ""
    word, column = found
    descending = plan.order_by[0].descending
    del plan.order_by[:]
    plan.order_by.append(P.OrderBy(key=column.name, descending=descending, as_year=column.year_text,
                                   as_number=column.numeric_text and not column.year_text))
    plan.order_by.append(P.OrderBy(file_order=True, descending=descending))
    plan.filters.append(P.Filter(column=column.name, op=P.FILTER_OPERATOR_NOT_NULL))
    return word
