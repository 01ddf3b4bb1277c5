"""Admission: a bounded queue in front of a fixed number of sandbox slots; effective limits."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import duration_pb2

from csv_analyst.v1 import run_pb2
from runner_service.admission import Admission, QueueFullError, derived_concurrency
from runner_service.config import RunnerSettings
from runner_service.servicer import effective_limits


def test_queue_full_raises() -> None:
    admission = Admission(concurrency=1, max_queue=2)
    assert admission.admit() == 0
    assert admission.admit() == 1
    assert admission.waiting == 2
    with pytest.raises(QueueFullError) as info:
        admission.admit()
    assert info.value.max_queue == 2
    assert "max_queue" in str(info.value) and "retry" in str(info.value)
    assert admission.waiting == 2  # a refused run takes no place


def test_zero_queue_refuses_everything() -> None:
    with pytest.raises(QueueFullError):
        Admission(concurrency=4, max_queue=0).admit()


def test_slots_bound_concurrency_and_free_queue_places() -> None:
    async def scenario() -> tuple[int, list[str]]:
        admission = Admission(concurrency=2, max_queue=3)
        running = 0
        peak = 0
        log: list[str] = []
        release = asyncio.Event()

        async def run(name: str) -> None:
            nonlocal running, peak
            async with admission.slot():
                running += 1
                peak = max(peak, running)
                log.append(f"start {name}")
                await release.wait()
                running -= 1

        tasks = []
        for name in "abc":
            admission.admit()
            tasks.append(asyncio.create_task(run(name)))
        await asyncio.sleep(0.05)
        # Two hold slots, one waits: its queue place is still taken.
        assert admission.waiting == 1
        assert log == ["start a", "start b"]
        admission.admit()
        admission.admit()
        with pytest.raises(QueueFullError):
            admission.admit()
        for name in "de":
            tasks.append(asyncio.create_task(run(name)))
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert admission.waiting == 0
        admission.admit()  # places are free again
        return peak, log

    peak, log = asyncio.run(scenario())
    assert peak == 2
    assert sorted(log) == ["start a", "start b", "start c", "start d", "start e"]


def test_cancelled_waiter_gives_back_its_queue_place() -> None:
    async def scenario() -> int:
        admission = Admission(concurrency=1, max_queue=1)
        admission.admit()
        holder = asyncio.Event()

        async def hold() -> None:
            async with admission.slot():
                await holder.wait()

        first = asyncio.create_task(hold())
        await asyncio.sleep(0.01)
        admission.admit()

        async def wait() -> None:
            async with admission.slot():
                pass

        waiter = asyncio.create_task(wait())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        holder.set()
        await first
        return admission.waiting

    assert asyncio.run(scenario()) == 0


SETTINGS = RunnerSettings(default_timeout_seconds=30.0, max_timeout_seconds=60.0, default_memory_bytes=512 << 20,
                          max_memory_bytes=1 << 30, default_max_rows=1000, max_rows_cap=5000, threads=2,
                          max_processes=48, max_output_bytes=4096)


def test_effective_limits_defaults() -> None:
    limits = effective_limits(run_pb2.ResourceLimits(), SETTINGS)
    assert limits.timeout.ToMilliseconds() == 30_000
    assert (limits.memory_bytes, limits.max_rows, limits.threads, limits.max_processes, limits.max_output_bytes) == (
        512 << 20, 1000, 2, 48, 4096)


def test_effective_limits_caps_requests() -> None:
    limits = effective_limits(run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=3600), memory_bytes=8 << 30,
                                                     max_rows=10**6, threads=64, max_processes=10_000,
                                                     max_output_bytes=10**9), SETTINGS)
    assert limits.timeout.ToMilliseconds() == 60_000
    assert (limits.memory_bytes, limits.max_rows) == (1 << 30, 5000)
    # Threads, processes and output caps are service settings, never the caller's.
    assert (limits.threads, limits.max_processes, limits.max_output_bytes) == (2, 48, 4096)


def test_effective_limits_keep_smaller_requests_with_sub_second_precision() -> None:
    limits = effective_limits(run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=1, nanos=250_000_000),
                                                     memory_bytes=64 << 20, max_rows=5), SETTINGS)
    assert limits.timeout.ToMilliseconds() == 1250
    assert (limits.memory_bytes, limits.max_rows) == (64 << 20, 5)


def test_effective_limits_are_never_negative() -> None:
    limits = effective_limits(run_pb2.ResourceLimits(timeout=duration_pb2.Duration(seconds=-5), memory_bytes=-1,
                                                     max_rows=-3), SETTINGS)
    assert limits.timeout.ToMilliseconds() > 0
    assert limits.memory_bytes > 0
    assert limits.max_rows > 0


def test_concurrency_is_derived_from_cores_and_memory() -> None:
    gib = 1 << 30
    # Two per core when memory is plentiful.
    assert derived_concurrency(512 << 20, cpus=2, memory_bytes=24 * gib) == 4
    assert derived_concurrency(512 << 20, cpus=8, memory_bytes=64 * gib) == 16
    # Memory bounds it: half of 4 GiB holds two runs capped at 2 x 512 MiB.
    assert derived_concurrency(512 << 20, cpus=8, memory_bytes=4 * gib) == 2
    # Never below one.
    assert derived_concurrency(4 * gib, cpus=1, memory_bytes=1 * gib) == 1
    assert RunnerSettings(max_concurrency=0).concurrency() >= 1
    assert RunnerSettings(max_concurrency=3).concurrency() == 3
