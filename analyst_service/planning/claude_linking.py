"""Schema and value linking for the Claude planner, with the offline planner's linkers.

Before the model is called, the question is linked to the dataset: the columns its words name
(`SchemaIndex.link_span`) and the exact cell spellings it refers to (`link_values`: "japan" is the
profiled value `Japan`). The result goes into the user turn, after the cached prefix, so the model
gets the right spellings even when the overview of a wide dataset lists no values.
"""

from __future__ import annotations

from typing import Any

from analyst_service.planning.claude_tools import SAMPLE_VALUE_CHARS
from analyst_service.planning.schema_linking import STOPWORDS, SchemaIndex, singular, tokenize
from analyst_service.planning.values import link_values
from csv_analyst.v1 import dataset_pb2

MAX_LINKED_COLUMNS = 12
MAX_LINKED_VALUES = 10  # per matched phrase
LINKED_COLUMN_SAMPLES = 8


def linked_schema(question: str, dataset: dataset_pb2.Dataset) -> dict[str, Any]:
    """The columns and cell values the question refers to, bounded.

    Args:
        question: The user's question.
        dataset: The profiled dataset.

    Returns:
        `columns`: likely columns (`table.column`, type, a few frequent values), best first;
        `values`: question phrases with the exact cell values they match. Empty lists when
        nothing links.
    """
    index = SchemaIndex.build(dataset)
    tokens = tokenize(question)
    words = [singular(t) for t in tokens]
    values = link_values(tokens, words, [False] * len(tokens), index.columns)
    refs: list[tuple[str, str]] = [m.column.ref for m in values]
    for word in words:
        if word in STOPWORDS:
            continue
        refs.extend(c.ref for c in index.link_span([word]))
    by_ref = {c.ref: c for c in index.columns}
    columns = []
    for ref in list(dict.fromkeys(refs))[:MAX_LINKED_COLUMNS]:
        column = by_ref[ref]
        entry: dict[str, Any] = {"column": f"{column.table}.{column.name}", "type": column.type}
        if column.top_values:
            entry["frequent_values"] = [v[:SAMPLE_VALUE_CHARS] for v in column.top_values[:LINKED_COLUMN_SAMPLES]]
        columns.append(entry)
    matched = [{"phrase": " ".join(tokens[m.start:m.end]), "column": f"{m.column.table}.{m.column.name}",
                "values": [v[:SAMPLE_VALUE_CHARS] for v in m.values[:MAX_LINKED_VALUES]]} for m in values]
    return {"columns": columns, "values": matched}
