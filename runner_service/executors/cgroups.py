"""Per-run cgroup v1 limits (memory and pids), used when /sys/fs/cgroup is writable.

RLIMIT_NPROC does not cap processes inside bubblewrap's user namespace and DuckDB cannot see a
cgroup memory limit, so the OS caps come from cgroups when available and RLIMIT_AS otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP = "csv-analyst"
# How long remove() waits for a run's killed processes to leave its cgroups.
REMOVE_GRACE_SECONDS = 30.0


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


# A cgroup younger than this may belong to a sandbox another service is starting right now:
# it is created empty and joined a moment later, so it is left alone.
REAP_MIN_AGE_SECONDS = 120.0


def reap_stale_cgroups(min_age_seconds: float = REAP_MIN_AGE_SECONDS) -> int:
    """Remove empty run cgroups left by a crashed or killed service.

    Only empty cgroups are removed (rmdir refuses the others), so the live runs of another
    service on the same machine are never touched; their sandboxes die with their parent anyway.
    Cgroups younger than min_age_seconds are kept: another service may have just created one for
    a sandbox that has not joined it yet (removing it made that sandbox fail to start).

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
                if not group.is_dir() or now - group.stat().st_ctime < min_age_seconds:
                    continue
                group.rmdir()
                removed += 1
    return removed
