"""The ingestion report of an upload and the questions suggested for it."""

from __future__ import annotations

from csv_analyst.v1 import dataset_pb2
from gradio_ui.report import ingestion_report, suggested_prompts


def _dataset() -> dataset_pb2.Dataset:
    def column(name: str, type_name: str, distinct: int, low: str = "", high: str = "", nulls: int = 0
               ) -> dataset_pb2.Column:
        return dataset_pb2.Column(name=name, type=type_name, profile=dataset_pb2.ColumnProfile(
            distinct_count=distinct, null_count=nulls, min_value=low, max_value=high))

    table = dataset_pb2.Table(name="sales", row_count=1200, columns=[
        column("sale_date", "DATE", 300, "2024-01-01", "2024-12-30"), column("region", "VARCHAR", 4),
        column("units", "BIGINT", 7, "1", "7"), column("revenue", "DOUBLE", 1100, "10.5", "12000.25", nulls=3)])
    return dataset_pb2.Dataset(dataset_id="upload-abc", version_hash="f" * 64, tables=[table])


def test_report_lists_rows_types_and_ranges() -> None:
    report = ingestion_report(_dataset())
    assert "**sales**: 1,200 rows, 4 columns" in report
    assert "- `revenue` DOUBLE: 1,100 distinct, 3 empty, 10.50 to 12,000.25" in report
    assert "- `sale_date` DATE: 300 distinct, 2024-01-01 to 2024-12-30" in report


def test_questions_are_built_from_the_profile_when_the_dataset_has_none() -> None:
    assert suggested_prompts(_dataset(), 12) == [
        "How many rows are in sales?", "How many sales are there per region?",
        "What is the total revenue per region?", "What is the average units per region?",
        "What is the total revenue per month of sale_date?"]
    own = _dataset()
    own.prompts.extend(["Q1", "Q2", "Q3"])
    assert suggested_prompts(own, 2) == ["Q1", "Q2"]


def test_report_lists_the_problems_found_with_file_text_escaped() -> None:
    assert "**Problems found**: none" in ingestion_report(_dataset())
    dataset = _dataset()
    dataset.ingestion_problems.extend([
        dataset_pb2.IngestionProblem(table="sales", kind="decimal_comma",
                                     message="column 'revenue' has numbers with decimal commas"),
        dataset_pb2.IngestionProblem(table="sales", kind="renamed_column",
                                     message="column 2 has '[click](http://x) **<b>' in the header"),
    ])
    report = ingestion_report(dataset)
    assert "**Problems found** (2)" in report
    assert "- **sales** (decimal comma): column 'revenue' has numbers with decimal commas" in report
    # Text from the user's file cannot format or link.
    assert r"column 2 has '\[click\]\(http://x\) \*\*\<b\>' in the header" in report
