"""The offline planner: deterministic, no network, no key.

It links question words to the dataset schema (`schema_linking`), parses cue words into a `Spec`
(`question`), and builds a Plan from it (`builder`). Follow-up questions ("now by month", "only
completed ones", "top 10 instead") refine the previous plan of the thread.
"""

from __future__ import annotations

from analyst_service.errors import PlannerError
from analyst_service.planning.accounting import Leftover, describe, leftovers
from analyst_service.planning.base import ClarificationNeededError, PlanningContext
from analyst_service.planning.builder import build_plan, spec_from_plan
from analyst_service.planning.event_order import order_by_event
from analyst_service.planning.explain import explain
from analyst_service.planning.question import parse_question_traced
from analyst_service.planning.readings import competing_readings
from analyst_service.planning.shared_value import select_shared_value
from analyst_service.planning.schema_linking import SchemaIndex, singular, tokenize
from analyst_service.planning.spec import Spec
from csv_analyst.v1 import dataset_pb2, plan_pb2

FOLLOW_UP_OPENERS = {"now", "only", "just", "instead", "also", "and", "but", "same", "then", "what", "how", "ok", "okay"}


class OfflinePlanner:
    """Deterministic rule-based planner over the dataset schema and column descriptions."""

    name = "offline"

    async def plan(
        self, question: str, dataset: dataset_pb2.Dataset, context: PlanningContext
    ) -> plan_pb2.Plan:
        """Propose a plan for the question.

        Args:
            question: The user's question.
            dataset: The dataset schema (tables, columns with descriptions, relationships).
            context: Thread context; a previous plan makes refinements possible.

        Returns:
            A Plan with an explanation.

        Raises:
            PlannerError: When the question cannot be mapped to the dataset with confidence.
        """
        return plan_question(question, dataset, context)


def plan_question(question: str, dataset: dataset_pb2.Dataset, context: PlanningContext | None = None) -> plan_pb2.Plan:
    """Synchronous core of OfflinePlanner.plan (see there)."""
    if not question.strip():
        raise PlannerError(message="the question is empty")
    index = SchemaIndex.build(dataset)
    spec, parser = parse_question_traced(question, index)
    unlinked = parser.unlinked
    previous = context.previous_plan if context else None
    if previous is not None and previous.base_table and _is_follow_up(question, spec):
        merged = _merge(spec_from_plan(previous, index), spec)
        plan = build_plan(merged, index)
        plan.notes = f"Refined the previous plan with: {'; '.join(spec.understood) or 'no change'}."
        return plan
    if spec.is_empty() or (not spec.conditions and not spec.groups and not spec.position and spec.anchor is None
                           and unlinked
                           and _only_bare_count(spec, unlinked) and not _counts_the_rows(question, unlinked, index)):
        raise _clarification(spec, unlinked, index)
    plan = build_plan(spec, index)
    entity = parser._find_entity()
    asked = entity.column.name if entity is not None and entity.column is not None and entity.column.is_text else ""
    if order_by_event(parser, plan) or select_shared_value(parser, plan, asked):
        plan.explanation = explain(plan)
    left = leftovers(parser, plan)
    if left:
        raise _leftover_clarification(left, plan)
    readings = competing_readings(parser, plan)
    if readings:
        raise ClarificationNeededError(
            message="The question can be read in more than one way: " + " Or: ".join(r.explanation for r in readings)
                    + " Choose a reading, or say which one you mean.",
            metadata={"readings": str(len(readings))}, options=readings)
    notes = []
    if unlinked:
        notes.append(f"Ignored words: {', '.join(unlinked)}.")
    if spec.assumptions:
        notes.append("; ".join(spec.assumptions) + ".")
    if spec.ignored:
        notes.append(f"No column holds dates or years, so {', '.join(repr(p) for p in spec.ignored)} was taken as "
                     "naming the table's subject and not used as a filter.")
    plan.notes = " ".join(notes + ([plan.notes] if plan.notes else []))
    return plan


def _only_bare_count(spec: Spec, unlinked: list[str]) -> bool:
    """True when all that was understood is "count the rows" (or a ranking next to several unknown words)."""
    if spec.order_ref is not None and not spec.measures and len(unlinked) <= 1:
        return False  # "how old was the youngest member": one unknown word names the rows ranked
    return all(m.ref is None and not m.count_table and not m.share for m in spec.measures) and not spec.tables


def _counts_the_rows(question: str, unlinked: list[str], index: SchemaIndex) -> bool:
    """True for "how many <things> ..." over one table when at most one other word went unmatched.

    The rows of a single table are the things a bare "how many books did she write?" counts; with
    more unmatched words the question likely says something the plan would silently drop.
    """
    tokens = tokenize(question)
    if len(index.dataset.tables) != 1 or tokens[:2] != ["how", "many"] or len(tokens) < 3:
        return False
    return tokens[2] in unlinked and tokens[2] != singular(tokens[2]) and len(unlinked) <= 2


def _is_follow_up(question: str, spec: Spec) -> bool:
    tokens = tokenize(question)
    if not tokens:
        return False
    if tokens[0] in FOLLOW_UP_OPENERS and (tokens[0] not in ("what", "how") or tokens[:2] in (["what", "about"], ["how", "about"])):
        return True
    if "instead" in tokens:
        return True
    return not spec.explicit_measure and not spec.tables


def _merge(previous: Spec, new: Spec) -> Spec:
    """Apply the parts a follow-up names on top of the previous spec."""
    merged = Spec(
        measures=new.measures if new.explicit_measure and new.measures else previous.measures,
        groups=new.groups or previous.groups,
        conditions=list(previous.conditions),
        descending=new.descending if new.descending is not None else previous.descending,
        limit=new.limit or previous.limit,
        order_ref=new.order_ref or previous.order_ref,
        tables=previous.tables,
        understood=previous.understood + new.understood,
        explicit_measure=True,
    )
    renamed = {c.ref for condition in new.conditions for c in condition.ref}
    merged.conditions = [c for c in merged.conditions if not renamed & {x.ref for x in c.ref}] + new.conditions
    return merged


def _clarification(spec: Spec, unlinked: list[str], index: SchemaIndex) -> PlannerError:
    understood = "; ".join(spec.understood) or "nothing I can map to this dataset"
    candidates = ", ".join(f"{c.table}.{c.name}" for c in index.columns)
    unmatched = f" The words {', '.join(repr(w) for w in unlinked)} match no column." if unlinked else ""
    return PlannerError(
        message=f"I could not map the question to the dataset {index.dataset.dataset_id!r}. "
                f"Understood: {understood}.{unmatched} Candidate columns: {candidates}.",
        metadata={"dataset_id": index.dataset.dataset_id, "understood": understood,
                  "unmatched": ", ".join(unlinked), "candidates": candidates},
    )


def _leftover_clarification(left: list[Leftover], plan: plan_pb2.Plan) -> ClarificationNeededError:
    """Ask instead of answering: name what the plan leaves out and offer the plan as one reading."""
    words = ", ".join(item.words for item in left if item.words)
    reading = plan_pb2.Plan()
    reading.CopyFrom(plan)
    reading.explanation = f"{plan.explanation.rstrip('.')} (leaving out: {words or 'the ranking'})."
    return ClarificationNeededError(
        message=f"{describe(left)} Rephrase with the column names, or choose a reading.",
        metadata={"left_out": words, "understood": plan.explanation},
        options=[reading],
    )
