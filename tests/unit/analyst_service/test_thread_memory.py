"""A thread remembers every turn (clarified, chosen, refused), in memory and read back from the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from analyst_service.capsules.sqlite import SqliteCapsuleStore
from analyst_service.threads import MAX_TURNS, ThreadMemory, follow_up_of
from csv_analyst.v1 import run_pb2
from tests.unit.analyst_service.test_capsules import make_capsule


def _clarified(run_id: str, thread: str) -> run_pb2.Run:
    run = make_capsule(run_id, state=run_pb2.RUN_STATE_REJECTED, question="what were the sales?").run
    run.ClearField("plan")
    run.ClearField("result")
    run.thread_id = thread
    run.error.message = "asked back"
    option = run.clarification.options.add(explanation="Count of orders.")
    option.plan.CopyFrom(make_capsule("x").run.plan)
    return run


def _chosen(run_id: str, thread: str) -> run_pb2.Run:
    run = make_capsule(run_id, question="").run
    run.thread_id = thread
    return run


def test_turns_are_remembered_in_order_whatever_their_outcome(tmp_path: Path) -> None:
    memory = ThreadMemory(SqliteCapsuleStore(tmp_path / "capsules.sqlite3"))

    async def conversation() -> None:
        await memory.remember(_clarified("r1", "t"))
        await memory.remember(_chosen("r2", "t"))
        turns = await memory.turns("t", "ecommerce")
        assert [bool(t.clarification) for t in turns] == [True, False]
        assert turns[0].question == "what were the sales?" and not turns[0].succeeded
        assert turns[1].succeeded and turns[1].answer.startswith("1 row(s) (count): 42")
        plan, question, answer = follow_up_of(turns)
        assert plan is not None and question == "what were the sales?" and "42" in answer  # the choice answered it
        assert await memory.turns("t", "other-dataset") == ()
        for number in range(MAX_TURNS + 2):
            await memory.remember(_chosen(f"r{number + 3}", "t"))
        assert len(await memory.turns("t", "ecommerce")) == MAX_TURNS

    asyncio.run(conversation())


def test_a_thread_from_another_process_is_read_back_from_the_store(tmp_path: Path) -> None:
    store = SqliteCapsuleStore(tmp_path / "capsules.sqlite3")
    for run in (_clarified("r1", "t"), _chosen("r2", "t"), _chosen("r3", "other")):
        store.put(make_capsule(run.run_id).__class__(name=f"capsules/{run.run_id}", run=run))
    turns = asyncio.run(ThreadMemory(store).turns("t", "ecommerce"))
    assert [t.question for t in turns] == ["what were the sales?", ""] and turns[0].clarification is not None
