"""WordNet from the Debian files through nltk's reader, with no download."""

from __future__ import annotations

from pathlib import Path

from analyst_service.planning import lexicon


def test_lexnames_is_the_manual_table() -> None:
    lines = lexicon.lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1" and lines[44] == "44\tadj.ppl\t3"


def test_prepare_copies_the_debian_files_and_adds_lexnames(tmp_path: Path) -> None:
    target = lexicon.prepare_wordnet_dir(target=tmp_path / "corpora" / "wordnet")
    assert target is not None
    assert (target / "data.noun").is_file() and not (target / "data.noun").is_symlink()
    assert (target / "lexnames").read_text() == lexicon.lexnames_text()


def test_prepare_without_debian_files_gives_none(tmp_path: Path) -> None:
    assert lexicon.prepare_wordnet_dir(source=tmp_path / "missing", target=tmp_path / "out") is None


def test_verbs_are_told_from_nouns() -> None:
    assert all(lexicon.is_verb_form(w) for w in ("paid", "took", "listed", "earn"))
    assert not any(lexicon.is_verb_form(w) for w in ("members", "parties", "consumption", "price"))


def test_synonyms_attributes_and_broader_kinds() -> None:
    assert "temperature" in lexicon.synonyms("hottest")  # the attribute a superlative describes
    assert "age" in lexicon.synonyms("oldest")
    assert "humidity" in lexicon.synonyms("humid")  # a related noun
    assert "amount" in lexicon.synonyms("quantity")
    assert "region" in lexicon.broader("city")
    assert "income" in lexicon.broader("earnings")


def test_people_nouns() -> None:
    assert lexicon.names_people("voters") and lexicon.names_people("members")
    assert not lexicon.names_people("temperature") and not lexicon.names_people("price")


def test_plural_nouns_of_things() -> None:
    assert all(lexicon.names_things(w) for w in ("cars", "counties", "deaths", "sensors"))
    assert not any(lexicon.names_things(w) for w in ("prices", "salaries", "car", "temperatures"))
