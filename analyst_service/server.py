"""Build and start the analyst service's grpc.aio server with health and reflection."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from analyst_service.auth import ApiKeyInterceptor, bearer_interceptors
from analyst_service.capsules.base import CapsuleStore
from analyst_service.capsules.sqlite import SqliteCapsuleStore
from analyst_service.config import AnalystSettings
from analyst_service.datasets import DatasetRegistry
from analyst_service.logs import RequestIdInterceptor
from analyst_service.planning.base import Planner
from analyst_service.runs import RunManager
from analyst_service.servicer import AnalystServicer
from analyst_service.uploads import UploadStore
from csv_analyst.v1 import analyst_service_pb2, analyst_service_pb2_grpc
from csv_analyst.runner.v1 import runner_dispatch_service_pb2_grpc

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
    health: health.aio.HealthServicer | None = None
    planner: Planner | None = None

    async def stop(self, grace: float = 5.0) -> None:
        """Drain in-flight calls for `grace` seconds (health says NOT_SERVING meanwhile), then
        stop and close resources."""
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        self.runs.start_shutdown()
        await self.server.stop(grace)
        await self.runs.close()  # runs still going end CANCELLED, each with its capsule
        close = getattr(self.planner, "aclose", None)  # the Claude planner's shared HTTP client
        if close is not None:
            await close()
        await self.channel.close()
        self.store.close()


class UnsafeBindError(ValueError):
    """The service would listen beyond loopback with no client authentication."""


def is_loopback(host: str) -> bool:
    """Whether `host` names a loopback interface (an empty host or a wildcard is not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: AnalystSettings) -> None:
    """Refuse a non-loopback bind without API keys unless allow_unauthenticated.

    Raises:
        UnsafeBindError: Saying why and what to configure.
    """
    if is_loopback(settings.host) or settings.api_keys.enabled or settings.allow_unauthenticated:
        return
    raise UnsafeBindError(
        f"refusing to listen on {settings.host} without client authentication: anyone who can reach that "
        "address could ask questions, read capsules and upload files. Give --api-keys-file FILE (create keys with "
        "`csv-analyst keys add`), or --allow-unauthenticated if something in front of the service authenticates callers.")


async def start_analyst_server(settings: AnalystSettings, planner: Planner | None = None,
                               store: CapsuleStore | None = None, sandbox_gid: int | None = None) -> AnalystServer:
    """Start the analyst service; it reaches the runner service over a gRPC channel.

    Args:
        settings: The service's settings.
        planner: The planner (default: the one settings.planner names).
        store: The capsule store (default: SQLite at settings.capsule_db).
        sandbox_gid: Group of the sandbox user, given read access to uploaded files (None: the
            sandboxes run as this process's user, and uploads are 0600).

    Raises:
        UnsafeBindError: For a non-loopback host without API keys (see check_bind).
        ValueError: Without a runner credential.
    """
    check_bind(settings)
    if not settings.runner_credential:
        raise ValueError("the analyst service needs the runner service's credential (settings.runner_credential)")
    uploads = UploadStore(settings.upload_dir, settings.max_upload_bytes, sandbox_gid)
    datasets = DatasetRegistry(settings.datasets_dir, settings.csv_roots, uploads)
    store = store or SqliteCapsuleStore(settings.capsule_db)
    channel = grpc.aio.insecure_channel(settings.runner_target,
                                        interceptors=bearer_interceptors(settings.runner_credential))
    planner = planner or make_planner(settings.planner, settings)  # one per process: the Claude client is shared
    runs = RunManager(settings, datasets, planner, runner_dispatch_service_pb2_grpc.RunnerServiceStub(channel), store)
    runs.recover_interrupted()
    server = grpc.aio.server(interceptors=[RequestIdInterceptor(), ApiKeyInterceptor(settings.api_keys)])
    analyst_service_pb2_grpc.add_AnalystServiceServicer_to_server(
        AnalystServicer(datasets, runs, uploads, settings.api_keys, settings.enable_python), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return AnalystServer(server, port, runs, store, channel, health_servicer, planner)
