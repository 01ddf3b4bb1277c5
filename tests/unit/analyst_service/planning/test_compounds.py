"""Glued, shortened column names (`realcons`, `tbilrate`, `hs_grad`, `cpi`)."""

from __future__ import annotations

import pytest

from analyst_service.planning.compounds import glued_from, squeeze, whole_of
from analyst_service.planning.schema_linking import word_match


@pytest.mark.parametrize(("words", "name"), [
    (("real", "consumption"), "realcons"),
    (("treasury", "bill", "rate"), "tbilrate"),
    (("high", "school", "graduation"), "hs_grad"),
    (("consumer", "price", "index"), "cpi"),
    (("net", "income"), "NetIncome"),
])
def test_glued_names_match(words: tuple[str, ...], name: str) -> None:
    assert glued_from(words, name)


@pytest.mark.parametrize(("words", "name"), [
    (("real", "consumption"), "realgdp"),  # another word
    (("tip",), "tip"),  # one word is ordinary prefix matching, not a compound
    (("a", "b"), "ab"),  # two single letters
    (("total", "bill"), "billtotal"),  # order matters
    (("real", "2008"), "real2008"),  # numbers are values, not words
])
def test_other_names_do_not(words: tuple[str, ...], name: str) -> None:
    assert not glued_from(words, name)


def test_squeeze_drops_separators() -> None:
    assert squeeze("Yrs.Service_2") == "yrsservice2"


@pytest.mark.parametrize(("word", "name"), [
    ("revenue", "revtotal"),
    ("visitors", "visall"),
    ("employees", "emptot"),
])
def test_a_word_alone_names_its_total(word: str, name: str) -> None:
    assert whole_of(word, name)


@pytest.mark.parametrize(("word", "name"), [
    ("revenue", "revgrowth"),  # the tail narrows the amount down
    ("revenue", "rvtotal"),  # the head is no prefix of the word
    ("rev", "revtotal"),  # the word is no longer than the head
    ("total", "total"),  # no head at all
])
def test_other_tails_and_heads_do_not(word: str, name: str) -> None:
    assert not whole_of(word, name)


def test_linking_ranks_the_total_above_its_parts() -> None:
    assert word_match("revenue", "revtotal") > word_match("revenue", "revgrowth") == 0.0
