"""The benchmark's own arithmetic and measurements (not timings: nothing here asserts a speed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.perf import measure


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert measure.percentile(values, 0.5) == pytest.approx(2.5)
    assert measure.percentile(values, 0.0) == 1.0 and measure.percentile(values, 1.0) == 4.0
    assert measure.percentile(values, 0.95) == pytest.approx(3.85)


def test_summary_is_in_milliseconds() -> None:
    summary = measure.summary_ms([0.001, 0.003, 0.002])
    assert summary == {"p50_ms": 2.0, "p95_ms": 2.9, "max_ms": 3.0, "mean_ms": 2.0, "n": 3}


def test_floor_times_the_query_on_the_materialised_file_with_the_given_pause(tmp_path: Path) -> None:
    csv = tmp_path / "orders.csv"
    csv.write_text("status,total\n" + "".join(f"{'a' if i % 2 else 'b'},{i}\n" for i in range(100)))
    database = tmp_path / "floor.duckdb"
    measure.materialise(csv, database, "orders")
    times = measure.floor_seconds(database, "SELECT status, sum(total) FROM orders GROUP BY 1", 3, pause_seconds=0.01)
    assert len(times) == 3 and all(t > 0 for t in times)
