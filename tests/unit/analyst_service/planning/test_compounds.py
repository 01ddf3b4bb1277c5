"""Glued, shortened column names (`realcons`, `tbilrate`, `hs_grad`, `cpi`)."""

from __future__ import annotations

import pytest

from analyst_service.planning.compounds import glued_from, squeeze


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
