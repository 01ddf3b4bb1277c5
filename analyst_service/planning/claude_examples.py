"""Few-shot examples for the Claude planner from verified runs of the same dataset.

The run manager hands the planner the (question, plan) pairs of recent SUCCEEDED runs of the
dataset (`PlanningContext.examples`). The planner keeps those whose plan still compiles against
the dataset as it is now, ranks them by word overlap with the new question, and sends the best
few as data in the user turn, after the cached prefix (they change with the question).
"""

from __future__ import annotations

from typing import Any

from analyst_service.compiler import compile_plan
from analyst_service.errors import AnalystError
from analyst_service.planning.claude_tools import plan_input
from analyst_service.planning.schema_linking import STOPWORDS, singular, tokenize
from csv_analyst.v1 import dataset_pb2, plan_pb2

MAX_EXAMPLES = 3
MIN_OVERLAP = 0.2  # Jaccard similarity of content words below which an example says nothing useful


def _words(text: str) -> frozenset[str]:
    return frozenset(singular(t) for t in tokenize(text)) - STOPWORDS


def select_examples(question: str, candidates: list[tuple[str, plan_pb2.Plan]], dataset: dataset_pb2.Dataset,
                    limit: int = MAX_EXAMPLES) -> list[dict[str, Any]]:
    """The most similar verified examples, as `{"question", "plan"}` documents.

    Args:
        question: The new question.
        candidates: (question, plan) of succeeded runs, newest first.
        dataset: The dataset now (an example whose plan no longer compiles is dropped).
        limit: How many to return at most.

    Returns:
        Up to `limit` examples, most similar first (the same question asked before comes first).
    """
    asked = _words(question)
    scored: list[tuple[float, int, str, plan_pb2.Plan]] = []
    seen: set[str] = set()
    for position, (text, plan) in enumerate(candidates):
        key = " ".join(sorted(_words(text)))
        if not text.strip() or key in seen or not plan.base_table:
            continue
        seen.add(key)
        words = _words(text)
        overlap = len(asked & words) / max(1, len(asked | words))
        if overlap < MIN_OVERLAP:
            continue
        try:
            compile_plan(plan, dataset)
        except AnalystError:
            continue  # the dataset changed since: its columns would mislead
        scored.append((overlap, position, text, plan))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [{"question": text, "plan": plan_input(plan)} for _, _, text, plan in scored[:limit]]
