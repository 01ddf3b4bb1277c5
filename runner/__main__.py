"""The sandboxed runner: read a task on stdin, write one SandboxResult (binary protobuf) on
stdout, exit. See runner/messages.py for the two input forms (one task, or a set-up frame
followed by a query frame, which lets a warm sandbox prepare DuckDB before its run arrives);
a framed task gets its result as a frame.

Exit codes: 0 a result was written (the query may still have failed: see SandboxResult.error);
2 the task could not be read. Nothing else is ever written to stdout.
"""

from __future__ import annotations

import os
import select
import sys

from google.protobuf.message import DecodeError

from csv_analyst.runner.v1 import sandbox_pb2
from runner.engine import execute_task
from runner.messages import ProtocolError, read_frame, result_frame


def main() -> int:
    """Run the one task of this sandbox."""
    # Unbuffered, so that select() on it tells whether the query frame has arrived.
    stdin = sys.stdin.buffer.raw

    def query_waiting() -> bool:
        return bool(select.select([stdin], [], [], 0)[0])

    delivered = False

    def deliver(result: sandbox_pb2.SandboxResult, framed: bool) -> None:
        nonlocal delivered
        # Diagnostics go out before the answer, so an executor that stops reading at the end
        # of the answer's frame has them already.
        sys.stderr.flush()
        sys.stdout.buffer.write(result_frame(result) if framed else result.SerializeToString())
        sys.stdout.buffer.flush()
        delivered = True

    try:
        first = stdin.read(1)
        framed = first == b"\x00"
        if framed:
            setup = read_frame(stdin, first)
            result = execute_task(setup, lambda: read_frame(stdin), lambda r: deliver(r, True), query_waiting)
        else:
            result = execute_task(sandbox_pb2.SandboxTask.FromString(first + stdin.read()))
    except (DecodeError, ProtocolError) as error:
        print(f"runner: unreadable task: {error}", file=sys.stderr)
        return 2
    if not delivered:
        deliver(result, framed)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The result is written: skip the interpreter's and DuckDB's tear-down (100-200 ms on a busy
    # machine), which only delays the moment the executor sees the sandbox exit.
    os._exit(code)
