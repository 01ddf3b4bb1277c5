"""Word accounting: does a plan explain every part of the question it answers?

The parser consumes the words it recognises (values, comparisons, dates, cue words) and links
the rest to columns. A plan may still leave parts of the question out: a word that matched
nothing, a column the question names that the plan never uses, an aggregation or a grouping the
question asks for that the plan does not compute, a calendar part ("hour of the day") that plans
cannot express. Each of those is a `Leftover`; the offline planner asks instead of answering
when there is any, because an answer that silently drops part of the question is wrong with a
green tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyst_service.planning.happened import unread_event
from analyst_service.planning.lexicon import can_be_verb, is_verb_form, lemma, names_a_kind_of, names_people, names_things
from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import STOPWORDS, singular
from csv_analyst.v1 import plan_pb2

# Words that never change what a question computes: politeness, verbs of asking and showing,
# hedges and words naming the data itself. Kept general (no column or value names).
FILLER_WORDS = frozenset(
    "please thanks thank hey hi hello kindly tell show display give return compute calculate get find "
    "list want need know see look like would could should can will may might must shall let us "
    "overall altogether ever whole entire data dataset table chart list listing file sheet spreadsheet csv "
    "exist exists existing currently present here ones thing things stuff recorded logged measured observed "
    "about approximately roughly around basically actually really just exactly "
    "sorted ordered order descending ascending where when whose while s "
    "anyone anybody someone somebody everyone everybody anything something everything".split()
)

_AGGREGATING_CUES = frozenset({"avg", "sum", "count", "median", "max", "min", "max?", "min?", "range", "percent",
                               "distinct", "desc", "asc", "stddev", "variance"})
_SUMMARY_CUES = frozenset({"avg", "sum", "count", "median", "range", "percent", "distinct", "stddev", "variance"})
_ENTITY_OPENERS = frozenset({"which", "what", "top", "bottom", "each", "every"})
_KIND_WORDS = frozenset({"type", "types", "kind", "kinds", "sort", "sorts", "variety", "varieties"})
_CALENDAR_UNITS = frozenset({"hour", "day", "weekday", "week", "month", "quarter"})
_CALENDAR_WHOLES = frozenset({"day", "week", "month", "quarter", "year"})


@dataclass(frozen=True)
class Leftover:
    """A part of the question that the plan does not account for.

    Attributes:
        words: The question's words, as typed (lower case).
        reason: Why they are left over, as a clause ("match no column or value").
    """

    words: str
    reason: str


def plan_columns(plan: plan_pb2.Plan) -> set[str]:
    """Every column the plan reads, both as written (`table.col` or `col`) and as the bare name."""
    names: list[str] = []
    for item in plan.select:
        names += [item.column, item.minus_column, item.ratio_of, *(f.column for f in item.share_of)]
    names += [f.column for f in plan.filters]
    names += [g.column for g in plan.group_by]
    names += [f.column for f in plan.anchor.match]
    names += [o.key for o in plan.order_by]
    columns: set[str] = set()
    for name in filter(None, names):
        columns.add(name.lower())
        for table in [plan.base_table, *(j.table for j in plan.joins)]:
            if name.lower().startswith(table.lower() + "."):
                columns.add(name[len(table) + 1:].lower())
    return columns


def _aggregates(plan: plan_pb2.Plan) -> bool:
    return any(item.aggregation != plan_pb2.AGGREGATION_UNSPECIFIED for item in plan.select)


_DETERMINERS = frozenset({"the", "all", "these", "those"})
_SHARE_WORDS = frozenset({"percent", "percentage", "share", "proportion", "fraction"})


def names_the_rows(parser: ParserState, word: str) -> bool:
    """True for the noun right after "how many", "number of", "which" or "what" (or after "first"/"last" when
    the question picks rows by their place): the rows counted or picked.

    ("how many people ...", "which person ..."): a noun there names what one row is, not a column.
    """
    for i, token in enumerate(parser.tokens):
        if token != word or i == 0:
            continue
        lead = i - 1 if parser.tokens[i - 1] in _DETERMINERS and i >= 2 else i
        before = tuple(parser.tokens[max(0, lead - 2):lead])
        if before[-1:] in (("which",), ("what",)) or before in (("how", "many"), ("number", "of")) \
                or (before[-1:] in (("first",), ("last",), ("final",)) and parser.spec.position) \
                or (len(before) == 2 and before[0] in _SHARE_WORDS and before[1] == "of" and singular(token) != token):
            return True  # "what percent of the bills ...": things counted (a plural), not an amount ("of revenue")
    return False


def _is_unit(parser: ParserState, word: str) -> bool:
    """True for a word right after a number the plan compares with ("30 mpg", "90 degrees"): its unit.

    A number that is a count of rows to show ("top 3 cities") has no unit: the word after it names
    the rows.
    """
    conditions = [*parser.spec.conditions, *(c for m in parser.spec.measures for c in m.share)]
    values = {float(v) for c in conditions for v in c.values if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for i, token in enumerate(parser.tokens):
        if token != word or i == 0 or not parser.used[i - 1]:
            continue
        try:
            number = float(parser.tokens[i - 1])
        except ValueError:
            continue
        if number in values:
            return True
    return False


def _kind_of(parser: ParserState, word: str) -> bool:
    """ "types of", "kinds of", "<column> types": the word introduces or follows the column it sorts by."""
    ends = {m.end for m in parser.mentions if m.columns}
    return word in _KIND_WORDS and any(token == word and (parser.tokens[i + 1:i + 2] == ["of"] or i in ends)
                                       for i, token in enumerate(parser.tokens))


def _rows_of_one_table(parser: ParserState, word: str) -> bool:
    """A plural noun of things ("cars", "counties") over a one-table dataset names its rows."""
    return len(parser.index.dataset.tables) == 1 and names_things(word)


_AUXILIARIES = frozenset({"did", "do", "does"})
# Words that point at other rows or compare with them ("what other year", "the same place"): a plan that
# does not use them answers a different question, so they are never excused.
_REFERRING_WORDS = frozenset({"other", "same", "another", "else", "previous", "next", "besides", "except"})


def _positions(parser: ParserState, word: str) -> list[int]:
    return [i for i, token in enumerate(parser.tokens) if token == word]


def _modifies_a_column(parser: ParserState, word: str) -> bool:
    """True when the word stands right before a column mention ("shipping cost"): it qualifies the column.

    Such a word is never excused as a verb: "shipping" changes which cost is meant. Only a gerund or an
    uninflected word qualifies a noun this way; a past tense ("opened late") is the clause's verb.
    """
    if not word.endswith("ing") and lemma(word) != word:
        return False
    starts = {m.start for m in parser.mentions if m.columns}
    return any(i + 1 in starts for i in _positions(parser, word))


def _verb_after_auxiliary(parser: ParserState, word: str) -> bool:
    """ "how many orders did guest customers place": after do/did/does, the last word of its clause is the verb."""
    if not can_be_verb(word):
        return False
    for i in _positions(parser, word):
        ends_clause = i + 1 == len(parser.tokens) or parser.tokens[i + 1] in STOPWORDS
        if ends_clause and any(t in _AUXILIARIES for t in parser.tokens[:i]):
            return True
    return False


def _negated(parser: ParserState, word: str) -> bool:
    """ "did not finish", "never opened": a negated verb says which rows, so it is never excused."""
    return any(parser.tokens[i - 1:i] in (["not"], ["never"], ["didn"], ["don"], ["doesn"], ["t"])
               for i in _positions(parser, word))


def _is_verb(parser: ParserState, word: str) -> bool:
    if _negated(parser, word) or unread_event(parser.tokens, word, parser.index.columns):
        return False
    return (is_verb_form(word) and not _modifies_a_column(parser, word)) or _verb_after_auxiliary(parser, word)


def _kind_of_the_values(parser: ParserState, word: str) -> bool:
    """A noun naming a broader kind of a text column's values ("trees" over a column of oak, birch, maple)."""
    return any(column.is_text and names_a_kind_of(parser.words[i], column.top_values)
               for column in parser.index.columns for i in _positions(parser, word)[:1])


def _imperative(parser: ParserState, word: str) -> bool:
    """The opening verb of a command ("rank the top 3 ...", "sort all ..."): followed by a determiner."""
    return parser.tokens[:1] == [word] and can_be_verb(word) and parser.tokens[1:2] in (["the"], ["all"], ["each"],
                                                                                         ["every"], ["me"], ["my"])


def unlinked_leftovers(parser: ParserState) -> list[Leftover]:
    """Content words that matched no column, value or cue, other than filler words, verbs, units and
    nouns naming the rows."""
    return [Leftover(word, "match no column, value or known word")
            for word in dict.fromkeys(parser.unlinked)
            if word in _REFERRING_WORDS or not _excused(parser, word)]


# Third-person pronouns: in a question over one table they refer to whom or what the table is about.
_PRONOUNS = frozenset({"he", "she", "they", "him", "her", "them", "his", "hers", "their", "theirs"})


def _pronoun_of_the_subject(parser: ParserState, word: str) -> bool:
    return word in _PRONOUNS and len(parser.index.dataset.tables) == 1


def _unit_of_a_column(parser: ParserState, word: str) -> bool:
    """A plural noun right after a numeric column that counts it ("a score of 3 goals", "home wins" over a `home` count)."""
    ends = {m.end for m in parser.mentions if m.columns and all(c.is_measure for c in m.columns)}
    return singular(word) != word and any(i in ends for i in _positions(parser, word))


def _excused(parser: ParserState, word: str) -> bool:
    """True for a word that needs no part in the plan: filler, a verb, people or things naming the rows,
    a unit, a kind word, a broader kind of the values."""
    return word in FILLER_WORDS or _is_verb(parser, word) or names_people(word) or _imperative(parser, word) \
        or _kind_of_the_values(parser, word) or names_the_rows(parser, word) or _is_unit(parser, word) \
        or _kind_of(parser, word) or _rows_of_one_table(parser, word) or _pronoun_of_the_subject(parser, word) \
        or _unit_of_a_column(parser, word)


def mention_leftovers(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """Column mentions whose columns the plan never reads (a plan listing every column reads all)."""
    used = plan_columns(plan)
    tables = {plan.base_table, *(j.table for j in plan.joins)}
    every_column = not plan.select and not plan.group_by
    leftovers = []
    counts = any(item.aggregation in (plan_pb2.AGGREGATION_COUNT, plan_pb2.AGGREGATION_COUNT_DISTINCT,
                                      plan_pb2.AGGREGATION_PERCENT) for item in plan.select)
    for mention in parser.mentions:
        if not mention.columns:
            continue
        if all(c.is_id and c.table in tables for c in mention.columns):
            continue  # "items", "orders": an identifier names the rows themselves
        if counts and names_the_rows(parser, parser.tokens[mention.start]):
            continue  # "how many counties ...": the rows counted
        single = mention.end - mention.start == 1
        if single and (parser.tokens[mention.start] in FILLER_WORDS
                       or _rows_of_one_table(parser, parser.tokens[mention.start])):
            continue  # "overall" resembling a column name; "cars" naming the rows of the one table
        if single and is_verb_form(parser.tokens[mention.start]) \
                and not any(parser.tokens[mention.start] == w for c in mention.columns for w in c.words):
            continue  # "customers who ordered": a verb that resembles a column name
        if any(c.name.lower() in used or f"{c.table}.{c.name}".lower() in used for c in mention.columns):
            continue
        if every_column and any(c.table in tables for c in mention.columns):
            continue
        words = " ".join(parser.tokens[mention.start:mention.end])
        leftovers.append(Leftover(words, f"name the column {mention.columns[0].name}, which the plan does not use"))
    return leftovers


def cue_leftovers(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """Aggregation, ranking and grouping cues with nothing in the plan that carries them out.

    A sum, average, count, median, spread, share or distinct count needs an aggregation; a
    superlative ("highest") needs an aggregation, a ranking cut to a few rows, or a row anchor.
    """
    leftovers = []
    ranks = _aggregates(plan) or (bool(plan.order_by) and plan.limit > 0) or plan.HasField("anchor")
    for cue in parser.cues:
        needed = _aggregates(plan) if cue.kind in _SUMMARY_CUES else ranks
        if cue.kind in _AGGREGATING_CUES and not needed:
            leftovers.append(Leftover(" ".join(parser.tokens[cue.start:cue.end]),
                                      "ask for a summary the plan does not compute"))
    computes = ranks
    if parser.implicit_rank and not computes:
        leftovers.append(Leftover("", "ask for a ranking the plan does not make"))
    ranks_rows = bool(plan.order_by) and not _aggregates(plan)  # "top 5 states by poverty"
    if parser.group_cues and not plan.group_by and not ranks_rows:
        words = ", ".join(parser.tokens[i] for i in parser.group_cues)
        leftovers.append(Leftover(words, "ask for a breakdown the plan does not make"))
    elif _aggregates(plan) and not plan.group_by and plan.limit > 1:
        leftovers.append(Leftover("", "ask for several ranked groups, but the plan makes a single total"))
    return leftovers


def group_leftovers(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """Groupings the question does not ask for: a plan may group by a column only when a grouping
    cue ("by", "per", "each"), an entity opener ("which", "what", "top 3") or a time bucket stands
    within two words before the column's mention."""
    cues = set(parser.group_cues)
    leftovers = []
    grouped_ends: set[int] = set()
    for group in plan.group_by:
        if group.bucket != plan_pb2.TIME_BUCKET_UNSPECIFIED:
            continue
        name = group.column.lower()
        spans = [m for m in parser.mentions
                 if any(name in (c.name.lower(), f"{c.table}.{c.name}".lower()) for c in m.columns)]
        justified = not spans  # a grouping the parser added on its own (a bucket, a follow-up) is not judged
        for mention in spans:
            lead = mention.start
            if lead >= 2 and parser.tokens[lead - 2] in _KIND_WORDS and parser.tokens[lead - 1] == "of":
                lead -= 2  # "each type of product"
            before = range(max(0, lead - 2), lead)
            listed = mention.start >= 2 and parser.tokens[mention.start - 1] in ("and", "or") \
                and mention.start - 1 in grouped_ends  # "per category and priority"
            distinct = any(c.kind == "distinct" and c.end in (mention.start, mention.start - 1) for c in parser.cues)
            if listed or distinct or any(j in cues or parser.tokens[j] in _ENTITY_OPENERS for j in before) \
                    and not any(c.kind == "percent" and c.start in before for c in parser.cues):
                justified = True
                grouped_ends.add(mention.end)
        if not justified:
            words = " ".join(parser.tokens[spans[0].start:spans[0].end])
            leftovers.append(Leftover(words, "would become a breakdown the question does not ask for"))
    return leftovers


def calendar_leftovers(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """ "hour of the day", "month of the year" that the parser did not read as a calendar-part grouping.

    A timeline bucket (every hour of every day) answers a different question, so such a phrase is
    left over unless the parser consumed it as a calendar part (`TIME_BUCKET_HOUR_OF_DAY`, ...).
    """
    tokens = parser.tokens
    leftovers = []
    if parser.calendar is not None and not any(g.bucket == parser.calendar[2] for g in plan.group_by):
        start, end, _ = parser.calendar
        leftovers.append(Leftover(" ".join(tokens[start:end]), "name a calendar part the plan does not group by"))
    for i, token in enumerate(tokens):
        words = parser.words
        if words[i] not in _CALENDAR_UNITS or i + 2 >= len(tokens) or tokens[i + 1] != "of" or parser.used[i]:
            continue
        j = i + 3 if tokens[i + 2] in ("the", "a") else i + 2
        if any(m.start <= i < m.end and not any(c.is_temporal for c in m.columns) for m in parser.mentions):
            continue  # "quarter of the year" over a table with a quarter column names that column
        if j < len(tokens) and words[j] in _CALENDAR_WHOLES and words[j] != words[i]:
            leftovers.append(Leftover(" ".join(tokens[i:j + 1]), "name a calendar part, which plans cannot group by"))
    return leftovers


def leftovers(parser: ParserState, plan: plan_pb2.Plan) -> list[Leftover]:
    """Everything in the question the plan does not account for, in a stable order."""
    from analyst_service.planning.plan_shapes import shape_leftovers  # it builds on this module's Leftover

    found = [*calendar_leftovers(parser, plan), *cue_leftovers(parser, plan), *group_leftovers(parser, plan),
             *mention_leftovers(parser, plan), *unlinked_leftovers(parser), *shape_leftovers(parser, plan)]
    return list(dict.fromkeys(found))


def describe(found: list[Leftover]) -> str:
    """One sentence naming every leftover, for the clarification message."""
    parts = [f"{item.words!r} ({item.reason})" if item.words else item.reason for item in found]
    return "The plan would leave out " + "; ".join(parts) + "."
