"""`csv-analyst serve`: one command starts the runner service, the analyst service and the UI."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2
from tests.conftest import require_bwrap

pytestmark = pytest.mark.bwrap
CLI = str(Path(sys.executable).parent / "csv-analyst")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_starts_all_three_and_stops_cleanly(datasets_dir: Path, tmp_path: Path) -> None:
    require_bwrap()
    analyst_port, runner_port, ui_port = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [CLI, "serve", "--analyst-port", str(analyst_port), "--runner-port", str(runner_port), "--ui-port",
         str(ui_port), "--datasets-dir", str(datasets_dir), "--capsule-db", str(tmp_path / "c.sqlite3")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            if line.startswith("web UI"):
                break
        assert any(f"127.0.0.1:{analyst_port}" in line for line in lines), lines
        assert any(f"http://127.0.0.1:{ui_port}" in line for line in lines), lines
        with grpc.insecure_channel(f"127.0.0.1:{analyst_port}") as channel:
            stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
            assert [d.dataset_id for d in stub.ListDatasets(api.ListDatasetsRequest()).datasets] == [
                "ecommerce", "support", "sensors"]
            events = [r.event for r in stub.Ask(api.AskRequest(dataset_id="support",
                                                               question="How many tickets are still open?"))]
            assert events[-1].run.state == run_pb2.RUN_STATE_SUCCEEDED
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=30) as page:
            assert page.status == 200 and b"gradio" in page.read().lower()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
