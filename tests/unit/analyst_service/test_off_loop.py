"""Reading and hashing ad-hoc CSV files happens off the event loop: while one request's files
are being read, other calls are answered. The reading is held until another call has been
answered, so the test deadlocks (and fails by its deadline) if reading blocked the loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest

from analyst_service.config import AnalystSettings
from analyst_service.datasets import DatasetRegistry
from analyst_service.server import start_analyst_server
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc


def test_csv_paths_are_read_off_the_event_loop(datasets_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    answered = threading.Event()
    original = DatasetRegistry.resolve

    def slow_resolve(self: DatasetRegistry, dataset_id: str, csv_paths: list[str]) -> Any:
        assert answered.wait(20), "no other call was answered while the files were being read"
        return original(self, dataset_id, csv_paths)

    monkeypatch.setattr(DatasetRegistry, "resolve", slow_resolve)

    async def scenario() -> None:
        settings = AnalystSettings(port=0, datasets_dir=datasets_dir, capsule_db=tmp_path / "c.sqlite3",
                                   runner_target="127.0.0.1:9", csv_roots=(tmp_path,), upload_dir=tmp_path / "up",
                                   runner_credential="unused")
        server = await start_analyst_server(settings)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
                submit = asyncio.ensure_future(stub.SubmitRun(
                    api.SubmitRunRequest(csv_paths=[str(tmp_path / "missing.csv")], sql="SELECT 1"), timeout=30))
                await asyncio.sleep(0.2)  # let the SubmitRun reach its file reading first
                listed = await stub.ListDatasets(api.ListDatasetsRequest(), timeout=10)
                answered.set()
                assert listed.datasets
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await submit
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            answered.set()
            await server.stop(0)

    asyncio.run(scenario())
