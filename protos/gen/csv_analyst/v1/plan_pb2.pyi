from csv_analyst.v1 import value_pb2 as _value_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Aggregation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATION_UNSPECIFIED: _ClassVar[Aggregation]
    AGGREGATION_SUM: _ClassVar[Aggregation]
    AGGREGATION_AVG: _ClassVar[Aggregation]
    AGGREGATION_MIN: _ClassVar[Aggregation]
    AGGREGATION_MAX: _ClassVar[Aggregation]
    AGGREGATION_COUNT: _ClassVar[Aggregation]
    AGGREGATION_COUNT_DISTINCT: _ClassVar[Aggregation]
    AGGREGATION_MEDIAN: _ClassVar[Aggregation]
    AGGREGATION_PERCENT: _ClassVar[Aggregation]
    AGGREGATION_RANGE: _ClassVar[Aggregation]
    AGGREGATION_STDDEV: _ClassVar[Aggregation]
    AGGREGATION_VARIANCE: _ClassVar[Aggregation]

class TimeBucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_BUCKET_UNSPECIFIED: _ClassVar[TimeBucket]
    TIME_BUCKET_HOUR: _ClassVar[TimeBucket]
    TIME_BUCKET_DAY: _ClassVar[TimeBucket]
    TIME_BUCKET_WEEK: _ClassVar[TimeBucket]
    TIME_BUCKET_MONTH: _ClassVar[TimeBucket]
    TIME_BUCKET_QUARTER: _ClassVar[TimeBucket]
    TIME_BUCKET_YEAR: _ClassVar[TimeBucket]
    TIME_BUCKET_HOUR_OF_DAY: _ClassVar[TimeBucket]
    TIME_BUCKET_DAY_OF_WEEK: _ClassVar[TimeBucket]
    TIME_BUCKET_MONTH_OF_YEAR: _ClassVar[TimeBucket]

class DurationUnit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DURATION_UNIT_UNSPECIFIED: _ClassVar[DurationUnit]
    DURATION_UNIT_SECONDS: _ClassVar[DurationUnit]
    DURATION_UNIT_MINUTES: _ClassVar[DurationUnit]
    DURATION_UNIT_HOURS: _ClassVar[DurationUnit]
    DURATION_UNIT_DAYS: _ClassVar[DurationUnit]
    DURATION_UNIT_WEEKS: _ClassVar[DurationUnit]

class JoinType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOIN_TYPE_UNSPECIFIED: _ClassVar[JoinType]
    JOIN_TYPE_INNER: _ClassVar[JoinType]
    JOIN_TYPE_LEFT: _ClassVar[JoinType]

class FilterOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILTER_OPERATOR_UNSPECIFIED: _ClassVar[FilterOperator]
    FILTER_OPERATOR_EQ: _ClassVar[FilterOperator]
    FILTER_OPERATOR_NE: _ClassVar[FilterOperator]
    FILTER_OPERATOR_LT: _ClassVar[FilterOperator]
    FILTER_OPERATOR_LE: _ClassVar[FilterOperator]
    FILTER_OPERATOR_GT: _ClassVar[FilterOperator]
    FILTER_OPERATOR_GE: _ClassVar[FilterOperator]
    FILTER_OPERATOR_IN: _ClassVar[FilterOperator]
    FILTER_OPERATOR_BETWEEN: _ClassVar[FilterOperator]
    FILTER_OPERATOR_CONTAINS: _ClassVar[FilterOperator]
    FILTER_OPERATOR_STARTSWITH: _ClassVar[FilterOperator]
    FILTER_OPERATOR_ENDSWITH: _ClassVar[FilterOperator]
    FILTER_OPERATOR_IS_NULL: _ClassVar[FilterOperator]
    FILTER_OPERATOR_NOT_NULL: _ClassVar[FilterOperator]
AGGREGATION_UNSPECIFIED: Aggregation
AGGREGATION_SUM: Aggregation
AGGREGATION_AVG: Aggregation
AGGREGATION_MIN: Aggregation
AGGREGATION_MAX: Aggregation
AGGREGATION_COUNT: Aggregation
AGGREGATION_COUNT_DISTINCT: Aggregation
AGGREGATION_MEDIAN: Aggregation
AGGREGATION_PERCENT: Aggregation
AGGREGATION_RANGE: Aggregation
AGGREGATION_STDDEV: Aggregation
AGGREGATION_VARIANCE: Aggregation
TIME_BUCKET_UNSPECIFIED: TimeBucket
TIME_BUCKET_HOUR: TimeBucket
TIME_BUCKET_DAY: TimeBucket
TIME_BUCKET_WEEK: TimeBucket
TIME_BUCKET_MONTH: TimeBucket
TIME_BUCKET_QUARTER: TimeBucket
TIME_BUCKET_YEAR: TimeBucket
TIME_BUCKET_HOUR_OF_DAY: TimeBucket
TIME_BUCKET_DAY_OF_WEEK: TimeBucket
TIME_BUCKET_MONTH_OF_YEAR: TimeBucket
DURATION_UNIT_UNSPECIFIED: DurationUnit
DURATION_UNIT_SECONDS: DurationUnit
DURATION_UNIT_MINUTES: DurationUnit
DURATION_UNIT_HOURS: DurationUnit
DURATION_UNIT_DAYS: DurationUnit
DURATION_UNIT_WEEKS: DurationUnit
JOIN_TYPE_UNSPECIFIED: JoinType
JOIN_TYPE_INNER: JoinType
JOIN_TYPE_LEFT: JoinType
FILTER_OPERATOR_UNSPECIFIED: FilterOperator
FILTER_OPERATOR_EQ: FilterOperator
FILTER_OPERATOR_NE: FilterOperator
FILTER_OPERATOR_LT: FilterOperator
FILTER_OPERATOR_LE: FilterOperator
FILTER_OPERATOR_GT: FilterOperator
FILTER_OPERATOR_GE: FilterOperator
FILTER_OPERATOR_IN: FilterOperator
FILTER_OPERATOR_BETWEEN: FilterOperator
FILTER_OPERATOR_CONTAINS: FilterOperator
FILTER_OPERATOR_STARTSWITH: FilterOperator
FILTER_OPERATOR_ENDSWITH: FilterOperator
FILTER_OPERATOR_IS_NULL: FilterOperator
FILTER_OPERATOR_NOT_NULL: FilterOperator

class Plan(_message.Message):
    __slots__ = ("dataset_id", "base_table", "joins", "select", "filters", "group_by", "order_by", "limit", "notes", "explanation", "anchor")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_TABLE_FIELD_NUMBER: _ClassVar[int]
    JOINS_FIELD_NUMBER: _ClassVar[int]
    SELECT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    base_table: str
    joins: _containers.RepeatedCompositeFieldContainer[Join]
    select: _containers.RepeatedCompositeFieldContainer[SelectItem]
    filters: _containers.RepeatedCompositeFieldContainer[Filter]
    group_by: _containers.RepeatedCompositeFieldContainer[GroupBy]
    order_by: _containers.RepeatedCompositeFieldContainer[OrderBy]
    limit: int
    notes: str
    explanation: str
    anchor: RowAnchor
    def __init__(self, dataset_id: _Optional[str] = ..., base_table: _Optional[str] = ..., joins: _Optional[_Iterable[_Union[Join, _Mapping]]] = ..., select: _Optional[_Iterable[_Union[SelectItem, _Mapping]]] = ..., filters: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., group_by: _Optional[_Iterable[_Union[GroupBy, _Mapping]]] = ..., order_by: _Optional[_Iterable[_Union[OrderBy, _Mapping]]] = ..., limit: _Optional[int] = ..., notes: _Optional[str] = ..., explanation: _Optional[str] = ..., anchor: _Optional[_Union[RowAnchor, _Mapping]] = ...) -> None: ...

class RowAnchor(_message.Message):
    __slots__ = ("match", "offset", "nearest")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    NEAREST_FIELD_NUMBER: _ClassVar[int]
    match: _containers.RepeatedCompositeFieldContainer[Filter]
    offset: int
    nearest: bool
    def __init__(self, match: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., offset: _Optional[int] = ..., nearest: _Optional[bool] = ...) -> None: ...

class Join(_message.Message):
    __slots__ = ("table", "type")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    table: str
    type: JoinType
    def __init__(self, table: _Optional[str] = ..., type: _Optional[_Union[JoinType, str]] = ...) -> None: ...

class SelectItem(_message.Message):
    __slots__ = ("column", "aggregation", "alias", "bucket", "as_number", "share_of", "minus_column", "as_year", "ratio_of", "duration_unit")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    AS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SHARE_OF_FIELD_NUMBER: _ClassVar[int]
    MINUS_COLUMN_FIELD_NUMBER: _ClassVar[int]
    AS_YEAR_FIELD_NUMBER: _ClassVar[int]
    RATIO_OF_FIELD_NUMBER: _ClassVar[int]
    DURATION_UNIT_FIELD_NUMBER: _ClassVar[int]
    column: str
    aggregation: Aggregation
    alias: str
    bucket: TimeBucket
    as_number: bool
    share_of: _containers.RepeatedCompositeFieldContainer[Filter]
    minus_column: str
    as_year: bool
    ratio_of: str
    duration_unit: DurationUnit
    def __init__(self, column: _Optional[str] = ..., aggregation: _Optional[_Union[Aggregation, str]] = ..., alias: _Optional[str] = ..., bucket: _Optional[_Union[TimeBucket, str]] = ..., as_number: _Optional[bool] = ..., share_of: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., minus_column: _Optional[str] = ..., as_year: _Optional[bool] = ..., ratio_of: _Optional[str] = ..., duration_unit: _Optional[_Union[DurationUnit, str]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("column", "op", "values", "as_number", "as_year")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    AS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AS_YEAR_FIELD_NUMBER: _ClassVar[int]
    column: str
    op: FilterOperator
    values: _containers.RepeatedCompositeFieldContainer[_value_pb2.Value]
    as_number: bool
    as_year: bool
    def __init__(self, column: _Optional[str] = ..., op: _Optional[_Union[FilterOperator, str]] = ..., values: _Optional[_Iterable[_Union[_value_pb2.Value, _Mapping]]] = ..., as_number: _Optional[bool] = ..., as_year: _Optional[bool] = ...) -> None: ...

class GroupBy(_message.Message):
    __slots__ = ("column", "bucket")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    column: str
    bucket: TimeBucket
    def __init__(self, column: _Optional[str] = ..., bucket: _Optional[_Union[TimeBucket, str]] = ...) -> None: ...

class OrderBy(_message.Message):
    __slots__ = ("key", "descending", "as_number", "file_order", "as_year")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    AS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FILE_ORDER_FIELD_NUMBER: _ClassVar[int]
    AS_YEAR_FIELD_NUMBER: _ClassVar[int]
    key: str
    descending: bool
    as_number: bool
    file_order: bool
    as_year: bool
    def __init__(self, key: _Optional[str] = ..., descending: _Optional[bool] = ..., as_number: _Optional[bool] = ..., file_order: _Optional[bool] = ..., as_year: _Optional[bool] = ...) -> None: ...
