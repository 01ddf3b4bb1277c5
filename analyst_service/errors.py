"""The analyst service's exception tree. Each error knows its ErrorCode and gRPC status code.

Domain code raises these; `status.py` turns them into rich gRPC statuses, and `runs.py` turns
them into `RunError` messages stored in capsules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from csv_analyst.v1 import run_pb2


@dataclass
class AnalystError(Exception):
    """Root of every error the analyst service raises on purpose.

    Attributes:
        message: Short actionable English.
        violations: (field path, description) pairs, for validation errors.
        metadata: Every value named in the message.
    """

    message: str
    violations: list[tuple[str, str]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    error_code: int = run_pb2.ERROR_CODE_UNSPECIFIED
    status_code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __str__(self) -> str:
        return self.message

    @property
    def reason(self) -> str:
        """UPPER_SNAKE reason: the ErrorCode name without its prefix, or the status code name."""
        if self.error_code == run_pb2.ERROR_CODE_UNSPECIFIED:
            return self.status_code.name
        return run_pb2.ErrorCode.Name(self.error_code).removeprefix("ERROR_CODE_")

    def to_run_error(self) -> run_pb2.RunError:
        """Return this error as the `RunError` message stored in runs and capsules."""
        return run_pb2.RunError(
            code=self.error_code,
            reason=self.reason,
            message=self.message,
            status_code=self.status_code.value[0],
            violations=[run_pb2.FieldViolation(field=f, description=d) for f, d in self.violations],
            metadata=self.metadata,
        )


@dataclass
class ValidationError(AnalystError):
    """A plan or request is invalid: unknown table or column, bad operator, bad limit."""

    error_code: int = run_pb2.ERROR_CODE_VALIDATION_ERROR
    status_code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT


@dataclass
class SqlPolicyError(AnalystError):
    """SQL refused by the read-only policy."""

    error_code: int = run_pb2.ERROR_CODE_SQL_POLICY_VIOLATION
    status_code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT


@dataclass
class PythonPolicyError(AnalystError):
    """A Python program refused by the restricted-Python policy."""

    error_code: int = run_pb2.ERROR_CODE_PYTHON_POLICY_VIOLATION
    status_code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT


@dataclass
class PythonDisabledError(AnalystError):
    """A Python run on a server that has not enabled Python mode."""

    status_code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION


@dataclass
class PlannerError(AnalystError):
    """The planner could not map the question to a plan with confidence."""

    error_code: int = run_pb2.ERROR_CODE_PLANNER_ERROR
    status_code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION


@dataclass
class NotFoundError(AnalystError):
    """A named dataset, run or capsule does not exist."""

    status_code: grpc.StatusCode = grpc.StatusCode.NOT_FOUND


@dataclass
class InvalidRequestError(AnalystError):
    """A request is malformed (missing question, both dataset and CSV paths, bad page token)."""

    status_code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT


@dataclass
class RunnerUnavailableError(AnalystError):
    """The runner service could not be reached."""

    error_code: int = run_pb2.ERROR_CODE_RUNNER_UNAVAILABLE
    status_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE


@dataclass
class StoreUnavailableError(AnalystError):
    """The capsule store's server is away (restarting, unreachable): nothing was accepted, and
    the same call can work again shortly. The ErrorInfo reason is UNAVAILABLE."""

    status_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE


def store_unavailable() -> StoreUnavailableError:
    """The error a caller gets while the capsule store is away (no address or driver detail)."""
    return StoreUnavailableError(message="the capsule store is unavailable (restarting or unreachable); "
                                         "nothing was recorded: try again in a few seconds",
                                 metadata={"retry_after_seconds": "1"})


@dataclass
class PlannerUnavailableError(AnalystError):
    """The model API behind a planner is rate-limited, failing (5xx) or not answering in time.

    Transient: retrying the same question later can work. `metadata["retry_after_seconds"]`
    carries the API's hint when it sent one.
    """

    error_code: int = run_pb2.ERROR_CODE_PLANNER_UNAVAILABLE
    status_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE


@dataclass
class RunFinishedError(AnalystError):
    """The run already reached a terminal state (it cannot be cancelled any more)."""

    status_code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION


@dataclass
class RunCancelledError(AnalystError):
    """The run was cancelled by StopRun before it reached a sandbox."""

    error_code: int = run_pb2.ERROR_CODE_CANCELLED
    status_code: grpc.StatusCode = grpc.StatusCode.CANCELLED


@dataclass
class RunStateError(AnalystError):
    """The run is not in a state the request needs (not succeeded, run by another process, its
    stored result file missing)."""

    status_code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION


@dataclass
class PermissionDeniedError(AnalystError):
    """The caller may not use what it named (a server-side path outside the CSV roots)."""

    status_code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED


@dataclass
class DatasetNotDeletableError(AnalystError):
    """Only uploaded datasets can be deleted (not registry or ad-hoc ones)."""

    status_code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION

    @property
    def reason(self) -> str:
        """DATASET_NOT_DELETABLE: a reason of its own, so clients can tell it from other preconditions."""
        return "DATASET_NOT_DELETABLE"
