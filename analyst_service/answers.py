"""Turn a finished Run (or a failed RPC) into the CLI's JSON answer object.

The object is the batch contract: {"id", "status", "error", "columns", "rows", "row_count",
"sql", "plan", "run_id"} plus "explanation" and "thread_id"; a run that asks instead of answering
(error code CLARIFICATION_NEEDED) also has "clarification": {"message", "options": [{"explanation",
"plan", "sql"}]}.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from csv_analyst.v1 import run_pb2, value_pb2


def cell(value: value_pb2.Value) -> Any:
    """Return a typed Value as a plain JSON value."""
    kind = value.WhichOneof("kind")
    return None if kind in (None, "null_value") else getattr(value, kind)


def run_status(run: run_pb2.Run) -> str:
    """Map a run's state to SUCCEEDED, FAILED, REJECTED or TIMEOUT."""
    if run.state == run_pb2.RUN_STATE_SUCCEEDED:
        return "SUCCEEDED"
    if run.state == run_pb2.RUN_STATE_REJECTED:
        return "REJECTED"
    if run.error.code == run_pb2.ERROR_CODE_RUNNER_TIMEOUT:
        return "TIMEOUT"
    return "FAILED"


def clarification(run: run_pb2.Run) -> dict[str, Any]:
    """The run's clarification as {"message", "options": [{"explanation", "plan", "sql"}]}."""
    return {"message": run.clarification.message,
            "options": [{"explanation": option.explanation, "plan": _plan_json(option.plan), "sql": option.sql}
                        for option in run.clarification.options]}


def _plan_json(plan: Any) -> Any:
    return json.loads(json_format.MessageToJson(plan))


def answer_from_run(item_id: Any, run: run_pb2.Run) -> dict[str, Any]:
    """Build the answer object of a finished run."""
    has_error = run.state != run_pb2.RUN_STATE_SUCCEEDED
    answer = {
        "id": item_id,
        "status": run_status(run),
        "error": {"code": run.error.reason or "UNKNOWN", "message": run.error.message} if has_error else None,
        "columns": [c.name for c in run.result.columns],
        "rows": [[cell(v) for v in row.values] for row in run.result.rows],
        "row_count": run.result.row_count,
        "truncated": run.result.truncated,
        "sql": run.sql,
        "plan": _plan_json(run.plan) if run.HasField("plan") else None,
        "explanation": run.plan.explanation,
        "run_id": run.run_id,
        "thread_id": run.thread_id,
    }
    if run.HasField("clarification"):
        answer["clarification"] = clarification(run)
    return answer


def answer_from_rpc_error(item_id: Any, error: grpc.RpcError) -> dict[str, Any]:
    """Build the answer object of a request the service refused before any run existed."""
    code = error.code().name if hasattr(error, "code") else "INTERNAL"  # type: ignore[attr-defined]
    message = error.details() if hasattr(error, "details") else str(error)  # type: ignore[attr-defined]
    status = rpc_status.from_call(error) if hasattr(error, "trailing_metadata") else None  # type: ignore[arg-type]
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            code = info.reason
    return rejected(item_id, code, message)


def rejected(item_id: Any, code: str, message: str) -> dict[str, Any]:
    """Build the answer object of an input the CLI refused itself (bad batch line)."""
    status = "FAILED" if code in ("UNAVAILABLE", "INTERNAL") else "REJECTED"
    return {"id": item_id, "status": status, "error": {"code": code, "message": message}, "columns": [], "rows": [],
            "row_count": 0, "truncated": False, "sql": "", "plan": None, "explanation": "", "run_id": "", "thread_id": ""}
