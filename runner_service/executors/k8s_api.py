"""Calling the Kubernetes API safely: bounded retries with backoff, and a creation rate limit.

Retried: 409 Conflict (a concurrent change), 429 Too Many Requests (honouring Retry-After),
500/502/503/504 and connection-level failures (resets, refused connections, timeouts). Anything
else (400, 401, 403, 404, 422) is an answer and goes straight back to the caller. The client's
own urllib3 retries are turned off (Configuration.retries = 0) so that this is the only policy.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({409, 429, 500, 502, 503, 504})
MAX_BACKOFF = 5.0


class ApiUnavailableError(Exception):
    """The API server kept failing (or could not be reached) after every allowed attempt."""

    def __init__(self, what: str, attempts: int, cause: BaseException) -> None:
        super().__init__(f"{what} failed after {attempts} attempts: {describe(cause)}")
        self.cause = cause


def describe(error: BaseException) -> str:
    """A one-line description of an API or connection error."""
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason or ''}".strip()
    return f"{type(error).__name__}: {str(error)[:200]}"


def is_transient(error: BaseException) -> bool:
    """Whether an error is worth retrying."""
    if isinstance(error, ApiException):
        return error.status in RETRYABLE_STATUS or error.status == 0
    return isinstance(error, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def retry_after(error: BaseException) -> float | None:
    """The Retry-After delay of a 429/503 answer, in seconds, if it gives one."""
    headers = getattr(error, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes:
        attempts: Tries in all (1 = no retry).
        backoff_seconds: First delay; doubled per attempt, with up to 50% jitter, capped at MAX_BACKOFF.
    """

    attempts: int = 5
    backoff_seconds: float = 0.2

    def delay(self, attempt: int, error: BaseException) -> float:
        """The pause before try number attempt + 1 (attempt counts from 1)."""
        base = min(self.backoff_seconds * (2 ** (attempt - 1)), MAX_BACKOFF)
        hinted = retry_after(error)
        if hinted is not None:
            return min(max(hinted, base), MAX_BACKOFF)
        return base * (1 + random.random() / 2)


def call(what: str, function: Callable[[], T], policy: RetryPolicy,
         sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `function`, retrying transient failures with backoff up to policy.attempts tries.

    Args:
        what: What is being done, for messages ("create Job run-x").
        function: The API call.
        policy: Retry policy.
        sleep: Waits between tries (tests may record instead).

    Raises:
        ApiException: A non-transient answer (404, 403, 422, ...), at once.
        ApiUnavailableError: Transient failures on every try.
    """
    attempts = max(policy.attempts, 1)
    for attempt in range(1, attempts + 1):
        try:
            return function()
        except Exception as error:  # noqa: BLE001 - sorted into transient or not just below
            if not is_transient(error):
                raise
            if attempt == attempts:
                raise ApiUnavailableError(what, attempts, error) from error
            delay = policy.delay(attempt, error)
            log.info("%s: %s; retry %d/%d in %.2f s", what, describe(error), attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")


class TokenBucket:
    """A thread-safe token bucket: `rate` tokens per second, at most `burst` saved up.

    Creation of Jobs goes through one of these so that a burst of runs turns into a steady
    stream of API writes instead of a spike (the API server's priority-and-fairness would
    otherwise answer 429 to the whole burst at once).
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(rate, 1e-6)
        self.burst = max(burst, 1)
        self._clock = clock
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token now or in the future; return how long to wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until a token is available; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            sleep(wait)
        return wait
