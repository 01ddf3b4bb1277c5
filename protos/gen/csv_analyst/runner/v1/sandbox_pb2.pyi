from csv_analyst.v1 import result_pb2 as _result_pb2
from csv_analyst.v1 import run_pb2 as _run_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TableSource(_message.Message):
    __slots__ = ("name", "path")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class SandboxTask(_message.Message):
    __slots__ = ("run_id", "sql", "tables", "limits", "data_dir", "database_path", "materialize_to", "python_code")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    DATA_DIR_FIELD_NUMBER: _ClassVar[int]
    DATABASE_PATH_FIELD_NUMBER: _ClassVar[int]
    MATERIALIZE_TO_FIELD_NUMBER: _ClassVar[int]
    PYTHON_CODE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    sql: str
    tables: _containers.RepeatedCompositeFieldContainer[TableSource]
    limits: _run_pb2.ResourceLimits
    data_dir: str
    database_path: str
    materialize_to: str
    python_code: str
    def __init__(self, run_id: _Optional[str] = ..., sql: _Optional[str] = ..., tables: _Optional[_Iterable[_Union[TableSource, _Mapping]]] = ..., limits: _Optional[_Union[_run_pb2.ResourceLimits, _Mapping]] = ..., data_dir: _Optional[str] = ..., database_path: _Optional[str] = ..., materialize_to: _Optional[str] = ..., python_code: _Optional[str] = ...) -> None: ...

class SandboxResult(_message.Message):
    __slots__ = ("result", "error", "setup_seconds", "query_seconds", "rows_produced")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SETUP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUERY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ROWS_PRODUCED_FIELD_NUMBER: _ClassVar[int]
    result: _result_pb2.ResultTable
    error: _run_pb2.RunError
    setup_seconds: float
    query_seconds: float
    rows_produced: int
    def __init__(self, result: _Optional[_Union[_result_pb2.ResultTable, _Mapping]] = ..., error: _Optional[_Union[_run_pb2.RunError, _Mapping]] = ..., setup_seconds: _Optional[float] = ..., query_seconds: _Optional[float] = ..., rows_produced: _Optional[int] = ...) -> None: ...
