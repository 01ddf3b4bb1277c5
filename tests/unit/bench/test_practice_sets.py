"""The practice sets' build (gold from SQL, the dev/held-out alternation) and how bench.qa loads and scores them.

These tests read only the shape of the practice2 questions (groups, tables, gold width), never
run the planner on them: the held-out half is for the final measurement.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.practice.build import build
from bench.qa.run import (
    PRACTICE_DIR,
    PRACTICE_SETS,
    BenchError,
    format_report,
    load_questions,
    score_set,
)

PRACTICE2 = Path(__file__).resolve().parents[3] / "bench" / "practice2"


def answer(*values: Any) -> dict[str, Any]:
    return {"status": "SUCCEEDED", "columns": ["c"], "rows": [[v] for v in values]}


def write_questions(folder: Path, lines: list[dict[str, Any]]) -> None:
    (folder / "questions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


# --------------------------------------------------------------------------------------------
# bench.practice.build
# --------------------------------------------------------------------------------------------

def test_build_alternates_per_table_runs_gold_and_keeps_a_question_scoring_rule(tmp_path: Path) -> None:
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "a.csv").write_text("x,label\n1,one\n2,two\n3,three\n")
    (tmp_path / "tables" / "b.csv").write_text("y\n10\n20\n")
    source = [
        {"table": "a", "question": "a1", "category": "k", "gold_sql": "SELECT sum(x) FROM a"},
        {"table": "b", "question": "b1", "category": "k", "gold_sql": "SELECT max(y) FROM b"},
        {"table": "a", "question": "a2", "category": "k", "gold_sql": "SELECT label FROM a WHERE x = 2",
         "scoring": "wtq-dev"},
        {"table": "a", "question": "a3", "category": "k", "gold_sql": "SELECT x FROM a ORDER BY x DESC",
         "order_matters": True},
        {"table": "b", "question": "b2", "category": "k", "gold_sql": "SELECT count(*) FROM b"},
    ]
    (tmp_path / "questions.src.jsonl").write_text("".join(json.dumps(item) + "\n" for item in source))

    assert build(tmp_path, id_prefix="t") == {"dev": 3, "heldout": 2}

    dev = [json.loads(line) for line in (tmp_path / "dev" / "questions.jsonl").read_text().splitlines()]
    held = [json.loads(line) for line in (tmp_path / "heldout" / "questions.jsonl").read_text().splitlines()]
    assert [q["id"] for q in dev] == ["t-001", "t-002", "t-004"]
    assert [q["id"] for q in held] == ["t-003", "t-005"]
    assert [q["gold"] for q in dev] == [[[6]], [[20]], [[3], [2], [1]]]
    assert held[0]["gold"] == [["two"]] and held[0]["scoring"] == "wtq-dev"
    assert "scoring" not in dev[0] and dev[2]["order_matters"] is True
    assert dev[0]["csv"] == ["../tables/a.csv"]


def test_build_stops_on_a_gold_sql_that_does_not_run(tmp_path: Path) -> None:
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "a.csv").write_text("x\n1\n")
    (tmp_path / "questions.src.jsonl").write_text(json.dumps(
        {"table": "a", "question": "q", "category": "k", "gold_sql": "SELECT nope FROM a"}) + "\n")
    with pytest.raises(Exception, match="nope"):
        build(tmp_path)


# --------------------------------------------------------------------------------------------
# bench.qa: loading and scoring
# --------------------------------------------------------------------------------------------

def test_practice2_sets_are_wired_into_bench_qa() -> None:
    assert PRACTICE_SETS["practice2-dev"] == ("practice2/dev", "real-dev")
    assert PRACTICE_SETS["practice2-heldout"] == ("practice2/heldout", "real-dev")
    assert PRACTICE_DIR / PRACTICE_SETS["practice2-dev"][0] == PRACTICE2 / "dev"
    assert PRACTICE_DIR / PRACTICE_SETS["practice-dev"][0] == PRACTICE2.parent / "practice" / "dev"


def test_practice2_halves_cover_every_group_and_table() -> None:
    halves = {half: load_questions(PRACTICE2 / half) for half in ("dev", "heldout")}
    source = [json.loads(line) for line in (PRACTICE2 / "questions.src.jsonl").read_text().splitlines()]
    assert sum(len(questions) for questions in halves.values()) == len(source) >= 90
    for questions in halves.values():
        groups = Counter(q.category.split("/")[0] for q in questions)
        assert set(groups) == {"demo", "real", "wtq"} and min(groups.values()) >= 14
        sources = {q.dataset or Path(q.csv[0]).stem for q in questions}
        every_source = {item.get("table") or item["dataset"] for item in source}
        assert sources == every_source
        for question in questions:
            assert question.gold, question.id
            assert all(Path(p).is_file() for p in question.csv)
            assert question.scoring == ("wtq-dev" if question.category.startswith("wtq/") else "")
            if question.scoring:
                assert all(len(row) == 1 for row in question.gold), question.id


def test_a_question_scored_like_wtq_matches_leniently_while_the_set_default_stays_strict(tmp_path: Path) -> None:
    write_questions(tmp_path, [
        {"id": "w", "csv": [], "question": "q", "category": "wtq/lookup", "gold": [["828 m"]], "scoring": "wtq-dev"},
        {"id": "r", "csv": [], "question": "q", "category": "real/lookup", "gold": [["828 m"]]},
    ])
    report = score_set("practice2-dev", load_questions(tmp_path), {"w": answer(828), "r": answer(828)})
    assert (report.correct, report.answered) == (1, 2)
    assert [failure["id"] for failure in report.failures] == ["r"]


def test_an_unknown_scoring_rule_is_a_bench_error(tmp_path: Path) -> None:
    write_questions(tmp_path, [{"id": "x", "csv": [], "question": "q", "gold": [[1]], "scoring": "typo-dev"}])
    with pytest.raises(BenchError, match="typo-dev"):
        load_questions(tmp_path)


def test_reports_total_each_group_of_categories(tmp_path: Path) -> None:
    write_questions(tmp_path, [
        {"id": "a", "csv": [], "question": "q", "category": "demo/avg", "gold": [[1]]},
        {"id": "b", "csv": [], "question": "q", "category": "demo/top_n", "gold": [[1]]},
        {"id": "c", "csv": [], "question": "q", "category": "wtq/lookup", "gold": [["x"]], "scoring": "wtq-dev"},
    ])
    clarified = {"status": "REJECTED", "error": {"code": "CLARIFICATION_NEEDED", "message": "which?"}}
    report = score_set("practice2-heldout", load_questions(tmp_path),
                       {"a": answer(1), "b": answer(2), "c": clarified})
    groups = report.to_json()["groups"]
    assert groups["demo"] == {"questions": 2, "correct": 1, "answered": 2, "clarifications": 0,
                              "accuracy": 0.5, "precision": 0.5}
    assert groups["wtq"]["clarifications"] == 1 and groups["wtq"]["precision"] == 1.0
    text = format_report(report)
    assert "group demo: 1/2 correct, accuracy 50.0%, precision 50.0% (1/2 answered), 0 clarifications" in text
    assert "group wtq: 0/1 correct" in text


def test_a_set_without_grouped_categories_reports_no_groups(tmp_path: Path) -> None:
    write_questions(tmp_path, [{"id": "a", "csv": [], "question": "q", "category": "avg", "gold": [[1]]}])
    report = score_set("practice-dev", load_questions(tmp_path), {"a": answer(1)})
    assert report.to_json()["groups"] == {} and "group " not in format_report(report)
