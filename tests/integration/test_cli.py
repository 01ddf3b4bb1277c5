"""The `csv-analyst` command line, run as a user runs it (a subprocess of the console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.bwrap
CLI = str(Path(sys.executable).parent / "csv-analyst")


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)


def test_batch_answers_every_registry_prompt_in_order(local_stack: Any, tmp_path: Path) -> None:
    registry = json.loads((local_stack.datasets_dir / "registry.json").read_text())
    items = [{"id": f"{d['id']}-{i}", "dataset": d["id"], "question": p}
             for d in registry["datasets"] for i, p in enumerate(d["prompts"])]
    lines = [json.dumps(item) for item in items]
    lines.insert(3, "{not json")
    lines.insert(5, json.dumps({"id": "ghost", "dataset": "no-such-dataset", "question": "how many?"}))
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    result = run_cli("ask", "--server", local_stack.analyst_target, "--batch", str(batch), "--json")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(lines)
    assert answers[3]["status"] == "REJECTED" and answers[3]["error"]["code"] == "INVALID_INPUT"
    assert answers[5]["id"] == "ghost" and answers[5]["error"]["code"] == "NOT_FOUND"
    good = [a for i, a in enumerate(answers) if i not in (3, 5)]
    assert [a["id"] for a in good] == [item["id"] for item in items]
    for answer in good:
        assert answer["status"] == "SUCCEEDED", answer
        assert answer["error"] is None and answer["rows"] and answer["row_count"] == len(answer["rows"])
        assert len(answer["columns"]) == len(answer["rows"][0])
        assert answer["sql"].startswith("SELECT") and answer["plan"]["baseTable"] and answer["run_id"]


def test_embedded_sql_over_csv_files_and_capsule(tmp_path: Path) -> None:
    csv_file = tmp_path / "Sales Data-2024.csv"
    csv_file.write_text("region,amount\nnorth,10\nsouth,5\nnorth,7\n")
    db = tmp_path / "capsules.sqlite3"
    result = run_cli("sql", "--capsule-db", str(db), "--csv", str(csv_file), "--json",
                     "SELECT region, SUM(amount) AS total FROM sales_data_2024 GROUP BY region ORDER BY region")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "SUCCEEDED"
    assert answer["columns"] == ["region", "total"] and answer["rows"] == [["north", 17], ["south", 5]]
    capsule = run_cli("capsule", answer["run_id"], "--json", "--capsule-db", str(db))
    assert capsule.returncode == 0, capsule.stderr
    record = json.loads(capsule.stdout)
    assert record["run"]["runId"] == answer["run_id"] and record["run"]["state"] == "RUN_STATE_SUCCEEDED"
    assert record["run"]["runnerMode"] == "bwrap"


def test_embedded_sql_refusal_is_typed_and_recorded(tmp_path: Path) -> None:
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("a\n1\n")
    db = tmp_path / "capsules.sqlite3"
    result = run_cli("sql", "--capsule-db", str(db), "--csv", str(csv_file), "--json", "SELECT getenv('HOME')")
    assert result.returncode == 1
    answer = json.loads(result.stdout)
    assert answer["status"] == "REJECTED" and answer["error"]["code"] == "SQL_POLICY_VIOLATION"
    record = json.loads(run_cli("capsule", answer["run_id"], "--capsule-db", str(db)).stdout)
    assert record["run"]["state"] == "RUN_STATE_REJECTED" and "getenv" in record["run"]["sql"]


def test_capsule_not_found_is_an_error(tmp_path: Path) -> None:
    result = run_cli("capsule", "r000", "--capsule-db", str(tmp_path / "c.sqlite3"))
    assert result.returncode == 1 and "NOT_FOUND" in result.stderr


def test_datasets_generate_writes_registry(tmp_path: Path) -> None:
    result = run_cli("datasets", "generate", "--scale", "0.01", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    registry = json.loads((tmp_path / "registry.json").read_text())
    assert [d["id"] for d in registry["datasets"]] == ["ecommerce", "support", "sensors"]
    for dataset in registry["datasets"]:
        for table in dataset["tables"]:
            assert (tmp_path / table["file"]).is_file()


def test_follow_up_questions_continue_a_thread_across_cli_calls(datasets_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "capsules.sqlite3"
    base = ["ask", "--datasets-dir", str(datasets_dir), "--capsule-db", str(db), "--dataset", "ecommerce", "--json"]
    first = json.loads(run_cli(*base, "How many orders are there per status?").stdout)
    assert first["status"] == "SUCCEEDED" and first["thread_id"] and first["explanation"]
    refined = json.loads(run_cli(*base, "--thread", first["thread_id"], "only completed ones").stdout)
    assert refined["status"] == "SUCCEEDED" and refined["thread_id"] == first["thread_id"]
    filters = refined["plan"]["filters"]
    assert [(f["column"], f["values"][0]["stringValue"]) for f in filters] == [("status", "completed")]
    assert "completed" in refined["explanation"]
    unclear = run_cli(*base, "what is the meaning of life")
    answer = json.loads(unclear.stdout)
    assert unclear.returncode == 1 and answer["status"] == "REJECTED"
    assert answer["error"]["code"] == "PLANNER_ERROR" and "column" in answer["error"]["message"].lower()


@pytest.mark.parametrize("command", ["ask", "sql"])
def test_either_batch_command_takes_question_and_sql_lines(command: str, local_stack: Any, tmp_path: Path) -> None:
    lines = [{"id": "q", "dataset": "support", "question": "How many tickets are there per priority?"},
             {"id": "s", "dataset": "support", "sql": "SELECT count(*) AS n FROM tickets"},
             {"id": "neither", "dataset": "support"}]
    batch = tmp_path / "mixed.jsonl"
    batch.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = run_cli(command, "--server", local_stack.analyst_target, "--batch", str(batch), "--json")
    assert result.returncode == 0, result.stderr
    answers = {a["id"]: a for a in map(json.loads, result.stdout.splitlines())}
    assert answers["q"]["status"] == "SUCCEEDED" and answers["q"]["plan"] is not None
    assert answers["s"]["status"] == "SUCCEEDED" and answers["s"]["plan"] is None
    assert answers["s"]["columns"] == ["n"]
    assert answers["neither"]["status"] == "REJECTED" and answers["neither"]["error"]["code"] == "INVALID_INPUT"
