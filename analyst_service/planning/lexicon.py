"""General English knowledge for the offline planner: WordNet synonyms and parts of speech, lemmas.

WordNet 3.0 comes from the Debian packages `wordnet-base` and `wordnet-sense-index`
(`/usr/share/wordnet`, installed by `make setup` and `.ci/run`). nltk's reader needs the files in
`<data dir>/corpora/wordnet/` together with a `lexnames` file that Debian does not ship, and reads only
under a folder on `nltk.data.path`; so the first use copies the files into
`<tmp>/csv-analyst-nltk-<uid>/corpora/wordnet/`, writes `lexnames` there (the table of
`man 5 lexnames`) and puts that data dir first on `nltk.data.path`. Nothing is downloaded. Without the Debian files every lookup answers "unknown",
which makes the planner ask more often, never answer more.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEBIAN_WORDNET = Path("/usr/share/wordnet")

# `man 5 lexnames`: file number, lexicographer file name, part-of-speech number (1 noun, 2 verb,
# 3 adjective, 4 adverb).
_LEXNAMES = (
    "adj.all 3, adj.pert 3, adv.all 4, noun.Tops 1, noun.act 1, noun.animal 1, noun.artifact 1, "
    "noun.attribute 1, noun.body 1, noun.cognition 1, noun.communication 1, noun.event 1, noun.feeling 1, "
    "noun.food 1, noun.group 1, noun.location 1, noun.motive 1, noun.object 1, noun.person 1, "
    "noun.phenomenon 1, noun.plant 1, noun.possession 1, noun.process 1, noun.quantity 1, noun.relation 1, "
    "noun.shape 1, noun.state 1, noun.substance 1, noun.time 1, verb.body 2, verb.change 2, "
    "verb.cognition 2, verb.communication 2, verb.competition 2, verb.consumption 2, verb.contact 2, "
    "verb.creation 2, verb.emotion 2, verb.motion 2, verb.perception 2, verb.possession 2, verb.social 2, "
    "verb.stative 2, verb.weather 2, adj.ppl 3"
)


def lexnames_text() -> str:
    """The `lexnames` file nltk's WordNet reader expects: `NN<TAB>name<TAB>pos` per line."""
    entries = [entry.split() for entry in _LEXNAMES.split(", ")]
    return "".join(f"{number:02d}\t{name}\t{pos}\n" for number, (name, pos) in enumerate(entries))


def prepare_wordnet_dir(source: Path = DEBIAN_WORDNET, target: Path | None = None) -> Path | None:
    """Copy Debian's WordNet files into a folder nltk can read and add `lexnames`.

    Args:
        source: Folder of the Debian WordNet files.
        target: Folder to fill; default `<tmp>/csv-analyst-nltk-<uid>/corpora/wordnet`.

    Returns:
        The filled folder, or None when the Debian files are not installed.
    """
    if not (source / "data.noun").is_file():
        return None
    target = target or Path(tempfile.gettempdir()) / f"csv-analyst-nltk-{os.getuid()}" / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        copy = target / path.name
        if path.is_file() and not copy.is_file():
            # Copies, not links: nltk refuses files whose real path leaves its data dir.
            partial = target / f"{path.name}.{os.getpid()}.partial"
            shutil.copyfile(path, partial)
            partial.replace(copy)
    lexnames = target / "lexnames"
    if not lexnames.is_file():
        partial = target / f"lexnames.{os.getpid()}"
        partial.write_text(lexnames_text(), encoding="ascii")
        partial.replace(lexnames)
    return target


@functools.cache
def wordnet() -> Any | None:
    """nltk's WordNet reader over the Debian files, or None when they are missing."""
    folder = prepare_wordnet_dir()
    if folder is None:
        log.warning("WordNet is not installed (%s); install wordnet-base and wordnet-sense-index", DEBIAN_WORDNET)
        return None
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    data_dir = str(folder.parent.parent)
    if data_dir not in nltk.data.path:
        nltk.data.path.insert(0, data_dir)
    with warnings.catch_warnings():
        # Debian ships no Open Multilingual Wordnet; the planner needs English only.
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return WordNetCorpusReader(nltk.data.find("corpora/wordnet"), None)


@functools.cache
def is_verb_form(word: str) -> bool:
    """True when the word reads as a verb rather than a thing or a quality.

    WordNet must know more verb senses than noun senses for it ("paid", "took", "won", "earn"; not
    "parties" or "members"), since a noun could name a column or the rows.
    """
    reader = wordnet()
    if reader is None or not word.isalpha():
        return False
    return len(reader.synsets(word, "v")) > len(reader.synsets(word, "n"))


@functools.cache
def can_be_verb(word: str) -> bool:
    """True when WordNet knows the word (or its base form) as a verb at all ("place", "buy", "sold")."""
    reader = wordnet()
    if reader is None or not word.isalpha():
        return False
    return bool(reader.synsets(word, "v"))


@functools.cache
def synonyms(word: str) -> frozenset[str]:
    """Single words WordNet gives for a noun or adjective (lower case, not the word itself).

    The lemmas of its first three noun senses and first two adjective senses; for an adjective
    also the attribute it describes ("hottest" -> temperature, "oldest" -> age) and its related
    noun forms ("humid" -> humidity). Rarer senses would link everyday words to unrelated columns.
    """
    reader = wordnet()
    if reader is None or not word.isalpha():
        return frozenset()
    found: set[str] = set()
    for synset in reader.synsets(word, "n")[:3]:
        found.update(synset.lemma_names())
    for synset in reader.synsets(word, "a")[:2]:
        found.update(synset.lemma_names())
        found.update(name for attribute in synset.attributes() for name in attribute.lemma_names())
        found.update(related.name() for lemma in synset.lemmas() for related in lemma.derivationally_related_forms())
    return frozenset(name.lower() for name in found if name.isalpha() and name.lower() != word)


@functools.cache
def broader(word: str) -> frozenset[str]:
    """Single-word names of the broader kinds of a noun's first sense, up to four levels up.

    ("city" -> municipality, district, region; "earnings" -> income, gain, amount.)
    """
    reader = wordnet()
    if reader is None or not word.isalpha():
        return frozenset()
    found: set[str] = set()
    for synset in reader.synsets(word, "n")[:1]:
        for kind in synset.closure(lambda s: s.hypernyms(), depth=4):
            found.update(name.lower() for name in kind.lemma_names() if name.isalpha())
    found.discard(word)
    return frozenset(found)


@functools.cache
def verb_base(word: str) -> str | None:
    """The dictionary form of a verb ("won" -> "win", "established" -> "establish"), or None when WordNet has none."""
    reader = wordnet()
    found = reader.morphy(word, "v") if reader is not None and word.isalpha() else None
    return str(found) if found else None


@functools.cache
def lemma(word: str) -> str:
    """The dictionary form of a noun, verb or adjective ("categories" -> "category"), else the word."""
    reader = wordnet()
    if reader is None or not word.isalpha():
        return word
    for pos in ("n", "v", "a"):
        found = reader.morphy(word, pos)
        if found:
            return str(found)
    return word


_PEOPLE = ("person.n.01", "people.n.01", "social_group.n.01")


@functools.cache
def names_people(word: str) -> bool:
    """True for a noun whose first WordNet sense is a kind of person or social group.

    ("members", "voters", "households"): such a word names who the rows are; a column for it would
    have matched by name first.
    """
    reader = wordnet()
    if reader is None or not word.isalpha():
        return False
    senses = reader.synsets(word, "n")
    if not senses:
        return False
    first = senses[0]
    return any(s.name() in _PEOPLE for s in [first, *first.closure(lambda s: s.hypernyms())])


_THING_FILES = frozenset({"noun.artifact", "noun.event", "noun.location", "noun.person", "noun.group",
                          "noun.animal", "noun.plant", "noun.object", "noun.food", "noun.body"})


@functools.cache
def names_things(word: str) -> bool:
    """True for a plural noun whose first WordNet sense is a kind of thing, place, event or being.

    ("cars", "counties", "deaths"; not "prices" or "salaries", which are quantities and attributes):
    in a question over one table, such a word names what the rows are.
    """
    reader = wordnet()
    if reader is None or not word.isalpha():
        return False
    base = reader.morphy(word, "n")
    senses = reader.synsets(word, "n")
    return bool(base and base != word and senses and senses[0].lexname() in _THING_FILES)


# Kinds this general name everything, so they say nothing about a table's rows.
_MIN_KIND_DEPTH = 6


@functools.cache
def _ancestors(word: str) -> frozenset[str]:
    """Synset names of the broader kinds of a noun's first two senses (six levels up)."""
    reader = wordnet()
    if reader is None or not word.isalpha():
        return frozenset()
    found: set[str] = set()
    for synset in reader.synsets(word, "n")[:2]:
        found.update(kind.name() for kind in synset.closure(lambda s: s.hypernyms(), depth=6))
    return frozenset(found)


def names_a_kind_of(word: str, values: tuple[str, ...]) -> bool:
    """True when the noun is a broader kind of at least two of the values ("tree" of oak and maple).

    Over a column whose values are kinds of tree, "tree" names what the rows are and filters nothing.
    Very general kinds ("object", "whole") are never taken this way.
    """
    reader = wordnet()
    if reader is None or not word.isalpha():
        return False
    senses = {s.name() for s in reader.synsets(word, "n")[:2] if s.min_depth() >= _MIN_KIND_DEPTH}
    if not senses:
        return False
    heads = {value.lower().split()[-1] for value in values if value.strip()}
    return sum(bool(senses & _ancestors(head)) for head in heads if head != word) >= 2
