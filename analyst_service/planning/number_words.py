"""A number written as a word right before a numeric column is a value of it ("five winners", "two titles").

Digits there are read by the parser's stray-number pass; a number word is read here, with the same
rule: the word stands right before a mention of a numeric column, whose profiled range holds it.
"one" is left alone: "one player", "the one ..." rarely mean a count of one. A number word placed
nowhere is reported like an unplaced number in digits, so that the planner never drops it silently.
"""

from __future__ import annotations

from analyst_service.planning.parser_state import ParserState
from analyst_service.planning.schema_linking import Mention
from analyst_service.planning.spec import Condition
from analyst_service.planning.vocabulary import NUMBER_WORDS
from csv_analyst.v1 import plan_pb2


def _split_off(parser: ParserState, i: int) -> bool:
    """A column mention that swallowed the number word before it ("seven titles"): keep the column part."""
    for k, mention in enumerate(parser.mentions):
        if mention.start == i and mention.end - i >= 2 and mention.columns and id(mention) not in parser.claimed:
            parser.mentions[k] = Mention(i + 1, mention.end, mention.columns, mention.table)
            parser.unlinked.append(parser.tokens[i])
            return True
    return False


def number_word_values(parser: ParserState) -> None:
    """Turn "<number word> <numeric column>" into an equality filter on that column (changes `parser`)."""
    for i, token in enumerate(parser.tokens):
        if token not in NUMBER_WORDS or token == "one" or parser.used[i]:
            continue
        if token not in parser.unlinked and not _split_off(parser, i):
            continue
        value = NUMBER_WORDS[token]
        mention = parser._next_mention(i + 1, window=0)
        column = mention.column if mention is not None else None
        if column is None or not column.is_numeric or column.is_id or column.year_like \
                or column.number_range is None or not column.number_range[0] <= value <= column.number_range[1]:
            parser.stray_numbers.append(i)  # unplaced, like a number in digits: never silently dropped
            parser.unlinked.remove(token)
            continue
        parser.spec.conditions.append(Condition(parser._claim(mention).columns,  # type: ignore[union-attr]
                                                plan_pb2.FILTER_OPERATOR_EQ, [value], i))
        parser.value_columns.add(column.ref)
        parser.used[i] = True
        parser.unlinked.remove(token)
        parser.spec.understood.append(f"{column.name} = {value}")
