"""Build and start the analyst service's grpc.aio server with health and reflection."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from analyst_service.capsules.base import CapsuleStore
from analyst_service.capsules.sqlite import SqliteCapsuleStore
from analyst_service.config import AnalystSettings
from analyst_service.datasets import DatasetRegistry
from analyst_service.planning.base import Planner
from analyst_service.runs import RunManager
from analyst_service.servicer import AnalystServicer
from csv_analyst.v1 import analyst_service_pb2, analyst_service_pb2_grpc, runner_dispatch_service_pb2_grpc

SERVICE_NAME = analyst_service_pb2.DESCRIPTOR.services_by_name["AnalystService"].full_name


def make_planner(name: str, settings: AnalystSettings | None = None) -> Planner:
    """Create the planner named `offline`, `claude` or `auto`.

    `auto` is the Claude planner when settings.claude has an API key, else the offline planner.
    A `claude` planner without a key is still created; its plans fail with FAILED_PRECONDITION.

    Raises:
        ValueError: For an unknown planner name.
    """
    settings = settings or AnalystSettings()
    if name == "claude" or (name == "auto" and settings.claude.api_key):
        from analyst_service.planning.claude import ClaudePlanner

        return ClaudePlanner(settings.claude, settings.max_plan_limit)
    if name in ("offline", "auto"):
        from analyst_service.planning.offline import OfflinePlanner

        return OfflinePlanner()
    raise ValueError(f"unknown planner {name!r}; available: offline, claude, auto")


@dataclass
class AnalystServer:
    """A running analyst service and what it owns."""

    server: grpc.aio.Server
    port: int
    runs: RunManager
    store: CapsuleStore
    channel: grpc.aio.Channel
    planner: Planner | None = None

    async def stop(self, grace: float = 5.0) -> None:
        """Drain in-flight calls for `grace` seconds, then stop and close resources."""
        await self.server.stop(grace)
        close = getattr(self.planner, "aclose", None)  # the Claude planner's shared HTTP client
        if close is not None:
            await close()
        await self.channel.close()
        self.store.close()


async def start_analyst_server(settings: AnalystSettings, planner: Planner | None = None,
                               store: CapsuleStore | None = None) -> AnalystServer:
    """Start the analyst service; it reaches the runner service over a gRPC channel."""
    datasets = DatasetRegistry(settings.datasets_dir, settings.allow_csv_paths)
    store = store or SqliteCapsuleStore(settings.capsule_db)
    channel = grpc.aio.insecure_channel(settings.runner_target)
    planner = planner or make_planner(settings.planner, settings)  # one per process: the Claude client is shared
    runs = RunManager(settings, datasets, planner, runner_dispatch_service_pb2_grpc.RunnerServiceStub(channel), store)
    runs.recover_interrupted()
    server = grpc.aio.server()
    analyst_service_pb2_grpc.add_AnalystServiceServicer_to_server(AnalystServicer(datasets, runs), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return AnalystServer(server, port, runs, store, channel, planner)
