"""Analyst service settings: one frozen dataclass, built once from flags by the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analyst_service.auth import KeyRing

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CLAUDE_MODEL = "claude-sonnet-4-6"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"


def default_home() -> Path:
    """Where capsules live unless --capsule-db says otherwise."""
    return Path.home() / ".csv-analyst"


@dataclass(frozen=True)
class ClaudeSettings:
    """Settings of the Claude planner (`analyst_service.planning.claude`).

    Attributes:
        api_key: Anthropic API key. The CLI reads it from ANTHROPIC_API_KEY; nothing reads the
            environment at import time. Empty means not configured: plans fail with
            FAILED_PRECONDITION, and the `auto` planner falls back to the offline planner.
        base_url: Messages API base URL (tests point it at a local fake server).
        model: Model name sent with every request.
        max_tokens: Output token cap of one model call.
        timeout_seconds: Limit of one HTTP request to the Messages API, seconds.
        max_retries: SDK retries of one model call on 408/409/429/5xx and connection errors
            (exponential backoff that honours `retry-after`); after them the plan fails UNAVAILABLE.
        max_corrections: Rejected proposals (unknown column, bad operator, policy violation) fed
            back to the model before the planner gives up with PLANNER_ERROR.
        max_model_calls: Hard cap on model calls for one question, schema look-ups included.
        streaming: Read replies as server-sent events instead of one JSON body.
        planning_timeout_seconds: Wall-clock limit of planning one question (every call, retry
            and wait); the run's own deadline, when sooner, wins.
        max_retry_wait_seconds: Longest wait before a retry, whatever `retry-after` asks.
    """

    api_key: str = field(default="", repr=False)
    base_url: str = DEFAULT_ANTHROPIC_BASE_URL
    model: str = DEFAULT_CLAUDE_MODEL
    max_tokens: int = 4096
    timeout_seconds: float = 60.0
    max_retries: int = 2
    max_corrections: int = 2
    max_model_calls: int = 6
    streaming: bool = False
    planning_timeout_seconds: float = 120.0
    max_retry_wait_seconds: float = 10.0


@dataclass(frozen=True)
class AnalystSettings:
    """Settings of the analyst service.

    Attributes:
        host: Interface to bind.
        port: TCP port; 0 picks a free one.
        runner_target: host:port of the RunnerService.
        datasets_dir: Folder with registry.json and the CSVs.
        capsule_db: SQLite file of the capsule store.
        planner: `offline` (default), `claude` or `auto`.
        run_timeout_seconds: Wall-clock limit per run.
        run_memory_bytes: DuckDB memory limit per run (the OS cap is 2x).
        max_rows: Row cap per result.
        max_plan_limit: Largest plan.limit accepted.
        csv_roots: Directories (or single files) under which Ask/SubmitRun may name server-side
            `csv_paths`; empty (the default) refuses every server-side path. Clients upload
            files instead (UploadDataset).
        upload_dir: Where uploaded CSV files are kept (content-addressed; listed at start).
        max_upload_bytes: Largest upload (all files of one UploadDataset call together).
        runner_credential: The runner service's credential, sent with every runner call.
        api_keys: Accepted client API keys; empty accepts every caller (loopback use only,
            unless allow_unauthenticated).
        allow_unauthenticated: Listen on a non-loopback address without API keys anyway.
        enable_python: Accept restricted Python runs (SubmitRun python_code); off by default.
        result_cache_bytes: Bound of the exact result cache (0 turns it off).
        result_cache_ttl_seconds: How long a cached answer may be repeated.
        claude: Settings of the Claude planner (used by `claude`, and by `auto` when a key is set).
    """

    host: str = "127.0.0.1"
    port: int = 50051
    runner_target: str = "127.0.0.1:50052"
    datasets_dir: Path = REPO_ROOT / "datasets"
    capsule_db: Path = default_home() / "capsules.sqlite3"
    planner: str = "offline"
    run_timeout_seconds: float = 30.0
    run_memory_bytes: int = 512 << 20
    max_rows: int = 1000
    max_plan_limit: int = 10_000
    csv_roots: tuple[Path, ...] = ()
    upload_dir: Path = default_home() / "uploads"
    max_upload_bytes: int = 1 << 30
    runner_credential: str = field(default="", repr=False)
    api_keys: KeyRing = field(default_factory=KeyRing, repr=False)
    allow_unauthenticated: bool = False
    enable_python: bool = False
    result_cache_bytes: int = 64 << 20
    result_cache_ttl_seconds: float = 600.0
    claude: ClaudeSettings = field(default_factory=ClaudeSettings)
