"""Helpers of the red-team suite: the case-file format, running a case, and leak/leftover checks.

Case files (tests/security/cases/*.sql) are Python-free data. Each case starts with a header block:

    -- case: snake_case_name
    -- expect: allow | reject | fail
    -- layer: policy | duckdb | sandbox | none
    -- code: SQL_POLICY_VIOLATION | QUERY_ERROR | RUNNER_TIMEOUT | RUNNER_RESOURCE_EXCEEDED [| ...]
    -- rule: <SqlPolicyError rule>           (optional; for policy rejections)
    -- not-in-result: <text>                 (optional, repeatable; must not appear in the result)

followed by the SQL (up to the next `-- case:`). `allow` cases must succeed;
An `allow` case may name the layer that makes it harmless (e.g. `sandbox` for a DELETE that only
touches the sandbox's private in-memory copy). `reject` means the run ends REJECTED (the policy stopped it before any sandbox); `fail` means
it ran and ended FAILED with one of the codes (DuckDB lock-down or the sandbox stopped it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from csv_analyst.v1 import run_pb2

CASES_DIR = Path(__file__).resolve().parent / "cases"
EXPECTS = {"allow", "reject", "fail"}
LAYERS = {"policy", "duckdb", "sandbox", "none"}
CODES = {"SQL_POLICY_VIOLATION", "QUERY_ERROR", "RUNNER_TIMEOUT", "RUNNER_RESOURCE_EXCEEDED"}
STATES = {"allow": run_pb2.RUN_STATE_SUCCEEDED, "reject": run_pb2.RUN_STATE_REJECTED, "fail": run_pb2.RUN_STATE_FAILED}

_CASE = re.compile(r"^-- case: (?P<name>[a-z0-9_]+)[ \t]*$", re.MULTILINE)
_HEADER = re.compile(r"^-- (?P<key>expect|layer|code|rule|not-in-result): (?P<value>.+)$")

# Text that must never appear in any answer, event or capsule: /etc/passwd content, the host
# environment's secrets, host paths of the service.
PASSWD_MARKERS = ("root:x:0:0", "/bin/bash", "nologin", "daemon:x:")


@dataclass(frozen=True)
class Case:
    """One red-team case."""

    file: str
    name: str
    sql: str
    expect: str
    layer: str
    codes: tuple[str, ...]
    rules: tuple[str, ...] = ()
    not_in_result: tuple[str, ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        return f"{self.file}:{self.name}"


def load_cases(filename: str) -> list[Case]:
    """Parse one case file; raises ValueError on a malformed header."""
    text = (CASES_DIR / filename).read_text()
    matches = list(_CASE.finditer(text))
    cases = []
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        lines = text[match.end():following.start() if following else len(text)].lstrip("\n").split("\n")
        headers: dict[str, list[str]] = {}
        while lines and (header := _HEADER.match(lines[0])):
            headers.setdefault(header["key"], []).append(header["value"].strip())
            lines.pop(0)
        sql = "\n".join(lines).strip("\n")
        expect = headers.get("expect", [""])[0]
        layer = headers.get("layer", ["none"])[0]
        codes = tuple(headers["code"][0].split("|")) if "code" in headers else ()
        codes = tuple(c.strip() for c in codes)
        name = match["name"]
        if expect not in EXPECTS or layer not in LAYERS or not set(codes) <= CODES:
            raise ValueError(f"{filename}:{name}: bad header expect={expect!r} layer={layer!r} code={codes!r}")
        if (expect == "allow") == bool(codes) or (expect != "allow" and layer == "none"):
            raise ValueError(f"{filename}:{name}: allow cases have no code; others need a code and a layer")
        rules = tuple(headers["rule"][0].split("|")) if "rule" in headers else ()
        cases.append(Case(filename, name, sql, expect, layer, codes, rules, tuple(headers.get("not-in-result", []))))
    return cases


def secrets() -> list[str]:
    """Values that must never leak: /etc/passwd markers and the service's secret-looking env values."""
    values = list(PASSWD_MARKERS)
    for key, value in os.environ.items():
        if len(value) >= 8 and any(word in key.upper() for word in ("TOKEN", "SECRET", "KEY", "PASSWORD")):
            values.append(value)
    return values


def leaks(text: str) -> list[str]:
    """The secrets that appear in text."""
    return [s for s in secrets() if s in text]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _descends_from_us(pid: int) -> bool:
    me = os.getpid()
    for _ in range(64):
        if pid in (0, 1):
            return False
        if pid == me:
            return True
        pid = _parent(pid)
    return False


def bwrap_processes() -> list[str]:
    """bwrap processes and sandboxed runners started by this test process and still alive.

    Other sessions on the machine may run their own sandboxes, so only our descendants count.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        is_bwrap = bool(argv and argv[0]) and os.path.basename(argv[0].decode(errors="replace")) == "bwrap"
        is_runner = b"runner" in argv and b"-m" in argv  # the sandboxed `python -m runner`
        if (is_bwrap or is_runner) and _descends_from_us(int(entry.name)):
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            found.append(f"pid {entry.name} state {state}: " + " ".join(a.decode(errors="replace") for a in argv)[-300:])
    return found


def busy_cgroups() -> list[str]:
    """csv-analyst run cgroups holding a process started by this test process."""
    busy = []
    for controller in ("memory", "pids"):
        parent = Path("/sys/fs/cgroup") / controller / "csv-analyst"
        if not parent.is_dir():
            continue
        for group in parent.iterdir():
            try:
                pids = [int(p) for p in (group / "cgroup.procs").read_text().split()] if group.is_dir() else []
            except (OSError, ValueError):
                continue
            if any(_descends_from_us(pid) for pid in pids):
                busy.append(str(group))
    return busy
