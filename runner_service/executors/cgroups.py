"""Per-run cgroup v1 limits (memory and pids), used when /sys/fs/cgroup is writable.

RLIMIT_NPROC does not cap processes inside bubblewrap's user namespace and DuckDB cannot see a
cgroup memory limit, so the OS caps come from cgroups when available and RLIMIT_AS otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP = "csv-analyst"
# How long remove() waits for a run's killed processes to leave its cgroups.
REMOVE_GRACE_SECONDS = 30.0


def _start_ticks(pid: int) -> str:
    """Field 22 of /proc/PID/stat (the process's start time since boot), or "" when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2:].split()  # the command name (field 2) may hold spaces
    return fields[19] if len(fields) > 19 else ""


def _pid_namespace() -> str:
    """This process's pid namespace (its inode): pids are only comparable within one."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


# A run cgroup's name says which process made it: o<pid>-<start ticks>-<pid namespace>-<random>.
# A pid alone is reused after the process exits; with its start time it names one process for
# the whole boot, and the namespace says whether this process can see that pid at all.
_OWNED_NAME = re.compile(r"^o(?P<pid>[0-9]+)-(?P<ticks>[0-9]+)-(?P<namespace>[0-9]+)-[0-9a-f]+$")


def owned_cgroup_name() -> str:
    """A fresh run cgroup name owned by this process."""
    return f"o{os.getpid()}-{_start_ticks(os.getpid())}-{_pid_namespace()}-{uuid.uuid4().hex[:16]}"


def _owner_is_gone(name: str) -> bool | None:
    """Whether the process that made the cgroup `name` is gone; None when this process cannot
    tell (a name without an owner, or an owner in another pid namespace)."""
    match = _OWNED_NAME.match(name)
    if match is None or match["namespace"] != _pid_namespace():
        return None
    return _start_ticks(int(match["pid"])) != match["ticks"]


class RunCgroup:
    """A memory + pids cgroup pair for one run."""

    def __init__(self, run_id: str, memory_bytes: int, max_processes: int) -> None:
        self.memory = CGROUP_ROOT / "memory" / GROUP / run_id
        self.pids = CGROUP_ROOT / "pids" / GROUP / run_id
        self.memory_bytes = memory_bytes
        self.max_processes = max_processes

    @staticmethod
    def available() -> bool:
        """Whether cgroup v1 memory and pids controllers are writable here."""
        return all(os.access(CGROUP_ROOT / c, os.W_OK) and (CGROUP_ROOT / c / "tasks").exists()
                   for c in ("memory", "pids"))

    def create(self) -> list[Path]:
        """Create both cgroups with their limits; return the cgroup.procs files to join."""
        self.memory.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        (self.memory / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
        swap = self.memory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            with contextlib.suppress(OSError):
                swap.write_text(str(self.memory_bytes))
        (self.pids / "pids.max").write_text(str(self.max_processes))
        return [self.memory / "cgroup.procs", self.pids / "cgroup.procs"]

    def hit_memory_limit(self) -> bool:
        """Whether the OOM killer or the limit fired for this run."""
        with contextlib.suppress(OSError, ValueError):
            if int((self.memory / "memory.failcnt").read_text()) > 0:
                return True
            return "oom_kill 1" in (self.memory / "memory.oom_control").read_text()
        return False

    def kill_all(self) -> None:
        """SIGKILL every process still in the run's cgroups."""
        for group in (self.pids, self.memory):
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)

    def remove(self, grace_seconds: float = REMOVE_GRACE_SECONDS) -> bool:
        """Kill leftovers and remove both cgroups, waiting for exiting processes.

        A killed process leaves its cgroup only once the kernel has torn it down (freeing a
        large DuckDB heap on a loaded machine can take seconds), so this waits by the clock,
        not by a count of tries. Callers run it off the answer's path.

        Returns:
            Whether both cgroups are gone.
        """
        deadline = time.monotonic() + grace_seconds
        pause = 0.01
        while True:
            self.kill_all()
            for group in (self.memory, self.pids):
                with contextlib.suppress(FileNotFoundError):
                    try:
                        group.rmdir()
                    except OSError:
                        pass  # still busy: a process is exiting
            if not self.memory.exists() and not self.pids.exists():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


# A cgroup without an owner in its name (an older version's) and younger than this may belong to
# a sandbox another service is starting right now: it is created empty and joined a moment later.
REAP_MIN_AGE_SECONDS = 120.0


def reap_stale_cgroups(min_age_seconds: float = REAP_MIN_AGE_SECONDS) -> int:
    """Remove the run cgroups a crashed or killed service left behind.

    A cgroup whose owning process (named in it, see owned_cgroup_name) is gone is emptied (any
    process still in it is killed: a sandbox of a dead service answers no one) and removed,
    whatever its age. The cgroups of live processes, this one's and another service's on the same
    machine, are never touched. A cgroup without an owner in its name is removed only when empty
    and older than min_age_seconds, and so is one whose owner ran in another pid namespace (its pid
    means nothing here).

    Returns:
        How many cgroups were removed.
    """
    removed = 0
    now = time.time()
    for controller in ("memory", "pids"):
        parent = CGROUP_ROOT / controller / GROUP
        if not parent.is_dir():
            continue
        for group in parent.iterdir():
            with contextlib.suppress(OSError):
                if not group.is_dir():
                    continue
                gone = _owner_is_gone(group.name)
                if gone is None and now - group.stat().st_ctime < min_age_seconds:
                    continue
                if gone is False:
                    continue
                if gone:
                    _empty(group)
                group.rmdir()
                removed += 1
    return removed


def _empty(group: Path, attempts: int = 50) -> None:
    """SIGKILL every process in one cgroup and wait briefly until it has none."""
    for _ in range(attempts):
        pids = (group / "cgroup.procs").read_text().split()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.02)
