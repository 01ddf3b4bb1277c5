"""The CLI's JSON answer object, in particular a clarification's shape."""

from __future__ import annotations

from analyst_service.answers import answer_from_run
from csv_analyst.v1 import plan_pb2, run_pb2


def test_a_clarification_run_becomes_a_rejected_answer_with_its_readings() -> None:
    plan = plan_pb2.Plan(dataset_id="d", base_table="t", explanation="Count of rows over t.")
    run = run_pb2.Run(run_id="r1", thread_id="r1", state=run_pb2.RUN_STATE_REJECTED,
                      error=run_pb2.RunError(code=run_pb2.ERROR_CODE_CLARIFICATION_NEEDED,
                                             reason="CLARIFICATION_NEEDED", message="which rows?"),
                      clarification=run_pb2.Clarification(message="which rows?", options=[
                          run_pb2.ClarificationOption(explanation=plan.explanation, plan=plan,
                                                      sql="SELECT COUNT(*) FROM t")]))
    answer = answer_from_run("q1", run)
    assert answer["status"] == "REJECTED" and answer["error"]["code"] == "CLARIFICATION_NEEDED"
    assert answer["clarification"] == {"message": "which rows?", "options": [{
        "explanation": "Count of rows over t.", "plan": {"datasetId": "d", "baseTable": "t",
                                                         "explanation": "Count of rows over t."},
        "sql": "SELECT COUNT(*) FROM t"}]}


def test_other_answers_have_no_clarification_key() -> None:
    run = run_pb2.Run(run_id="r2", state=run_pb2.RUN_STATE_SUCCEEDED)
    assert "clarification" not in answer_from_run("q2", run)
