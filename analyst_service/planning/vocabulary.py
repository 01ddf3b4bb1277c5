"""General English vocabulary for the offline planner: synonyms, abbreviations, value aliases.

Nothing here names a particular dataset or comes from a benchmark question: the entries are the
words spreadsheets share for money, quantities and time, and common cell values ("women" for
Female, US state names for their postal codes).
"""

from __future__ import annotations

import os

# A question word -> column-name words it may stand for (matched after singularisation). Only the
# vocabulary of money, quantities and time that spreadsheets share; everything else comes from
# WordNet (`lexicon`), abbreviations, glued names (`compounds`), descriptions and profiled values.
_MONEY = ("revenue", "sales", "amount", "total", "value", "turnover", "income")
SYNONYMS: dict[str, tuple[str, ...]] = {
    "revenue": _MONEY, "sale": _MONEY, "sales": _MONEY, "turnover": _MONEY, "income": _MONEY, "money": _MONEY,
    "spend": ("amount", "total", "cost", "spend"), "value": ("value", "amount", "total"),
    "sold": ("quantity", "qty", "units"), "unit": ("quantity", "qty", "units"),
    "qty": ("quantity",), "quantity": ("qty", "units"),
    "when": ("date", "time", "timestamp", "at"), "time": ("timestamp", "date", "time"),
    "date": ("date", "day", "timestamp"), "day": ("date", "day"),
    "where": ("location", "city", "place", "venue"),
}

# Words that may qualify a column mention without naming it ("poverty rate", "highway mpg").
WEAK_WORDS = frozenset("level amount reading figure size number count measure measurement rate".split())

# Everyday words for common cell values (matched against a column's known values).
VALUE_ALIASES: dict[str, tuple[str, ...]] = {
    "woman": ("female", "f", "w"), "women": ("female", "f", "w"), "lady": ("female",), "girl": ("female",),
    "man": ("male", "m"), "men": ("male", "m"), "gentleman": ("male",), "boy": ("male",),
    "female": ("f",), "male": ("m",),
}

US_STATES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID",
    "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA", "tennessee": "TN", "texas": "TX",
    "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA", "wisconsin": "WI", "wyoming": "WY",
}

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20}


def abbreviates(short: str, word: str) -> bool:
    """True when `short` reads as an abbreviation of `word` ("hwy" of highway, "yrs" of years).

    The abbreviation keeps the first letter and a subsequence of the others, and has at least three
    letters, so that two-letter codes never match by accident. Past the opening it shares with the
    word it keeps consonants only: abbreviations drop vowels ("asst", "govt", "dept"), so a word
    of its own such as "bale" is no abbreviation of "balance".
    """
    if len(short) < 3 or len(word) <= len(short) or short[0] != word[0] or not short.isalpha():
        return False
    opening = len(os.path.commonprefix([short, word]))
    if any(letter in "aeiou" for letter in short[max(opening, 1):]):
        return False  # "sat" is no abbreviation of "smallest"; "asst" of "assistant" keeps its opening
    position = 1
    for letter in short[1:]:
        position = word.find(letter, position) + 1
        if position == 0:
            return False
    return True


_SUFFIXES = ("ings", "ing", "ers", "er", "ed", "es", "s")


def stem(word: str) -> str:
    """A crude stem for comparing word forms ("smoking", "smoker" -> "smok"); unchanged when short."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def value_aliases(word: str) -> tuple[str, ...]:
    """Cell values a question word may stand for besides itself (lower case)."""
    aliases = VALUE_ALIASES.get(word, ())
    state = US_STATES.get(word)
    return aliases + ((state.lower(),) if state else ())
