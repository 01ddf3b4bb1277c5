"""The planner interface: a question and a dataset schema in, a Plan out.

Planners propose; `analyst_service.validation` decides. A planner that cannot map a question
with confidence raises `PlannerError` naming what it understood and the candidate columns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from csv_analyst.v1 import dataset_pb2, plan_pb2, run_pb2


@dataclass(frozen=True)
class PlanningContext:
    """What a planner knows besides the question.

    Attributes:
        previous_plan: The last successful plan of the same thread, for follow-up questions.
        previous_question: The question that produced previous_plan.
        previous_answer: A short summary of what previous_plan answered (columns, row count,
            first rows), for planners that replay the conversation.
        attempts: Where a model-backed planner appends a record of each model call (also when
            it fails); the run stores them in its capsule.
        deadline: `time.monotonic()` by which planning must end (the run's caller deadline);
            None when the caller set none. A planner that waits on the network honours it.
        examples: (question, plan) of recent SUCCEEDED runs of the same dataset, newest first,
            for planners that learn from verified answers (few-shot).
        probe: Runs a small read-only SELECT over the dataset in a sandbox (short time limit, a
            few rows) and returns its rows as text, or None when it could not run; None when the
            caller offers no dry runs. For checking a plan before accepting it.
    """

    previous_plan: plan_pb2.Plan | None = None
    previous_question: str = ""
    previous_answer: str = ""
    attempts: list[run_pb2.PlannerAttempt] = field(default_factory=list)
    deadline: float | None = None
    examples: list[tuple[str, plan_pb2.Plan]] = field(default_factory=list)
    probe: Callable[[str], Awaitable[list[list[str]] | None]] | None = None


class Planner(Protocol):
    """Turns a question into a Plan for one dataset."""

    name: str

    async def plan(
        self, question: str, dataset: dataset_pb2.Dataset, context: PlanningContext
    ) -> plan_pb2.Plan:
        """Propose a plan.

        Args:
            question: The user's question.
            dataset: The dataset with its tables, columns, relationships and prompts.
            context: Thread context for follow-ups.

        Returns:
            A Plan with dataset_id set and an explanation.

        Raises:
            PlannerError: When the question cannot be mapped with confidence.
        """
        ...
