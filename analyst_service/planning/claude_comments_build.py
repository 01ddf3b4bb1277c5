"""Generate `claude_comments.py`: the comments of the protos the Claude planner's tools describe.

Generated modules (`*_pb2.py`) carry no comments, and the installed package ships no `.proto`
files, so the field and enum descriptions the model reads are extracted at build time from
protoc's source info (`--include_source_info`) and committed as a Python module. A test fails
when the committed module is stale; regenerate with:

    .venv/bin/python -m analyst_service.planning.claude_comments_build
"""

from __future__ import annotations

import argparse
import pprint
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "protos"
OUTPUT = Path(__file__).resolve().with_name("claude_comments.py")
# The files whose messages make up a Plan (the propose_plan input).
PROTO_FILES = ("csv_analyst/v1/plan.proto", "csv_analyst/v1/value.proto")

# Field numbers in descriptor.proto used by SourceCodeInfo.Location.path.
_FILE_MESSAGE, _FILE_ENUM = 4, 5
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2

HEADER = '''"""Comments of plan.proto and value.proto by full name: generated, do not edit.

Regenerate with `python -m analyst_service.planning.claude_comments_build` (a test fails when stale).
Enum values are keyed `<enum full name>.<VALUE_NAME>`.
"""

COMMENTS: dict[str, str] = '''


def _clean(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines())


def _walk_enum(enum: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], scope: str,
               names: dict[tuple[int, ...], str]) -> None:
    full = f"{scope}.{enum.name}"
    names[path] = full
    for i, value in enumerate(enum.value):
        names[(*path, _ENUM_VALUE, i)] = f"{full}.{value.name}"


def _walk_message(message: descriptor_pb2.DescriptorProto, path: tuple[int, ...], scope: str,
                  names: dict[tuple[int, ...], str]) -> None:
    full = f"{scope}.{message.name}"
    names[path] = full
    for i, field in enumerate(message.field):
        names[(*path, _MESSAGE_FIELD, i)] = f"{full}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        _walk_message(nested, (*path, _MESSAGE_NESTED, i), full, names)
    for i, enum in enumerate(message.enum_type):
        _walk_enum(enum, (*path, _MESSAGE_ENUM, i), full, names)


def comments_from(files: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """Leading comments of every message, field, enum and enum value, by full name.

    Args:
        files: Descriptors compiled with source info.

    Returns:
        Comment text (lines joined with spaces) by full name, sorted.
    """
    comments: dict[str, str] = {}
    for file in files.file:
        names: dict[tuple[int, ...], str] = {}  # SourceCodeInfo path -> full name
        for i, message in enumerate(file.message_type):
            _walk_message(message, (_FILE_MESSAGE, i), file.package, names)
        for i, enum in enumerate(file.enum_type):
            _walk_enum(enum, (_FILE_ENUM, i), file.package, names)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name and location.leading_comments.strip():
                comments[name] = _clean(location.leading_comments)
    return dict(sorted(comments.items()))


def compile_comments(proto_root: Path = PROTO_ROOT) -> dict[str, str]:
    """Run protoc with source info over PROTO_FILES and return their comments.

    Raises:
        RuntimeError: When protoc fails.
    """
    from grpc_tools import protoc  # a dev dependency: only generation needs it

    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "plan.binpb"
        args = ["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}", "--include_source_info",
                f"--descriptor_set_out={out}", *PROTO_FILES]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return comments_from(files)


def render(comments: dict[str, str]) -> str:
    """The generated module's text."""
    return HEADER + pprint.pformat(comments, width=100, sort_dicts=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write claude_comments.py, or with --check exit 1 when it is stale."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed module is stale")
    options = parser.parse_args(argv)
    text = render(compile_comments())
    if options.check:
        stale = not OUTPUT.is_file() or OUTPUT.read_text(encoding="utf-8") != text
        if stale:
            print(f"{OUTPUT} is stale: run python -m analyst_service.planning.claude_comments_build", file=sys.stderr)
        return 1 if stale else 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
