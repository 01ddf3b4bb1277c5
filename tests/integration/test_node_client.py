"""Other services are users too: a Node client (@grpc/grpc-js + @grpc/proto-loader, only the .proto
files, no generated code) lists the datasets and streams Ask against the real local stack."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2, analyst_service_pb2_grpc, run_pb2
from tests.conftest import RunningStack, require

pytestmark = [pytest.mark.node, pytest.mark.bwrap]

NODE_DIR = Path(__file__).resolve().parent / "node"
STAGES = ["STAGE_PLANNING", "STAGE_VALIDATING", "STAGE_QUEUED", "STAGE_EXECUTING", "STAGE_RESULT", "STAGE_DONE"]


@pytest.fixture(scope="module")
def node_client() -> Path:
    """The client script, with its locked npm dependencies installed."""
    require(shutil.which("node") is not None and shutil.which("npm") is not None,
            "node and npm are not installed (apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js" / "package.json").is_file() or \
            not (NODE_DIR / "node_modules" / "@grpc" / "proto-loader" / "package.json").is_file():
        completed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                                   text=True, timeout=600, check=False)
        assert completed.returncode == 0, f"npm ci failed:\n{completed.stdout}\n{completed.stderr}"
    return NODE_DIR / "client.mjs"


def run_client(node_client: Path, *args: str) -> dict[str, object]:
    completed = subprocess.run(["node", str(node_client), *args], cwd=NODE_DIR, capture_output=True, text=True,
                               timeout=180, check=False)
    assert completed.returncode == 0, f"node client failed:\n{completed.stderr}"
    summary: dict[str, object] = json.loads(completed.stdout)
    return summary


@pytest.mark.parametrize("dataset_id", ["ecommerce", "support", "sensors"])
def test_node_client_lists_datasets_and_streams_ask(
        node_client: Path, local_stack: RunningStack, dataset_id: str) -> None:
    summary = run_client(node_client, local_stack.analyst_target, dataset_id, "0")

    assert {"ecommerce", "support", "sensors"} <= set(summary["datasets"])  # type: ignore[arg-type]
    assert summary["dataset_names"] == [f"datasets/{d}" for d in summary["datasets"]]  # type: ignore[union-attr]
    assert summary["dataset"] == dataset_id
    assert isinstance(summary["question"], str) and summary["question"]

    events = summary["events"]
    assert isinstance(events, list) and events
    stages = [e["stage"] for e in events]
    # Every stage appears, in order (a stage may repeat, never go back), ending with exactly one DONE;
    # an answer repeated from the result cache (the session's stack may have run this prompt) skips
    # the sandbox's stages.
    expected = [s for s in STAGES if s not in ("STAGE_QUEUED", "STAGE_EXECUTING")] if summary["cache_hit"] else STAGES
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == expected, stages
    assert stages.count("STAGE_DONE") == 1 and stages[-1] == "STAGE_DONE"
    sequences = [e["sequence"] for e in events]
    assert sequences == list(range(1, len(events) + 1)), sequences
    assert all(e["has_time"] for e in events)
    assert len({e["run_id"] for e in events}) == 1
    assert events[-1]["payload"] == "run"

    assert summary["final_state"] == "RUN_STATE_SUCCEEDED", summary["error"]
    assert summary["error"] is None
    row_count = summary["row_count"]
    assert isinstance(row_count, int) and row_count > 0
    assert summary["rows_received"] == row_count
    assert summary["columns"]

    # What the Node client saw is what the service recorded.
    with grpc.insecure_channel(local_stack.analyst_target) as channel:
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        capsule = stub.GetCapsule(analyst_service_pb2.GetCapsuleRequest(name=f"capsules/{summary['run_id']}"),
                                  timeout=30).capsule
    assert capsule.run.state == run_pb2.RUN_STATE_SUCCEEDED
    assert capsule.run.question == summary["question"]
    assert capsule.run.result.row_count == row_count
    assert [e.sequence for e in capsule.events] == sequences


def test_node_client_reports_grpc_errors(node_client: Path, local_stack: RunningStack) -> None:
    completed = subprocess.run(["node", str(node_client), local_stack.analyst_target, "no-such-dataset"],
                               cwd=NODE_DIR, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 1
    assert "no-such-dataset is not listed" in completed.stderr
