"""The open-set scoring rules of ../shared/bench/README.md, bullet by bullet, with negative cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.qa.run import (
    PRACTICE_DIR,
    PRACTICE_SETS,
    SetReport,
    batch_command,
    batch_line,
    format_report,
    load_questions,
    main,
    parse_answers,
    run_set,
    score_set,
)
from bench.qa.scoring import (
    match_all,
    normalise_real,
    normalise_wtq_text,
    parse_gold_date,
    parse_gold_number,
    parse_result_number,
    round_significant,
    score_real,
    score_wtq,
    wtq_values_match,
)


def ok(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """A SUCCEEDED answer object as `csv-analyst ask --json` prints it."""
    return {"id": "q", "status": "SUCCEEDED", "error": None, "columns": columns, "rows": rows,
            "row_count": len(rows), "sql": "SELECT 1", "plan": None, "run_id": "r1"}


def one_column(*values: Any) -> dict[str, Any]:
    return ok(["c"], [[v] for v in values])


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (38.1148, 38.11), (38.1, 38.1), (2.9982786885245902, 2.998), (123456, 123500.0), (0, 0.0),
    (-0.0, 0.0), (-1.23456, -1.235), (0.000123456, 0.0001235),
])
def test_round_significant_keeps_four_digits(value: float, expected: float) -> None:
    assert round_significant(value) == expected


def test_match_all_needs_a_proper_assignment() -> None:
    # Both left items only fit right[0]: a greedy "any compatible column" check would pass.
    assert not match_all(["a", "b"], ["x", "y"], lambda i, j: j == 0)
    # An augmenting path is needed: left[0] first takes right[0], then must move to right[1].
    assert match_all(["a", "b"], ["x", "y"], lambda i, j: (i, j) in {(0, 0), (0, 1), (1, 0)})
    assert not match_all(["a", "b", "c"], ["x", "y"], lambda i, j: True)
    assert match_all([], [], lambda i, j: True)


# --------------------------------------------------------------------------------------------
# real-dev: status, row count, columns
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["REJECTED", "FAILED", "TIMEOUT"])
def test_real_not_succeeded_is_wrong_even_with_matching_rows(status: str) -> None:
    answer = {**one_column(87), "status": status, "error": {"code": "PLANNER_ERROR", "message": "could not map"}}
    verdict = score_real([[87]], False, answer)
    assert not verdict.correct
    assert verdict.kind == "status"
    assert "PLANNER_ERROR" in verdict.reason


def test_real_missing_answer_is_wrong() -> None:
    verdict = score_real([[87]], False, None)
    assert not verdict.correct
    assert verdict.kind == "status"


def test_real_single_value_matches() -> None:
    assert score_real([[87]], False, one_column(87)).correct


def test_real_wrong_row_count_fails() -> None:
    gold = [["dodge"], ["toyota"], ["volkswagen"]]
    verdict = score_real(gold, False, one_column("dodge", "toyota", "volkswagen", "ford"))
    assert not verdict.correct
    assert verdict.kind == "wrong_answer"
    assert "row count" in verdict.reason
    assert not score_real(gold, False, one_column("dodge", "toyota")).correct


def test_real_empty_gold_needs_empty_result() -> None:
    assert score_real([], False, ok(["a"], [])).correct
    assert not score_real([], False, one_column(1)).correct


def test_real_row_order_ignored_unless_order_matters() -> None:
    gold = [["dodge"], ["toyota"], ["volkswagen"]]
    shuffled = one_column("volkswagen", "dodge", "toyota")
    assert score_real(gold, False, shuffled).correct
    assert not score_real(gold, True, shuffled).correct
    assert score_real(gold, True, one_column("dodge", "toyota", "volkswagen")).correct


def test_real_columns_are_multisets() -> None:
    # Same distinct values, different multiplicities.
    assert not score_real([["a"], ["a"], ["b"]], False, one_column("a", "b", "b")).correct
    assert score_real([["a"], ["a"], ["b"]], False, one_column("b", "a", "a")).correct


def test_real_extra_result_columns_in_any_order_are_allowed() -> None:
    gold = [["Fri", 2.734736842105263], ["Sat", 2.993103448275862]]
    answer = ok(["n", "avg_tip", "day"], [[19, 2.9931, "Sat"], [87, 2.7347, "Fri"]])
    assert score_real(gold, False, answer).correct


def test_real_every_gold_column_must_be_present() -> None:
    gold = [["Fri", 2.734736842105263], ["Sat", 2.993103448275862]]
    verdict = score_real(gold, False, ok(["day"], [["Fri"], ["Sat"]]))
    assert not verdict.correct
    assert verdict.kind == "wrong_answer"


def test_real_each_gold_column_needs_a_different_result_column() -> None:
    # Two identical gold columns cannot both be matched by the one equal result column.
    gold = [[1, 1], [2, 2]]
    assert not score_real(gold, False, ok(["a", "b"], [[1, 5], [2, 6]])).correct
    assert score_real(gold, False, ok(["a", "b"], [[1, 1], [2, 2]])).correct


def test_real_column_names_never_matter() -> None:
    assert score_real([[87]], False, ok(["completely_different_name"], [[87]])).correct


# --------------------------------------------------------------------------------------------
# real-dev: value normalisation
# --------------------------------------------------------------------------------------------

def test_real_numbers_round_to_four_significant_digits() -> None:
    assert score_real([[38.1148]], False, one_column(38.11)).correct
    assert score_real([[38.1148]], False, one_column(38.1149)).correct
    assert not score_real([[38.1148]], False, one_column(38.1)).correct
    assert score_real([[2.9982786885245902]], False, one_column(2.998)).correct
    assert score_real([[87]], False, one_column(87.0)).correct
    assert not score_real([[87]], False, one_column(88)).correct


def test_real_numeric_strings_read_as_numbers() -> None:
    assert score_real([[1234]], False, one_column("1,234")).correct
    assert score_real([["1,234.5"]], False, one_column(1234.5)).correct
    assert score_real([[38.1148]], False, one_column(" 38.11 ")).correct
    assert not score_real([[1234]], False, one_column("1,23,4")).correct
    assert normalise_real("1,234") == normalise_real(1234.0)


def test_real_booleans_become_one_and_zero() -> None:
    assert score_real([[1]], False, one_column(True)).correct
    assert score_real([[0]], False, one_column(False)).correct
    assert score_real([[True]], False, one_column("true")).correct
    assert not score_real([[1]], False, one_column(False)).correct


def test_real_text_is_trimmed_and_case_insensitive() -> None:
    assert score_real([["Toyota"]], False, one_column("  toyota ")).correct
    assert score_real([["MENOMINEE"]], False, one_column("Menominee")).correct
    assert not score_real([["Toyota"]], False, one_column("Toyota Motor")).correct


def test_real_midnight_timestamp_equals_its_date() -> None:
    assert score_real([["1992-04-30"]], False, one_column("1992-04-30T00:00:00")).correct
    assert score_real([["1992-04-30"]], False, one_column("1992-04-30 00:00:00")).correct
    assert score_real([["1992-04-30"]], False, one_column("1992-04-30 00:00:00.000+00")).correct
    assert not score_real([["1992-04-30"]], False, one_column("1992-04-30 13:45:00")).correct
    assert not score_real([["1992-04-30"]], False, one_column("1992-04-29")).correct


def test_real_first_of_month_date_equals_year_month() -> None:
    assert score_real([["2009-03-01"]], False, one_column("2009-03")).correct
    assert score_real([["2009-03"]], False, one_column("2009-03-01T00:00:00")).correct
    assert not score_real([["2009-03-01"]], False, one_column("2009-04")).correct
    # Only the first of the month stands for the month.
    assert not score_real([["2009-03-02"]], False, one_column("2009-03")).correct
    # A year bucket is not a year.
    assert not score_real([[2006]], False, one_column("2006-01-01T00:00:00")).correct


def test_real_null_equals_only_null() -> None:
    assert score_real([[None]], False, one_column(None)).correct
    assert not score_real([[None]], False, one_column("")).correct
    assert not score_real([[None]], False, one_column(0)).correct
    assert not score_real([[0]], False, one_column(None)).correct
    assert not score_real([["NULL"]], False, one_column(None)).correct


# --------------------------------------------------------------------------------------------
# wtq-dev: answer lists
# --------------------------------------------------------------------------------------------

def test_wtq_not_succeeded_is_wrong() -> None:
    answer = {**one_column("9"), "status": "REJECTED", "error": {"code": "PLANNER_ERROR", "message": "x"}}
    assert not score_wtq([["9"]], False, answer).correct
    assert not score_wtq([["9"]], False, None).correct


def test_wtq_some_single_column_must_equal_the_answers() -> None:
    gold = [["Freeman"], ["Phoenix"]]
    answer = ok(["n", "name"], [[3, "Phoenix"], [5, "Freeman"]])
    assert score_wtq(gold, False, answer).correct
    # Split across two columns is not one column.
    assert not score_wtq(gold, False, ok(["a", "b"], [["Freeman", "x"], ["y", "Phoenix"]])).correct


def test_wtq_repeated_answer_row_fails() -> None:
    assert not score_wtq([["Malta"]], False, one_column("Malta", "Malta")).correct
    assert not score_wtq([["Malta"], ["Malta"]], False, one_column("Malta", "Egypt")).correct
    assert score_wtq([["Malta"], ["Malta"]], False, one_column("Malta", "Malta")).correct


def test_wtq_missing_or_extra_answer_fails() -> None:
    assert not score_wtq([["Freeman"], ["Phoenix"]], False, one_column("Freeman")).correct
    assert not score_wtq([["Freeman"]], False, one_column("Freeman", "Phoenix")).correct
    assert not score_wtq([["Freeman"]], False, ok(["c"], [])).correct


def test_wtq_order_only_when_order_matters() -> None:
    gold = [["a"], ["b"]]
    assert score_wtq(gold, False, one_column("b", "a")).correct
    assert not score_wtq(gold, True, one_column("b", "a")).correct
    assert score_wtq(gold, True, one_column("a", "b")).correct


@pytest.mark.parametrize(("raw", "normalised"), [
    ("Suðuroy", "suðuroy"),               # ð is a letter, not an accent
    ("Rui Conceição", "rui conceicao"),    # accents removed
    ("Zürich", "zurich"),
    ("St. Rynagh’s", "st. rynagh's"),      # curly apostrophe made plain
    ("“Hello”", "hello"),                  # curly double quotes, then surrounding quotes removed
    ("1990–1995", "1990-1995"),            # en dash
    ("Anna — Bob", "anna - bob"),          # em dash
    ("−5", "-5"),                          # minus sign
    ("Bayern Munich[1]", "bayern munich"),  # footnote marks
    ("Bayern Munich[a]", "bayern munich"),
    ("Bayern Munich*", "bayern munich"),
    ("Bayern Munich†", "bayern munich"),
    ("Bayern Munich+", "bayern munich"),
    ("Bayern Munich [1]*", "bayern munich"),
    ("Rome (1960)", "rome"),               # trailing parenthesis
    ("Rome (1960) (Italy)", "rome"),
    ('"Garuda Garvabhangam"', "garuda garvabhangam"),  # surrounding double quotes
    ("Tangguh LNG Project.", "tangguh lng project"),   # final period
    ("  Tom \n  Boonen  ", "tom boonen"),              # white space collapsed
    ("WIGAN Warriors", "wigan warriors"),              # case
])
def test_wtq_text_normalisation(raw: str, normalised: str) -> None:
    assert normalise_wtq_text(raw) == normalised


def test_wtq_text_normalisation_keeps_meaningful_text() -> None:
    # A leading parenthesis or bracket is not a trailing detail; inner quotes stay.
    assert normalise_wtq_text("(1960)") == "(1960)"
    assert normalise_wtq_text('He said "hi" twice') == 'he said "hi" twice'


@pytest.mark.parametrize(("gold", "value"), [
    ("Rui Conceição", "Rui Conceicao"),
    ("Rome", "Rome (1960)"),
    ("St. Rynagh's", "St. Rynagh’s"),
    ("Bayern Munich", "Bayern Munich[3]"),
    ("Tangguh LNG Project", "tangguh lng project."),
    ('"Strange"', "Strange"),
    ("Tom Boonen", "Tom  Boonen"),
])
def test_wtq_texts_match_after_normalising_both(gold: str, value: str) -> None:
    assert wtq_values_match(gold, value)
    assert score_wtq([[gold]], False, one_column(value)).correct


@pytest.mark.parametrize(("gold", "value"), [
    ("Rome", "Roma"), ("Wigan Warriors", "Wigan"), ("No", "Yes"), ("Malta", None),
])
def test_wtq_different_texts_do_not_match(gold: str, value: Any) -> None:
    assert not wtq_values_match(gold, value)


@pytest.mark.parametrize(("gold", "number"), [
    ("9", 9), ("1,234", 1234), ("98 453", 98453), ("$50", 50), ("45%", 45), ("17 years", 17),
    ("4.60 m", 4.6), ("2nd", 2), ("two", 2), ("Twelve", 12), ("-3", -3), ("−3", -3), ("0.5", 0.5),
    ("13,313", 13313), ("12 (3)", 12), ("1919", 1919),
])
def test_wtq_gold_numbers_read_leniently(gold: str, number: float) -> None:
    assert parse_gold_number(gold) == number


@pytest.mark.parametrize("gold", [
    "1-2", "3:45", "June 28, 1998", "28 June 1998", "June 1998", "1998-06-28", "Malta", "≈ 400 mm", "",
    "2 - 1", "1.5.3",
])
def test_wtq_gold_non_numbers(gold: str) -> None:
    assert parse_gold_number(gold) is None


@pytest.mark.parametrize(("value", "number"), [
    (9, 9.0), (9.0, 9.0), ("9", 9.0), ("1,234", 1234.0), (" 1,234.5 ", 1234.5), ("12[1]", 12.0), ("-7", -7.0),
])
def test_wtq_result_numbers(value: Any, number: float) -> None:
    assert parse_result_number(value) == number


@pytest.mark.parametrize("value", [True, False, None, "$50", "45%", "17 years", "two", "1-2", "98 453"])
def test_wtq_result_numbers_are_strict(value: Any) -> None:
    # Only the gold side is read leniently.
    assert parse_result_number(value) is None


@pytest.mark.parametrize(("gold", "value"), [
    ("9", 9), ("9", 9.0), ("9", "9"), ("13,313", 13313), ("1,234", "1,234"), ("98 453", 98453), ("$50", 50),
    ("45%", 45.0), ("17 years", 17), ("4.60 m", 4.6), ("2nd", 2), ("two", 2), ("38.1148", 38.11),
    ("1919", 1919),
])
def test_wtq_numbers_match_at_four_significant_digits(gold: str, value: Any) -> None:
    assert wtq_values_match(gold, value)
    assert score_wtq([[gold]], False, one_column(value)).correct


@pytest.mark.parametrize(("gold", "value"), [
    ("38.1148", 38.1), ("18", 9), ("two", 3), ("1-2", 1), ("3:45", 3), ("$50", "$5"), ("45%", 0.45),
    ("17 years", "17 yrs"),
])
def test_wtq_numbers_that_must_not_match(gold: str, value: Any) -> None:
    assert not wtq_values_match(gold, value)


@pytest.mark.parametrize(("gold", "expected"), [
    ("June 28, 1998", (1998, 6, 28)), ("28 June 1998", (1998, 6, 28)), ("June 1998", (1998, 6, 0)),
    ("Jun. 28, 1998", (1998, 6, 28)), ("20 February 2009", (2009, 2, 20)), ("1998-06-28", (1998, 6, 28)),
    ("1998-06", (1998, 6, 0)), ("Malta", None), ("1998", None), ("May 40, 1998", None),
])
def test_wtq_gold_dates(gold: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_gold_date(gold) == expected


@pytest.mark.parametrize(("gold", "value"), [
    ("June 28, 1998", "1998-06-28"), ("28 June 1998", "1998-06-28"), ("June 28, 1998", "1998-06-28T00:00:00"),
    ("June 28, 1998", "1998-06-28 00:00:00"), ("June 1998", "1998-06"), ("June 1998", "1998-06-01"),
    ("20 February 2009", "2009-02-20"),
])
def test_wtq_same_dates_match(gold: str, value: str) -> None:
    assert wtq_values_match(gold, value)
    assert score_wtq([[gold]], False, one_column(value)).correct


@pytest.mark.parametrize(("gold", "value"), [
    ("June 28, 1998", "1998-06-27"), ("June 28, 1998", "1998-06"), ("June 28, 1998", "1998-06-28T10:00:00"),
    ("June 1998", "1998-06-28"), ("June 1998", "1998-07"), ("28 June 1998", 1998),
])
def test_wtq_different_dates_do_not_match(gold: str, value: Any) -> None:
    assert not wtq_values_match(gold, value)


# --------------------------------------------------------------------------------------------
# Runner pieces that need no CLI
# --------------------------------------------------------------------------------------------

def test_parse_answers_ignores_lines_that_are_not_answer_objects() -> None:
    stdout = "\n".join([
        "starting embedded stack",
        json.dumps({"id": "a", "status": "SUCCEEDED", "rows": [[1]]}),
        "{not json",
        json.dumps(["id", "b"]),
        json.dumps({"status": "SUCCEEDED"}),
        json.dumps({"id": 7, "status": "REJECTED"}),
    ])
    answers = parse_answers(stdout)
    assert set(answers) == {"a", "7"}


def test_load_questions_makes_csv_paths_absolute_and_limits(tmp_path: Path) -> None:
    lines = [{"id": f"q{i}", "csv": ["tables/t.csv"], "question": "how many?", "gold": [[i]],
              "order_matters": False, "category": "count"} for i in range(3)]
    (tmp_path / "questions.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    questions = load_questions(tmp_path, limit=2)
    assert [q.id for q in questions] == ["q0", "q1"]
    assert questions[0].csv == [str((tmp_path / "tables" / "t.csv").resolve())]
    assert Path(questions[0].csv[0]).is_absolute()


def test_batch_command_uses_embedded_mode_and_a_private_capsule_store(tmp_path: Path) -> None:
    argv = batch_command("csv-analyst", tmp_path / "b.jsonl", tmp_path / "c.sqlite3")
    assert argv[:2] == ["csv-analyst", "ask"]
    assert "--server" not in argv
    assert argv[argv.index("--capsule-db") + 1] == str(tmp_path / "c.sqlite3")
    assert "--json" in argv


def test_score_set_counts_categories_statuses_and_failures(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "csv": ["t.csv"], "question": "q", "gold": [[1]], "category": "count"},
        {"id": "b", "csv": ["t.csv"], "question": "q", "gold": [[2]], "category": "count"},
        {"id": "c", "csv": ["t.csv"], "question": "q", "gold": [["x"]], "category": "text"},
        {"id": "d", "csv": ["t.csv"], "question": "q", "gold": [["y"]], "category": "text"},
    ]
    (tmp_path / "questions.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    questions = load_questions(tmp_path)
    answers = {
        "a": one_column(1),
        "b": one_column(3),
        "c": {**one_column(), "status": "REJECTED", "error": {"code": "PLANNER_ERROR", "message": "no"}},
    }
    report: SetReport = score_set("real-dev", questions, answers)
    assert (report.correct, report.questions) == (1, 4)
    assert report.categories == {"count": {"questions": 2, "correct": 1, "answered": 2, "clarifications": 0},
                                 "text": {"questions": 2, "correct": 0, "answered": 0, "clarifications": 0}}
    assert (report.answered, report.precision, report.clarifications) == (2, 0.5, 0)
    assert report.statuses == {"SUCCEEDED": 2, "REJECTED": 1, "NO_ANSWER": 1}
    kinds = {f["id"]: (f["kind"], f["error_code"]) for f in report.failures}
    assert kinds == {"b": ("wrong_answer", None), "c": ("status", "PLANNER_ERROR"), "d": ("status", None)}
    text = format_report(report)
    assert "1/4 correct" in text and "25.0%" in text
    assert report.to_json()["categories"]["count"]["accuracy"] == 0.5


def test_run_set_through_a_fake_cli(tmp_path: Path) -> None:
    set_dir = tmp_path / "real-dev"
    set_dir.mkdir()
    lines = [{"id": f"q{i}", "csv": ["tables/t.csv"], "question": "how many?", "gold": [[i]],
              "category": "count"} for i in range(3)]
    (set_dir / "questions.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    # The fake CLI answers q0 right and q1 wrong, drops q2, and prints noise; it records its argv.
    cli = tmp_path / "fake-cli"
    cli.write_text("#!/bin/sh\n"
                   f"echo \"$@\" > {tmp_path / 'argv'}\n"
                   "echo 'loading...'\n"
                   "echo '{\"id\": \"q0\", \"status\": \"SUCCEEDED\", \"rows\": [[0]]}'\n"
                   "echo '{\"id\": \"q1\", \"status\": \"SUCCEEDED\", \"rows\": [[5]]}'\n")
    cli.chmod(0o755)
    report = run_set("real-dev", tmp_path, str(cli), limit=None, batch_size=2, timeout_per_batch=60)
    assert (report.correct, report.questions) == (1, 3)
    assert report.statuses == {"SUCCEEDED": 2, "NO_ANSWER": 1}
    argv = (tmp_path / "argv").read_text().split()
    assert argv[0] == "ask" and "--capsule-db" in argv and "--server" not in argv


def test_main_fails_only_when_the_runner_cannot_run(tmp_path: Path) -> None:
    assert main(["--set", "real-dev", "--sets-dir", str(tmp_path)]) == 2


def test_precision_and_clarifications_per_category(tmp_path: Path) -> None:
    lines = [{"id": i, "csv": ["t.csv"], "question": "q", "gold": [[1]], "category": c}
             for i, c in (("a", "avg"), ("b", "avg"), ("c", "avg"), ("d", "top_n"))]
    (tmp_path / "questions.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    clarified = {**one_column(), "status": "REJECTED",
                 "error": {"code": "CLARIFICATION_NEEDED", "message": "which?"}}
    answers = {"a": one_column(1), "b": one_column(2), "c": clarified, "d": clarified}
    report = score_set("practice-dev", load_questions(tmp_path), answers)
    assert (report.correct, report.answered, report.clarifications) == (1, 2, 2)
    assert report.precision == 0.5 and report.accuracy == 0.25
    summary = report.to_json()
    assert summary["precision"] == 0.5 and summary["clarifications"] == 2
    assert summary["categories"]["avg"]["precision"] == 0.5 and summary["categories"]["top_n"]["precision"] == 1.0
    assert "precision 50.0%" in format_report(report) and "2 clarifications" in format_report(report)


def test_practice_sets_load_and_name_datasets() -> None:
    for name, (folder, rule) in PRACTICE_SETS.items():
        questions = load_questions(PRACTICE_DIR / folder)
        assert questions and rule == "real-dev"
        assert all(q.gold is not None and (q.dataset or q.csv) for q in questions)
        for question in questions:
            line = batch_line(question)
            assert ("dataset" in line) == bool(question.dataset) and ("csv" in line) != bool(question.dataset)
            assert all(Path(p).is_file() for p in line.get("csv", []))
