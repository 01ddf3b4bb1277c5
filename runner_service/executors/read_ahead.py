"""When a waiting warm sandbox may read its dataset ahead: only after runs have been quiet a while.

A native warm sandbox can read the columns of its dataset into DuckDB's buffers while it waits
(native_sql.warm_up_script): about 60 ms of CPU on the 1e6-row demo, which saves the next run a
few ms of reading and page faults. The DuckDB CLI cannot stop a read-ahead once given, so a run
that takes the sandbox during it waits for the rest. Given at refill time, it landed exactly in
the few ms between back-to-back runs and made every next run wait (measured with
`python -m bench.perf.cpu`: 124-159 ms of sandbox CPU per back-to-back run, 58-66 ms without).

So executors give it only once no run has started or ended for `delay` seconds: an analyst's
pause between questions gets it, back-to-back runs and bursts never do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class QuietSpell:
    """Tracks run activity and calls a read-ahead once runs have been quiet for `delay` seconds.

    Args:
        delay: Seconds without a run starting or ending before a read-ahead is given.
        busy: Whether runs are executing right now.
    """

    def __init__(self, delay: float, busy: Callable[[], bool]) -> None:
        self.delay = delay
        self._busy = busy
        self._last_activity = 0.0

    def touch(self) -> None:
        """A run took a sandbox or ended."""
        self._last_activity = time.monotonic()

    def schedule(self, still_waiting: Callable[[], bool], give: Callable[[], None]) -> None:
        """On the event loop: call give() once runs are quiet, unless still_waiting() turns False first.

        Args:
            still_waiting: Whether the sandbox is still unused and alive (checked before each try).
            give: Writes the read-ahead into the sandbox (on the event loop, so never interleaved
                with the query a run writes there).
        """
        loop = asyncio.get_running_loop()

        def attempt() -> None:
            if not still_waiting():
                return
            quiet_for = time.monotonic() - self._last_activity
            if self._busy() or quiet_for < self.delay:
                loop.call_later(max(self.delay - quiet_for, 0.01), attempt)
                return
            give()

        loop.call_later(self.delay, attempt)
