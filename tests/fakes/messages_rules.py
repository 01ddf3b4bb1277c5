"""What the real Messages API enforces and computes, for the fake in `messages_api`.

- `protocol_problems`: requests the API refuses with 400 (conversation rules, tool names of 1-64
  characters, strict schemas outside the subset strict mode compiles, too many cache breakpoints).
- `reply_problems`: replies the API cannot produce for a request (a text-only reply when
  `tool_choice` forces a tool, parallel calls when they are disabled, a tool that was not offered,
  a strict tool's input that does not match its `input_schema`). Tests of a hijacked model turn
  this check off.
- `Accounting`: token counts (`count_tokens`, `usage`) estimated from the text, and prompt-cache
  reads and writes computed from identical prefixes up to each `cache_control` breakpoint (with
  the API's 20-block lookback and a minimum cacheable length), not scripted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

MAX_CACHE_BREAKPOINTS = 4
CACHE_LOOKBACK_BLOCKS = 20
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Tokens the API adds for the tool-use system prompt (Claude 4 models): auto/none vs any/tool.
TOOL_PROMPT_TOKENS = {"auto": 346, "none": 346, "any": 313, "tool": 313}
# Stop reasons that end a reply early: no tool call is owed then, whatever tool_choice said.
EARLY_STOPS = {"max_tokens", "refusal", "model_context_window_exceeded", "pause_turn"}
# Keywords strict mode compiles (the SDK's transform_schema keeps exactly these).
STRICT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
                   "allOf", "$ref", "$defs", "description", "title", "default", "format", "minItems"}
_TOKEN = re.compile(r"[A-Za-z]{1,6}|\d{1,3}|[^\sA-Za-z\d]")


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate near a BPE tokenizer's: letter runs of up to 6, digit runs
    of up to 3, and each other non-space character count one token."""
    return len(_TOKEN.findall(text))


def protocol_problems(body: dict[str, Any], headers: dict[str, str], counting: bool = False) -> list[str]:
    """What the real Messages API would refuse in this request (the subset the fake checks);
    `counting` for count_tokens, which takes no max_tokens."""
    problems = []
    if not headers.get("anthropic-version"):
        problems.append("anthropic-version: header is required")
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model: a model name is required")
    if not counting and (not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1):
        problems.append("max_tokens: a positive integer is required")
    tools = body.get("tools", [])
    for index, tool in enumerate(tools):
        if not TOOL_NAME.match(str(tool.get("name", ""))):
            problems.append(f"tools.{index}.name: must match {TOOL_NAME.pattern}")
        schema = tool.get("input_schema") or {}
        if schema.get("type") != "object":
            problems.append(f"tools.{index}.input_schema: type must be object")
        if tool.get("strict"):
            problems.extend(f"tools.{index}.input_schema{p}" for p in strict_schema_problems(schema))
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool" and choice.get("name") not in {t.get("name") for t in tools}:
        problems.append("tool_choice.name: names no offered tool")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages: at least one message is required"]
    if messages[0].get("role") != "user":
        problems.append("messages.0.role: the first message must be from the user")
    for index, (previous, current) in enumerate(itertools.pairwise(messages), start=1):
        if previous.get("role") == current.get("role"):
            problems.append(f"messages.{index}.role: roles must alternate between user and assistant")
        if previous.get("role") != "assistant" or isinstance(previous.get("content"), str):
            continue
        wanted = [b["id"] for b in previous["content"] if b.get("type") == "tool_use"]
        content = current.get("content")
        blocks = [] if isinstance(content, str) else list(content or [])
        leading = [b.get("tool_use_id") for b in itertools.takewhile(lambda b: b.get("type") == "tool_result", blocks)]
        if wanted and sorted(leading) != sorted(wanted):
            problems.append(f"messages.{index}.content: tool_use ids {wanted} need tool_result blocks first, "
                            f"found {leading}")
    ids = [b.get("id") for m in messages if isinstance(m.get("content"), list) for b in m["content"]
           if b.get("type") == "tool_use"]
    if len(ids) != len(set(ids)):
        problems.append("messages: tool_use ids must be unique")
    breakpoints = sum(1 for block in all_blocks(body) if isinstance(block, dict) and block.get("cache_control"))
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        problems.append(f"a maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided, "
                        f"found {breakpoints}")
    return problems


def strict_schema_problems(schema: Any, path: str = "") -> list[str]:
    """Where a strict tool's schema leaves the subset strict mode compiles."""
    if not isinstance(schema, dict):
        return [f"{path}: a schema must be an object"]
    problems = [f"{path}.{key}: not supported with strict" for key in schema if key not in STRICT_KEYWORDS]
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        problems.append(f"{path}.additionalProperties: must be false with strict")
    if schema.get("minItems") not in (None, 0, 1):
        problems.append(f"{path}.minItems: only 0 or 1 with strict")
    for name, child in (schema.get("properties") or {}).items():
        problems.extend(strict_schema_problems(child, f"{path}.properties.{name}"))
    for name, child in (schema.get("$defs") or {}).items():
        problems.extend(strict_schema_problems(child, f"{path}.$defs.{name}"))
    for key in ("anyOf", "allOf"):
        for i, child in enumerate(schema.get(key) or []):
            problems.extend(strict_schema_problems(child, f"{path}.{key}.{i}"))
    if "items" in schema:
        problems.extend(strict_schema_problems(schema["items"], f"{path}.items"))
    missing = set(schema.get("required") or []) - set(schema.get("properties") or {})
    if missing:
        problems.append(f"{path}.required: names no property: {sorted(missing)}")
    return problems


def reply_problems(body: dict[str, Any], reply: dict[str, Any]) -> list[str]:
    """Why the API could not have sent this message in answer to this request."""
    if reply.get("type") != "message" or reply.get("stop_reason") in EARLY_STOPS:
        return []
    problems = []
    uses = [b for b in reply.get("content", []) if b.get("type") == "tool_use"]
    choice = body.get("tool_choice") or {"type": "auto"}
    if choice.get("type") in ("any", "tool") and not uses:
        problems.append(f"tool_choice {choice['type']!r} forces a tool call; the reply has none")
    if choice.get("type") == "tool" and any(u["name"] != choice.get("name") for u in uses):
        problems.append(f"tool_choice names {choice.get('name')!r}; the reply calls another tool")
    if choice.get("type") == "none" and uses:
        problems.append("tool_choice 'none' forbids tool calls")
    if choice.get("disable_parallel_tool_use") and len(uses) > 1:
        problems.append(f"parallel tool use is disabled; the reply calls {len(uses)} tools")
    tools = {t.get("name"): t for t in body.get("tools", [])}
    for use in uses:
        tool = tools.get(use["name"])
        if tool is None:
            problems.append(f"the reply calls {use['name']!r}, which the request does not offer")
        elif tool.get("strict"):
            validator = jsonschema.Draft202012Validator(tool["input_schema"])
            problems.extend(f"{use['name']} input {list(e.absolute_path)}: {e.message}"
                            for e in validator.iter_errors(use.get("input")))
    return problems


def all_blocks(body: dict[str, Any]) -> Iterable[Any]:
    """Tools, system blocks and message blocks, in prompt order (the order caching reads)."""
    yield from body.get("tools", [])
    system = body.get("system")
    if isinstance(system, list):
        yield from system
    elif isinstance(system, str) and system:
        yield {"type": "text", "text": system}
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            yield from ({**b, "_role": message.get("role")} for b in content)
        elif isinstance(content, str):
            yield {"type": "text", "text": content, "_role": message.get("role")}


def _plain(block: Any) -> str:
    if not isinstance(block, dict):
        return json.dumps(block, sort_keys=True)
    return json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True)


def _block_tokens(block: Any) -> int:
    if isinstance(block, dict) and block.get("type") == "text" and "input_schema" not in block:
        return estimate_tokens(str(block.get("text", ""))) + 3
    return estimate_tokens(_plain(block))


@dataclass
class Accounting:
    """Token counts and the prompt cache of one fake server.

    Attributes:
        min_cacheable_tokens: Prefixes shorter than this are neither written nor read (the
            API's minimum cacheable prompt length; 1024 tokens for Sonnet and Opus models).
    """

    min_cacheable_tokens: int = 1024
    cached: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, body: dict[str, Any]) -> int:
        """Input tokens of a request (what count_tokens returns)."""
        return self._counts(body)[0][-1] if self._counts(body)[0] else 0

    def _counts(self, body: dict[str, Any]) -> tuple[list[int], list[str], list[bool]]:
        blocks = list(all_blocks(body))
        overhead = TOOL_PROMPT_TOKENS.get((body.get("tool_choice") or {"type": "auto"})["type"], 346) \
            if body.get("tools") else 0
        running, cumulative, keys, marks = overhead, [], [], []
        digest = hashlib.sha256(str(body.get("model")).encode())
        for block in blocks:
            running += _block_tokens(block)
            digest.update(_plain(block).encode())
            cumulative.append(running)
            keys.append(digest.copy().hexdigest())
            marks.append(isinstance(block, dict) and bool(block.get("cache_control")))
        return cumulative, keys, marks

    def usage(self, body: dict[str, Any], reply_content: list[dict[str, Any]]) -> dict[str, int]:
        """The `usage` of a reply: cache reads and writes from identical prefixes, the rest input."""
        cumulative, keys, marks = self._counts(body)
        total = cumulative[-1] if cumulative else 0
        read = write_to = 0
        with self.lock:
            breakpoints = [i for i, marked in enumerate(marks) if marked]
            for bp in breakpoints:  # the longest cached prefix within each breakpoint's lookback
                for i in range(bp, max(-1, bp - CACHE_LOOKBACK_BLOCKS), -1):
                    if keys[i] in self.cached:
                        read = max(read, cumulative[i])
                        break
            cacheable = [bp for bp in breakpoints if cumulative[bp] >= self.min_cacheable_tokens]
            if cacheable and cumulative[cacheable[-1]] > read:
                write_to = cumulative[cacheable[-1]]
            self.cached.update(keys[bp] for bp in cacheable)
        written = write_to - read if write_to else 0
        output = sum(estimate_tokens(json.dumps(b.get("input") if b.get("type") == "tool_use" else b.get("text", "")))
                     for b in reply_content) + 1
        return {"input_tokens": total - read - written, "output_tokens": output,
                "cache_creation_input_tokens": written, "cache_read_input_tokens": read}
