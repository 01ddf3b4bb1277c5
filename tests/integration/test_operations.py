"""Operations through `csv-analyst serve` as an operator runs it: JSON logs and Prometheus metrics.

One server (API keys on, a fixed runner credential, metrics on an ephemeral port) answers a
question and a SQL statement; then /metrics is scraped, the server is stopped, and every log line
it wrote is read back.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from analyst_service.auth import key_file_line, new_key
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import credential_channel, require_bwrap
from tests.integration.test_serve import free_port

pytestmark = pytest.mark.bwrap
CLI = str(Path(sys.executable).parent / "csv-analyst")
RUNNER_SECRET = "runner-credential-for-the-logs-test-0123456789"


def test_logs_and_metrics_of_a_served_stack(datasets_dir: Path, tmp_path: Path) -> None:
    require_bwrap()
    key = new_key()
    (tmp_path / "keys").write_text(key_file_line(key, "tester") + "\n")
    (tmp_path / "runner-credential").write_text(RUNNER_SECRET)
    analyst_port = free_port()
    process = subprocess.Popen(
        [CLI, "--log-format", "json", "serve", "--no-ui", "--analyst-port", str(analyst_port), "--runner-port", "0",
         "--metrics-port", "0", "--api-keys-file", str(tmp_path / "keys"),
         "--runner-credential-file", str(tmp_path / "runner-credential"),
         "--datasets-dir", str(datasets_dir), "--capsule-db", str(tmp_path / "c.sqlite3"),
         "--cache-dir", str(tmp_path / "cache"), "--upload-dir", str(tmp_path / "uploads")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        metrics_url = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not metrics_url:
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, "serve exited early"
            if line.startswith("metrics"):
                metrics_url = line.split()[-1]
        with credential_channel(f"127.0.0.1:{analyst_port}", key) as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            stream = stub.Ask(api.AskRequest(dataset_id="support", question="How many tickets are there per priority?"),
                          metadata=[("x-request-id", "req-ops-test-1")], timeout=120)
            events = [response.event for response in stream]
            assert events[-1].run.state == run_pb2.RUN_STATE_SUCCEEDED, events[-1].run.error
            assert dict(stream.trailing_metadata())["x-request-id"] == "req-ops-test-1"
            asked_run = events[-1].run.run_id
            _, unary = stub.SubmitRun.with_call(api.SubmitRunRequest(dataset_id="support", sql="SELECT 1 AS one"),
                                                metadata=[("x-request-id", "bad id with spaces")], timeout=120)
            generated = dict(unary.trailing_metadata())["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{16}", generated)  # a hostile id is replaced, not echoed
            refused = stub.SubmitRun(api.SubmitRunRequest(dataset_id="support", sql="SELECT getenv('HOME')"),
                                     timeout=60).run
            assert refused.state == run_pb2.RUN_STATE_REJECTED
        scrape = urllib.request.urlopen(metrics_url, timeout=30).read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert re.search(r'csv_analyst_runs_total\{query_type="plan",state="succeeded"\} 1\.0', scrape), scrape[:2000]
    assert re.search(r'csv_analyst_runs_total\{query_type="sql",state="succeeded"\} 1\.0', scrape)
    assert re.search(r'csv_analyst_runs_total\{query_type="sql",state="rejected"\} 1\.0', scrape)
    assert re.search(r'csv_analyst_stage_seconds_count\{stage="sandbox"\} [1-9]', scrape)
    assert re.search(r'csv_analyst_sandbox_starts_total\{executor="bwrap"\} [1-9]', scrape)
    assert "csv_analyst_runner_queue_depth 0.0" in scrape and "csv_analyst_warm_pool_total" in scrape

    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "service", "event"} <= set(line) for line in lines)
    finished = [line for line in lines if line["event"] == "run finished" and line.get("run_id") == asked_run]
    assert finished and finished[0]["request_id"] == "req-ops-test-1" and finished[0]["service"] == "analyst"
    assert finished[0]["state"] == "succeeded" and finished[0]["query_type"] == "plan" and "sandbox_ms" in finished[0]
    sandbox = [line for line in lines if line["event"] == "run finished in the sandbox" and line["run_id"] == asked_run]
    assert sandbox and sandbox[0]["service"] == "runner" and sandbox[0]["executor"] == "bwrap"
    # No secret and no answer in any line.
    assert key not in stderr and RUNNER_SECRET not in stderr and "authorization" not in stderr.lower()
    assert not any("rows" in line or "result" in line for line in lines)
