"""The ingestion problems of a dataset: what reading its files found or fixed without refusing them.

Two sources, both computed in the sandbox (the files are untrusted and never parsed here):
- the runner's notes while it loaded each file (`runner: table 'NAME': [kind] message` lines on the
  stderr of a profiling run; see runner.ingest): renamed header names, a delimiter other than a
  comma, decimal commas read as numbers, a header without rows;
- the profile: a column with no value in any row of a table that has rows is an empty column.
Problems the upload store fixed itself (a re-encoded file) are added by the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from csv_analyst.v1 import dataset_pb2

_NOTE = re.compile(r"^runner: table '(?P<table>[^']*)': \[(?P<kind>[a-z_]+)\] (?P<message>.+)$")


def problems_from_notes(stderr: str, tables: Iterable[str]) -> list[dataset_pb2.IngestionProblem]:
    """The runner's load notes of a run as problems, in order, each once (only for known tables)."""
    known = set(tables)
    problems: list[dataset_pb2.IngestionProblem] = []
    seen: set[tuple[str, str, str]] = set()
    for line in stderr.splitlines():
        match = _NOTE.match(line.strip())
        if match is None or match["table"] not in known:
            continue
        key = (match["table"], match["kind"], match["message"])
        if key not in seen:
            seen.add(key)
            problems.append(dataset_pb2.IngestionProblem(table=key[0], kind=key[1], message=key[2]))
    return problems


def empty_column_problems(dataset: dataset_pb2.Dataset) -> list[dataset_pb2.IngestionProblem]:
    """A problem per profiled column that is empty in every row of a table with rows."""
    return [dataset_pb2.IngestionProblem(table=table.name, kind="empty_column",
                                         message=f"column {column.name!r} is empty in all {table.row_count:,} rows")
            for table in dataset.tables if table.row_count > 0
            for column in table.columns
            if column.HasField("profile") and column.profile.null_count == table.row_count]


def add_problems(dataset: dataset_pb2.Dataset, problems: Iterable[dataset_pb2.IngestionProblem]) -> None:
    """Append problems the dataset does not list yet."""
    have = {(p.table, p.kind, p.message) for p in dataset.ingestion_problems}
    for problem in problems:
        if (problem.table, problem.kind, problem.message) not in have:
            have.add((problem.table, problem.kind, problem.message))
            dataset.ingestion_problems.append(problem)
