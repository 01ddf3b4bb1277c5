import datetime

from csv_analyst.v1 import plan_pb2 as _plan_pb2
from csv_analyst.v1 import result_pb2 as _result_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueryType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_TYPE_UNSPECIFIED: _ClassVar[QueryType]
    QUERY_TYPE_PLAN: _ClassVar[QueryType]
    QUERY_TYPE_SQL: _ClassVar[QueryType]
    QUERY_TYPE_PYTHON: _ClassVar[QueryType]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_PLANNING: _ClassVar[RunState]
    RUN_STATE_VALIDATING: _ClassVar[RunState]
    RUN_STATE_QUEUED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_REJECTED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_VALIDATION_ERROR: _ClassVar[ErrorCode]
    ERROR_CODE_SQL_POLICY_VIOLATION: _ClassVar[ErrorCode]
    ERROR_CODE_RUNNER_TIMEOUT: _ClassVar[ErrorCode]
    ERROR_CODE_RUNNER_RESOURCE_EXCEEDED: _ClassVar[ErrorCode]
    ERROR_CODE_RUNNER_INTERNAL_ERROR: _ClassVar[ErrorCode]
    ERROR_CODE_QUERY_ERROR: _ClassVar[ErrorCode]
    ERROR_CODE_PLANNER_ERROR: _ClassVar[ErrorCode]
    ERROR_CODE_CANCELLED: _ClassVar[ErrorCode]
    ERROR_CODE_RUNNER_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_PLANNER_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_PYTHON_POLICY_VIOLATION: _ClassVar[ErrorCode]
    ERROR_CODE_PYTHON_EXECUTION_ERROR: _ClassVar[ErrorCode]

class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_UNSPECIFIED: _ClassVar[Stage]
    STAGE_PLANNING: _ClassVar[Stage]
    STAGE_VALIDATING: _ClassVar[Stage]
    STAGE_QUEUED: _ClassVar[Stage]
    STAGE_EXECUTING: _ClassVar[Stage]
    STAGE_RESULT: _ClassVar[Stage]
    STAGE_DONE: _ClassVar[Stage]
QUERY_TYPE_UNSPECIFIED: QueryType
QUERY_TYPE_PLAN: QueryType
QUERY_TYPE_SQL: QueryType
QUERY_TYPE_PYTHON: QueryType
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_PLANNING: RunState
RUN_STATE_VALIDATING: RunState
RUN_STATE_QUEUED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_REJECTED: RunState
RUN_STATE_CANCELLED: RunState
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_VALIDATION_ERROR: ErrorCode
ERROR_CODE_SQL_POLICY_VIOLATION: ErrorCode
ERROR_CODE_RUNNER_TIMEOUT: ErrorCode
ERROR_CODE_RUNNER_RESOURCE_EXCEEDED: ErrorCode
ERROR_CODE_RUNNER_INTERNAL_ERROR: ErrorCode
ERROR_CODE_QUERY_ERROR: ErrorCode
ERROR_CODE_PLANNER_ERROR: ErrorCode
ERROR_CODE_CANCELLED: ErrorCode
ERROR_CODE_RUNNER_UNAVAILABLE: ErrorCode
ERROR_CODE_PLANNER_UNAVAILABLE: ErrorCode
ERROR_CODE_PYTHON_POLICY_VIOLATION: ErrorCode
ERROR_CODE_PYTHON_EXECUTION_ERROR: ErrorCode
STAGE_UNSPECIFIED: Stage
STAGE_PLANNING: Stage
STAGE_VALIDATING: Stage
STAGE_QUEUED: Stage
STAGE_EXECUTING: Stage
STAGE_RESULT: Stage
STAGE_DONE: Stage

class Run(_message.Message):
    __slots__ = ("name", "run_id", "state", "dataset_id", "question", "plan", "sql", "limits", "error", "result", "stats", "create_time", "start_time", "end_time", "runner_mode", "dataset_version_hash", "thread_id", "planner", "planner_attempts", "query_type", "python_code", "cache_hit", "cached_from_run_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    RUNNER_MODE_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_HASH_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    PLANNER_FIELD_NUMBER: _ClassVar[int]
    PLANNER_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    QUERY_TYPE_FIELD_NUMBER: _ClassVar[int]
    PYTHON_CODE_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    CACHED_FROM_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    run_id: str
    state: RunState
    dataset_id: str
    question: str
    plan: _plan_pb2.Plan
    sql: str
    limits: ResourceLimits
    error: RunError
    result: _result_pb2.ResultTable
    stats: RunStats
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    runner_mode: str
    dataset_version_hash: str
    thread_id: str
    planner: str
    planner_attempts: _containers.RepeatedCompositeFieldContainer[PlannerAttempt]
    query_type: QueryType
    python_code: str
    cache_hit: bool
    cached_from_run_id: str
    def __init__(self, name: _Optional[str] = ..., run_id: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., dataset_id: _Optional[str] = ..., question: _Optional[str] = ..., plan: _Optional[_Union[_plan_pb2.Plan, _Mapping]] = ..., sql: _Optional[str] = ..., limits: _Optional[_Union[ResourceLimits, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., result: _Optional[_Union[_result_pb2.ResultTable, _Mapping]] = ..., stats: _Optional[_Union[RunStats, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., runner_mode: _Optional[str] = ..., dataset_version_hash: _Optional[str] = ..., thread_id: _Optional[str] = ..., planner: _Optional[str] = ..., planner_attempts: _Optional[_Iterable[_Union[PlannerAttempt, _Mapping]]] = ..., query_type: _Optional[_Union[QueryType, str]] = ..., python_code: _Optional[str] = ..., cache_hit: _Optional[bool] = ..., cached_from_run_id: _Optional[str] = ...) -> None: ...

class PlannerAttempt(_message.Message):
    __slots__ = ("number", "model", "tools", "outcome", "violations", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "latency", "request_ids", "stop_reason")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    number: int
    model: str
    tools: _containers.RepeatedScalarFieldContainer[str]
    outcome: str
    violations: _containers.RepeatedScalarFieldContainer[str]
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    latency: _duration_pb2.Duration
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    stop_reason: str
    def __init__(self, number: _Optional[int] = ..., model: _Optional[str] = ..., tools: _Optional[_Iterable[str]] = ..., outcome: _Optional[str] = ..., violations: _Optional[_Iterable[str]] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_read_tokens: _Optional[int] = ..., cache_write_tokens: _Optional[int] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., request_ids: _Optional[_Iterable[str]] = ..., stop_reason: _Optional[str] = ...) -> None: ...

class ResourceLimits(_message.Message):
    __slots__ = ("timeout", "memory_bytes", "max_rows", "threads", "max_processes", "max_output_bytes")
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    memory_bytes: int
    max_rows: int
    threads: int
    max_processes: int
    max_output_bytes: int
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., memory_bytes: _Optional[int] = ..., max_rows: _Optional[int] = ..., threads: _Optional[int] = ..., max_processes: _Optional[int] = ..., max_output_bytes: _Optional[int] = ...) -> None: ...

class RunError(_message.Message):
    __slots__ = ("code", "reason", "message", "status_code", "violations", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    reason: str
    message: str
    status_code: int
    violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., status_code: _Optional[int] = ..., violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class RunStats(_message.Message):
    __slots__ = ("planning_duration", "validation_duration", "queue_duration", "sandbox_duration", "query_duration", "rows_produced", "stdout", "stderr")
    PLANNING_DURATION_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_DURATION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DURATION_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_DURATION_FIELD_NUMBER: _ClassVar[int]
    QUERY_DURATION_FIELD_NUMBER: _ClassVar[int]
    ROWS_PRODUCED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    planning_duration: _duration_pb2.Duration
    validation_duration: _duration_pb2.Duration
    queue_duration: _duration_pb2.Duration
    sandbox_duration: _duration_pb2.Duration
    query_duration: _duration_pb2.Duration
    rows_produced: int
    stdout: str
    stderr: str
    def __init__(self, planning_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., validation_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., queue_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., sandbox_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., query_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rows_produced: _Optional[int] = ..., stdout: _Optional[str] = ..., stderr: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("run_id", "sequence", "event_time", "stage", "message", "plan", "sql", "result", "run")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    sequence: int
    event_time: _timestamp_pb2.Timestamp
    stage: Stage
    message: str
    plan: _plan_pb2.Plan
    sql: str
    result: _result_pb2.ResultTable
    run: Run
    def __init__(self, run_id: _Optional[str] = ..., sequence: _Optional[int] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stage: _Optional[_Union[Stage, str]] = ..., message: _Optional[str] = ..., plan: _Optional[_Union[_plan_pb2.Plan, _Mapping]] = ..., sql: _Optional[str] = ..., result: _Optional[_Union[_result_pb2.ResultTable, _Mapping]] = ..., run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...
