"""Units of measurement: the quantity a unit word measures, and the column holding that quantity.

"more than 25 degrees" compares a temperature, whatever column stands nearest the number; WordNet
files "degree" under `temperature_unit` (and `angular_unit`), "acre" under `area_unit`, "mile"
under `linear_unit`; "people" has the narrower "population", which is also a number (of inhabitants).
A unit right after a compared number therefore names the column by the
quantity it measures, when exactly one numeric column is named like that quantity.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from analyst_service.planning.lexicon import lemma, wordnet
from analyst_service.planning.schema_linking import ColumnInfo, word_match

# Ancestors named `<x>_unit` whose x says nothing about the quantity.
_VAGUE_KINDS = frozenset({"metric", "british", "nautical", "liquid", "dry", "avoirdupois", "apothecaries", "troy",
                          "electromagnetic", "information", "definite", "united", "cgs", "si"})


@functools.cache
def measured_quantities(word: str) -> frozenset[str]:
    """The quantities a unit word measures ("degrees" -> angular, temperature; "acres" -> area).

    Read from the `<quantity>_unit` kinds above each noun sense of the word that is a unit of
    measurement; empty for a word that is no unit ("days" is a time span in WordNet, not a unit).
    """
    reader = wordnet()
    if reader is None or not word.isalpha():
        return frozenset()
    unit = reader.synset("unit_of_measurement.n.01")
    found: set[str] = set()
    for sense in reader.synsets(lemma(word), "n"):
        kinds = list(sense.closure(lambda s: s.hypernyms()))
        if unit not in kinds:
            continue
        for kind in kinds:
            parts = kind.name().split(".")[0].split("_")
            if len(parts) == 2 and parts[1] == "unit" and parts[0] not in _VAGUE_KINDS:
                found.add(parts[0])
    return frozenset(found | _counts_of(word))


def _counts_of(word: str) -> set[str]:
    """Narrower words for a noun naming a group of people that are themselves counts of it ("people" ->
    population, also the number of inhabitants): "over 5000 people" compares a population."""
    reader = wordnet()
    if reader is None or not word.isalpha():
        return set()
    number = reader.synset("number.n.02")
    found: set[str] = set()
    for sense in [s for s in reader.synsets(lemma(word), "n")[:1] if s.lexname() == "noun.group"]:
        for narrower in sense.hyponyms():
            for name in narrower.lemma_names():
                counts = [number in kind.closure(lambda s: s.hypernyms()) for kind in reader.synsets(name, "n")]
                if name.isalpha() and any(counts) and not counts[0]:  # not a number first ("five": a team of five)
                    found.add(name)
    return found


def column_for_unit(word: str, columns: Sequence[ColumnInfo]) -> ColumnInfo | None:
    """The one numeric column named like a quantity the unit word measures, else None.

    ("degrees" over Temp and Day -> Temp: "temperature" starts with "temp".)
    """
    quantities = measured_quantities(word)
    if not quantities:
        return None
    found = [c for c in columns if c.is_measure and not c.year_like
             and any(word_match(q, w) >= 0.7 for q in quantities for w in c.words)]
    return found[0] if len(found) == 1 else None
