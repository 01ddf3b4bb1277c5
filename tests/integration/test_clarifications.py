"""Clarifications end to end through the real CLI, embedded stack and bwrap sandbox: a question the
offline planner cannot fully account for comes back REJECTED with CLARIFICATION_NEEDED and its
readings; `ask --thread ID --choose N` runs reading N in the thread, and the thread's next
question refines it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.bwrap
CLI = str(Path(sys.executable).parent / "csv-analyst")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=180)


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout.strip(), result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_a_clarification_offers_readings_and_choose_runs_one(tmp_path: Path) -> None:
    csv_file = tmp_path / "shop.csv"
    csv_file.write_text("region,units,price\nnorth,3,1.5\nsouth,5,7.0\nnorth,2,7.5\n")
    db = tmp_path / "capsules.sqlite3"
    common = ["--capsule-db", str(db), "--csv", str(csv_file), "--json"]

    asked = run_cli("ask", *common, "average price of the warehouse")
    answer = _json(asked)
    assert asked.returncode == 1 and answer["status"] == "REJECTED"
    assert answer["error"]["code"] == "CLARIFICATION_NEEDED" and "warehouse" in answer["error"]["message"]
    clarification = answer["clarification"]
    assert clarification["message"] == answer["error"]["message"]
    (option,) = clarification["options"]
    assert "warehouse" in option["explanation"] and option["sql"].startswith("SELECT")
    assert option["plan"]["baseTable"] == "shop" and option["plan"]["select"][0]["aggregation"] == "AGGREGATION_AVG"

    capsule = json.loads(run_cli("capsule", answer["run_id"], "--capsule-db", str(db)).stdout)
    assert capsule["run"]["error"]["reason"] == "CLARIFICATION_NEEDED"
    assert capsule["run"]["clarification"]["options"][0]["sql"] == option["sql"]

    chosen = run_cli("ask", *common, "--thread", answer["thread_id"], "--choose", "1")
    result = _json(chosen)
    assert chosen.returncode == 0 and result["status"] == "SUCCEEDED", result
    assert result["rows"] == [[pytest.approx(16.0 / 3)]] and result["sql"] == option["sql"]
    assert result["thread_id"] == answer["thread_id"]

    out_of_range = _json(run_cli("ask", *common, "--thread", answer["thread_id"], "--choose", "2"))
    assert out_of_range["status"] == "REJECTED" and out_of_range["error"]["code"] == "INVALID_INPUT"

    # The chosen reading joined the thread (each command is a new process: the thread is read back
    # from the capsule store), so a follow-up refines it.
    refined = _json(run_cli("ask", *common, "--thread", answer["thread_id"], "now by region"))
    assert refined["status"] == "SUCCEEDED" and refined["columns"] == ["region", "avg_price"], refined
    assert sorted(refined["rows"]) == [["north", pytest.approx(4.5)], ["south", pytest.approx(7.0)]]


def test_choose_needs_a_thread_with_a_clarification(tmp_path: Path) -> None:
    csv_file = tmp_path / "shop.csv"
    csv_file.write_text("region,units\nnorth,3\nsouth,5\n")
    db = tmp_path / "capsules.sqlite3"
    common = ["--capsule-db", str(db), "--csv", str(csv_file), "--json"]
    answered = _json(run_cli("ask", *common, "total units per region"))
    assert answered["status"] == "SUCCEEDED"
    nothing = _json(run_cli("ask", *common, "--thread", answered["thread_id"], "--choose", "1"))
    assert nothing["status"] == "REJECTED" and nothing["error"]["code"] == "NO_CLARIFICATION"
    unknown = _json(run_cli("ask", *common, "--thread", "no-such-thread", "--choose", "1"))
    assert unknown["error"]["code"] == "NOT_FOUND"
    no_thread = run_cli("ask", *common, "--choose", "1")
    assert no_thread.returncode == 2 and "--thread" in no_thread.stderr
