"""The sandboxed runner: read one SandboxTask (binary protobuf) on stdin, write one
SandboxResult (binary protobuf) on stdout, exit.

Exit codes: 0 a result was written (the query may still have failed: see SandboxResult.error);
2 the task could not be read. Nothing else is ever written to stdout.
"""

from __future__ import annotations

import sys

from google.protobuf.message import DecodeError

from csv_analyst.v1 import sandbox_pb2
from runner.engine import execute_task


def main() -> int:
    """Run the one task of this sandbox."""
    try:
        task = sandbox_pb2.SandboxTask.FromString(sys.stdin.buffer.read())
    except DecodeError as error:
        print(f"runner: unreadable task: {error}", file=sys.stderr)
        return 2
    result = execute_task(task)
    sys.stdout.buffer.write(result.SerializeToString())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
