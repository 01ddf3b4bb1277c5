from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Dataset(_message.Message):
    __slots__ = ("name", "dataset_id", "title", "description", "version_hash", "tables", "relationships", "prompts", "ingestion_problems")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_HASH_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    INGESTION_PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dataset_id: str
    title: str
    description: str
    version_hash: str
    tables: _containers.RepeatedCompositeFieldContainer[Table]
    relationships: _containers.RepeatedCompositeFieldContainer[Relationship]
    prompts: _containers.RepeatedScalarFieldContainer[str]
    ingestion_problems: _containers.RepeatedCompositeFieldContainer[IngestionProblem]
    def __init__(self, name: _Optional[str] = ..., dataset_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., version_hash: _Optional[str] = ..., tables: _Optional[_Iterable[_Union[Table, _Mapping]]] = ..., relationships: _Optional[_Iterable[_Union[Relationship, _Mapping]]] = ..., prompts: _Optional[_Iterable[str]] = ..., ingestion_problems: _Optional[_Iterable[_Union[IngestionProblem, _Mapping]]] = ...) -> None: ...

class IngestionProblem(_message.Message):
    __slots__ = ("table", "kind", "message")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    table: str
    kind: str
    message: str
    def __init__(self, table: _Optional[str] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Table(_message.Message):
    __slots__ = ("name", "file", "columns", "row_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    file: str
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    row_count: int
    def __init__(self, name: _Optional[str] = ..., file: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., row_count: _Optional[int] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("name", "type", "description", "profile")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    description: str
    profile: ColumnProfile
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., description: _Optional[str] = ..., profile: _Optional[_Union[ColumnProfile, _Mapping]] = ...) -> None: ...

class ColumnProfile(_message.Message):
    __slots__ = ("distinct_count", "null_count", "top_values", "min_value", "max_value")
    DISTINCT_COUNT_FIELD_NUMBER: _ClassVar[int]
    NULL_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOP_VALUES_FIELD_NUMBER: _ClassVar[int]
    MIN_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_FIELD_NUMBER: _ClassVar[int]
    distinct_count: int
    null_count: int
    top_values: _containers.RepeatedScalarFieldContainer[str]
    min_value: str
    max_value: str
    def __init__(self, distinct_count: _Optional[int] = ..., null_count: _Optional[int] = ..., top_values: _Optional[_Iterable[str]] = ..., min_value: _Optional[str] = ..., max_value: _Optional[str] = ...) -> None: ...

class Relationship(_message.Message):
    __slots__ = ("from_table", "from_column", "to_table", "to_column")
    FROM_TABLE_FIELD_NUMBER: _ClassVar[int]
    FROM_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TO_TABLE_FIELD_NUMBER: _ClassVar[int]
    TO_COLUMN_FIELD_NUMBER: _ClassVar[int]
    from_table: str
    from_column: str
    to_table: str
    to_column: str
    def __init__(self, from_table: _Optional[str] = ..., from_column: _Optional[str] = ..., to_table: _Optional[str] = ..., to_column: _Optional[str] = ...) -> None: ...
