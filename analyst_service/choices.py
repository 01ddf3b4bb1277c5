"""`csv-analyst ask --thread ID --choose N`: run reading N of the thread's last clarification.

The thread's newest capsule must hold a `Clarification` (the planner asked instead of answering);
reading N's plan is submitted with SubmitRun in the same thread, so it is validated, compiled and
run like any plan, and the thread's next question is planned knowing which reading was chosen.
Only public RPCs are used (ListCapsules, SubmitRun), so this works embedded and against --server.
"""

from __future__ import annotations

from typing import Any

import grpc

from analyst_service.answers import answer_from_rpc_error, answer_from_run, rejected
from csv_analyst.v1 import analyst_service_pb2 as api
from csv_analyst.v1 import analyst_service_pb2_grpc, capsule_pb2

PAGE_SIZE = 100
MAX_PAGES = 20  # the newest 2,000 runs: a clarification being answered is among the latest


async def last_question_in_thread(stub: analyst_service_pb2_grpc.AnalystServiceStub, thread: str
                                 ) -> capsule_pb2.Capsule | None:
    """The newest capsule of a thread's question (readings chosen since are passed over, so another
    reading can still be chosen), or None when none of the newest runs belongs to it."""
    token = ""
    for _ in range(MAX_PAGES):
        page = await stub.ListCapsules(api.ListCapsulesRequest(page_size=PAGE_SIZE, page_token=token))
        for capsule in page.capsules:
            if capsule.run.thread_id == thread and capsule.run.question:
                return capsule
        token = page.next_page_token
        if not token:
            return None
    return None


async def choose(stub: analyst_service_pb2_grpc.AnalystServiceStub, thread: str, number: int,
                 csv_paths: list[str]) -> dict[str, Any]:
    """Run reading `number` (1-based) of the thread's last clarification and return its answer object.

    Args:
        stub: The analyst service.
        thread: The thread id printed with the clarification.
        number: Which reading, 1 for the first option.
        csv_paths: The CSV files again, for an ad-hoc dataset (its id does not outlive the process
            that profiled it); empty for a registered dataset.

    Returns:
        The answer object of the chosen reading's run, or a REJECTED answer saying what is wrong
        (no such thread, no clarification in it, no such reading).
    """
    try:
        capsule = await last_question_in_thread(stub, thread)
    except grpc.aio.AioRpcError as error:
        return answer_from_rpc_error(None, error)
    if capsule is None:
        return rejected(None, "NOT_FOUND", f"no run of thread {thread!r} among the newest runs")
    options = capsule.run.clarification.options
    if not options:
        return rejected(None, "NO_CLARIFICATION",
                        f"the last run of thread {thread!r} ({capsule.run.run_id}) asked no question to choose from")
    if not 1 <= number <= len(options):
        return rejected(None, "INVALID_INPUT", f"--choose must be between 1 and {len(options)}")
    plan = options[number - 1].plan
    request = api.SubmitRunRequest(plan=plan, csv_paths=csv_paths, thread_id=thread) if csv_paths else \
        api.SubmitRunRequest(plan=plan, dataset_id=capsule.run.dataset_id, thread_id=thread)
    try:
        response = await stub.SubmitRun(request)
    except grpc.aio.AioRpcError as error:
        return answer_from_rpc_error(None, error)
    answer = answer_from_run(None, response.run)
    answer["thread_id"] = thread
    return answer
