"""Conversation threads: the last few turns of each thread, whatever came of them.

A thread remembers every run that joined it (an Ask with the thread, or a SubmitRun with its
`thread_id`, such as a reading the user chose from a clarification), not only the answered
ones: a question asked back, the reading chosen, a refusal. The next question of the thread is
planned with those turns (`PlanningContext.history`). Turns are kept in memory for the
`MAX_THREADS` most recent threads; a thread this process has not seen (the CLI starts a fresh
stack for each command) is read back from the capsule store.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from analyst_service.capsules.base import CapsuleStore
from analyst_service.planning.base import ThreadTurn
from analyst_service.probes import cell_text
from csv_analyst.v1 import plan_pb2, result_pb2, run_pb2

MAX_THREADS = 1000  # threads remembered in memory (older ones come from the store)
MAX_TURNS = 4  # turns of a thread replayed to the planner, newest last


def answer_summary(result: result_pb2.ResultTable, rows: int = 3, chars: int = 300) -> str:
    """A short text of what a run answered (columns, row count, first rows), for follow-up planning."""
    if not result.columns:
        return ""
    head = "; ".join(", ".join(cell_text(v) for v in row.values) for row in result.rows[:rows])
    more = " ..." if result.row_count > rows or result.truncated else ""
    text = f"{result.row_count} row(s) ({', '.join(c.name for c in result.columns)}): {head}{more}"
    return text if len(text) <= chars else text[: chars - 3] + "..."


def turn_of(run: run_pb2.Run) -> ThreadTurn:
    """What a finished run adds to its thread."""
    succeeded = run.state == run_pb2.RUN_STATE_SUCCEEDED
    return ThreadTurn(
        question=run.question, plan=run.plan if run.HasField("plan") else None, python_code=run.python_code,
        succeeded=succeeded, answer=answer_summary(run.result) if succeeded else "",
        clarification=run.clarification if run.HasField("clarification") else None,
        error="" if succeeded or run.HasField("clarification") else run.error.message)


def follow_up_of(turns: tuple[ThreadTurn, ...]) -> tuple[plan_pb2.Plan | None, str, str]:
    """The plan a follow-up refines: the thread's last answered plan, the question it answered
    (for a chosen reading, the question that was asked back) and its answer summary."""
    for index in range(len(turns) - 1, -1, -1):
        turn = turns[index]
        if turn.succeeded and turn.plan is not None:
            asked = next((t.question for t in reversed(turns[: index + 1]) if t.question), "")
            return turn.plan, asked, turn.answer
    return None, "", ""


class ThreadMemory:
    """The recent turns of each thread, in memory with the capsule store behind it."""

    def __init__(self, store: CapsuleStore) -> None:
        self._store = store
        self._threads: OrderedDict[str, tuple[str, tuple[ThreadTurn, ...]]] = OrderedDict()

    async def turns(self, thread_id: str, dataset_id: str) -> tuple[ThreadTurn, ...]:
        """The thread's last turns over this dataset, oldest first; () for a new thread.

        Args:
            thread_id: The thread; empty for none.
            dataset_id: Turns over another dataset do not carry over.
        """
        if not thread_id:
            return ()
        known = self._threads.get(thread_id)
        if known is None:
            capsules = await asyncio.to_thread(self._store.in_thread, thread_id, MAX_TURNS)
            runs = [c.run for c in reversed(capsules)]
            known = (runs[-1].dataset_id, tuple(turn_of(r) for r in runs if r.dataset_id == runs[-1].dataset_id)) \
                if runs else ("", ())
        remembered_dataset, turns = known
        return turns if remembered_dataset == dataset_id else ()

    async def remember(self, run: run_pb2.Run) -> None:
        """Add a finished run of a thread as its newest turn (a run without a thread adds nothing)."""
        if not run.thread_id:
            return
        dataset_id, turns = self._threads.get(run.thread_id) or ("", ())
        if not turns and run.thread_id != run.run_id:
            # The first turn of a thread this process sees: it may have older turns in the store
            # (a thread an Ask started has its first run's id, so a new one has none).
            dataset_id, turns = run.dataset_id, await self.turns(run.thread_id, run.dataset_id)
        if dataset_id != run.dataset_id:
            turns = ()
        self._threads[run.thread_id] = (run.dataset_id, (*turns, turn_of(run))[-MAX_TURNS:])
        self._threads.move_to_end(run.thread_id)
        while len(self._threads) > MAX_THREADS:
            self._threads.popitem(last=False)
