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
