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


def _processes() -> dict[int, tuple[int, str, bytes]]:
    """pid -> (parent pid, state, raw cmdline) of every process we can read."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            table[int(entry.name)] = (int(stat[1]), stat[0], (entry / "cmdline").read_bytes())
        except (OSError, IndexError, ValueError):
            continue
    return table


def sandbox_processes(marker: str) -> list[str]:
    """bwrap sandboxes whose command line mentions `marker` (a directory only the red-team stack
    binds), and every process inside them, that descend from this test process.

    Other stacks of the same pytest process (e.g. the integration suite's, with its warm pool)
    and other sessions on the machine are not counted.
    """
    table = _processes()
    me = os.getpid()

    def descends(pid: int, root: int) -> bool:
        for _ in range(64):
            if pid == root:
                return True
            if pid not in table or pid in (0, 1):
                return False
            pid = table[pid][0]
        return False

    roots = [pid for pid, (_, _, cmd) in table.items()
             if cmd.split(b"\0")[0].endswith(b"bwrap") and marker.encode() in cmd and descends(pid, me)]
    found = []
    for pid, (_, state, cmd) in table.items():
        if any(descends(pid, root) for root in roots):
            found.append(f"pid {pid} state {state}: " + cmd.replace(b"\0", b" ").decode(errors="replace")[-200:])
    return found


def busy_cgroups(marker: str) -> list[str]:
    """csv-analyst run cgroups holding a process of a red-team sandbox (see sandbox_processes)."""
    pids = {int(line.split()[1]) for line in sandbox_processes(marker)}
    busy = []
    for controller in ("memory", "pids"):
        parent = Path("/sys/fs/cgroup") / controller / "csv-analyst"
        if not parent.is_dir():
            continue
        for group in parent.iterdir():
            try:
                members = {int(p) for p in (group / "cgroup.procs").read_text().split()} if group.is_dir() else set()
            except (OSError, ValueError):
                continue
            if members & pids:
                busy.append(str(group))
    return busy
