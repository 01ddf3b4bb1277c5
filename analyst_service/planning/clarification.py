"""Turn a planner's `ClarificationNeededError` into the `Clarification` a run carries.

Each reading the planner offers is validated and compiled like any plan; a reading that does not
compile or that the SQL policy refuses is dropped, so every option a user can choose runs.
"""

from __future__ import annotations

import logging

from analyst_service.compiler import compile_plan
from analyst_service.errors import AnalystError
from analyst_service.planning.base import ClarificationNeededError
from analyst_service.validation.sql import check_sql
from csv_analyst.v1 import dataset_pb2, run_pb2

log = logging.getLogger(__name__)

MAX_OPTIONS = 3


def build_clarification(error: ClarificationNeededError, dataset: dataset_pb2.Dataset,
                        max_plan_limit: int) -> run_pb2.Clarification:
    """The clarification of a run: the planner's message and up to three compiled readings.

    Args:
        error: What the planner raised.
        dataset: The (profiled) dataset the readings are planned over.
        max_plan_limit: The service's cap on a plan's row limit, as for any plan.

    Returns:
        The Clarification message; its options are the readings that compiled, in the planner's order.
    """
    clarification = run_pb2.Clarification(message=error.message)
    columns = {t.name: [c.name for c in t.columns] for t in dataset.tables}
    for plan in error.options:
        if len(clarification.options) >= MAX_OPTIONS:
            break
        try:
            sql = compile_plan(plan, dataset, max_plan_limit)
            check_sql(sql, columns)
        except AnalystError as refused:
            log.info("dropped a reading that does not compile: %s", refused.message)
            continue
        clarification.options.append(run_pb2.ClarificationOption(explanation=plan.explanation, plan=plan, sql=sql))
    return clarification
