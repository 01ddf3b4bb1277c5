"""The unprivileged host user every bubblewrap sandbox runs as when the service runs as root.

Inside a user namespace created by root, the sandbox's uid maps to host root: capabilities are
gone but file permissions are root's. So when the service is root, the sandbox is set up by a
privileged bubblewrap (no user namespace) and the runner is started as a dedicated system user
(created here when missing), whose host uid decides what it can read: the mounted dataset files
(world-readable, or group-readable by this user's group), never a root-only file.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_SANDBOX_USER = "csv-analyst-sandbox"


class SandboxUserError(RuntimeError):
    """The sandbox user does not exist and cannot be created."""


@dataclass(frozen=True)
class SandboxUser:
    """A host user and group the sandboxed runner runs as."""

    name: str
    uid: int
    gid: int

    def setpriv_argv(self) -> list[str]:
        """The `setpriv` prefix that drops to this user for good (no groups, no capabilities)."""
        return ["/usr/bin/setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def ensure_sandbox_user(name: str = DEFAULT_SANDBOX_USER) -> SandboxUser:
    """Return the sandbox user, creating it as a system user without a home or shell when missing.

    Raises:
        SandboxUserError: When it is missing and this process cannot create it, or when the
            user is root.
    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        if os.geteuid() != 0 or not os.path.exists(useradd):
            raise SandboxUserError(f"the sandbox user {name!r} does not exist; create it with "
                                   f"`useradd --system --user-group --no-create-home --shell /usr/sbin/nologin {name}`") from None
        result = subprocess.run([useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                                 "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True, check=False)
        if result.returncode not in (0, 9):  # 9: created meanwhile by another process
            raise SandboxUserError(f"could not create the sandbox user {name!r}: {result.stderr.strip()}")
        log.info("created the sandbox user %s", name)
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise SandboxUserError(f"the sandbox user {name!r} must not be root")
    return SandboxUser(name, entry.pw_uid, entry.pw_gid)


def default_sandbox_user() -> SandboxUser | None:
    """The sandbox user when this process is root (created when missing), else None."""
    return ensure_sandbox_user() if os.geteuid() == 0 else None
