"""Start the runner service and the analyst service together (for `serve` and the embedded CLI).

The analyst service always reaches the runner over a real gRPC channel, even in one process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from analyst_service.config import AnalystSettings
from analyst_service.planning.base import Planner
from analyst_service.server import AnalystServer, make_planner, start_analyst_server
from runner_service.auth import generate_credential
from runner_service.config import RunnerSettings
from runner_service.executors.base import Executor
from runner_service.server import RunnerServer, start_runner_server


@dataclass
class LocalStack:
    """Both services running in this process."""

    analyst: AnalystServer
    runner: RunnerServer
    runner_credential: str = field(default="", repr=False)

    @property
    def runner_port(self) -> int:
        """Port of the runner service."""
        return self.runner.port

    @property
    def executor(self) -> Executor:
        """The runner service's executor."""
        return self.runner.executor

    @property
    def analyst_target(self) -> str:
        """host:port of the analyst service."""
        return f"127.0.0.1:{self.analyst.port}"

    async def stop(self, grace: float = 5.0) -> None:
        """Stop the analyst service, then the runner service, then kill leftover sandboxes."""
        await self.analyst.stop(grace)
        await self.runner.stop(grace)


async def start_local_stack(analyst: AnalystSettings, runner: RunnerSettings, planner: Planner | None = None,
                            executor: Executor | None = None) -> LocalStack:
    """Start the runner service, then the analyst service pointed at it.

    The two share one runner credential (the configured one, or a fresh random one), and the
    runner's data roots include every place the analyst takes files from: the datasets
    directory, the upload store and the CSV roots.
    """
    planner = planner or make_planner(analyst.planner, analyst)
    credential = runner.credential or analyst.runner_credential or generate_credential()
    roots = (*runner.data_roots, analyst.datasets_dir, analyst.upload_dir, *analyst.csv_roots)
    runner = dataclasses.replace(runner, credential=credential, data_roots=tuple(dict.fromkeys(roots)))
    runner_server = await start_runner_server(runner, executor)
    runner_host = "127.0.0.1" if runner.host in ("0.0.0.0", "::", "") else runner.host
    analyst = dataclasses.replace(analyst, runner_target=f"{runner_host}:{runner_server.port}",
                                  runner_credential=credential)
    user = getattr(runner_server.executor, "user", None)
    try:
        analyst_server = await start_analyst_server(analyst, planner, sandbox_gid=user.gid if user else None)
    except BaseException:
        await runner_server.stop(None)
        raise
    return LocalStack(analyst_server, runner_server, credential)
