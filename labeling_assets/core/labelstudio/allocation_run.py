"""The queue's slots by the allocator (``ProjectSettings.allocation = "allocator"``), carried out and audited.

``allocate_queue`` takes the run's queue as the active-learning order chose it (new items, most informative
first, hidden gold among them) and lets ``core/allocation/live.plan_slots`` decide each slot between a new item,
one more label for a labeled item and an expert review. What it does with the decisions goes through the queue's
existing paths, so nothing new talks to Label Studio:

- new items: the queue keeps only the chosen ones (gold items keep their places: hidden gold is not the
  allocator's to spend, ``adaptive_gold`` sets its share);
- one more label: an open review request (source ``allocator``, action ``more_annotators``) that the queue's
  overlap raise acts on in the same run (``plan_overlap_raises``); the run closes its earlier ones it did not
  choose again, and the queue ignores other sources' ``more_annotators`` requests (the allocator replaces that
  rule; their expert requests stay);
- an expert review: an open request (source ``allocator_expert``) the ``adjudications`` asset queues in the
  review project; closed once an expert answered.

Every decision is one ``allocation_decisions`` row (migration 18), with what the queue did with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labeling_assets.core.allocation.allocator import costs_from_pay_rates
from labeling_assets.core.allocation.live import (
    ALLOCATOR_EXPERT_SOURCE,
    ALLOCATOR_SOURCE,
    AllocatorSettings,
    NewRow,
    plan_slots,
)
from labeling_assets.core.consensus.review_routing import (
    EXPERT_REVIEW,
    MORE_ANNOTATORS,
    OpenRequest,
    ReviewRequest,
)
from labeling_assets.core.labelstudio.tasks import QueuedItem
from labeling_assets.core.store.allocation import (
    crowd_gold,
    decision_rows,
    decision_summary,
    labeled_rows,
    record_decisions,
)
from labeling_assets.core.store.human_loop import adjudicated_labels
from labeling_assets.core.store.reviews import open_request_items, sync_review_requests
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.tasks.kind import Json, TaskKind

QUEUED, RAISE_REQUESTED, EXPERT_REQUESTED = "queued", "more_annotators requested", "expert review requested"


@dataclass(frozen=True)
class AllocationInputs:
    """What the queue's options hold for the allocator."""

    classes: Sequence[str]
    max_new_tasks: int
    max_overlap: int
    settings: AllocatorSettings
    pay_rate_per_hour: float | None = None
    pay_rates_per_hour: dict[str, float] = dataclasses.field(default_factory=dict)
    reviewers: Sequence[str] = ()
    allow_empty: bool = True
    allow_overlap: bool = False


def allocate_queue(
    store: LabelStore, kind: TaskKind, inputs: AllocationInputs, project_id: int, queue: Sequence[QueuedItem],
    run_id: str,
) -> tuple[list[QueuedItem], dict[str, Any]]:  # fmt: skip
    """The queue the allocator keeps (gold in place, the chosen new items) and the run's report; the one-more-label
    and expert requests are recorded, and every decision audited."""
    gold = [q for q in queue if q.is_gold]
    regular = [q for q in queue if not q.is_gold]
    slots = max(inputs.max_new_tasks - len(gold), 0)
    correct, answered, medians = crowd_gold(store, kind, inputs.classes, allow_empty=inputs.allow_empty,
                                            allow_overlap=inputs.allow_overlap)  # fmt: skip
    costs = costs_from_pay_rates(pay_rate_per_hour=inputs.pay_rate_per_hour,
                                 pay_rates_per_hour=inputs.pay_rates_per_hour, median_time_s=dict(medians),
                                 reviewers=list(inputs.reviewers))  # fmt: skip
    plan = plan_slots(
        slots, [NewRow(q.item_id, q.priority, q.probs) for q in regular], labeled_rows(store, project_id),
        kind=kind, classes=inputs.classes, gold_correct=correct, gold_answered=answered, costs=costs,
        max_overlap=inputs.max_overlap, settings=inputs.settings,
    )  # fmt: skip
    chosen = set(plan.new_items)
    kept = [dataclasses.replace(q, position=i) for i, q in
            enumerate(q for q in queue if q.is_gold or q.item_id in chosen)]  # fmt: skip
    stale = open_request_items(store, ALLOCATOR_SOURCE) - set(plan.more_labels)
    sync_review_requests(store, ALLOCATOR_SOURCE,
                         [ReviewRequest(i, MORE_ANNOTATORS, why) for i, why in plan.more_labels.items()], stale)
    sync_review_requests(store, ALLOCATOR_EXPERT_SOURCE,
                         [ReviewRequest(i, EXPERT_REVIEW, why) for i, why in plan.experts.items()],
                         set(adjudicated_labels(store).index))  # fmt: skip
    outcomes = {**{i: QUEUED for i in plan.new_items}, **{i: RAISE_REQUESTED for i in plan.more_labels},
                **{i: EXPERT_REQUESTED for i in plan.experts}}  # fmt: skip
    record_decisions(store, run_id, project_id, plan.decisions, outcomes, plan.fallbacks)
    made = plan.decisions
    random = sum(1 for d in made if d.arm == "random")
    return kept, {
        "allocation": "allocator",
        "allocator_run_id": run_id,
        "allocator_slots": slots,
        "allocator_decisions": Json({"new_item": len(plan.new_items), "more_label": len(plan.more_labels),
                                     "expert": len(plan.experts)}),  # fmt: skip
        "allocator_random_arm": random,
        "allocator_random_share": round(random / len(made), 4) if made else 0.0,
        "allocator_estimated_gain": round(sum(d.estimated_gain for d in made), 4),
        "allocator_cost": round(sum(d.cost for d in made), 4),
        "allocator_costs": f"labeler {costs.labeler:.4g}, expert {costs.expert:.4g} per answer ({costs.source})",
        "allocator_labeler_accuracy": round(plan.labeler_accuracy, 4),
        "allocator_fallbacks": Json(dict(plan.fallbacks)),
        "allocator_totals": Json(decision_summary(decision_rows(store))),
    }


def left_to_allocator(requests: Sequence[OpenRequest]) -> tuple[list[OpenRequest], int]:
    """The requests the overlap raise acts on in allocator mode (every other source's ``more_annotators`` left to
    the allocator), and how many were left."""
    kept = [r for r in requests if r.action != MORE_ANNOTATORS or r.source == ALLOCATOR_SOURCE]
    return kept, len(requests) - len(kept)


def rules_fallback(store: LabelStore, run_id: str, project_id: int | None, reason: str) -> dict[str, Any]:
    """Audit a run that asked for the allocator but ran the rules (one counted fall-back row); its report."""
    record_decisions(store, run_id, project_id, [], {}, {reason: 1})
    return {"allocation": "rules (fallback)", "allocator_fallbacks": Json({reason: 1})}
