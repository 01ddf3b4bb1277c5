import datetime

from csv_analyst.v1 import result_pb2 as _result_pb2
from csv_analyst.v1 import run_pb2 as _run_pb2
from csv_analyst.runner.v1 import sandbox_pb2 as _sandbox_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunnerEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUNNER_EVENT_KIND_UNSPECIFIED: _ClassVar[RunnerEventKind]
    RUNNER_EVENT_KIND_QUEUED: _ClassVar[RunnerEventKind]
    RUNNER_EVENT_KIND_STARTED: _ClassVar[RunnerEventKind]
    RUNNER_EVENT_KIND_FINISHED: _ClassVar[RunnerEventKind]
RUNNER_EVENT_KIND_UNSPECIFIED: RunnerEventKind
RUNNER_EVENT_KIND_QUEUED: RunnerEventKind
RUNNER_EVENT_KIND_STARTED: RunnerEventKind
RUNNER_EVENT_KIND_FINISHED: RunnerEventKind

class ExecuteRequest(_message.Message):
    __slots__ = ("run_id", "sql", "tables", "limits", "dataset_version", "python_code")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_CODE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    sql: str
    tables: _containers.RepeatedCompositeFieldContainer[_sandbox_pb2.TableSource]
    limits: _run_pb2.ResourceLimits
    dataset_version: str
    python_code: str
    def __init__(self, run_id: _Optional[str] = ..., sql: _Optional[str] = ..., tables: _Optional[_Iterable[_Union[_sandbox_pb2.TableSource, _Mapping]]] = ..., limits: _Optional[_Union[_run_pb2.ResourceLimits, _Mapping]] = ..., dataset_version: _Optional[str] = ..., python_code: _Optional[str] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("run_id", "kind", "sequence", "event_time", "queue_position", "result", "error", "stats", "runner_mode", "limits")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    RUNNER_MODE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    kind: RunnerEventKind
    sequence: int
    event_time: _timestamp_pb2.Timestamp
    queue_position: int
    result: _result_pb2.ResultTable
    error: _run_pb2.RunError
    stats: _run_pb2.RunStats
    runner_mode: str
    limits: _run_pb2.ResourceLimits
    def __init__(self, run_id: _Optional[str] = ..., kind: _Optional[_Union[RunnerEventKind, str]] = ..., sequence: _Optional[int] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queue_position: _Optional[int] = ..., result: _Optional[_Union[_result_pb2.ResultTable, _Mapping]] = ..., error: _Optional[_Union[_run_pb2.RunError, _Mapping]] = ..., stats: _Optional[_Union[_run_pb2.RunStats, _Mapping]] = ..., runner_mode: _Optional[str] = ..., limits: _Optional[_Union[_run_pb2.ResourceLimits, _Mapping]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class CancelRunResponse(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    def __init__(self, cancelled: _Optional[bool] = ...) -> None: ...
