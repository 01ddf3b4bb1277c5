"""A finished run as a stored capsule, and a stored capsule back as the events of its run.

The capsule holds every payload once (see capsule.proto): the event payloads that repeat the run
(its SQL, its result) are left out when stored and put back from the run when replayed, and a
large result is split into a preview and a content-addressed file (capsules.results).
"""

from __future__ import annotations

from google.protobuf import json_format

from analyst_service.capsules.results import PREVIEW_MAX_BYTES, ResultFiles, preview
from csv_analyst.v1 import capsule_pb2, run_pb2

_SQL_STAGES = (run_pb2.STAGE_VALIDATING, run_pb2.STAGE_QUEUED)


def build_capsule(run: run_pb2.Run, events: list[run_pb2.RunEvent], results: ResultFiles,
                  preview_max_bytes: int = PREVIEW_MAX_BYTES) -> capsule_pb2.Capsule:
    """The capsule of a finished run (blocking: a large result is written to a file).

    Args:
        run: The run in its terminal state, with its whole result.
        events: Every event of the run, STAGE_DONE last.
        results: Where a result larger than preview_max_bytes is stored whole.
        preview_max_bytes: Largest result kept whole in the capsule.
    """
    stored = run_pb2.Run()
    stored.CopyFrom(run)
    capsule = capsule_pb2.Capsule(name=f"capsules/{run.run_id}", planner=run.planner)
    if run.result.ByteSize() > preview_max_bytes:
        capsule.full_result.CopyFrom(results.put(run.result))
        stored.result.CopyFrom(preview(run.result, preview_max_bytes))
        capsule.full_result.preview_row_count = stored.result.row_count
    capsule.run.CopyFrom(stored)
    if run.HasField("plan"):
        capsule.plan_json = json_format.MessageToJson(run.plan, indent=None, sort_keys=True)
    for event in events:
        kept = capsule.events.add()
        kept.CopyFrom(event)
        payload = kept.WhichOneof("payload")
        if kept.stage in _SQL_STAGES and payload == "sql" and kept.sql == run.sql:
            kept.ClearField("sql")
        elif payload == "result":
            kept.ClearField("result")
        elif payload == "run":
            kept.run.ClearField("result")
    return capsule


def replay_events(capsule: capsule_pb2.Capsule) -> list[run_pb2.RunEvent]:
    """The events of a stored run with the payloads build_capsule left out put back."""
    run = capsule.run
    events = []
    for stored in capsule.events:
        event = run_pb2.RunEvent()
        event.CopyFrom(stored)
        if event.WhichOneof("payload") is None:
            if event.stage in _SQL_STAGES:
                event.sql = run.sql
            elif event.stage == run_pb2.STAGE_RESULT:
                event.result.CopyFrom(run.result)
        elif event.stage == run_pb2.STAGE_DONE:
            event.run.CopyFrom(run)
        events.append(event)
    return events
