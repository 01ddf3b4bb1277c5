"""What a client may see: internal detail is removed from messages for callers who are not operators.

Internal detail is what the sandbox and the host say about themselves: the runner's captured
stdout/stderr (but for its notes about the data) and host file paths. It stays in the capsule store (and the service log) for
operators; users get the same messages without it.
"""

from __future__ import annotations

import os

from csv_analyst.v1 import capsule_pb2, dataset_pb2, run_pb2


# The runner reports what it noticed about the data (renamed or empty headers, a header-only
# file) on stderr with this prefix: those lines are about the user's own files and stay.
DATA_NOTE_PREFIX = "runner: table "


def redact_run(run: run_pb2.Run) -> run_pb2.Run:
    """A copy of a run without the sandbox's captured output (its notes about the data kept)."""
    redacted = run_pb2.Run()
    redacted.CopyFrom(run)
    redacted.stats.ClearField("stdout")
    notes = [line for line in run.stats.stderr.splitlines() if line.startswith(DATA_NOTE_PREFIX)]
    redacted.stats.stderr = "".join(f"{line}\n" for line in notes)
    return redacted


def redact_event(event: run_pb2.RunEvent) -> run_pb2.RunEvent:
    """A copy of an event whose run (if any) is redacted."""
    if not event.HasField("run"):
        return event
    redacted = run_pb2.RunEvent()
    redacted.CopyFrom(event)
    redacted.run.CopyFrom(redact_run(event.run))
    return redacted


def redact_capsule(capsule: capsule_pb2.Capsule) -> capsule_pb2.Capsule:
    """A copy of a capsule whose run and events are redacted."""
    redacted = capsule_pb2.Capsule()
    redacted.CopyFrom(capsule)
    redacted.run.CopyFrom(redact_run(capsule.run))
    del redacted.events[:]
    redacted.events.extend(redact_event(e) for e in capsule.events)
    return redacted


def public_dataset(dataset: dataset_pb2.Dataset) -> dataset_pb2.Dataset:
    """A copy of a dataset whose table files are base names, not host paths."""
    public = dataset_pb2.Dataset()
    public.CopyFrom(dataset)
    for table in public.tables:
        table.file = os.path.basename(table.file)
    return public
