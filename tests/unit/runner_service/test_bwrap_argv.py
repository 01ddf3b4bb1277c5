"""The pure parts of the bubblewrap executor: build_bwrap_argv and limit_script."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2
from runner_service.executors.base import SandboxRequest, TableFile
from runner_service.executors.bwrap import (
    DATA_DIR,
    MIN_ADDRESS_SPACE,
    SANDBOX_UID,
    BwrapRuntime,
    build_bwrap_argv,
    limit_script,
    sandbox_table_paths,
)
from runner_service.executors.sandbox_user import SandboxUser

RUNTIME = BwrapRuntime(
    bwrap="/usr/bin/bwrap", python="/opt/py/bin/python3.11", python_prefix="/opt/py", venv="/work/app/.venv",
    site_packages=("/work/app/.venv/lib/python3.11/site-packages",), runner_dir="/work/app/runner",
    proto_dir="/work/app/protos/gen/csv_analyst",
)


def make_request(tables: tuple[TableFile, ...] = (), memory_bytes: int = 256 << 20, timeout_s: int = 10
                 ) -> SandboxRequest:
    return SandboxRequest(
        run_id="run-1", sql="SELECT 1", tables=tables,
        limits=run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=timeout_s), memory_bytes=memory_bytes,
                                      max_rows=10, threads=1, max_processes=32),
    )


TABLES = (TableFile("orders", "/srv/datasets/ecommerce/orders.csv"),
          TableFile("order_items", "/srv/data sets/it's here/order_items.csv"),
          TableFile("inventory", "/srv/datasets/ecommerce/inventory.csv"))


def pairs(argv: list[str], flag: str, width: int = 1) -> list[tuple[str, ...]]:
    """Arguments following each occurrence of flag."""
    return [tuple(argv[i + 1:i + 1 + width]) for i, a in enumerate(argv) if a == flag]


def bwrap_options(argv: list[str]) -> list[str]:
    return argv[:argv.index("--")]


def test_isolation_flags() -> None:
    argv = build_bwrap_argv(RUNTIME, make_request(TABLES))
    assert argv[0] == "/usr/bin/bwrap"
    options = bwrap_options(argv)
    for flag in ("--unshare-all", "--die-with-parent", "--clearenv", "--new-session"):
        assert options.count(flag) == 1, flag
    assert pairs(options, "--uid") == [(str(SANDBOX_UID),)] == [("65534",)]
    assert pairs(options, "--gid") == [("65534",)]
    # Nothing re-shares the network or hands in a writable host path or a device.
    for forbidden in ("--share-net", "--bind", "--bind-try", "--dev-bind", "--dev-bind-try", "--cap-add",
                      "--unshare-user-try"):
        assert forbidden not in options, forbidden


def test_as_root_the_runner_drops_to_the_sandbox_user_without_a_user_namespace() -> None:
    user = SandboxUser("csv-analyst-sandbox", 999, 995)
    argv = build_bwrap_argv(RUNTIME, make_request(TABLES), user=user)
    options = bwrap_options(argv)
    # A user namespace made by root maps the sandbox to host root: none is made, every other one is.
    assert "--unshare-all" not in options and "--unshare-user" not in options and "--uid" not in options
    for flag in ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                 "--die-with-parent", "--clearenv", "--new-session"):
        assert options.count(flag) == 1, flag
    # Only what setpriv needs to drop privileges, and setpriv drops everything before the runner.
    assert pairs(options, "--cap-add") == [("CAP_SETUID",), ("CAP_SETGID",)]
    command = argv[argv.index("--") + 1:]
    assert command[:8] == ["/usr/bin/setpriv", "--reuid=999", "--regid=995", "--clear-groups", "--inh-caps=-all",
                           "--bounding-set=-all", "--no-new-privs", "--"]
    assert command[8:] == [RUNTIME.python, "-S", "-B", "-m", "runner"]
    # Bind destinations' parents are made traversable (bwrap makes them 0700 when privileged).
    dirs = pairs(options, "--dir")
    assert ("/data",) in dirs and ("/app",) in dirs
    assert all(options[i - 2:i] == ["--perms", "0755"] for i, a in enumerate(options) if a == "--dir")
    first_bind = options.index("--ro-bind")
    assert all(i < first_bind for i, a in enumerate(options) if a == "--dir")


def test_tables_are_read_only_binds_at_index_paths() -> None:
    argv = build_bwrap_argv(RUNTIME, make_request(TABLES))
    binds = pairs(bwrap_options(argv), "--ro-bind", 2)
    table_binds = [b for b in binds if b[1].startswith(DATA_DIR + "/")]
    assert table_binds == [
        ("/srv/datasets/ecommerce/orders.csv", "/data/t0.csv"),
        ("/srv/data sets/it's here/order_items.csv", "/data/t1.csv"),  # one argv element, no shell quoting
        ("/srv/datasets/ecommerce/inventory.csv", "/data/t2.csv"),
    ]
    assert sandbox_table_paths(make_request(TABLES)) == ["/data/t0.csv", "/data/t1.csv", "/data/t2.csv"]
    # Table names never reach the command line (paths are index-based).
    assert not any("order_items" == a or a.endswith("/orders") for a in argv)


def test_runtime_binds_are_read_only_and_root_is_remounted_ro() -> None:
    argv = build_bwrap_argv(RUNTIME, make_request(TABLES))
    options = bwrap_options(argv)
    binds = dict((dst, src) for src, dst in pairs(options, "--ro-bind", 2))
    assert binds["/usr"] == "/usr"
    assert binds["/opt/py"] == "/opt/py"
    assert binds["/work/app/.venv"] == "/work/app/.venv"
    assert binds["/app/runner"] == "/work/app/runner"
    assert binds["/app/csv_analyst"] == "/work/app/protos/gen/csv_analyst"
    assert pairs(options, "--remount-ro") == [("/",)]
    assert pairs(options, "--proc") == [("/proc",)]
    assert pairs(options, "--dev") == [("/dev",)]
    # Nothing from the host's /etc, /home, /root or the repository root is visible.
    visible = set(binds)
    assert not any(p == "/etc" or p.startswith(("/etc/", "/home", "/root")) for p in visible)
    assert "/work/app" not in visible


@pytest.mark.parametrize(("memory_bytes", "tmp_bytes"), [(256 << 20, 256 << 20), (1 << 20, 64 << 20), (0, 64 << 20)])
def test_private_tmp_is_size_capped(memory_bytes: int, tmp_bytes: int) -> None:
    options = bwrap_options(build_bwrap_argv(RUNTIME, make_request(memory_bytes=memory_bytes)))
    index = options.index("--tmpfs")
    assert options[index + 1] == "/tmp"
    assert options[index - 2:index] == ["--size", str(tmp_bytes)]  # --size applies to the next mount


def test_environment_is_explicit() -> None:
    options = bwrap_options(build_bwrap_argv(RUNTIME, make_request()))
    env = {name: value for name, value in pairs(options, "--setenv", 2)}
    assert env == {"PYTHONPATH": "/app:/work/app/.venv/lib/python3.11/site-packages", "HOME": "/tmp",
                   "LANG": "C.UTF-8", "TZ": "UTC"}
    assert options.index("--clearenv") < min(i for i, a in enumerate(options) if a == "--setenv")
    assert pairs(options, "--chdir") == [("/tmp",)]
    assert pairs(options, "--hostname") == [("sandbox",)]


def test_command_is_the_isolated_runner() -> None:
    argv = build_bwrap_argv(RUNTIME, make_request(TABLES))
    assert argv[argv.index("--"):] == ["--", "/opt/py/bin/python3.11", "-S", "-B", "-m", "runner"]


def test_venv_equal_to_prefix_is_bound_once() -> None:
    runtime = BwrapRuntime(**{**RUNTIME.__dict__, "venv": "/opt/py"})
    options = bwrap_options(build_bwrap_argv(runtime, make_request()))
    assert [b for b in pairs(options, "--ro-bind", 2) if b[0] == "/opt/py"] == [("/opt/py", "/opt/py")]


def test_argv_is_pure() -> None:
    request = make_request(TABLES)
    assert build_bwrap_argv(RUNTIME, request) == build_bwrap_argv(RUNTIME, request)
    assert all(isinstance(a, str) for a in build_bwrap_argv(RUNTIME, request))


# --- limit_script -------------------------------------------------------------------------------

def test_limit_script_sets_rlimits_and_execs() -> None:
    script = limit_script(make_request(memory_bytes=512 << 20, timeout_s=7), [])
    parts = script.split("; ")
    assert f"ulimit -v {(512 << 20) * 4 // 1024}" in parts
    assert "ulimit -t 9" in parts  # CPU seconds = wall limit + 2
    assert "ulimit -c 0" in parts
    assert "ulimit -f 1048576" in parts
    assert parts[-1] == 'exec "$@"'
    assert "cgroup" not in script


def test_limit_script_address_space_floor() -> None:
    script = limit_script(make_request(memory_bytes=16 << 20), [])
    assert f"ulimit -v {MIN_ADDRESS_SPACE // 1024}" in script.split("; ")


def test_limit_script_joins_cgroups_first_with_quoting() -> None:
    procs = [Path("/sys/fs/cgroup/memory/csv-analyst/run 1/cgroup.procs"),
             Path("/sys/fs/cgroup/pids/csv-analyst/run'1/cgroup.procs")]
    parts = limit_script(make_request(), procs).split("; ")
    assert parts[0] == f"echo $$ > {shlex.quote(str(procs[0]))} || exit 97"
    assert parts[1] == f"echo $$ > {shlex.quote(str(procs[1]))} || exit 97"
    assert parts[2].startswith("ulimit ")


def test_limit_script_really_applies_limits(tmp_path: Path) -> None:
    """Run the prologue with sh and read the limits back from the exec'd command."""
    procs = tmp_path / "cgroup.procs"
    script = limit_script(make_request(memory_bytes=512 << 20, timeout_s=3), [procs])
    completed = subprocess.run(["/bin/sh", "-c", script, "sandbox-limits", "/bin/sh", "-c",
                                "ulimit -v; ulimit -t; ulimit -c; echo $$"],
                               capture_output=True, text=True, timeout=30, check=True)
    vmem, cpu, core, pid = completed.stdout.split()
    # Joined a cgroup (exact memory cap), so the address-space cap is doubled.
    assert (int(vmem), int(cpu), int(core)) == ((512 << 20) * 4 * 2 // 1024, 5, 0)
    assert procs.read_text().strip() == pid  # exec keeps the pid that joined the cgroup


def test_limit_script_fails_closed_when_a_cgroup_cannot_be_joined(tmp_path: Path) -> None:
    script = limit_script(make_request(), [tmp_path / "missing" / "cgroup.procs"])
    completed = subprocess.run(["/bin/sh", "-c", script, "sandbox-limits", "/bin/echo", "RAN"],
                               capture_output=True, text=True, timeout=30, check=False)
    assert completed.returncode == 97
    assert "RAN" not in completed.stdout


def test_seccomp_fd_is_passed_before_the_command() -> None:
    assert "--seccomp" not in build_bwrap_argv(RUNTIME, make_request())
    argv = build_bwrap_argv(RUNTIME, make_request(TABLES), seccomp_fd=7)
    options = bwrap_options(argv)
    assert pairs(options, "--seccomp") == [("7",)]
    assert argv[argv.index("--"):] == ["--", "/opt/py/bin/python3.11", "-S", "-B", "-m", "runner"]
