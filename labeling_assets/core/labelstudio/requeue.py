"""Items whose live votes fell below their task's overlap go back to labelers: audited in the store, then applied
in Label Studio. One way for every caller: the queue stage (each run) and ``labeling-assets labeler pause``.

The rules are pure (``core/consensus/retraction.py``): a deleted task is recreated; a task holding answers that no
longer count (a removed class, a labeler's votes given while paused) gets its overlap raised by that many, capped
at ``max_overlap``, never lowered. Raising one task's overlap also clears its ``is_labeled`` (DESIGN §4b), so Label
Studio's label stream hands it to a labeler who has not answered it yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from labeling_assets.core.consensus.adjudication import Interval
from labeling_assets.core.consensus.retraction import Requeue, RequeuePlan, plan_requeues
from labeling_assets.core.labelstudio.client import TaskClient
from labeling_assets.core.store.queries import StoreVotes
from labeling_assets.core.store.reviews import record_requeues, requeue_task_states
from labeling_assets.core.store.schema import LabelStore


@dataclass(frozen=True)
class RequeueOutcome:
    plan: RequeuePlan
    recreated: list[Requeue] = field(default_factory=list)  # unlinked: the queue pushes them as new tasks
    raised: list[Requeue] = field(default_factory=list)  # overlap raised in Label Studio


def requeue_lost_votes(
    store: LabelStore,
    client: TaskClient,
    project_id: int,
    loaded: StoreVotes,
    *,
    max_overlap: int,
    pauses: Mapping[str, Sequence[Interval]] | None = None,
    recreate: bool = True,
) -> RequeueOutcome:
    """Plan, record (``requeue_actions``) and apply the re-queues of ``project_id``'s tasks.

    Args:
        loaded: the store's votes under the current class list (``load_votes``).
        max_overlap: cap on a raised overlap.
        pauses: labeler id -> pause intervals; None: the store's pause history.
        recreate: False: only raise overlaps (deleted tasks wait for the queue stage, which pushes them again).
    """
    states = requeue_task_states(store, project_id, loaded, client.task_overlaps(project_id), pauses)
    plan = plan_requeues(states, max_overlap=max_overlap)
    if not recreate:
        plan = RequeuePlan(raise_overlap=plan.raise_overlap)
    # Store first, Label Studio second: a crash in between leaves a task below its audited overlap, which the
    # next plan sees (wanted > current) and raises again.
    recreated, raised = record_requeues(store, project_id, plan)
    for step in raised:
        client.set_task_overlap(step.ls_task_id, int(step.overlap_to or 0))
    return RequeueOutcome(plan, recreated, raised)
