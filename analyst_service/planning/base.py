"""The planner interface: a question and a dataset schema in, a Plan out.

Planners propose; `analyst_service.validation` decides. A planner that cannot map a question
with confidence raises `PlannerError` naming what it understood and the candidate columns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from analyst_service.errors import PlannerError
from csv_analyst.v1 import dataset_pb2, plan_pb2, run_pb2


@dataclass
class ClarificationNeededError(PlannerError):
    """The planner asks instead of answering: the question has parts no plan accounts for, or
    several readings score close.

    Attributes:
        options: Up to three readings, most likely first; each a Plan with its explanation set.
            The run compiles each into SQL for the `Clarification` it stores.
    """

    options: list[plan_pb2.Plan] = field(default_factory=list)
    error_code: int = run_pb2.ERROR_CODE_CLARIFICATION_NEEDED


@dataclass(frozen=True)
class ThreadTurn:
    """One earlier turn of a conversation thread, whatever came of it.

    Attributes:
        question: What the analyst asked; empty for a run the analyst started themselves in the
            thread (a reading chosen from a clarification, or a plan submitted with the thread).
        plan: The plan that ran or was refused, when there was one.
        python_code: The restricted pandas program that ran, for a Python answer.
        succeeded: Whether the run answered.
        answer: A short summary of the answer (columns, row count, first rows) when it succeeded.
        clarification: The question back to the analyst, when the planner asked instead of answering.
        error: Why there was no answer (a rejection or failure), empty otherwise.
    """

    question: str = ""
    plan: plan_pb2.Plan | None = None
    python_code: str = ""
    succeeded: bool = False
    answer: str = ""
    clarification: run_pb2.Clarification | None = None
    error: str = ""


@dataclass(frozen=True)
class PythonProgram:
    """A planner's answer written as a restricted pandas program instead of a plan (only when the
    analyst asked for Python and the server runs it; see `PlanningContext.python_allowed`)."""

    code: str


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
            few rows, within the run's deadline) and returns its rows as text, or None when it
            could not run; raises `ProbeQueryError` when the query itself failed. None when the
            caller offers no dry runs. For checking a plan before accepting it.
        history: The thread's earlier turns, oldest first (at most a few): answered questions,
            clarifications, the reading the analyst chose, refusals. Planners that replay the
            conversation use it; previous_plan/question/answer are its last answered plan.
        python_allowed: The analyst explicitly asked for Python and the server runs it: the
            planner may answer with a `PythonProgram`.
    """

    previous_plan: plan_pb2.Plan | None = None
    previous_question: str = ""
    previous_answer: str = ""
    attempts: list[run_pb2.PlannerAttempt] = field(default_factory=list)
    deadline: float | None = None
    examples: list[tuple[str, plan_pb2.Plan]] = field(default_factory=list)
    probe: Callable[[str], Awaitable[list[list[str]] | None]] | None = None
    history: tuple[ThreadTurn, ...] = ()
    python_allowed: bool = False


class ProbeQueryError(Exception):
    """A dry run's query failed in the sandbox (the query's fault, not the sandbox's): the message
    says why, in the engine's words."""


class Planner(Protocol):
    """Turns a question into a Plan for one dataset."""

    name: str

    async def plan(
        self, question: str, dataset: dataset_pb2.Dataset, context: PlanningContext
    ) -> plan_pb2.Plan | PythonProgram:
        """Propose a plan (or, when `context.python_allowed`, possibly a Python program).

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
