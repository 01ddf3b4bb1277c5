"""A planner's readings become the run's Clarification: compiled, checked, at most three."""

from __future__ import annotations

from analyst_service.planning.base import ClarificationNeededError
from analyst_service.planning.clarification import MAX_OPTIONS, build_clarification
from csv_analyst.v1 import dataset_pb2, plan_pb2

DATASET = dataset_pb2.Dataset(dataset_id="shop", tables=[dataset_pb2.Table(name="sales", columns=[
    dataset_pb2.Column(name="region", type="VARCHAR"), dataset_pb2.Column(name="units", type="BIGINT")])])


def _reading(column: str, explanation: str) -> plan_pb2.Plan:
    return plan_pb2.Plan(dataset_id="shop", base_table="sales", explanation=explanation,
                         select=[plan_pb2.SelectItem(column=column, aggregation=plan_pb2.AGGREGATION_SUM,
                                                     alias="total")])


def test_readings_are_compiled_in_order_and_broken_ones_dropped() -> None:
    error = ClarificationNeededError(message="which column?", options=[
        _reading("units", "Sum of units."), _reading("no_such_column", "Broken."), _reading("units", "Again.")])
    clarification = build_clarification(error, DATASET, 1000)
    assert clarification.message == "which column?"
    assert [o.explanation for o in clarification.options] == ["Sum of units.", "Again."]
    assert 'SUM("sales"."units")' in clarification.options[0].sql
    assert clarification.options[0].plan.base_table == "sales"


def test_at_most_three_readings() -> None:
    error = ClarificationNeededError(message="m", options=[_reading("units", str(i)) for i in range(5)])
    assert len(build_clarification(error, DATASET, 1000).options) == MAX_OPTIONS == 3


def test_the_error_code_is_clarification_needed() -> None:
    error = ClarificationNeededError(message="m")
    assert error.to_run_error().reason == "CLARIFICATION_NEEDED"
