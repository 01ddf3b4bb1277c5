"""The strict `propose_plan` schema: derived from the Plan descriptor, inside the strict subset, and
described from comments embedded at build time (checked from an installed wheel too).

Every tool input the Claude tests script is validated against these schemas by the fake when it
is sent (`check_replies`, see test_claude_fake); only the hijacked-model tests turn that off."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from analyst_service.planning import claude_comments_build
from analyst_service.planning.claude_comments import COMMENTS
from analyst_service.planning.claude_schema import REQUIRED, SERVICE_OWNED, plan_schema
from analyst_service.planning.claude_tools import tool_definitions
from csv_analyst.v1 import plan_pb2
from tests.fakes.messages_rules import strict_schema_problems

REPO = Path(__file__).resolve().parents[4]


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return root["$defs"][ref.rsplit("/", 1)[-1]] if ref else schema


def _assert_covers(descriptor: Descriptor, schema: dict[str, Any], root: dict[str, Any], path: str) -> None:
    schema = _resolve(schema, root)
    if "anyOf" in schema:  # a pure oneof: one single-key object per member
        members = [next(iter(v["properties"])) for v in schema["anyOf"]]
        assert members == [f.name for f in descriptor.fields], path
        assert all(v["required"] == list(v["properties"]) and v["additionalProperties"] is False
                   for v in schema["anyOf"]), path
        return
    assert schema["type"] == "object" and schema["additionalProperties"] is False, path
    offered = {f.name for f in descriptor.fields if f.full_name not in SERVICE_OWNED}
    assert set(schema["properties"]) == offered, path
    assert set(schema.get("required", [])) == {f.name for f in descriptor.fields if f.full_name in REQUIRED}, path
    for field in descriptor.fields:
        if field.name not in offered:
            continue
        entry = schema["properties"][field.name]
        if field.is_repeated:
            assert entry["type"] == "array", f"{path}.{field.name}"
            entry = entry["items"]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            _assert_covers(field.message_type, entry, root, f"{path}.{field.name}")
        elif field.type == FieldDescriptor.TYPE_ENUM and field.enum_type.full_name != "google.protobuf.NullValue":
            assert entry["enum"] == [v.name for v in field.enum_type.values if v.number != 0], f"{path}.{field.name}"


def test_the_schema_covers_every_plan_field_except_service_owned_ones() -> None:
    schema = plan_schema()
    _assert_covers(plan_pb2.Plan.DESCRIPTOR, schema, schema, "plan")
    assert "dataset_id" not in schema["properties"] and "explanation" not in schema["properties"]
    assert schema["required"] == ["base_table"]
    assert not any(name.endswith("_UNSPECIFIED") for name in json.dumps(schema).split('"'))


def test_the_sdk_transform_keeps_every_tool_schema_unchanged() -> None:
    """Nothing in the schemas is outside what strict mode compiles (the SDK would move it to a description)."""
    for tool in tool_definitions(python=True):
        # clarify is the one tool left out of strict mode on purpose (see the test below); its
        # schema still stays inside the strict subset, so turning it on is a one-word change.
        assert tool.get("strict") is (None if tool["name"] == "clarify" else True)
        assert anthropic.transform_schema(tool["input_schema"]) == tool["input_schema"], tool["name"]
        assert strict_schema_problems(tool["input_schema"]) == [], tool["name"]


def test_the_value_oneof_accepts_exactly_one_kind() -> None:
    validator = jsonschema.Draft202012Validator(plan_schema())
    filter_with = {"base_table": "t", "filters": [{"column": "c", "op": "FILTER_OPERATOR_EQ", "values": []}]}

    def valid(*values: dict[str, Any]) -> bool:
        document = json.loads(json.dumps(filter_with))
        document["filters"][0]["values"] = list(values)
        return validator.is_valid(document)

    assert valid({"int_value": 3}, {"string_value": "x"}, {"null_value": None}, {"bool_value": True})
    assert not valid({"int_value": 3, "string_value": "3"})
    assert not valid({"int_value": "3"})  # int64 as a JSON integer, never a string
    assert not valid({})


def test_required_fields_and_unspecified_choices_are_enforced() -> None:
    validator = jsonschema.Draft202012Validator(plan_schema())
    assert not validator.is_valid({"select": [{"column": "x"}]})  # base_table missing
    assert not validator.is_valid({"base_table": "t", "filters": [{"column": "c"}]})  # op missing
    assert not validator.is_valid({"base_table": "t", "filters": [{"column": "c", "op": "FILTER_OPERATOR_UNSPECIFIED"}]})
    assert not validator.is_valid({"base_table": "t", "dataset_id": "d"})
    assert validator.is_valid({"base_table": "t"})


def test_schema_shaped_plans_parse_with_parse_dict() -> None:
    document = {"base_table": "orders", "filters": [{"column": "n", "op": "FILTER_OPERATOR_IN",
                                                     "values": [{"int_value": 1}, {"null_value": None}]}]}
    jsonschema.validate(document, plan_schema())
    parsed = json_format.ParseDict(document, plan_pb2.Plan())
    assert parsed.filters[0].values[0].int_value == 1 and parsed.filters[0].values[1].WhichOneof("kind") == "null_value"


def test_descriptions_come_from_the_build_time_comments() -> None:
    schema = plan_schema()
    assert schema["properties"]["limit"]["description"] == COMMENTS["csv_analyst.v1.Plan.limit"]
    aggregation = schema["$defs"]["SelectItem"]["properties"]["aggregation"]["description"]
    assert "AGGREGATION_COUNT: COUNT(column), or COUNT(*)" in aggregation
    assert "Omitted: No aggregation" in aggregation


def test_the_embedded_comments_are_fresh() -> None:
    """Regenerate with `python -m analyst_service.planning.claude_comments_build` when this fails."""
    assert claude_comments_build.main(["--check"]) == 0


def test_descriptions_reach_the_model_from_an_installed_wheel(tmp_path: Path) -> None:
    """Built as a wheel and imported from it, away from the source tree (no protos/ to read)."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("csv_analyst-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".proto")]
        archive.extractall(tmp_path / "site")
    probe = ("import json, analyst_service.planning.claude_schema as s; "
             "print(json.dumps([s.__file__, s.plan_schema()['properties']['limit'].get('description', '')]))")
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, ran.stderr
    origin, description = json.loads(ran.stdout)
    assert origin.startswith(str(tmp_path / "site")) and description == COMMENTS["csv_analyst.v1.Plan.limit"]


@pytest.mark.parametrize("name", ["get_schema", "execute_python"])
def test_the_other_tools_are_strict_and_closed(name: str) -> None:
    tool = next(t for t in tool_definitions(python=True) if t["name"] == name)
    assert tool["strict"] is True
    assert tool["input_schema"]["additionalProperties"] is False and tool["input_schema"]["required"]
    assert anthropic.transform_schema(tool["input_schema"]) == tool["input_schema"]


def test_clarify_holds_plans_without_a_second_strict_grammar() -> None:
    """`clarify` repeats the whole Plan schema; strict, it would double the grammar the API compiles
    for the request (which the API refuses past an unpublished size), so it is not strict: the
    service parses every reading like a proposal instead."""
    tool = next(t for t in tool_definitions() if t["name"] == "clarify")
    schema = tool["input_schema"]
    assert "strict" not in tool and schema["required"] == ["message", "readings"]
    assert schema["properties"]["readings"]["items"]["required"] == plan_schema()["required"]
    assert schema["$defs"] == plan_schema()["$defs"]
    reading = {"base_table": "orders", "select": [{"column": "*", "aggregation": "AGGREGATION_COUNT"}]}
    jsonschema.Draft202012Validator(schema).validate({"message": "Which count?", "readings": [reading]})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"message": "x", "readings": [{"select": []}]})
