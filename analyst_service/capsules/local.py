"""Read a run's full result straight from a local SQLite capsule store (the CLI without --server)."""

from __future__ import annotations

from pathlib import Path

from analyst_service.capsules.results import ResultFileError
from analyst_service.capsules.sqlite import SqliteCapsuleStore
from csv_analyst.v1 import result_pb2, run_pb2


def read_full_result(capsule_db: Path, name: str) -> result_pb2.ResultTable:
    """Every row of the result of run `name` (`runs/{id}`, `capsules/{id}` or an id).

    Raises:
        LookupError: With a message naming the problem: no such capsule, the run did not
            succeed, or its result file is missing or corrupt.
    """
    run_id = name.removeprefix("runs/").removeprefix("capsules/")
    store = SqliteCapsuleStore(capsule_db)
    try:
        capsule = store.get(run_id)
        if capsule is None:
            raise LookupError(f"NOT_FOUND: no capsule for run {run_id!r} in {capsule_db}")
        if capsule.run.state != run_pb2.RUN_STATE_SUCCEEDED:
            state = run_pb2.RunState.Name(capsule.run.state).removeprefix("RUN_STATE_")
            raise LookupError(f"FAILED_PRECONDITION: run {run_id!r} has no result: it ended {state}")
        if not capsule.HasField("full_result"):
            return capsule.run.result
        try:
            return store.results.get(capsule.full_result)
        except ResultFileError as error:
            raise LookupError(f"FAILED_PRECONDITION: {error}") from None
    finally:
        store.close()
