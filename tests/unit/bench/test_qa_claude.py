"""`python -m bench.qa --planner claude`: the same scorer, plus tokens, latency and cost per question,
measured here against the fake Messages API (the day a key is present, the number exists)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.qa.run import main
from tests.conftest import require_bwrap
from tests.fakes import FakeMessagesApi, RecordedRequest, Reply, propose_plan_reply


def _tiny_set(root: Path) -> None:
    tables = root / "real-dev" / "tables"
    tables.mkdir(parents=True)
    (tables / "tips.csv").write_text("day,tip\nSat,1.5\nSat,2.5\nSun,3.0\n", encoding="utf-8")
    questions = [
        {"id": "q1", "csv": ["tables/tips.csv"], "question": "how many bills were paid on saturdays?",
         "category": "count", "gold": [[2]], "order_matters": False},
        {"id": "q2", "csv": ["tables/tips.csv"], "question": "average tip?", "category": "avg",
         "gold": [[7 / 3]], "order_matters": False},
    ]
    (root / "real-dev" / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions),
                                                       encoding="utf-8")


def _model(request: RecordedRequest) -> Reply:
    """A model that counts Saturday rows for the first question and averages tips otherwise."""
    schema = json.loads(request.system_text().split("<dataset_schema>\n", 1)[1].split("\n</dataset_schema>")[0])
    table = schema["tables"][0]["name"]
    question = request.blocks(0)[-1]["text"]
    plan: dict[str, Any] = {"base_table": table, "select": [{"column": "tip", "aggregation": "AGGREGATION_AVG"}]}
    if "saturday" in question:
        plan = {"base_table": table, "select": [{"column": "*", "aggregation": "AGGREGATION_COUNT"}],
                "filters": [{"column": "day", "op": "FILTER_OPERATOR_EQ", "values": [{"string_value": "Sat"}]}]}
    return propose_plan_reply(plan)


@pytest.mark.bwrap
def test_the_claude_planner_is_scored_with_tokens_latency_and_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    require_bwrap()
    _tiny_set(tmp_path / "sets")
    with FakeMessagesApi(_model, _model) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "bench-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        code = main(["--planner", "claude", "--set", "real-dev", "--sets-dir", str(tmp_path / "sets"),
                     "--json-out", str(tmp_path / "report.json")])
    printed = capsys.readouterr().out
    assert code == 0 and fake.protocol_errors == [] and len(fake.requests) == 2
    [report] = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["sets"]
    assert report["correct"] == 2 and report["precision"] == 1.0
    usage = report["planner_usage"]
    assert usage["questions"] == 2 and usage["model_calls"] == 2 and usage["tokens_per_question"] > 1000
    assert usage["cost_per_question_usd"] > 0 and usage["planning_p50_seconds"] > 0
    assert "tokens/question" in printed


def test_the_claude_planner_needs_a_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["--planner", "claude", "--set", "real-dev"]) == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err
