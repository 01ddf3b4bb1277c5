"""Build and start the runner service's grpc.aio server with health and reflection."""

from __future__ import annotations

import os
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from csv_analyst.runner.v1 import runner_dispatch_service_pb2, runner_dispatch_service_pb2_grpc
from runner_service.config import RunnerSettings
from runner_service.auth import CredentialInterceptor
from runner_service.data_roots import DataRoots
from runner_service.executors.base import Executor, SandboxStartError
from runner_service.materialize import Materializer
from runner_service.servicer import RunnerServicer

SERVICE_NAME = runner_dispatch_service_pb2.DESCRIPTOR.services_by_name["RunnerService"].full_name


def native_cli(sql_runner: str) -> str | None:
    """The DuckDB CLI binary SQL runs use (see RunnerSettings.sql_runner), or None for Python.

    Raises:
        ValueError: For an unknown choice.
        SandboxStartError: When `native` is asked for and duckdb-cli is not installed.
    """
    from runner_service.executors.native_sql import find_cli

    if sql_runner == "python":
        return None
    if sql_runner not in ("auto", "native"):
        raise ValueError(f"unknown SQL runner {sql_runner!r}; available: auto, native, python")
    cli = find_cli()
    if cli is None and sql_runner == "native":
        raise SandboxStartError("the native SQL runner needs the DuckDB CLI: pip install duckdb-cli")
    return cli


def make_executor(settings: RunnerSettings) -> Executor:
    """Create the executor named by settings.executor.

    Raises:
        ValueError: For an unknown executor name.
        SandboxStartError: When the executor cannot work here (no Docker engine, no runner image).
    """
    if settings.executor == "bwrap":
        from runner_service.executors.bwrap import BwrapExecutor
        from runner_service.executors.pool import PoolSettings
        from runner_service.executors.sandbox_user import SandboxUserError, ensure_sandbox_user

        try:
            user = ensure_sandbox_user(settings.sandbox_user) if os.geteuid() == 0 else None
        except SandboxUserError as error:
            raise SandboxStartError(str(error)) from error
        return BwrapExecutor(user=user, pool_settings=PoolSettings(size_per_key=settings.pool_size,
                                                                   idle_seconds=settings.pool_idle_seconds),
                             native_cli=native_cli(settings.sql_runner))
    if settings.executor == "docker":
        from runner_service.executors.docker import DockerExecutor
        from runner_service.executors.pool import PoolSettings

        # A run container older than the longest allowed run is a leak, whoever owns it (warm
        # containers carry a reap-after label that covers their idle wait).
        return DockerExecutor(image=settings.docker_image, base_url=settings.docker_host, cpus=settings.docker_cpus,
                              stale_after_seconds=settings.max_timeout_seconds + 60,
                              pool_settings=PoolSettings(size_per_key=settings.pool_size,
                                                         idle_seconds=settings.pool_idle_seconds),
                              native=settings.sql_runner != "python")
    if settings.executor == "k8s":
        from runner_service.executors.kubernetes import KubernetesExecutor

        # One thread follows each run's Job (plus materialisations running beside the runs).
        return KubernetesExecutor(settings.kubernetes, max_timeout_seconds=settings.max_timeout_seconds,
                                  threads=settings.concurrency() + 4, native=settings.sql_runner != "python")
    raise ValueError(f"unknown executor {settings.executor!r}; available: bwrap, docker, k8s")


@dataclass
class RunnerServer:
    """A running runner service and what it owns."""

    server: grpc.aio.Server
    port: int
    executor: Executor
    materializer: Materializer | None
    health: health.aio.HealthServicer | None = None

    async def stop(self, grace: float | None = 5.0) -> None:
        """Drain in-flight runs for `grace` seconds (health says NOT_SERVING meanwhile), then stop,
        cancel builds and kill sandboxes."""
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.materializer is not None:
            await self.materializer.close()
        await self.executor.close()


async def start_runner_server(settings: RunnerSettings, executor: Executor | None = None) -> RunnerServer:
    """Start the runner service (and its materialiser when settings.cache_dir is set).

    Raises:
        ValueError: When settings.credential is empty (the runner never serves anonymous callers).
    """
    if not settings.credential:
        raise ValueError("the runner service needs a credential (settings.credential)")
    executor = executor or make_executor(settings)
    materializer = Materializer(settings.cache_dir, executor, getattr(executor, "user", None),
                                max_bytes=settings.cache_max_bytes) if settings.cache_dir else None
    roots = DataRoots([*settings.data_roots, *([settings.cache_dir] if settings.cache_dir else [])])
    server = grpc.aio.server(interceptors=[CredentialInterceptor(settings.credential)])
    runner_dispatch_service_pb2_grpc.add_RunnerServiceServicer_to_server(
        RunnerServicer(settings, executor, materializer, roots), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunnerServer(server, port, executor, materializer, health_servicer)
