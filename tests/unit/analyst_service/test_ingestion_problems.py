"""Ingestion problems from the runner's load notes and from a dataset's profile."""

from __future__ import annotations

from analyst_service.ingestion import add_problems, empty_column_problems, problems_from_notes
from csv_analyst.v1 import dataset_pb2


def test_notes_become_problems_once_and_other_lines_are_ignored() -> None:
    stderr = ("runner: table 'orders': [renamed_column] column 2 has 'id' in the header; it is named 'id_1'\n"
              "some other output\n"
              "runner: table 'orders': [renamed_column] column 2 has 'id' in the header; it is named 'id_1'\n"
              "runner: table 'ghost': [no_rows] the file has a header but no data rows\n"
              "runner: table 'items': the old format without a kind\n"
              "runner: table 'items': [no_rows] the file has a header but no data rows\n")
    found = problems_from_notes(stderr, ["orders", "items"])
    assert [(p.table, p.kind) for p in found] == [("orders", "renamed_column"), ("items", "no_rows")]
    assert found[0].message == "column 2 has 'id' in the header; it is named 'id_1'"


def test_empty_columns_come_from_the_profile() -> None:
    table = dataset_pb2.Table(name="t", row_count=3, columns=[
        dataset_pb2.Column(name="full", profile=dataset_pb2.ColumnProfile(null_count=0)),
        dataset_pb2.Column(name="blank", profile=dataset_pb2.ColumnProfile(null_count=3)),
        dataset_pb2.Column(name="unprofiled")])
    empty = dataset_pb2.Table(name="e", row_count=0, columns=[
        dataset_pb2.Column(name="x", profile=dataset_pb2.ColumnProfile(null_count=0))])
    dataset = dataset_pb2.Dataset(tables=[table, empty])
    assert [(p.table, p.kind, p.message) for p in empty_column_problems(dataset)] == [
        ("t", "empty_column", "column 'blank' is empty in all 3 rows")]
    add_problems(dataset, empty_column_problems(dataset))
    add_problems(dataset, empty_column_problems(dataset))  # not twice
    assert len(dataset.ingestion_problems) == 1
