"""Runner service settings: one frozen dataclass, built once by the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runner_service.executors.k8s_settings import KubernetesSettings
from runner_service.executors.sandbox_user import DEFAULT_SANDBOX_USER


@dataclass(frozen=True)
class RunnerSettings:
    """Settings of the runner-dispatch service.

    Attributes:
        host: Interface to bind.
        port: TCP port; 0 picks a free one.
        executor: Sandbox kind: `bwrap` (default), `docker` or `k8s` (a Job per run).
        max_concurrency: Sandboxes running at once; 0 derives it from the cores and memory
            (admission.derived_concurrency: 2 per core, within half the memory at each run's cap).
        max_queue: Runs waiting for a slot before RESOURCE_EXHAUSTED.
        default_timeout_seconds: Wall-clock limit when a request sets none.
        max_timeout_seconds: Cap on requested wall-clock limits.
        default_memory_bytes: DuckDB memory_limit when a request sets none (the OS cap is 2x).
        max_memory_bytes: Cap on requested memory.
        default_max_rows: Row cap when a request sets none.
        max_rows_cap: Cap on requested row caps.
        threads: DuckDB threads per sandbox.
        max_processes: Processes per sandbox (cgroup pids limit).
        max_output_bytes: Captured stdout/stderr bytes per stream.
        docker_image: Runner image of the `docker` executor; empty: `csv-analyst-runner:<content
            tag>` (make runner-image).
        docker_host: Docker engine of the `docker` executor; empty: $DOCKER_HOST, else the local socket.
        docker_cpus: CPUs per run container of the `docker` executor.
        cache_dir: Where materialised (DuckDB) copies of dataset versions live; None (empty) disables
            materialisation (every run reads the CSVs).
        cache_max_bytes: Size cap of cache_dir; least recently used copies are deleted past it.
        pool_size: Warm sandboxes kept per recently used dataset (0: every run starts cold).
            Each idle warm sandbox holds about 64-80 MB.
        pool_idle_seconds: Warm sandboxes unused this long are killed.
        sql_runner: What runs SQL on a materialised dataset inside the sandbox: `native` (the
            DuckDB CLI of PyPI duckdb-cli; see executors/native_sql.py), `python` (the Python
            runner), or `auto` (native when the CLI is installed). Python mode, materialisation
            and runs on raw CSV files always use the Python runner.
        credential: The service credential every caller but health must present (`authorization:
            Bearer ...`). Required: the server refuses to start without one.
        data_roots: Directories (or single files) whose files may be mounted into sandboxes; any
            other table path is refused with PERMISSION_DENIED. The cache directory is always one.
        sandbox_user: Host user the bwrap sandboxes run as when the service is root (created
            when missing).
        kubernetes: Settings of the `k8s` executor (cluster, namespace, image, data claim).
    """

    host: str = "127.0.0.1"
    port: int = 50052
    executor: str = "bwrap"
    max_concurrency: int = 0
    max_queue: int = 32
    default_timeout_seconds: float = 30.0
    max_timeout_seconds: float = 300.0
    default_memory_bytes: int = 512 << 20
    max_memory_bytes: int = 4 << 30
    default_max_rows: int = 1000
    max_rows_cap: int = 10_000
    threads: int = 1
    max_processes: int = 64
    max_output_bytes: int = 64 * 1024
    docker_image: str = ""
    docker_host: str = ""
    docker_cpus: float = 1.0
    cache_dir: Path | None = None
    cache_max_bytes: int = 10 << 30
    pool_size: int = 1
    pool_idle_seconds: float = 300.0
    sql_runner: str = "auto"
    credential: str = field(default="", repr=False)
    data_roots: tuple[Path, ...] = ()
    sandbox_user: str = DEFAULT_SANDBOX_USER
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)

    def concurrency(self) -> int:
        """Sandboxes running at once: max_concurrency, or derived from this machine when 0."""
        from runner_service.admission import derived_concurrency

        return self.max_concurrency or derived_concurrency(self.default_memory_bytes)
