"""The Claude planner's tools (all strict) and the bounded schema documents they return.

`propose_plan` takes a Plan (its strict schema comes from the Plan descriptor, see
`claude_schema`). `get_schema` returns the profile of one table, capped and filterable: at most
`GET_SCHEMA_MAX_COLUMNS` columns and `GET_SCHEMA_MAX_VALUES` values per column per call (fewer
when the result would pass `GET_SCHEMA_MAX_CHARS`), narrowed by column names and a
case-insensitive text to look for, so no call can flood the context.
`clarify` asks the analyst back: a message and up to three readings, each a Plan the service
validates and compiles like a proposal (the structured `Run.clarification`). It is not strict on
purpose: the API compiles every strict schema of a request into one grammar and refuses grammars
past a size it does not publish, and this schema holds the whole Plan a second time; the service
parses every reading anyway. `execute_python` (offered only when the analyst asked for Python and
the server runs it) answers with a restricted pandas program instead of a plan.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from google.protobuf import json_format

from analyst_service.planning.claude_schema import plan_schema
from csv_analyst.v1 import dataset_pb2, plan_pb2

GET_SCHEMA = "get_schema"
PROPOSE_PLAN = "propose_plan"
CLARIFY = "clarify"
EXECUTE_PYTHON = "execute_python"
MAX_READINGS = 3

PROMPT_SAMPLE_VALUES = 8  # frequent values per column in the cached overview
SAMPLE_VALUE_CHARS = 80  # a longer cell is cut (a note column's values say little more)
WIDE_TABLE_COLUMNS = 40  # past this many columns in the dataset the overview lists names and types only
DESCRIPTION_CHARS = 200
GET_SCHEMA_MAX_COLUMNS = 30
GET_SCHEMA_MAX_VALUES = 50
# Fields the model never writes (the service fills them in): never shown back to it either.
NOT_REPLAYED = ("dataset_id", "explanation", "notes")
GET_SCHEMA_MAX_CHARS = 16_000  # about 4,000 tokens per tool result: values per column shrink to fit


def clarify_schema() -> dict[str, Any]:
    """The input schema of `clarify`: a message and readings, each a Plan (the propose_plan schema's
    root, its `$defs` shared at the top)."""
    plan = plan_schema()
    reading = {k: v for k, v in plan.items() if k != "$defs"}
    return {"type": "object", "properties": {
        "message": {"type": "string", "description": "One or two sentences to the analyst: what is unclear "
                                                     "(name the words) and what the readings differ in."},
        "readings": {"type": "array", "items": reading,
                     "description": f"Up to {MAX_READINGS} Plans, one per reasonable reading, most likely first; "
                                    "each is validated like a propose_plan input (empty when no reading fits "
                                    "this dataset)."}},
        "required": ["message", "readings"], "additionalProperties": False, "$defs": plan.get("$defs", {})}


@cache
def tool_definitions(python: bool = False) -> tuple[dict[str, Any], ...]:
    """The tools offered to the model: the same objects every call, so they stay in the prompt cache.

    Args:
        python: Also offer `execute_python` (the analyst asked for Python and the server runs it).
    """
    return (
        {"name": GET_SCHEMA, "strict": True,
         "description": "Return the profile of one table's columns: type, description, distinct/null counts, min/max "
                        f"and up to {GET_SCHEMA_MAX_VALUES} of the most frequent values per column, for at most "
                        f"{GET_SCHEMA_MAX_COLUMNS} columns per call. Narrow it with `columns` and `contains` (only "
                        "values containing that text, case-insensitive) to find a filter value's exact spelling.",
         "input_schema": {"type": "object", "properties": {
             "table": {"type": "string", "description": "A table name from <dataset_schema>."},
             "columns": {"type": "array", "items": {"type": "string"},
                         "description": "Only these columns (all of the table's columns when omitted)."},
             "contains": {"type": "string", "description": "Only values containing this text, case-insensitive."}},
             "required": ["table"], "additionalProperties": False}},
        {"name": PROPOSE_PLAN, "strict": True,
         "description": "Propose the Plan that answers the question. The service validates it against the dataset "
                        "schema and the read-only SQL policy; a rejection comes back as an error listing each "
                        "violation with its field path (such as plan.select[0].column). Fix those and propose again.",
         "input_schema": plan_schema()},
        {"name": CLARIFY,
         "description": "Ask the analyst instead of guessing, when the question has several reasonable readings "
                        "or words no plan can account for: a short message and up to three readings as Plans. "
                        "The service validates each reading like a proposal and shows the analyst the valid "
                        "ones to choose from; their choice or reply comes back in this conversation.",
         "input_schema": clarify_schema()},
        *([{"name": EXECUTE_PYTHON, "strict": True,
            "description": "Answer with a short restricted pandas program instead of a Plan (the analyst asked for "
                           "Python). Each table is a DataFrame named after it (also in `dfs`); `pd` and `np` are "
                           "provided, imports are not allowed; set `result_df` (a DataFrame), or `result_rows` "
                           "(+ `result_columns`), or a scalar or list `result`. No file, network or introspection "
                           "APIs. The service checks the program against its policy before it runs in the "
                           "sandbox; a refusal comes back naming the construct and line.",
            "input_schema": {"type": "object", "properties": {
                "code": {"type": "string", "description": "The program."}},
                "required": ["code"], "additionalProperties": False}}] if python else []),
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _column_entry(column: dataset_pb2.Column, samples: int, contains: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"name": column.name, "type": column.type}
    if column.description:
        entry["description"] = _cut(column.description, DESCRIPTION_CHARS)
    if not column.HasField("profile"):
        return entry
    profile = column.profile
    entry["distinct_count"] = profile.distinct_count
    entry["null_count"] = profile.null_count
    if profile.min_value or profile.max_value:
        entry["min"], entry["max"] = _cut(profile.min_value, SAMPLE_VALUE_CHARS), _cut(profile.max_value, SAMPLE_VALUE_CHARS)
    values = [v for v in profile.top_values if contains.casefold() in v.casefold()]
    if values and samples:
        entry["sample_values"] = [_cut(v, SAMPLE_VALUE_CHARS) for v in values[:samples]]
        if len(values) > samples:
            entry["more_values"] = len(values) - samples
    return entry


def overview_document(dataset: dataset_pb2.Dataset) -> dict[str, Any]:
    """The question-independent schema for the cached system prompt, bounded for wide datasets.

    Every table and column is listed (names must be known to be used); a dataset of more than
    WIDE_TABLE_COLUMNS columns is listed by name and type only, and the question's linked columns
    (sent after the cached prefix) and `get_schema` supply the values.
    """
    wide = sum(len(t.columns) for t in dataset.tables) > WIDE_TABLE_COLUMNS
    tables = []
    for table in dataset.tables:
        if wide:
            columns: list[Any] = [f"{c.name} ({c.type})" for c in table.columns]
        else:
            columns = [_column_entry(c, PROMPT_SAMPLE_VALUES) for c in table.columns]
        tables.append({"name": table.name, "row_count": table.row_count, "columns": columns})
    document: dict[str, Any] = {"title": dataset.title, "description": _cut(dataset.description, 1000),
                                "tables": tables,
                                "relationships": [f"{r.from_table}.{r.from_column} -> {r.to_table}.{r.to_column}"
                                                  for r in dataset.relationships]}
    if wide:
        document["note"] = f"Wide dataset: columns are listed without values; call {GET_SCHEMA} for a table's profile."
    return document


def table_document(dataset: dataset_pb2.Dataset, table: str, columns: list[str] | None = None,
                   contains: str = "") -> dict[str, Any]:
    """One table's profile for `get_schema`, capped (see the module docstring).

    Args:
        dataset: The profiled dataset.
        table: The table (the caller checked it exists).
        columns: Only these columns; unknown names are listed under `unknown_columns`.
        contains: Only values containing this text, case-insensitive.

    Returns:
        The table's row count and column profiles, with what was left out said in the document.
    """
    source = next(t for t in dataset.tables if t.name == table)
    wanted = [c for c in source.columns if columns is None or c.name in columns]
    for samples in (GET_SCHEMA_MAX_VALUES, 20, PROMPT_SAMPLE_VALUES, 3, 0):
        document: dict[str, Any] = {"table": table, "row_count": source.row_count,
                                    "columns": [_column_entry(c, samples, contains)
                                                for c in wanted[:GET_SCHEMA_MAX_COLUMNS]]}
        if len(data_json(document)) <= GET_SCHEMA_MAX_CHARS:
            break
    if samples < GET_SCHEMA_MAX_VALUES:
        document["values_cut"] = (f"at most {samples} values per column to fit the result; ask for fewer columns "
                                  "or narrow with contains")
    if len(wanted) > GET_SCHEMA_MAX_COLUMNS:
        document["more_columns"] = [c.name for c in wanted[GET_SCHEMA_MAX_COLUMNS:]]
        document["note"] = f"Only {GET_SCHEMA_MAX_COLUMNS} columns per call: ask for the others by name."
    known = {c.name for c in source.columns}
    unknown = [c for c in columns or [] if c not in known]
    if unknown:
        document["unknown_columns"] = unknown
    return document


def data_json(value: Any) -> str:
    """JSON text safe to embed between tags: `<`, `>` and `&` are escaped, so no cell value or
    question can close the tag that marks it as data."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def plan_input(plan: plan_pb2.Plan) -> dict[str, Any]:
    """A plan as the model would have written it: proto JSON with int64 values as JSON integers
    (json_format writes them as strings, which the strict schema refuses), service fields left out."""
    document = json_format.MessageToDict(plan, preserving_proto_field_name=True)
    for name in NOT_REPLAYED:
        document.pop(name, None)
    return _integers(document)


def _integers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: int(v) if k == "int_value" and isinstance(v, str) else _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value
