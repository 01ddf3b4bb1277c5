"""The bubblewrap executor: one fresh `bwrap` sandbox per run (the local default).

Each sandbox gets: no network and every other namespace unshared, a cleared environment, a
non-root uid (a real unprivileged host user when the service runs as root: see
`sandbox_user.py`), read-only binds of the Python runtime, the runner code and each table's CSV file,
a size-capped private /tmp, die-with-parent, a seccomp filter (no non-unix sockets, no new
namespaces, no mounts or ptrace), RLIMIT_AS/CPU/FSIZE caps, per-run cgroup memory and pids
limits when cgroups are writable, and a wall-clock kill.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
from runner_service.executors.cgroups import RunCgroup, owned_cgroup_name, reap_stale_cgroups
from runner_service.executors.pool import PoolSettings, WarmPool, pool_key, warm_template
from runner_service.executors.read_ahead import QuietSpell
from runner_service.executors.sandbox_user import SandboxUser, default_sandbox_user
from runner.messages import complete_frame, frame, query_frame
from runner_service.executors.seccomp import build_filter_fd, seccomp_available

log = logging.getLogger(__name__)

DATA_DIR = "/data"
SANDBOX_UID = 65534
# The runtime is mapped at its host paths; DuckDB's own reservations need headroom above the
# DuckDB memory_limit, so RLIMIT_AS is a multiple of it (cgroups give the exact cap).
ADDRESS_SPACE_FACTOR = 4
MIN_ADDRESS_SPACE = 1 << 30
# How long runs must be quiet before a waiting native pool sandbox reads its dataset ahead
# (read_ahead.py): longer than the gap between back-to-back runs, far shorter than an analyst's
# pause between questions.
READ_AHEAD_AFTER_SECONDS = 0.15


@dataclass(frozen=True)
class BwrapRuntime:
    """Host paths the sandbox needs, read-only."""

    bwrap: str
    python: str
    python_prefix: str
    venv: str
    site_packages: tuple[str, ...]
    runner_dir: str
    proto_dir: str

    @staticmethod
    def discover() -> BwrapRuntime:
        """Find bwrap and the current interpreter's runtime.

        Raises:
            SandboxStartError: When bwrap is not installed.
        """
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxStartError("bubblewrap is not installed: apt-get install bubblewrap")
        import site

        return BwrapRuntime(
            bwrap=bwrap,
            python=os.path.realpath(sys.executable),
            python_prefix=sys.base_prefix,
            venv=sys.prefix,
            site_packages=tuple(p for p in site.getsitepackages() if os.path.isdir(p)),
            runner_dir=str(Path(runner.__file__).resolve().parent),
            proto_dir=str(Path(csv_analyst.__file__).resolve().parent),
        )


def sandbox_table_paths(request: SandboxRequest) -> list[str]:
    """Paths of the table files inside the sandbox (index-based, so no host name leaks)."""
    return [f"{DATA_DIR}/t{index}.csv" for index in range(len(request.tables))]


def build_bwrap_argv(runtime: BwrapRuntime, request: SandboxRequest, seccomp_fd: int | None = None,
                     user: SandboxUser | None = None, program: Sequence[str] | None = None) -> list[str]:
    """Build the bwrap command line for one run (pure; unit-tested).

    Args:
        runtime: Host paths of bwrap and the Python runtime.
        request: The run.
        seccomp_fd: An fd holding a compiled seccomp BPF program, or None for no filter.
        user: The host user to run the runner as (the service is root): bwrap then sets the
            sandbox up without a user namespace (a root-created user namespace maps the sandbox
            to host root) and `setpriv` drops to this user, with no groups and no capabilities,
            before the runner starts. None: an unprivileged user namespace with uid 65534
            inside, which is the service's own uid outside.
        program: The sandboxed program and its arguments (the native DuckDB CLI of a SQL run:
            see native_sql.py); None runs the Python runner. It must lie under the bound runtime.
    """
    limits = request.limits
    tmp_bytes = max(64 << 20, limits.memory_bytes)
    if user is None:
        identity = ["--unshare-all", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    else:
        # Every namespace but the user namespace; setpriv needs these two capabilities to drop
        # to the sandbox user, after which it holds none.
        identity = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                    "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    argv = [
        runtime.bwrap,
        *identity, "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox",
        # The private /tmp comes first: binds below it (a runtime that lives under the host's
        # /tmp, as in a CI clone) are then mounted on top of it instead of being hidden by it.
        # World-writable with the sticky bit, so a dropped-privilege runner can use it.
        "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp",
        "--proc", "/proc", "--dev", "/dev",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
        "--ro-bind", runtime.python_prefix, runtime.python_prefix,
    ]
    if runtime.venv != runtime.python_prefix:
        argv += ["--ro-bind", runtime.venv, runtime.venv]
    argv += [
        "--ro-bind", runtime.runner_dir, "/app/runner",
        "--ro-bind", runtime.proto_dir, "/app/csv_analyst",
    ]
    if request.database_path:
        argv += ["--ro-bind", request.database_path, f"{DATA_DIR}/{DATABASE_FILE}"]
    else:
        for table, inside in zip(request.tables, sandbox_table_paths(request), strict=True):
            argv += ["--ro-bind", table.host_path, inside]
    if request.output_dir:
        argv += ["--bind", request.output_dir, f"{DATA_DIR}/{OUTPUT_SUBDIR}"]
    argv = _with_parent_dirs(argv)
    argv += [
        "--remount-ro", "/",
        *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
        "--setenv", "PYTHONPATH", ":".join(["/app", *runtime.site_packages]),
        "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8",
        # DuckDB's ICU looks for the local time zone; without TZ and /etc/localtime it reads every
        # file of /usr/share/zoneinfo (~5,600 opens, tens of ms per start, measured under strace).
        "--setenv", "TZ", "UTC",
        "--chdir", "/tmp",
        "--", *(user.setpriv_argv() if user is not None else []),
        *(program or (runtime.python, "-S", "-B", "-m", "runner")),
    ]
    return argv


def _with_parent_dirs(argv: list[str]) -> list[str]:
    """Create every bind destination's parent directories up front, mode 0755.

    bubblewrap makes missing parents 0700 (owned by root) when it runs privileged, which a
    dropped-privilege runner could not traverse.
    """
    parents: list[str] = []
    for index, arg in enumerate(argv):
        if arg in ("--ro-bind", "--bind"):
            for parent in reversed(Path(argv[index + 2]).parents):
                if str(parent) not in ("/", "/usr", "/tmp") and str(parent) not in parents:
                    parents.append(str(parent))
    first_bind = next(i for i, arg in enumerate(argv) if arg in ("--ro-bind", "--bind"))
    dirs = [item for parent in parents for item in ("--perms", "0755", "--dir", parent)]
    return argv[:first_bind] + dirs + argv[first_bind:]


def limit_script(request: SandboxRequest, cgroup_procs: list[Path]) -> str:
    """Shell prologue that joins the run's cgroups and sets rlimits, then execs bwrap."""
    limits = request.limits
    # With cgroups the memory cap is exact (2x memory_bytes), so the address-space cap only needs to
    # stop the absurd; without them it is the only cap and stays tighter.
    address_space = max(MIN_ADDRESS_SPACE, limits.memory_bytes * ADDRESS_SPACE_FACTOR) * (2 if cgroup_procs else 1)
    address_space_kb = address_space // 1024
    cpu_seconds = int(limits.timeout.ToSeconds()) + 2
    lines = [f"echo $$ > {shlex.quote(str(p))} || exit 97" for p in cgroup_procs]
    lines += [f"ulimit -v {address_space_kb}", f"ulimit -t {cpu_seconds}", "ulimit -f 1048576", "ulimit -c 0",
              'exec "$@"']
    return "; ".join(lines)


@dataclass
class _Active:
    process: subprocess.Popen[bytes]
    cancelled: bool = False
    cgroup: RunCgroup | None = None


@dataclass
class _Sandbox:
    """A started sandbox: the bwrap process (blocked reading its task) and its cgroup."""

    process: subprocess.Popen[bytes]
    cgroup: RunCgroup | None
    native: bool = False  # the native DuckDB CLI (native_sql.py) rather than the Python runner
    # The statements a waiting native pool sandbox may run ahead (native_sql.warm_up_script),
    # given only once it has waited READ_AHEAD_AFTER_SECONDS of quiet (read_ahead.py).
    ahead: bytes = b""
    taken: bool = False  # a run owns it: nothing more may be written to it but the run's query


@dataclass
class BwrapExecutor:
    """Runs every request in its own bubblewrap sandbox, fresh or pre-started (warm)."""

    runtime: BwrapRuntime = field(default_factory=BwrapRuntime.discover)
    use_cgroups: bool = field(default_factory=RunCgroup.available)
    use_seccomp: bool = field(default_factory=seccomp_available)
    pool_settings: PoolSettings = field(default_factory=PoolSettings)
    # The host user sandboxes run as: when the service is root, the dedicated sandbox user
    # (created when missing); otherwise None, and sandboxes run as the service's own user.
    user: SandboxUser | None = field(default_factory=default_sandbox_user)
    # The DuckDB CLI binary that runs SQL on materialised datasets (native_sql.py); None: every
    # run uses the Python runner.
    native_cli: str | None = field(default_factory=native_sql.find_cli)
    name: str = "bwrap"

    def __post_init__(self) -> None:
        if os.geteuid() == 0 and self.user is None:
            raise SandboxStartError("the bwrap executor runs as root: sandboxes need an unprivileged sandbox user")
        # --die-with-parent uses PR_SET_PDEATHSIG, which fires when the *thread* that forked
        # exits: spawn from one long-lived thread, never from short-lived pool threads.
        self._spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bwrap-spawner")
        # Refills start on a thread of their own: a run that found no warm sandbox never waits
        # behind a refill it does not need.
        self._refiller = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bwrap-refiller")
        self._active: dict[str, _Active] = {}
        self._quiet = QuietSpell(READ_AHEAD_AFTER_SECONDS, lambda: bool(self._active))
        self._pool: WarmPool[SandboxRequest, _Sandbox] = WarmPool(
            self.pool_settings, self._start_warm, lambda s: s.process.poll() is None, self._discard, key_of=pool_key)
        self._janitor: asyncio.Task[None] | None = None
        self._cleanups: set[asyncio.Future[object]] = set()
        self._spawned: list[_Sandbox] = []
        self._spawned_lock = threading.Lock()  # both start threads record their sandboxes
        if self.use_cgroups:
            reap_stale_cgroups()

    @property
    def pool(self) -> WarmPool[SandboxRequest, _Sandbox]:
        """The warm pool (for tests and benchmarks)."""
        return self._pool

    async def _start(self, request: SandboxRequest) -> _Sandbox:
        """Start a sandbox for request's mounts and limits; it waits for its task on stdin."""
        # All of it (cgroup, filter, fork, set-up frame) runs on the spawner thread, so a refill
        # never blocks the event loop that relays answers.
        return await asyncio.get_running_loop().run_in_executor(self._spawner, self._start_now, request, False)

    async def _start_warm(self, request: SandboxRequest) -> _Sandbox:
        """Start a warm sandbox for the pool (on the refill thread; see _start)."""
        loop = asyncio.get_running_loop()
        sandbox = await loop.run_in_executor(self._refiller, self._start_now, request, True)
        if sandbox.ahead:
            self._quiet.schedule(lambda: not sandbox.taken and sandbox.process.poll() is None,
                                 lambda: self._read_ahead(sandbox))
        return sandbox

    def _read_ahead(self, sandbox: _Sandbox) -> None:
        """Write a waiting native pool sandbox's read-ahead (read_ahead.QuietSpell calls it)."""
        ahead, sandbox.ahead = sandbox.ahead, b""
        metrics.READ_AHEADS.labels(executor=self.name).inc()
        stdin = sandbox.process.stdin
        try:
            assert stdin is not None
            os.set_blocking(stdin.fileno(), False)
            written = os.write(stdin.fileno(), ahead)  # a few hundred bytes: the pipe takes them at once
        except (OSError, ValueError):
            return  # the sandbox went away: the pool's liveness check drops it
        if written != len(ahead):
            # A torn statement would fail the sandbox's next input: never hand it out.
            log.warning("warm sandbox %d took a partial read-ahead; it is discarded", sandbox.process.pid)
            _kill(sandbox.process, sandbox.cgroup)

    def _start_now(self, request: SandboxRequest, warm: bool = False) -> _Sandbox:
        metrics.SANDBOX_STARTS.labels(executor=self.name).inc()
        cgroup = None
        cgroup_procs: list[Path] = []
        if self.use_cgroups:
            cgroup = RunCgroup(owned_cgroup_name(), request.limits.memory_bytes * 2,
                               request.limits.max_processes or 64)
            cgroup_procs = cgroup.create()
        seccomp_fd = build_filter_fd() if self.use_seccomp else None
        native = self._native(request)
        program = (self.native_cli, *native_sql.CLI_FLAGS) if native and self.native_cli else None
        argv = ["/bin/sh", "-c", limit_script(request, cgroup_procs), "sandbox-limits",
                *build_bwrap_argv(self.runtime, request, seccomp_fd, self.user, program)]
        try:
            process = _spawn(argv, seccomp_fd)
        except OSError as error:
            if cgroup:
                cgroup.remove()
            raise SandboxStartError(f"could not start bubblewrap: {error}") from error
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        # The set-up frame goes in at once: the runner prepares DuckDB (tables, limits, lock-down)
        # and then waits for the query frame of whichever run takes this sandbox.
        setup = sandbox_task(request, DATA_DIR, sandbox_table_paths(request))
        setup.ClearField("sql")
        setup.ClearField("run_id")
        try:
            assert process.stdin is not None
            if native:
                process.stdin.write(native_sql.setup_script(setup))
            else:
                process.stdin.write(frame(setup))
            process.stdin.flush()
        except OSError as error:
            said = b""
            with contextlib.suppress(Exception):
                _, said = process.communicate(timeout=2)
            self._discard(_Sandbox(process, cgroup))
            # For the service log (the client hears only that no sandbox could start).
            raise SandboxStartError(f"the sandbox did not accept its task: {error}; it said: "
                                    f"{capped_text(said, 500).strip()!r}") from error
        # Only a pool sandbox may read ahead, later (_read_ahead): a cold start's run would wait for it.
        sandbox = _Sandbox(process, cgroup, native,
                           native_sql.warm_up_script(request.database_path) if native and warm else b"")
        with self._spawned_lock:
            self._spawned = [s for s in self._spawned if s.process.poll() is None] + [sandbox]
        return sandbox

    def _native(self, request: SandboxRequest) -> bool:
        return self.native_cli is not None and native_sql.serves(request)

    def _discard(self, sandbox: _Sandbox) -> None:
        _kill(sandbox.process, sandbox.cgroup)
        with contextlib.suppress(Exception):
            sandbox.process.communicate(timeout=2)
        if sandbox.cgroup:
            sandbox.cgroup.remove()

    async def execute(self, request: SandboxRequest, on_started: Callable[[], None]) -> SandboxOutcome:
        """Run one request in its own sandbox, warm when one is waiting (see Executor.execute)."""
        loop = asyncio.get_running_loop()
        key = pool_key(request) if self._pool.enabled else None
        sandbox = self._pool.take(key) if key else None
        if sandbox is None:
            start = asyncio.ensure_future(self._start(request))
            try:
                sandbox = await asyncio.shield(start)
            except asyncio.CancelledError:
                # The caller went away while the sandbox was starting: it must not live on.
                start.add_done_callback(lambda done: done.cancelled() or done.exception() is not None
                                        or self._after(loop, self._discard, done.result()))
                raise
        sandbox.taken = True
        self._quiet.touch()
        process, cgroup = sandbox.process, sandbox.cgroup
        started = time.perf_counter()
        active = _Active(process, cgroup=cgroup)
        self._active[request.run_id] = active
        on_started()
        timeout = request.limits.timeout.ToMilliseconds() / 1000 or 30.0
        if sandbox.native:
            query, answer_of = native_sql.query_script(request.sql, max_rows(request)), native_sql.complete_answer
        else:
            query, answer_of = query_frame(request.run_id, request.sql, request.python_code), complete_frame
        try:
            exchange = await _exchange(process, cgroup, query, timeout, answer_of)
        except BaseException:  # cancelled (the caller went away): the sandbox must not outlive the run
            _kill(process, cgroup)
            self._after(loop, _reap, process, cgroup)
            raise
        finally:
            self._active.pop(request.run_id, None)
            self._quiet.touch()
        wall = time.perf_counter() - started
        if exchange.answer is not None:
            # The whole answer is here: the sandbox exits by itself, and its tear-down (namespaces,
            # cgroup) happens off the answer's path.
            outcome = _interpret(request, 0, exchange.answer, exchange.stderr, wall, False, active, False,
                                 sandbox.native)
            self._after(loop, _reap, process, cgroup)
        else:
            try:
                code = await loop.run_in_executor(None, _wait, process, cgroup)
                # Before the cgroup goes: its counters tell an out-of-memory kill from a crash.
                outcome = _interpret(request, code, exchange.stdout, exchange.stderr, wall, exchange.timed_out,
                                     active, exchange.overflow, sandbox.native)
            finally:
                if cgroup:
                    self._after(loop, cgroup.remove)
        if key:
            self._pool.want(key, warm_template(request))
            if self._janitor is None:
                self._janitor = asyncio.create_task(self._sweep())
        return outcome

    def _after(self, loop: asyncio.AbstractEventLoop, work: Callable[..., object], *args: object) -> None:
        """Run blocking clean-up in a thread, off the answer's path; close() waits for it."""
        self._cleanups.add(cleanup := asyncio.ensure_future(loop.run_in_executor(None, work, *args)))
        cleanup.add_done_callback(self._cleanups.discard)

    def running(self) -> list[str]:
        """Run ids whose sandbox is executing right now (warm sandboxes waiting for work are not)."""
        return list(self._active)

    def live_sandboxes(self) -> list[int]:
        """Pids of this executor's sandboxes still alive, or whose cgroup still holds a process."""
        live = []
        for sandbox in self._spawned:
            cgroup_busy = False
            if sandbox.cgroup is not None:
                with contextlib.suppress(OSError):
                    cgroup_busy = bool((sandbox.cgroup.pids / "cgroup.procs").read_text().split())
            if sandbox.process.poll() is None or cgroup_busy:
                live.append(sandbox.process.pid)
        return live

    async def replenish(self) -> None:
        """Refill warm sandboxes; the runner service calls it after an answer is sent."""
        await self._pool.refill()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.pool_settings.idle_seconds / 2))
            await self._pool.refill()

    async def cancel(self, run_id: str) -> bool:
        """Kill the sandbox of run_id if it is running."""
        active = self._active.get(run_id)
        if active is None:
            return False
        active.cancelled = True
        _kill(active.process, active.cgroup)
        return True

    async def close(self) -> None:
        """Kill all running and warm sandboxes and stop the spawner thread."""
        if self._janitor is not None:
            self._janitor.cancel()
        for active in list(self._active.values()):
            _kill(active.process, active.cgroup)
        await self._pool.close()
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        self._spawner.shutdown(wait=False)
        self._refiller.shutdown(wait=False)


def _spawn(argv: list[str], seccomp_fd: int | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env={"PATH": "/usr/bin:/bin"}, close_fds=True,
                            pass_fds=(seccomp_fd,) if seccomp_fd is not None else ())


KILL_GRACE = 5.0  # how long a killed sandbox may take to close its pipes and exit
# How long an answered sandbox may take to exit by itself (closing DuckDB takes milliseconds)
# before it is killed: it no longer holds an admission slot, so it must not linger.
ANSWERED_GRACE = 1.0


@dataclass
class _Exchange:
    """What a sandbox answered: the result frame's payload, or else everything it wrote."""

    answer: bytes | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    overflow: bool = False  # stdout or stderr passed MAX_STDOUT_BYTES: the sandbox was killed


async def _exchange(process: subprocess.Popen[bytes], cgroup: RunCgroup | None, query: bytes,
                    timeout: float, answer_of: Callable[[bytearray], bytes | None] = complete_frame) -> _Exchange:
    """Write the query, then read until answer_of finds the whole answer on stdout (the result
    frame, or the native CLI's last marker), or the sandbox closes its output, or the time limit
    passes (then kill and read what is left).

    The pipes are watched by the event loop itself: no thread hand-off on the answer's path.
    """
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    loop = asyncio.get_running_loop()
    stdin, stdout_fd, stderr_fd = process.stdin, process.stdout.fileno(), process.stderr.fileno()
    output = {stdout_fd: bytearray(), stderr_fd: bytearray()}
    reading = {stdout_fd, stderr_fd}
    finished: asyncio.Future[bytes | None] = loop.create_future()
    pending = memoryview(query)
    timed_out = overflow = False

    def readable(fd: int) -> None:
        nonlocal overflow
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            loop.remove_reader(fd)
            reading.discard(fd)
            if not reading and not finished.done():
                finished.set_result(None)
            return
        if len(output[fd]) + len(chunk) > MAX_STDOUT_BYTES:  # stdout and stderr alike
            if not overflow:
                overflow = True
                _kill(process, cgroup)  # then read on to the end, keeping nothing more
            return
        output[fd] += chunk
        if fd == stdout_fd and not timed_out and not finished.done():
            answer = answer_of(output[stdout_fd])
            if answer is not None:
                finished.set_result(answer)

    def writable() -> None:
        nonlocal pending
        try:
            pending = pending[os.write(stdin.fileno(), pending[:1 << 16]):]
        except BlockingIOError:
            return
        except OSError:
            pending = pending[:0]  # the sandbox stopped reading: its output says why
        if not pending:
            loop.remove_writer(stdin.fileno())
            stdin.close()

    for fd in reading:
        os.set_blocking(fd, False)
        loop.add_reader(fd, readable, fd)
    os.set_blocking(stdin.fileno(), False)
    loop.add_writer(stdin.fileno(), writable)
    answer = None
    try:
        try:
            answer = await asyncio.wait_for(asyncio.shield(finished), timeout)
        except TimeoutError:
            timed_out = True
            _kill(process, cgroup)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(finished), KILL_GRACE)
    finally:
        for fd in reading:
            loop.remove_reader(fd)
        if not stdin.closed:
            loop.remove_writer(stdin.fileno())
            stdin.close()
    if answer is not None:
        # The runner flushes stderr before it writes the answer: what it wrote is readable now.
        output[stderr_fd] += _read_available(stderr_fd)
    return _Exchange(answer, bytes(output[stdout_fd]), bytes(output[stderr_fd]), timed_out, overflow)


def _read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 1 << 16):
            data += chunk
    return data


def _wait(process: subprocess.Popen[bytes], cgroup: RunCgroup | None, grace: float = KILL_GRACE) -> int | None:
    """Blocking: the exit code of a sandbox whose output has ended (killed if it lingers)."""
    try:
        return process.wait(grace)
    except subprocess.TimeoutExpired:
        _kill(process, cgroup)
        return process.wait()
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _reap(process: subprocess.Popen[bytes], cgroup: RunCgroup | None) -> None:
    """Blocking: let an answered sandbox exit (killed after ANSWERED_GRACE), then remove its cgroup."""
    _wait(process, cgroup, ANSWERED_GRACE)
    if cgroup and not cgroup.remove():
        log.warning("run cgroup %s still busy after its grace period; the next start reaps it", cgroup.memory.name)


def _kill(process: subprocess.Popen[bytes], cgroup: RunCgroup | None) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if cgroup:
        cgroup.kill_all()


MAX_CAPTURE = 64 * 1024



def max_rows(request: SandboxRequest) -> int:
    """The run's row cap (the Python runner's default when none is set)."""
    return request.limits.max_rows or 200


def _interpret(request: SandboxRequest, code: int | None, stdout: bytes, stderr: bytes, wall: float,
               timed_out: bool, active: _Active, overflow: bool, native: bool = False) -> SandboxOutcome:
    cap = request.limits.max_output_bytes or MAX_CAPTURE
    err_text = capped_text(stderr, cap)
    outcome = SandboxOutcome(sandbox_pb2.SandboxResult(), "", err_text, wall, code)
    limit_s = request.limits.timeout.ToMilliseconds() / 1000
    if active.cancelled:
        outcome.result.error.CopyFrom(runner_error(run_pb2.ERROR_CODE_CANCELLED, 1, "the run was cancelled"))
    elif timed_out or code == -signal.SIGXCPU:
        outcome.result.error.CopyFrom(runner_error(
            run_pb2.ERROR_CODE_RUNNER_TIMEOUT, 4, f"the run exceeded the {limit_s:g} s limit set by run_timeout; "
            "the sandbox was killed"))
    elif overflow:
        outcome.result.error.CopyFrom(too_much_output())
    elif native and (answer := native_sql.translate(stdout, stderr, max_rows(request))) is not None:
        outcome.result = answer
        answer.query_seconds = wall  # the CLI reports no timings: the query's round trip
        if answer.HasField("error"):
            outcome.stderr = ""  # the CLI's error message is the run's error, not a diagnostic
    elif code == 0 and not native:
        try:
            outcome.result = sandbox_pb2.SandboxResult.FromString(stdout)
        except Exception:  # noqa: BLE001 - any undecodable output is a runner fault
            outcome.stdout = capped_text(stdout, cap)
            outcome.result.error.CopyFrom(runner_error(run_pb2.ERROR_CODE_RUNNER_INTERNAL_ERROR, 13,
                                                       "the runner wrote an unreadable result"))
    elif (active.cgroup and active.cgroup.hit_memory_limit()) or looks_out_of_memory(stderr):
        outcome.result.error.CopyFrom(runner_error(
            run_pb2.ERROR_CODE_RUNNER_RESOURCE_EXCEEDED, 8,
            f"the run exceeded the {request.limits.memory_bytes // (1 << 20)} MB memory limit set by run_memory"))
    else:
        outcome.stdout = capped_text(stdout, cap)
        outcome.result.error.CopyFrom(sandbox_failed(request.run_id, code, err_text))
    return outcome


