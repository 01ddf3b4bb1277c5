"""The strict JSON Schema of `propose_plan`, generated from the Plan descriptor.

Strict tool use (`strict: true`) makes the API sample only inputs that match the schema, so the
schema must stay inside the subset strict mode compiles, and must say everything the planner
relies on: every object closes with `additionalProperties: false`, the fields a plan cannot do
without are `required`, a oneof is an `anyOf` of single-key objects (one per member), enums list
their values without the `*_UNSPECIFIED` zero (an unset field is the zero value), and fields the
service owns (`dataset_id`, `explanation`) are not offered at all. Messages are `$defs` referenced
by `$ref`, so `Filter` (in filters, share_of and the row anchor) is compiled once. A test checks
that the SDK's `transform_schema` leaves the schema unchanged (nothing unsupported to drop).

Descriptions are the proto comments, embedded at build time in `claude_comments`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from analyst_service.planning.claude_comments import COMMENTS
from csv_analyst.v1 import plan_pb2

# Plan fields the service fills in; the model never sees them.
SERVICE_OWNED = frozenset({"csv_analyst.v1.Plan.dataset_id", "csv_analyst.v1.Plan.explanation"})
# Fields without which a message means nothing (proto3 cannot say so; the planner can).
REQUIRED = frozenset({
    "csv_analyst.v1.Plan.base_table",
    "csv_analyst.v1.Join.table",
    "csv_analyst.v1.SelectItem.column",
    "csv_analyst.v1.Filter.column",
    "csv_analyst.v1.Filter.op",
    "csv_analyst.v1.GroupBy.column",
    "csv_analyst.v1.OrderBy.key",
    "csv_analyst.v1.RowAnchor.match",
    "csv_analyst.v1.RowAnchor.offset",
})

_SCALARS: dict[int, str] = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_DOUBLE: "number",
    FieldDescriptor.TYPE_FLOAT: "number",
    **{t: "integer" for t in (
        FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64)},
}


def _with_description(schema: dict[str, Any], *texts: str) -> dict[str, Any]:
    text = " ".join(t for t in texts if t)
    return {**schema, "description": text} if text else schema


def enum_schema(enum: EnumDescriptor) -> dict[str, Any]:
    """An enum as its value names, the zero value left out (omitting the field means it).

    Strict mode takes a bare `enum` (the SDK's transform drops `type` next to one).
    """
    if enum.full_name == "google.protobuf.NullValue":
        return {"type": "null"}
    zero, *values = enum.values
    described = " ".join(f"{v.name}: {COMMENTS[f'{enum.full_name}.{v.name}']}" for v in values
                          if f"{enum.full_name}.{v.name}" in COMMENTS)
    omitted = COMMENTS.get(f"{enum.full_name}.{zero.name}", "")
    return _with_description({"enum": [v.name for v in values]}, COMMENTS.get(enum.full_name, ""),
                             f"Omitted: {omitted}" if omitted else "", described)


class _Builder:
    """Collects `$defs` while walking one root message."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}

    def ref(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name.startswith("google.protobuf."):
            raise NotImplementedError(f"well-known type {message.full_name} in a plan field")
        if message.name not in self.defs:
            self.defs[message.name] = {}  # reserve first: a recursive message would loop
            self.defs[message.name] = self.message(message)
        return {"$ref": f"#/$defs/{message.name}"}

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type == FieldDescriptor.TYPE_ENUM:
            return enum_schema(field.enum_type)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return self.ref(field.message_type)
        if field.type not in _SCALARS:
            raise NotImplementedError(f"proto field type {field.type} of {field.full_name}")
        return {"type": _SCALARS[field.type]}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            raise NotImplementedError(f"map field {field.full_name}: strict mode has no additionalProperties schemas")
        single = self.single(field)
        comment = COMMENTS.get(field.full_name, "")
        if field.is_repeated:
            return _with_description({"type": "array", "items": single}, comment)
        if "$ref" in single:
            return _with_description(single, comment)
        return {**single, "description": " ".join(t for t in (comment, single.get("description", "")) if t)} \
            if comment or single.get("description") else single

    def message(self, message: Descriptor) -> dict[str, Any]:
        fields = [f for f in message.fields if f.full_name not in SERVICE_OWNED]
        oneofs = [o for o in message.oneofs if not o.name.startswith("_")]
        comment = COMMENTS.get(message.full_name, "")
        if oneofs and len(oneofs) == 1 and len(oneofs[0].fields) == len(fields):
            # A pure oneof (Value): exactly one member, as an anyOf of single-key objects.
            return _with_description({"anyOf": [self.closed([f], required=[f.name]) for f in fields]}, comment)
        if oneofs:
            raise NotImplementedError(f"oneof mixed with other fields in {message.full_name}")
        return _with_description(self.closed(fields, [f.name for f in fields if f.full_name in REQUIRED]), comment)

    def closed(self, fields: list[FieldDescriptor], required: list[str]) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": {f.name: self.field(f) for f in fields},
                                  "additionalProperties": False}
        if required:
            schema["required"] = required
        return schema


def strict_message_schema(message: Descriptor) -> dict[str, Any]:
    """The strict JSON Schema of a message: the root inline, nested messages in `$defs`.

    Args:
        message: The root message descriptor.

    Returns:
        An object schema keyed by proto field names (what `json_format.ParseDict` accepts).

    Raises:
        NotImplementedError: For map fields, well-known types and mixed oneofs (plans use none).
    """
    builder = _Builder()
    root = builder.message(message)
    return {**root, "$defs": dict(sorted(builder.defs.items()))} if builder.defs else root


@cache
def plan_schema() -> dict[str, Any]:
    """The strict input schema of `propose_plan` (cached: the same object every request)."""
    return strict_message_schema(plan_pb2.Plan.DESCRIPTOR)
