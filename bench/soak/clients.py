"""The soak's clients: N concurrent callers over a few gRPC channels, each sending a request,
thinking for a moment, and sending the next, until the time is up. Every call is recorded
(kind, outcome label, latency, run id), and afterwards every run id is looked up in the
service's capsules."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.soak.workload import Request, Workload
from csv_analyst.v1 import analyst_service_pb2 as api, analyst_service_pb2_grpc, run_pb2

CALL_SECONDS = 120.0
CHANNELS = 5


@dataclass
class Call:
    """One finished call."""

    kind: str
    outcome: str
    expected: bool
    seconds: float
    started: float  # seconds since the soak began
    run_id: str = ""
    detail: str = ""


@dataclass
class Record:
    """Every call of the soak."""

    calls: list[Call] = field(default_factory=list)


def outcome_of(run: run_pb2.Run) -> str:
    """SUCCEEDED, or STATE:ERROR_CODE."""
    state = run_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_")
    if run.state == run_pb2.RUN_STATE_SUCCEEDED:
        return "SUCCEEDED"
    return f"{state}:{run_pb2.ErrorCode.Name(run.error.code).removeprefix('ERROR_CODE_')}"


async def _call(stub: analyst_service_pb2_grpc.AnalystServiceStub, request: Request) -> tuple[str, str, str]:
    """(outcome, run id, detail) of one request."""
    try:
        if request.submit is not None:
            run = (await stub.SubmitRun(request.submit, timeout=CALL_SECONDS)).run
            return outcome_of(run), run.run_id, run.error.message
        assert request.ask is not None
        async for response in stub.Ask(request.ask, timeout=CALL_SECONDS):
            if response.event.stage == run_pb2.STAGE_DONE:
                run = response.event.run
                return outcome_of(run), run.run_id, run.error.message
        return "stream-ended-without-done", "", ""
    except grpc.aio.AioRpcError as error:
        return f"grpc:{error.code().name}", "", error.details() or ""


async def run_clients(target: str, workload: Workload, clients: int, seconds: float, think_seconds: float,
                      seed: int) -> Record:
    """Run `clients` callers against target for `seconds`."""
    record = Record()
    channels = [grpc.aio.insecure_channel(target) for _ in range(CHANNELS)]
    began = time.monotonic()
    stop_at = began + seconds

    async def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channels[number % CHANNELS])
        await asyncio.sleep(rng.uniform(0, think_seconds))  # do not all start at once
        while time.monotonic() < stop_at:
            request = workload.next()
            started = time.monotonic()
            outcome, run_id, detail = await _call(stub, request)
            record.calls.append(Call(request.kind, outcome, outcome in request.expected,
                                     time.monotonic() - started, started - began, run_id, detail[:200]))
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think_seconds)

    try:
        await asyncio.gather(*(client(n) for n in range(clients)))
    finally:
        for channel in channels:
            await channel.close()
    return record


async def warm_up(target: str, registry: dict[str, Any]) -> None:
    """Before the clock starts: one SQL statement and one question per dataset, so the datasets'
    materialised copies and profiles exist and the warm pools hold sandboxes (as on a service
    that has been up for a while)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)
        for dataset in registry["datasets"]:
            table = dataset["tables"][0]["name"]
            await stub.SubmitRun(api.SubmitRunRequest(dataset_id=dataset["id"], sql=f"SELECT count(*) FROM {table}"),
                                 timeout=600)
            for prompt in dataset.get("prompts", [])[:1]:
                async for _ in stub.Ask(api.AskRequest(dataset_id=dataset["id"], question=prompt), timeout=600):
                    pass


async def check_capsules(target: str, outcomes: dict[str, str]) -> tuple[list[str], list[str]]:
    """(run ids without a capsule, run ids whose capsule says another outcome than the caller got)."""
    missing: list[str] = []
    differing: list[str] = []
    slots = asyncio.Semaphore(16)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = analyst_service_pb2_grpc.AnalystServiceStub(channel)

        async def check(run_id: str, outcome: str) -> None:
            async with slots:
                try:
                    capsule = (await stub.GetCapsule(api.GetCapsuleRequest(name=run_id), timeout=60)).capsule
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    missing.append(run_id)
                    return
                if outcome_of(capsule.run) != outcome:
                    differing.append(run_id)

        await asyncio.gather(*(check(r, o) for r, o in outcomes.items()))
    return missing, differing
