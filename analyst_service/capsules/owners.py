"""Who runs a run: the owning process of an in-flight record, and whether it is still there.

Several processes may share one capsule store (`serve` and a CLI `ask`, say). Start-up recovery
must record as failed only the runs whose owner died, never another live process's runs. An
owner is the host, the boot, the process id and the process's start time (a pid alone is reused
after the process exits; the start time in clock ticks since boot tells the two apart).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """Field 22 of /proc/PID/stat (start time since boot), or "" when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else ""


@dataclass(frozen=True)
class Owner:
    """The process that runs an in-flight run."""

    host: str
    boot_id: str
    pid: int
    start_ticks: str

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        return cls(socket.gethostname(), _boot_id(), os.getpid(), _start_ticks(os.getpid()))

    def token(self) -> str:
        """The text stored with an in-flight record."""
        return f"{self.host}|{self.boot_id}|{self.pid}|{self.start_ticks}"

    @classmethod
    def parse(cls, token: str) -> Owner | None:
        """The owner of a stored token, or None for a record without one (an older version)."""
        parts = token.split("|")
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    def is_gone(self) -> bool:
        """Whether this owner certainly no longer runs: same host, and another boot, or no
        process with its pid and start time. A process on another host is presumed alive."""
        here = Owner.current()
        if self.host != here.host:
            return False
        if self.boot_id != here.boot_id:
            return True
        return _start_ticks(self.pid) != self.start_ticks


def owner_is_gone(token: str) -> bool:
    """Whether the owner stored as token is gone (a record without an owner counts as gone)."""
    owner = Owner.parse(token)
    return owner is None or owner.is_gone()
