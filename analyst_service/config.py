"""Analyst service settings: one frozen dataclass, built once from flags by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """Where capsules live unless --capsule-db says otherwise."""
    return Path.home() / ".csv-analyst"


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
        allow_csv_paths: Accept ad-hoc datasets from CSV paths on this host (Ask/SubmitRun csv_paths).
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
    allow_csv_paths: bool = True
