"""What the UI says about a dataset: its summary, the ingestion report of an upload, and suggested
questions (the registry's own, or generated from the profile for an upload, which has none).
"""

from __future__ import annotations

from csv_analyst.v1 import dataset_pb2

from gradio_ui.format import format_number

_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "NUMERIC")
# A text column with at most this many distinct values is a category worth grouping by.
_MAX_CATEGORIES = 50


def dataset_summary(dataset: dataset_pb2.Dataset) -> str:
    """The dataset's title and id, its description and each table's columns, as Markdown."""
    lines = [f"**{dataset.title or dataset.dataset_id}** (`{dataset.dataset_id}`)", "", dataset.description, ""]
    for table in dataset.tables:
        rows = f" ({table.row_count:,} rows)" if table.row_count else ""
        lines.append(f"- **{table.name}**{rows}: {', '.join(column.name for column in table.columns)}")
    return "\n".join(lines)


def _range(column: dataset_pb2.Column) -> str:
    profile = column.profile
    if not profile.min_value and not profile.max_value:
        return ""
    if column.type.upper().startswith(_NUMBER_TYPES):
        try:
            return f"{format_number(float(profile.min_value))} to {format_number(float(profile.max_value))}"
        except ValueError:
            pass
    return f"{profile.min_value} to {profile.max_value}"


def ingestion_report(dataset: dataset_pb2.Dataset) -> str:
    """The report of an upload: per table its rows, and per column its type, distinct values, empty cells and range."""
    tables = len(dataset.tables)
    lines = [f"**Uploaded** `{dataset.dataset_id}`: {tables} table{'s' if tables != 1 else ''}, "
             f"version `{dataset.version_hash[:12]}`", ""]
    lines += problems_markdown(dataset)
    for table in dataset.tables:
        lines += [f"**{table.name}**: {table.row_count:,} rows, {len(table.columns)} columns", ""]
        for column in table.columns:
            profile = column.profile
            facts = [f"{profile.distinct_count:,} distinct"]
            if profile.null_count:
                facts.append(f"{profile.null_count:,} empty")
            if _range(column):
                facts.append(_range(column))
            lines.append(f"- `{column.name}` {column.type}: {', '.join(facts)}")
        lines.append("")
    return "\n".join(lines)


def problems_markdown(dataset: dataset_pb2.Dataset) -> list[str]:
    """The "Problems found" section of the report: one item per ingestion problem (none: says so)."""
    if not dataset.ingestion_problems:
        return ["**Problems found**: none", ""]
    lines = [f"**Problems found** ({len(dataset.ingestion_problems)})", ""]
    lines += [f"- **{problem.table}** ({problem.kind.replace('_', ' ')}): {_escape(problem.message)}"
              for problem in dataset.ingestion_problems]
    return [*lines, ""]


def _escape(text: str) -> str:
    """Text from a user's file, safe in Markdown: characters that format or link are escaped."""
    return "".join("\\" + char if char in "\\`*_[]()<>#!|~" else char for char in text)


def _is_number(column: dataset_pb2.Column) -> bool:
    return column.type.upper().startswith(_NUMBER_TYPES)


def _is_category(column: dataset_pb2.Column) -> bool:
    return column.type.upper() == "VARCHAR" and 1 < column.profile.distinct_count <= _MAX_CATEGORIES


def _is_date(column: dataset_pb2.Column) -> bool:
    return column.type.upper().startswith(("DATE", "TIMESTAMP"))


def suggested_prompts(dataset: dataset_pb2.Dataset, limit: int) -> list[str]:
    """The dataset's own prompts, or questions built from its first table's profile.

    Built questions use the shapes the offline planner answers: a count, a count per category,
    a total and an average of a number per category, and a total per month of a date column.
    """
    if dataset.prompts:
        return list(dataset.prompts)[:limit]
    prompts: list[str] = []
    for table in dataset.tables:
        numbers = [column for column in table.columns if _is_number(column)]
        categories = [column for column in table.columns if _is_category(column)]
        dates = [column for column in table.columns if _is_date(column)]
        prompts.append(f"How many rows are in {table.name}?")
        for category in categories[:2]:
            prompts.append(f"How many {table.name} are there per {category.name}?")
        if categories and numbers:
            prompts.append(f"What is the total {numbers[-1].name} per {categories[0].name}?")
            prompts.append(f"What is the average {numbers[0].name} per {categories[-1].name}?")
        if dates and numbers:
            prompts.append(f"What is the total {numbers[-1].name} per month of {dates[0].name}?")
    return list(dict.fromkeys(prompts))[:limit]
