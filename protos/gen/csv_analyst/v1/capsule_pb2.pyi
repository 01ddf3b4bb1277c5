from csv_analyst.v1 import run_pb2 as _run_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Capsule(_message.Message):
    __slots__ = ("name", "run", "plan_json", "events", "planner", "full_result")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PLANNER_FIELD_NUMBER: _ClassVar[int]
    FULL_RESULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    run: _run_pb2.Run
    plan_json: str
    events: _containers.RepeatedCompositeFieldContainer[_run_pb2.RunEvent]
    planner: str
    full_result: StoredResult
    def __init__(self, name: _Optional[str] = ..., run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ..., plan_json: _Optional[str] = ..., events: _Optional[_Iterable[_Union[_run_pb2.RunEvent, _Mapping]]] = ..., planner: _Optional[str] = ..., full_result: _Optional[_Union[StoredResult, _Mapping]] = ...) -> None: ...

class StoredResult(_message.Message):
    __slots__ = ("sha256", "size_bytes", "row_count", "preview_row_count")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size_bytes: int
    row_count: int
    preview_row_count: int
    def __init__(self, sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., row_count: _Optional[int] = ..., preview_row_count: _Optional[int] = ...) -> None: ...
