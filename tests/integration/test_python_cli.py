"""`csv-analyst python`: restricted pandas programs from the command line (embedded stack and batch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import run_cli

pytestmark = pytest.mark.bwrap


def test_python_answers_refuses_and_times_out(datasets_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "capsules.sqlite3"
    common = ["--datasets-dir", str(datasets_dir), "--capsule-db", str(db), "--upload-dir", str(tmp_path / "up"),
              "--dataset", "ecommerce", "--json"]
    answered = run_cli("python", *common, "result_df = orders.groupby('status', as_index=False)['total'].sum()")
    answer = json.loads(answered.stdout)
    assert answered.returncode == 0 and answer["status"] == "SUCCEEDED", answered.stderr
    assert answer["columns"] == ["status", "total"] and len(answer["rows"]) == 4
    record = json.loads(run_cli("capsule", answer["run_id"], "--capsule-db", str(db)).stdout)
    assert record["run"]["queryType"] == "QUERY_TYPE_PYTHON" and "groupby" in record["run"]["pythonCode"]

    for code, line in (("x = 1\nimport os\nresult = 1", "line 2"), ("result = open('/etc/passwd').read()", "line 1")):
        refused = json.loads(run_cli("python", *common, code).stdout)
        assert refused["status"] == "REJECTED" and refused["error"]["code"] == "PYTHON_POLICY_VIOLATION"
        assert refused["error"]["message"].startswith(line)

    looping = json.loads(run_cli("python", *common, "--timeout", "4", "while True:\n    pass").stdout)
    assert looping["status"] == "TIMEOUT" and looping["error"]["code"] == "RUNNER_TIMEOUT"


def test_python_batch_lines_answer_in_order(local_stack: Any, datasets_dir: Path, tmp_path: Path) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(item) for item in (
        {"id": "p1", "dataset": "support", "python": "result = len(tickets)"},
        {"id": "s1", "dataset": "support", "sql": "SELECT count(*) AS n FROM tickets"},
        {"id": "p2", "dataset": "support", "python": "import sys"},
    )) + "\n")
    out = run_cli("python", "--datasets-dir", str(datasets_dir), "--capsule-db", str(tmp_path / "c.sqlite3"),
                  "--upload-dir", str(tmp_path / "up"), "--batch", str(batch), "--json")
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["id"] for a in answers] == ["p1", "s1", "p2"]
    assert answers[0]["status"] == answers[1]["status"] == "SUCCEEDED"
    assert answers[0]["rows"] == answers[1]["rows"]
    assert answers[2]["error"]["code"] == "PYTHON_POLICY_VIOLATION"
    # `ask --batch` runs Python lines too in the embedded stack: the file is the explicit request.
    mixed = run_cli("ask", "--datasets-dir", str(datasets_dir), "--capsule-db", str(tmp_path / "c.sqlite3"),
                    "--upload-dir", str(tmp_path / "up"), "--batch", str(batch), "--json")
    assert [json.loads(line)["status"] for line in mixed.stdout.splitlines()] == ["SUCCEEDED", "SUCCEEDED", "REJECTED"]
    # A server that did not enable Python mode says how to.
    off = json.loads(run_cli("python", "--server", local_stack.analyst_target, "--dataset", "support", "--json",
                             "result = 1").stdout)
    assert off["status"] == "REJECTED" and off["error"]["code"] == "FAILED_PRECONDITION"
    assert "--enable-python" in off["error"]["message"]
