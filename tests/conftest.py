"""Shared fixtures: generated demo datasets and a real local stack (both gRPC services over
loopback on port 0, the real bubblewrap executor, the real offline planner, a SQLite capsule store).

In CI (CI=true) a test that needs bubblewrap, Chromium or node fails instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from analyst_service.config import AnalystSettings
from csv_analyst_app.stack import LocalStack, start_local_stack
from runner_service.config import RunnerSettings

TEST_SCALE = 0.05


def require(tool_ok: bool, why: str) -> None:
    """Skip (locally) or fail (in CI) when a component this machine can have is missing."""
    if tool_ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide this component: {why}")
    pytest.skip(why)


def require_bwrap() -> None:
    """Require bubblewrap."""
    require(shutil.which("bwrap") is not None, "bubblewrap is not installed (apt-get install bubblewrap)")


@pytest.fixture(scope="session")
def datasets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three demo datasets at a small scale, generated once per test session."""
    from csv_analyst_datasets.generator import generate

    out = tmp_path_factory.mktemp("datasets")
    generate(out, TEST_SCALE)
    return out


class LoopThread:
    """An asyncio loop in a background thread, so sync tests can drive async servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 120) -> Any:
        """Run a coroutine on the loop and wait for its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        """Stop the loop and join its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


@dataclass
class RunningStack:
    """A started local stack and the loop it runs on."""

    stack: LocalStack
    loop: LoopThread
    capsule_db: Path
    datasets_dir: Path

    @property
    def analyst_target(self) -> str:
        return self.stack.analyst_target

    @property
    def runner_target(self) -> str:
        return f"127.0.0.1:{self.stack.runner_port}"

    def runner_channel(self) -> grpc.Channel:
        """A channel to the runner service that presents the stack's service credential."""
        return credential_channel(self.runner_target, self.stack.runner_credential)


def credential_channel(target: str, secret: str) -> grpc.Channel:
    """An insecure channel whose every call carries `authorization: Bearer <secret>`."""
    from gradio_ui.client import BearerHeader

    return grpc.intercept_channel(grpc.insecure_channel(target), BearerHeader(secret))


def start_stack(datasets_dir: Path, capsule_db: Path, runner_overrides: dict[str, Any] | None = None,
                planner: Any = None, **analyst_overrides: Any) -> RunningStack:
    """Start a real local stack with tight limits on a background loop."""
    require_bwrap()
    loop = LoopThread()
    analyst = AnalystSettings(**{"port": 0, "datasets_dir": datasets_dir, "capsule_db": capsule_db,
                                 "run_timeout_seconds": 10.0, "run_memory_bytes": 256 << 20, "max_rows": 500,
                                 "upload_dir": capsule_db.parent / "uploads",  # never the user's own
                                 # Every run really runs (tests of the result cache turn it on).
                                 "result_cache_bytes": 0,
                                 **analyst_overrides})
    runner_settings: dict[str, Any] = {"port": 0, "max_concurrency": 2, "max_queue": 16, "max_timeout_seconds": 10.0,
                                       "cache_dir": capsule_db.parent / "materialized", **(runner_overrides or {})}
    runner = RunnerSettings(**runner_settings)
    stack = loop.run(start_local_stack(analyst, runner, planner))
    return RunningStack(stack, loop, capsule_db, datasets_dir)


def stop_stack(running: RunningStack) -> None:
    """Stop the stack and its loop."""
    running.loop.run(running.stack.stop(grace=1.0))
    running.loop.close()


@pytest.fixture(scope="session")
def local_stack(datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One real stack (runner + analyst services, bwrap, offline planner) for the session."""
    running = start_stack(datasets_dir, tmp_path_factory.mktemp("capsules") / "capsules.sqlite3")
    yield running
    stop_stack(running)
