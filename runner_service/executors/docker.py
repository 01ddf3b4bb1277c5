"""The Docker executor: one fresh container per run, driven through the Docker Engine API.

Each container gets: no network (`network_mode: none`), a read-only root filesystem, each table's
CSV bind-mounted read-only at /data/tN.csv, every capability dropped, no-new-privileges, uid and
gid 65534, pids / memory (memory+swap equal, so no swap) / CPU limits, a size-capped noexec tmpfs
at /tmp, no log driver, labels for reaping, and a hard kill at the wall-clock limit.

The task goes in on stdin and the result comes back on stdout through the low-level API: create
with stdin open, attach the socket before start, write, then shut down the write side. (The
high-level `containers.create()` of docker SDK 7.2 rejects stdin_once; see FIELD-NOTES.) The
framed protocol (runner/messages.py) splits this in two: starting a container writes the set-up
frame at once, so the runner imports DuckDB and opens the tables; finishing it writes the query
frame, shuts stdin and reads the answer, which comes back as one frame: as soon as it is whole
the run is answered, and the container's exit and removal happen in the background (waiting for
the exit cost ~100 ms per run). A warm pool (executors/pool.py) keeps started containers for
recently used datasets; cold runs do both steps back to back. SQL runs on a materialised
dataset run the image's native DuckDB CLI instead of Python (native_sql.py): the same two steps,
with the CLI's set-up and query scripts in place of the frames.

The runner image is tagged with a digest of what goes into it (the runner code, the generated
protos, the DuckDB and protobuf versions and the build recipe), so a stale image is never used:
`make runner-image` builds it offline (runner/image/build-offline.sh) and skips the build when the
tag already exists.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import importlib.metadata
import logging
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import csv_analyst
import runner
from csv_analyst.v1 import run_pb2
from csv_analyst.runner.v1 import sandbox_pb2
from runner_service import metrics
from runner_service.executors.base import (
    DATABASE_FILE,
    MAX_STDOUT_BYTES,
    OUTPUT_SUBDIR,
    SandboxOutcome,
    SandboxRequest,
    SandboxStartError,
    capped_text,
    looks_out_of_memory,
    runner_error,
    sandbox_failed,
    sandbox_task,
    too_much_output,
)
from runner_service.executors import native_sql
from runner_service.executors.pool import PoolSettings, WarmPool, pool_key, warm_template
from runner_service.executors.sandbox_user import SandboxUser
from runner.messages import complete_frame, frame, query_frame

log = logging.getLogger(__name__)

DATA_DIR = "/data"
SANDBOX_USER = "65534:65534"
APP_DIR = "/app"
RUNNER_IMAGE_REPOSITORY = "csv-analyst-runner"
# Bump when runner/image/build-offline.sh or runner/Dockerfile change what goes into the image.
IMAGE_RECIPE = "bookworm-minbase-venv-2"
# Packages installed into the image, at the versions of the service's own environment.
# pandas and numpy (with pandas' own dependencies) serve restricted Python runs; duckdb-cli
# brings the native SQL runner's binary (linked to IMAGE_NATIVE_CLI by the build).
IMAGE_PACKAGES = ("duckdb", "duckdb-cli", "protobuf", "pandas", "numpy", "python-dateutil", "tzdata")
IMAGE_NATIVE_CLI = "/usr/local/bin/duckdb"
# The interpreter inside the image (Debian bookworm's python3 / python:3.11-slim).
IMAGE_PYTHON = "/opt/venv/bin/python"

LABEL_EXECUTOR = "csv-analyst.executor"
LABEL_RUN_ID = "csv-analyst.run-id"
LABEL_OWNER = "csv-analyst.owner"
LABEL_INSTANCE = "csv-analyst.executor-instance"
# Unix time after which the container can only be a leak (its run's time limit plus a grace, plus
# the longest a warm container waits for its run).
LABEL_REAP_AFTER = "csv-analyst.reap-after"
REAP_GRACE = 60

# The cgroup memory cap is a multiple of DuckDB's memory_limit, as in the bwrap executor:
# DuckDB's own reservations, Python and the /tmp tmpfs (which the memory cgroup charges) need room.
MEMORY_FACTOR = 2
MIN_MEMORY = 128 << 20
MIN_TMP = 64 << 20
DEFAULT_PIDS = 64
DEFAULT_TIMEOUT = 30.0
MAX_CAPTURE = 64 * 1024
# After a kill, how long to wait for the stream to close and the engine to report the exit.
KILL_GRACE = 10.0


# --- the runner image --------------------------------------------------------------------------

def runner_image_files() -> list[tuple[Path, str]]:
    """Files the runner image holds: (host path, path below /app), in a stable order.

    The runner package and the generated message modules; the gRPC stubs stay out (no grpc
    inside the sandbox).
    """
    runner_dir = Path(runner.__file__).resolve().parent
    proto_dir = Path(csv_analyst.__file__).resolve().parent
    files = [(p, f"runner/{p.name}") for p in sorted(runner_dir.glob("*.py"))]
    files += [(p, f"csv_analyst/{p.relative_to(proto_dir).as_posix()}") for p in sorted(proto_dir.rglob("*.py"))
              if "__pycache__" not in p.parts and (p.name == "__init__.py" or p.name.endswith("_pb2.py"))]
    return files


def image_package_versions() -> dict[str, str]:
    """The versions of the runner's packages in this environment, which the image must match."""
    return {name: importlib.metadata.version(name) for name in IMAGE_PACKAGES}


def runner_image_tag(files: Iterable[tuple[Path, str]] | None = None,
                     versions: Mapping[str, str] | None = None, recipe: str = IMAGE_RECIPE) -> str:
    """A content tag: 16 hex digits of a SHA-256 over the recipe, the versions and the files.

    Args:
        files: (host path, path in the image) pairs; default runner_image_files().
        versions: Package versions; default image_package_versions().
        recipe: The build recipe id.

    Returns:
        The tag, the same on every machine for the same inputs.
    """
    digest = hashlib.sha256()

    def add(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "big") + data)

    add(recipe.encode())
    for name, version in sorted((versions if versions is not None else image_package_versions()).items()):
        add(f"{name}=={version}".encode())
    for path, inside in (files if files is not None else runner_image_files()):
        add(inside.encode())
        add(path.read_bytes())
    return digest.hexdigest()[:16]


def default_runner_image() -> str:
    """The image name the offline build and the Dockerfile instructions produce for this code."""
    return f"{RUNNER_IMAGE_REPOSITORY}:{runner_image_tag()}"


# --- the container spec (pure) -----------------------------------------------------------------

@dataclass(frozen=True)
class ContainerSpec:
    """Arguments for the Engine API: create_container(**create, host_config=create_host_config(**host))."""

    create: dict[str, Any]
    host: dict[str, Any]


def sandbox_table_paths(request: SandboxRequest) -> list[str]:
    """Paths of the table files inside the container (index-based, so no host name leaks)."""
    return [f"{DATA_DIR}/t{index}.csv" for index in range(len(request.tables))]


def container_memory_bytes(request: SandboxRequest) -> int:
    """The container's memory cap (and memory+swap cap): a multiple of DuckDB's memory_limit."""
    return max(MIN_MEMORY, request.limits.memory_bytes * MEMORY_FACTOR)


def build_container_spec(image: str, request: SandboxRequest, labels: Mapping[str, str], cpus: float = 1.0,
                         command: list[str] | None = None) -> ContainerSpec:
    """Build the container for one run (pure; unit-tested).

    Args:
        image: The runner image.
        request: The run.
        labels: Extra labels (owner, executor instance); executor and run id labels are added.
        cpus: CPU cap in cores.
        command: Replace the image's entrypoint (`python -m runner`): the native DuckDB CLI
            (NATIVE_COMMAND) or an isolation probe.

    Returns:
        The create and host-config arguments.
    """
    limits = request.limits
    memory = container_memory_bytes(request)
    tmp_bytes = max(MIN_TMP, limits.memory_bytes)
    if request.database_path:
        # A materialised dataset replaces the CSV files (same convention as the bwrap executor).
        mounts = [{"Type": "bind", "Source": request.database_path, "Target": f"{DATA_DIR}/{DATABASE_FILE}",
                   "ReadOnly": True}]
    else:
        mounts = [{"Type": "bind", "Source": table.host_path, "Target": inside, "ReadOnly": True}
                  for table, inside in zip(request.tables, sandbox_table_paths(request), strict=True)]
    if request.output_dir:
        # The one writable bind: a fresh per-build directory of the materialiser.
        mounts.append({"Type": "bind", "Source": request.output_dir, "Target": f"{DATA_DIR}/{OUTPUT_SUBDIR}",
                       "ReadOnly": False})
    create: dict[str, Any] = {
        "image": image,
        "user": SANDBOX_USER,
        "hostname": "sandbox",
        "working_dir": "/tmp",
        # The whole environment: nothing from the service leaks in.
        # TZ: DuckDB's ICU then never scans /usr/share/zoneinfo for the local zone (see bwrap.py).
        "environment": {"HOME": "/tmp", "LANG": "C.UTF-8", "TZ": "UTC", "PYTHONPATH": APP_DIR,
                        "PYTHONDONTWRITEBYTECODE": "1"},
        # stdin_open also sets StdinOnce: stdin closes when the attached writer shuts down.
        "stdin_open": True,
        "tty": False,
        "network_disabled": True,
        "labels": {**labels, LABEL_EXECUTOR: "docker", LABEL_RUN_ID: request.run_id},
    }
    if command is not None:
        create["entrypoint"] = command
    host: dict[str, Any] = {
        "network_mode": "none",
        "read_only": True,
        "mounts": mounts,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={tmp_bytes},mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.max_processes or DEFAULT_PIDS,
        "mem_limit": memory,
        "memswap_limit": memory,
        "mem_swappiness": 0,
        "nano_cpus": int(cpus * 1e9),
        "ipc_mode": "private",
        "ulimits": [{"Name": "core", "Soft": 0, "Hard": 0}],
        # Results travel over the attach stream; nothing is kept in the engine's logs.
        "log_config": {"Type": "none", "Config": {}},
    }
    return ContainerSpec(create, host)


# --- outcome interpretation (pure) -------------------------------------------------------------

@dataclass
class ContainerExit:
    """What one container produced."""

    stdout: bytes
    stderr: bytes
    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    wall_seconds: float
    stdout_overflow: bool = False



def interpret_exit(request: SandboxRequest, done: ContainerExit, cancelled: bool, native: bool = False) -> SandboxOutcome:
    """Turn a container's exit into an outcome, with the same errors as the bwrap executor (pure).

    Args:
        request: The run.
        done: The container's output and exit state.
        cancelled: Whether the run was cancelled (its container killed on request).
        native: Whether the container ran the native DuckDB CLI (its output is translated).
    """
    cap = request.limits.max_output_bytes or MAX_CAPTURE
    err_text = capped_text(done.stderr, cap)
    outcome = SandboxOutcome(sandbox_pb2.SandboxResult(), "", err_text, done.wall_seconds, done.exit_code)
    limit_s = request.limits.timeout.ToMilliseconds() / 1000 or DEFAULT_TIMEOUT
    if cancelled:
        outcome.result.error.CopyFrom(runner_error(run_pb2.ERROR_CODE_CANCELLED, 1, "the run was cancelled"))
    elif done.timed_out:
        outcome.result.error.CopyFrom(runner_error(
            run_pb2.ERROR_CODE_RUNNER_TIMEOUT, 4, f"the run exceeded the {limit_s:g} s limit set by run_timeout; "
            "the container was killed"))
    elif done.oom_killed or (done.exit_code != 0 and looks_out_of_memory(done.stderr)):
        outcome.result.error.CopyFrom(runner_error(
            run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8,
            f"the run exceeded the {request.limits.memory_bytes // (1 << 20)} MB memory limit set by run_memory"))
    elif native and not done.stdout_overflow and (
            answer := native_sql.translate(done.stdout, done.stderr, request.limits.max_rows or 200)) is not None:
        outcome.result = answer
        answer.query_seconds = done.wall_seconds  # the CLI reports no timings: the query's round trip
        if answer.HasField("error"):
            outcome.stderr = ""  # the CLI's error message is the run's error, not a diagnostic
    elif done.exit_code == 0 and not done.stdout_overflow and not native:
        try:
            outcome.result = sandbox_pb2.SandboxResult.FromString(done.stdout)
        except Exception:  # noqa: BLE001 - any undecodable output is a runner fault
            outcome.stdout = capped_text(done.stdout, cap)
            outcome.result.error.CopyFrom(runner_error(run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13,
                                                       "the runner wrote an unreadable result"))
    elif done.stdout_overflow:
        outcome.result.error.CopyFrom(too_much_output())
    else:
        outcome.stdout = capped_text(done.stdout, cap)
        outcome.result.error.CopyFrom(sandbox_failed(request.run_id, done.exit_code, err_text))
    return outcome




# --- the attach stream (pure) ------------------------------------------------------------------

@dataclass
class StreamDemuxer:
    """Splits Docker's multiplexed attach stream (8-byte headers: stream, 0, 0, 0, big-endian size).

    Attributes:
        stdout_cap: Bytes of stdout kept; more sets stdout_overflow. Stderr past the same total
            sets it too (both streams have the same cap and end the run alike).
        stderr_cap: Bytes of stderr kept; more is dropped (and counted).
    """

    stdout_cap: int
    stderr_cap: int
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    stdout_overflow: bool = False
    stderr_dropped: int = 0
    _pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> None:
        """Add bytes read from the socket."""
        self._pending += data
        while len(self._pending) >= 8:
            stream, size = self._pending[0], struct.unpack(">I", self._pending[4:8])[0]
            if len(self._pending) < 8 + size:
                return
            payload = bytes(self._pending[8:8 + size])
            del self._pending[:8 + size]
            if stream == 2:
                room = self.stderr_cap - len(self.stderr)
                self.stderr += payload[:max(room, 0)]
                self.stderr_dropped += max(len(payload) - max(room, 0), 0)
                if len(self.stderr) + self.stderr_dropped > self.stdout_cap:
                    self.stdout_overflow = True
            elif len(self.stdout) + len(payload) > self.stdout_cap:
                self.stdout_overflow = True
            else:
                self.stdout += payload


# --- reaping (pure decision) -------------------------------------------------------------------

def should_reap(container: Mapping[str, Any], host: str, now: float, stale_after: float,
                owner_alive: Callable[[str], bool]) -> bool:
    """Whether a labelled container from `containers(filters=label)` is a leak to remove.

    A container is a leak when its owner process on this host is gone (a crashed service), or when
    its run's time limit is long past (the owner kills every run at its limit), whoever owns it.

    Args:
        container: One entry of the Engine's container list (Labels, Created).
        host: This host's name.
        now: Current Unix time.
        stale_after: Age in seconds after which a container without a reap-after label is a leak.
        owner_alive: Whether an owner label names a live process on this host.
    """
    labels = container.get("Labels") or {}
    reap_after = labels.get(LABEL_REAP_AFTER, "")
    if reap_after.isdigit():
        if now > int(reap_after):
            return True
    elif now - float(container.get("Created", now)) > stale_after:
        return True
    owner = labels.get(LABEL_OWNER, "")
    return owner.split("/", 1)[0] == host and not owner_alive(owner)


def _process_start_ticks(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22 (starttime) counted after the parenthesised command name, which may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_label(host: str | None = None, pid: int | None = None) -> str:
    """`host/pid/start-ticks` of this process: a dead owner is told apart from a reused pid."""
    pid = pid if pid is not None else os.getpid()
    return f"{host or socket.gethostname()}/{pid}/{_process_start_ticks(pid)}"


def owner_is_alive(owner: str) -> bool:
    """Whether the process an owner label names (on this host) still runs."""
    parts = owner.split("/")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    return bool(parts[2]) and _process_start_ticks(int(parts[1])) == parts[2]


# --- the executor ------------------------------------------------------------------------------

@dataclass
class _Active:
    container_id: str | None = None
    cancelled: bool = False


@dataclass
class StartedContainer:
    """A running container holding its attach socket; the runner waits on stdin for its query.

    Attributes:
        container_id: The Engine's id.
        attached: The attach socket (stdin, and stdout/stderr multiplexed).
        born: time.monotonic() just before the container was created (its labels count from here).
        framed: Whether it was given a set-up frame, so its answer comes back as one frame.
        native: Whether it runs the native DuckDB CLI (given its set-up script instead).
    """

    container_id: str
    attached: Any
    born: float
    framed: bool = False
    native: bool = False


def setup_frame(request: SandboxRequest) -> bytes:
    """The set-up frame for a run's mounts and limits: tables or database, limits, no run id or SQL (pure)."""
    setup = sandbox_task(request, DATA_DIR, sandbox_table_paths(request))
    setup.ClearField("sql")
    setup.ClearField("run_id")
    return frame(setup)


def native_setup(request: SandboxRequest) -> bytes:
    """The native DuckDB CLI's set-up script for a run's database and limits."""
    return native_sql.setup_script(sandbox_task(request, DATA_DIR, sandbox_table_paths(request)))


NATIVE_COMMAND = [IMAGE_NATIVE_CLI, *native_sql.CLI_FLAGS]


def reap_after(now: float, request: SandboxRequest, idle_seconds: float = 0.0) -> int:
    """The reap-after label of a container created at `now` (Unix time; pure).

    A cold container lives for its run's time limit; a warm one may first wait up to idle_seconds
    for its run (it is never handed out later than that, see DockerExecutor._usable), so the label
    covers both, plus a grace for the kill and the removal. Another executor's start-up reaping
    therefore never removes a live container.
    """
    limit = request.limits.timeout.ToMilliseconds() / 1000 or DEFAULT_TIMEOUT
    return int(now + max(idle_seconds, 0.0) + limit + REAP_GRACE)


def _let_sandbox_write(directory: str) -> None:
    """Give the sandbox user the materialiser's fresh output directory (uid 65534 is real here)."""
    uid, gid = (int(part) for part in SANDBOX_USER.split(":"))
    try:
        os.chown(directory, uid, gid)
    except PermissionError:
        os.chmod(directory, 0o777)  # a service without root: the directory is per build and removed after


def _raw_socket(attached: Any) -> socket.socket:
    """The socket under docker SDK's attach_socket() result (a SocketIO on a unix socket)."""
    return getattr(attached, "_sock", attached)  # type: ignore[no-any-return]


def _close_attached(attached: Any) -> None:
    # The socket and its SocketIO wrapper both, so the connection really closes.
    _raw_socket(attached).close()
    attached.close()


class DockerExecutor:
    """Runs every request in its own locked-down container of the runner image, fresh or warm.

    A warm container was started for a dataset's mounts and limits, has received its set-up frame
    (so Python, DuckDB and the tables are ready) and waits for one query frame; it serves one run
    and is removed. Cold runs go through the same two steps back to back.

    Args:
        image: Runner image; empty = `csv-analyst-runner:<content tag of this code>`.
        base_url: Engine address; empty = DOCKER_HOST or the local socket.
        cpus: CPU cap per container, in cores.
        stale_after_seconds: Containers without a reap-after label and older than this are leaks.
        check_image: Refuse to start when the image is missing (False: find out at the first run).
        pool_settings: Warm pool sizing (size_per_key=0: every run starts cold).
        native: Run SQL on materialised datasets with the image's DuckDB CLI (native_sql.py).

    Raises:
        SandboxStartError: When the engine is unreachable or the image is missing.
    """

    name = "docker"
    # The containers' user (uid/gid 65534 are real host ids: Docker does not remap them here):
    # files the service shares with sandboxes get this group.
    user = SandboxUser("nobody", 65534, 65534)

    def __init__(self, image: str = "", base_url: str = "", cpus: float = 1.0, stale_after_seconds: float = 360.0,
                 check_image: bool = True, pool_settings: PoolSettings | None = None, native: bool = True) -> None:
        import docker

        self.native = native
        self.image = image or default_runner_image()
        self.cpus = cpus
        self.stale_after_seconds = stale_after_seconds
        self.pool_settings = pool_settings or PoolSettings()
        self.host = socket.gethostname()
        self.owner = owner_label(self.host)
        self.instance = uuid.uuid4().hex[:12]
        try:
            kwargs: dict[str, Any] = {"base_url": base_url} if base_url else docker.utils.kwargs_from_env()
            self.api = docker.APIClient(version="auto", timeout=60, **kwargs)
        except docker.errors.DockerException as error:
            raise SandboxStartError(f"cannot reach the Docker engine ({error}); start dockerd or set docker_host") \
                from error
        if check_image:
            try:
                self.api.inspect_image(self.image)
            except docker.errors.ImageNotFound as error:
                self.api.close()
                raise SandboxStartError(
                    f"the runner image {self.image} is missing: run `make runner-image` (offline build) or "
                    f"`docker build -f runner/Dockerfile -t {self.image} .`") from error
        self._threads = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="docker-run")
        self._active: dict[str, _Active] = {}
        # Containers that exist right now, created by start_container (in threads that outlive a
        # cancelled execute() task) and removed by finish_container or a pool discard.
        self._containers: set[str] = set()
        self._pool: WarmPool[SandboxRequest, StartedContainer] = WarmPool(
            self.pool_settings, self._spawn_warm, self._usable, self._discard, key_of=pool_key)
        self._janitor: asyncio.Task[None] | None = None
        self._disposals: set[concurrent.futures.Future[None]] = set()
        self._closed = False
        self.reap(startup=True)

    @property
    def pool(self) -> WarmPool[SandboxRequest, StartedContainer]:
        """The warm pool (for tests and benchmarks)."""
        return self._pool

    def labels(self) -> dict[str, str]:
        """Labels that tie a container to this executor."""
        return {LABEL_OWNER: self.owner, LABEL_INSTANCE: self.instance}

    def spec(self, request: SandboxRequest, command: list[str] | None = None,
             idle_seconds: float = 0.0) -> ContainerSpec:
        """The container spec of a run on this executor, created now (idle_seconds: a warm wait first)."""
        labels = {**self.labels(), LABEL_REAP_AFTER: str(reap_after(time.time(), request, idle_seconds))}
        return build_container_spec(self.image, request, labels, self.cpus, command)

    def reap(self, startup: bool = False) -> int:
        """Remove leaked containers: at start-up those of dead owners or too old; else this instance's.

        Returns:
            How many containers were removed.
        """
        if startup:
            listed = self.api.containers(all=True, filters={"label": f"{LABEL_EXECUTOR}=docker"})
            now = time.time()
            doomed = [c for c in listed if should_reap(c, self.host, now, self.stale_after_seconds, owner_is_alive)]
        else:
            doomed = self.api.containers(all=True, filters={"label": f"{LABEL_INSTANCE}={self.instance}"})
        for container in doomed:
            self._remove(container["Id"])
        if doomed:
            log.warning("removed %d leftover run container(s)%s", len(doomed),
                        " of crashed or stuck services" if startup else "")
        return len(doomed)

    # --- warm pool glue ---

    async def _spawn_warm(self, request: SandboxRequest) -> StartedContainer:
        # The template is the run that made this key wanted: keep its id and SQL out of the container.
        template = dataclasses.replace(request, run_id="", sql="")
        # No read-ahead here (the bwrap executor gives one after a quiet spell): a container is
        # ready late in an analyst's pause (create + start take 0.3-0.4 s), so a read-ahead there
        # was still running when the next question came (measured: slower, never faster).
        setup, command = self._program(template)
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, self.start_container, template, setup, command, self.pool_settings.idle_seconds)

    def _program(self, request: SandboxRequest) -> tuple[bytes, list[str] | None]:
        """The set-up bytes and entrypoint of a container for request: the native CLI for SQL on
        a materialised dataset, else the image's Python runner."""
        if self.native and native_sql.serves(request):
            return native_setup(request), NATIVE_COMMAND
        return setup_frame(request), None

    def _usable(self, container: StartedContainer) -> bool:
        """Whether a warm container may serve a run: young enough for its labels, runner still waiting.

        Non-blocking (called on the event loop): a peek at the attach socket. A runner that exited
        closed the stream; one that wrote anything before its query failed its set-up.
        """
        if time.monotonic() - container.born >= self.pool_settings.idle_seconds:
            return False
        sock = _raw_socket(container.attached)
        try:
            sock.settimeout(0)
            sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True  # nothing to read: the runner is waiting for its query
        except ValueError:
            return True  # a TLS socket cannot peek: the run reports whatever happened
        except OSError:
            return False
        # Readable: end of stream (the runner exited) or early output (its set-up failed).
        return False

    def _discard(self, container: StartedContainer) -> None:
        """Remove a container in the background (the pool calls this on the event loop; runs from threads)."""
        if not self._closed:
            try:
                future = self._threads.submit(self._dispose, container)
            except RuntimeError:
                pass  # shut down meanwhile: remove it here
            else:
                self._disposals.add(future)
                future.add_done_callback(self._disposals.discard)
                return
        self._dispose(container)

    async def _removed(self) -> None:
        """Wait for the background removals started so far."""
        pending = list(self._disposals)
        if pending:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)

    def _dispose(self, container: StartedContainer) -> None:
        try:
            _close_attached(container.attached)
        finally:
            self._remove(container.container_id)
            self._containers.discard(container.container_id)

    async def replenish(self) -> None:
        """Refill warm containers, then finish removing used ones (the runner service calls it after an answer).

        The refill goes first: a removal takes 0.1-0.4 s here, and a refill waiting behind it did
        not finish within an analyst's pause (the next run found no warm container).
        """
        await self._pool.refill()
        await self._removed()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.pool_settings.idle_seconds / 2))
            await self._pool.refill()

    # --- runs ---

    async def execute(self, request: SandboxRequest, on_started: Callable[[], None]) -> SandboxOutcome:
        """Run one request in its own container, warm when one is waiting (see Executor.execute)."""
        loop = asyncio.get_running_loop()
        key = pool_key(request) if self._pool.enabled else None
        warm = self._pool.take(key) if key else None
        active = _Active(warm.container_id if warm else None)
        self._active[request.run_id] = active

        def started() -> None:
            loop.call_soon_threadsafe(on_started)

        setup, command = self._program(request)
        native = warm.native if warm is not None else command == NATIVE_COMMAND
        if native:
            query = native_sql.query_script(request.sql, request.limits.max_rows or 200)
        else:
            query = query_frame(request.run_id, request.sql, request.python_code)
        try:
            if warm is not None:
                done = await loop.run_in_executor(self._threads, self.finish_container, warm, request, query,
                                                  active, started, True)
            else:
                done = await loop.run_in_executor(self._threads, self.run_container, request, query, active, started,
                                                  command, setup, True)
        finally:
            self._active.pop(request.run_id, None)
        outcome = interpret_exit(request, done, active.cancelled, native)
        if key:
            self._pool.want(key, warm_template(request))
            if self._janitor is None:
                self._janitor = asyncio.create_task(self._sweep())
        return outcome

    def run_container(self, request: SandboxRequest, payload: bytes, active: _Active | None = None,
                      on_started: Callable[[], None] | None = None, command: list[str] | None = None,
                      setup: bytes = b"", remove_later: bool = False) -> ContainerExit:
        """Blocking: start a container (sending `setup`), then finish it with `payload` (a cold run).

        Args:
            request: The run (limits, tables).
            payload: The rest of the container's stdin: a query frame, or a whole legacy task.
            active: Cancellation state shared with cancel().
            on_started: Called once the container runs.
            command: Entrypoint override (NATIVE_COMMAND, isolation probes).
            setup: Bytes written at start (the set-up frame of the framed protocol).
            remove_later: Remove the container in the background (see finish_container).

        Raises:
            SandboxStartError: When the container could not be created or started.
        """
        active = active or _Active()
        container = self.start_container(request, setup, command, active=active)
        return self.finish_container(container, request, payload, active, on_started, remove_later)

    def start_container(self, request: SandboxRequest, setup: bytes, command: list[str] | None = None,
                        idle_seconds: float = 0.0, active: _Active | None = None) -> StartedContainer:
        """Blocking: create the run's container, attach its socket, start it and write `setup`.

        Args:
            request: The run whose mounts and limits the container gets.
            setup: First bytes of stdin (the set-up frame); stdin stays open for the query.
            command: Entrypoint override (NATIVE_COMMAND, isolation probes).
            idle_seconds: How long the container may wait for its run (warm), for its reap-after label.
            active: Cancellation state; gets the container id as soon as it exists.

        Raises:
            SandboxStartError: When the container could not be created, started or given its set-up.
        """
        metrics.SANDBOX_STARTS.labels(executor=self.name).inc()
        import docker
        import requests

        if request.output_dir:
            _let_sandbox_write(request.output_dir)
        born = time.monotonic()
        spec = self.spec(request, command, idle_seconds)
        name = f"csv-analyst-{request.run_id[:40] or 'warm'}-{uuid.uuid4().hex[:8]}"
        try:
            created = self.api.create_container(name=name, host_config=self.api.create_host_config(**spec.host),
                                                **spec.create)
        except docker.errors.ImageNotFound as error:
            raise SandboxStartError(f"the runner image {self.image} is missing: run `make runner-image`") from error
        except (docker.errors.DockerException, requests.RequestException) as error:
            raise SandboxStartError(f"could not create the run container: {error}") from error
        container_id: str = created["Id"]
        self._containers.add(container_id)
        if active is not None:
            active.container_id = container_id
        attached = None
        try:
            attached = self.api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                                                    "stream": 1})
            self.api.start(container_id)
            if setup:
                sock = _raw_socket(attached)
                sock.settimeout(KILL_GRACE)
                sock.sendall(setup)
        except (docker.errors.DockerException, requests.RequestException, OSError) as error:
            if attached is not None:
                _close_attached(attached)
            self._remove(container_id)
            self._containers.discard(container_id)
            raise SandboxStartError(f"could not start the run container: {error}") from error
        return StartedContainer(container_id, attached, born, framed=bool(setup), native=command == NATIVE_COMMAND)

    def finish_container(self, container: StartedContainer, request: SandboxRequest, query: bytes,
                         active: _Active | None = None, on_started: Callable[[], None] | None = None,
                         remove_later: bool = False) -> ContainerExit:
        """Blocking: write `query`, shut stdin, read to the end or the time limit (then kill), remove.

        The time limit counts from the moment the query is written, so a warm container's wait
        is not charged to its run.

        Args:
            container: A started container (warm or just started).
            request: The run (limits).
            query: The rest of stdin (the query frame).
            active: Cancellation state shared with cancel().
            on_started: Called once the run owns the container.
            remove_later: Return as soon as the exit state is known and remove the container in
                the background (about 50-100 ms off the answer's path); replenish() and close()
                wait for such removals.
        """
        active = active or _Active()
        active.container_id = container.container_id
        try:
            if on_started:
                on_started()
            if active.cancelled:
                self._kill(container.container_id)
            started = time.perf_counter()
            limit = request.limits.timeout.ToMilliseconds() / 1000 or DEFAULT_TIMEOUT
            demuxer = StreamDemuxer(MAX_STDOUT_BYTES, request.limits.max_output_bytes or MAX_CAPTURE)
            answered = native_sql.complete_answer if container.native else complete_frame if container.framed else None
            timed_out = self._exchange(_raw_socket(container.attached), query, demuxer, started + limit,
                                       container.container_id, answered)
            answer = answered(demuxer.stdout) if answered is not None and not timed_out else None
            if answer is not None:
                # The whole answer is here: the container's exit (and removal) happen off its path.
                return ContainerExit(answer, bytes(demuxer.stderr), 0, False, False, time.perf_counter() - started)
            exit_code, oom_killed = self._exit_state(container.container_id)
            return ContainerExit(bytes(demuxer.stdout), bytes(demuxer.stderr), exit_code, oom_killed, timed_out,
                                 time.perf_counter() - started, demuxer.stdout_overflow)
        finally:
            if remove_later:
                self._discard(container)
            else:
                self._dispose(container)

    def _exchange(self, sock: socket.socket, payload: bytes, demuxer: StreamDemuxer, deadline: float,
                  container_id: str, answered: Callable[[bytearray], bytes | None] | None = None) -> bool:
        """Write the task, close stdin, read the stream to its end (or until `answered` finds the
        whole answer in stdout); kill at the deadline.

        Returns:
            Whether the deadline passed (and the container was killed).
        """
        timed_out = False
        try:
            sock.settimeout(max(deadline - time.perf_counter(), 0.001))
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except TimeoutError:
            timed_out = True
            self._kill(container_id)
        except OSError:
            pass  # the runner exited before reading everything; its exit state says why
        grace_end: float | None = time.perf_counter() + KILL_GRACE if timed_out else None
        while True:
            now = time.perf_counter()
            if grace_end is None and now >= deadline:
                timed_out = True
                self._kill(container_id)
                grace_end = now + KILL_GRACE
            end = grace_end if grace_end is not None else deadline
            if now >= end:
                break
            sock.settimeout(max(end - now, 0.001))
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            demuxer.feed(chunk)
            if answered is not None and not timed_out and answered(demuxer.stdout) is not None:
                break
        return timed_out

    def _exit_state(self, container_id: str) -> tuple[int | None, bool]:
        import docker
        import requests

        try:
            status = self.api.wait(container_id, timeout=KILL_GRACE).get("StatusCode")
            if status == 0:
                # A clean exit wrote its whole result: no OOM kill to look up (saves a round trip).
                return 0, False
            state = self.api.inspect_container(container_id)["State"]
        except (docker.errors.DockerException, requests.RequestException) as error:
            log.warning("container %s: no exit state: %s", container_id[:12], error)
            return None, False
        return state.get("ExitCode"), bool(state.get("OOMKilled"))

    def _kill(self, container_id: str) -> None:
        import docker
        import requests

        try:
            self.api.kill(container_id)
        except (docker.errors.DockerException, requests.RequestException):
            pass  # already exited or removed

    def _remove(self, container_id: str) -> None:
        import docker
        import requests

        try:
            self.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.DockerException, requests.RequestException) as error:
            # A removal already in progress answers 409; anything else is logged, and reaped later.
            if "already in progress" not in str(error):
                log.warning("could not remove container %s: %s", container_id[:12], error)

    async def cancel(self, run_id: str) -> bool:
        """Kill the container of run_id if it is running."""
        active = self._active.get(run_id)
        if active is None:
            return False
        active.cancelled = True
        if active.container_id:
            await asyncio.get_running_loop().run_in_executor(None, self._kill, active.container_id)
        return True

    async def close(self) -> None:
        """Kill every running and warm container of this executor, remove them, and release the client."""
        loop = asyncio.get_running_loop()
        if self._janitor is not None:
            self._janitor.cancel()
        for active in list(self._active.values()):
            active.cancelled = True
        await self._pool.close()  # warm containers: removed (with force) in the threads
        for container_id in list(self._containers):
            await loop.run_in_executor(None, self._kill, container_id)
        # Killed runs finish (and remove their containers) within moments; then sweep the rest.
        deadline = time.monotonic() + KILL_GRACE
        while self._containers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._removed()
        await loop.run_in_executor(None, self.reap)
        self._closed = True
        self._threads.shutdown(wait=False)
        self.api.close()
