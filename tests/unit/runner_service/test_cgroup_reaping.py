"""Reaping leftover run cgroups never removes one another service has just created for a sandbox
that is about to join it (that made sandboxes of a concurrent service fail to start)."""

from __future__ import annotations

import uuid

from runner_service.executors.cgroups import RunCgroup, reap_stale_cgroups
from tests.conftest import require


def test_a_fresh_empty_cgroup_survives_reaping_and_an_old_one_does_not() -> None:
    require(RunCgroup.available(), "cgroup v1 memory and pids controllers are not writable here (needs root)")
    cgroup = RunCgroup(f"s{uuid.uuid4().hex[:20]}", 64 << 20, 8)
    cgroup.create()
    try:
        reap_stale_cgroups()
        assert cgroup.memory.is_dir() and cgroup.pids.is_dir(), "a cgroup being joined was reaped"
        reap_stale_cgroups(min_age_seconds=0)
        assert not cgroup.memory.exists() and not cgroup.pids.exists()
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
