"""Reaping leftover run cgroups: a dead service's cgroups go at once (whatever their age, with any
process still in them), a live service's never do, and a cgroup without an owner in its name is
spared while young (another service may be about to join it: removing it made that sandbox fail)."""

from __future__ import annotations

import os
import subprocess
import uuid

from runner_service.executors.cgroups import RunCgroup, owned_cgroup_name, reap_stale_cgroups
from tests.conftest import require


def _require_cgroups() -> None:
    require(RunCgroup.available(), "cgroup v1 memory and pids controllers are not writable here (needs root)")


def test_a_fresh_empty_cgroup_without_owner_survives_reaping_and_an_old_one_does_not() -> None:
    _require_cgroups()
    cgroup = RunCgroup(f"s{uuid.uuid4().hex[:20]}", 64 << 20, 8)
    cgroup.create()
    try:
        reap_stale_cgroups()
        assert cgroup.memory.is_dir() and cgroup.pids.is_dir(), "a cgroup being joined was reaped"
        reap_stale_cgroups(min_age_seconds=0)
        assert not cgroup.memory.exists() and not cgroup.pids.exists()
    finally:
        cgroup.remove()


def test_a_live_processs_cgroup_is_never_reaped() -> None:
    _require_cgroups()
    cgroup = RunCgroup(owned_cgroup_name(), 64 << 20, 8)  # owned by this (live) process
    cgroup.create()
    try:
        reap_stale_cgroups(min_age_seconds=0)
        assert cgroup.memory.is_dir() and cgroup.pids.is_dir(), "a live service's cgroup was reaped"
    finally:
        cgroup.remove()


def test_a_dead_processs_cgroup_is_emptied_and_removed_at_once() -> None:
    _require_cgroups()
    # A cgroup named for a process that does not exist (a pid above any pid_max) in this pid namespace.
    name = f"o999999999-12345-{os.stat('/proc/self/ns/pid').st_ino}-{uuid.uuid4().hex[:16]}"
    cgroup = RunCgroup(name, 64 << 20, 8)
    procs = cgroup.create()
    # A leftover process in it, like a sandbox that outlived its killed service.
    leftover = subprocess.Popen(["/bin/sh", "-c", f"echo $$ > {procs[0]}; echo $$ > {procs[1]}; exec sleep 300"])
    try:
        while not (cgroup.pids / "cgroup.procs").read_text().split():
            if leftover.poll() is not None:
                raise AssertionError("the leftover process did not start")
        assert reap_stale_cgroups() >= 2  # young, yet its owner is gone
        assert not cgroup.memory.exists() and not cgroup.pids.exists()
        assert leftover.wait(30) != 0, "the leftover sandbox process was not killed"
    finally:
        leftover.kill()
        leftover.wait()
        cgroup.remove()


def test_an_owner_in_another_pid_namespace_is_not_judged_by_its_pid_here() -> None:
    _require_cgroups()
    # Its pid means nothing in this namespace: young, it is kept like a cgroup without an owner.
    cgroup = RunCgroup(f"o999999999-12345-1-{uuid.uuid4().hex[:16]}", 64 << 20, 8)
    cgroup.create()
    try:
        reap_stale_cgroups()
        assert cgroup.memory.is_dir() and cgroup.pids.is_dir(), "another namespace's cgroup was reaped"
    finally:
        cgroup.remove()


def test_removal_waits_for_processes_that_take_longer_than_a_second_to_leave(tmp_path, monkeypatch) -> None:
    """A killed sandbox on a loaded machine can take seconds to leave its cgroup; removal must not
    give up after a fixed number of quick tries and leak the cgroup."""
    import threading

    from runner_service.executors import cgroups

    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    cgroup = RunCgroup("slow-exit", 64 << 20, 8)
    for group in (cgroup.memory, cgroup.pids):
        group.mkdir(parents=True)
    # Stands in for a process still exiting: rmdir fails until it is gone.
    exiting = cgroup.memory / "still-exiting"
    exiting.write_text("")
    threading.Timer(1.5, exiting.unlink).start()
    assert cgroup.remove(), "the cgroup was left behind"
    assert not cgroup.memory.exists() and not cgroup.pids.exists()
