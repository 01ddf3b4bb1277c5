"""A run in flight in this process: its events so far, and followers waiting for the next.

The run's task appends events; any number of followers (the Ask caller, WatchRun callers on
other connections) read the events after a sequence number and then wait for new ones. A
follower that goes away only stops reading: the run is owned by its task, not by any caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import timestamp_pb2

from csv_analyst.v1 import run_pb2


def now() -> timestamp_pb2.Timestamp:
    """The current time as a Timestamp."""
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


@dataclass
class LiveRun:
    """One run in flight: the Run being built, its events, its task and why it was cancelled."""

    run: run_pb2.Run
    events: list[run_pb2.RunEvent] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    # Set when the run is cancelled: (cause, message), such as ("stop_run", "...").
    cancel_reason: tuple[str, str] | None = None
    # Set once the run's end is being recorded: cancelling it then changes nothing.
    finishing: bool = False
    done: bool = False
    # Set when the run could not even be recorded as begun (the capsule store was away): it was
    # never accepted, leaves no capsule, and its caller gets this error instead of a run.
    refused: Exception | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def next_event(self, stage: run_pb2.Stage, message: str, **payload: Any) -> run_pb2.RunEvent:
        """Build the next event (sequence, time) without publishing it."""
        return run_pb2.RunEvent(run_id=self.run.run_id, sequence=len(self.events) + 1, event_time=now(),
                                stage=stage, message=message, **payload)

    def publish(self, event: run_pb2.RunEvent) -> None:
        """Record event and wake the followers."""
        self.events.append(event)
        if event.stage == run_pb2.STAGE_DONE:
            self.done = True
        self._changed.set()
        self._changed = asyncio.Event()

    def event(self, stage: run_pb2.Stage, message: str, **payload: Any) -> run_pb2.RunEvent:
        """Build and publish the next event."""
        event = self.next_event(stage, message, **payload)
        self.publish(event)
        return event

    def cancel(self, cause: str, message: str) -> bool:
        """Cancel the run's task with a reason; False when it is already ending."""
        if self.finishing or self.task is None or self.task.done():
            return False
        if self.cancel_reason is None:
            self.cancel_reason = (cause, message)
        self.task.cancel()
        return True

    async def follow(self, after_sequence: int = 0) -> AsyncIterator[run_pb2.RunEvent]:
        """Yield the events after after_sequence, then each new one, until STAGE_DONE."""
        next_index = max(0, after_sequence)
        while True:
            while next_index < len(self.events):
                event = self.events[next_index]
                next_index += 1
                yield event
                if event.stage == run_pb2.STAGE_DONE:
                    return
            if self.done:
                return
            await self._changed.wait()
