"""One finished answer as a chat message that keeps everything it needs: the formatted table, the
chart and collapsible details (run stats, error, plan, SQL) plus a link to share the run.

Gradio's Chatbot renders Markdown with sanitised HTML: `<details>`, tables and `data:` images pass,
and fenced code inside `<details>` (after a blank line) is highlighted. Values are HTML-escaped here.
"""

from __future__ import annotations

import ast
import base64
import html

import sqlglot
from sqlglot.errors import SqlglotError

from csv_analyst.v1 import plan_pb2, result_pb2
from gradio_ui.chart import chart_png, chart_spec
from gradio_ui.format import Cell, ColumnFormat, column_formats, format_cell

# A question longer than this gets a plain message and is never sent (AskRequest.question).
MAX_QUESTION_CHARS = 2000
# Rows of a result shown in the conversation and per page of the pager (ReadResult); every row is
# in the CSV download (ExportResult).
SHOWN_ROWS = 200


def share_href(run_id: str) -> str:
    """The relative link that opens one run in a fresh page."""
    return f"?run={run_id}"


def pretty_sql(sql: str) -> str:
    """The SQL laid out one clause per line (sqlglot, DuckDB dialect); the text itself when unparsable."""
    try:
        return sqlglot.transpile(sql, read="duckdb", write="duckdb", pretty=True)[0]
    except (SqlglotError, IndexError, RecursionError):
        return sql


def table_html(formats: list[ColumnFormat], rows: list[list[Cell]]) -> str:
    """The result as an HTML table: numbers right-aligned and formatted, a sticky header."""
    head = "".join(f'<th class="{"num" if column.numeric else "txt"}">{html.escape(column.name)}</th>'
                   for column in formats)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if column.numeric else "txt"}">'
                         f"{html.escape(format_cell(value, column))}</td>" for value, column in zip(row, formats, strict=False))
        + "</tr>" for row in rows)
    return (f'<div class="result-scroll"><table class="result-table">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def result_sections(result: result_pb2.ResultTable, plan: plan_pb2.Plan | None,
                    rows: list[list[Cell]]) -> tuple[str, bytes | None]:
    """The table and (when one helps) the chart of a result, each in an open, collapsible section.

    Returns:
        The HTML, and the chart as PNG bytes (None when there is no chart) for its download.
    """
    formats = column_formats(result, plan, rows)
    count = f"{len(rows):,} row{'s' if len(rows) != 1 else ''}"
    if len(rows) > SHOWN_ROWS:
        count = f"showing {SHOWN_ROWS:,} of {len(rows):,} rows; page through all under Current answer or download the CSV"
    parts = [f'<details open class="answer-table"><summary>Table ({count})</summary>\n'
             f"{table_html(formats, rows[:SHOWN_ROWS])}\n</details>"]
    spec = chart_spec(formats, rows)
    png = None
    if spec is not None:
        png = chart_png(spec)
        image = base64.b64encode(png).decode("ascii")
        parts.append(f'<details open class="answer-chart"><summary>Chart ({spec.kind})</summary>\n'
                     f'<img class="result-chart chart-{spec.kind}" alt="{html.escape(spec.kind)} chart of '
                     f'{html.escape(spec.title)}" src="data:image/png;base64,{image}">\n</details>')
    return "\n\n".join(parts), png


def pretty_python(code: str) -> str:
    """The program laid out by Python's own unparser (one statement per line, normal spacing); the
    text itself when it does not parse."""
    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError):
        return code


def details_section(stats_markdown: str, error_markdown: str, plan_json: str, sql: str,
                    query_type: str = "", python_code: str = "") -> str:
    """The run's details, closed by default: query type, stats, error, plan (JSON), SQL and Python
    code, formatted and highlighted."""
    parts = ['<details class="answer-details"><summary>Details: run, plan and SQL</summary>', ""]
    if query_type:
        parts += [f'<p class="query-type">Query type: <code>{html.escape(query_type)}</code></p>', ""]
    if error_markdown:
        parts += [error_markdown, ""]
    if stats_markdown:
        parts += [stats_markdown, ""]
    if plan_json:
        parts += ["**Plan**", "", "```json", plan_json, "```", ""]
    if sql:
        parts += ["**SQL**", "", "```sql", pretty_sql(sql), "```", ""]
    if python_code:
        parts += ["**Python**", "", "```python", pretty_python(python_code), "```", ""]
    parts.append("</details>")
    return "\n".join(parts)
