"""Acting on review requests: which low-confidence items get one more annotator in Label Studio.

``consensus_labels`` and ``label_issues`` only record review requests (one open request per item and
source, closed when the item becomes confident). The queue stage acts on them:

- ``more_annotators``: the item's task overlap goes up by one, up to ``max_overlap``, but only once the
  overlap asked so far has been delivered and consensus has seen it (its latest row counts at least
  ``required_annotations`` annotators) and still leaves the request open. So a re-run with nothing new
  raises nothing (idempotent), a request whose extra annotator has not arrived yet waits, and an item
  that stays unsure after that annotator gets one more, round by round, until the cap.
- At the cap, or for ``expert_review`` requests, nothing is raised: they are reported for an expert.

The store is the truth: a raise is recorded (``tasks.required_annotations`` compare-and-set plus a
``review_actions`` row, ``core/store/reviews.py``) before Label Studio is told, and :func:`overlap_drift`
finds raised tasks whose Label Studio overlap lags behind (a crash or an outage between the two), so the
next run repairs them. Pure rules here: no store, no dagster and no HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import pandas as pd

# What a review request asks for (review_requests.action), and the one action the queue records.
MORE_ANNOTATORS: Final = "more_annotators"
EXPERT_REVIEW: Final = "expert_review"
ReviewAction = Literal["more_annotators", "expert_review"]
OVERLAP_RAISED: Final = "overlap_raised"
# Who asked (review_requests.source): one open request per item and source.
CONSENSUS_SOURCE: Final = "consensus"
LABEL_ISSUES_SOURCE: Final = "label_issues"

# consensus_labels' defaults (its run config), shared with the checks that judge its output.
DEFAULT_MIN_ANNOTATORS = 2
DEFAULT_LOW_CONFIDENCE_THRESHOLD = 0.7
DEFAULT_MAX_ANNOTATORS = 5


@dataclass(frozen=True)
class ReviewRequest:
    """A review request to record (unless its item already has an open one from the same source)."""

    item_id: str
    action: str
    reason: str


@dataclass(frozen=True)
class OpenRequest:
    """An open review request with what the queue knows about its item."""

    request_id: int
    item_id: str
    source: str
    action: str
    reason: str | None = None
    requested_at: dt.datetime | None = None
    ls_task_id: int | None = None  # None: the item has no linked task in this project
    required_annotations: int | None = None  # the task's overlap as the store records it
    n_annotators: int | None = None  # annotators the item's latest consensus row counted


@dataclass(frozen=True)
class OverlapRaise:
    request_id: int
    item_id: str
    ls_task_id: int
    overlap_from: int
    overlap_to: int


@dataclass
class OverlapPlan:
    raises: list[OverlapRaise] = field(default_factory=list)
    waiting: list[OpenRequest] = field(default_factory=list)  # the overlap already asked is not met yet
    at_cap: list[OpenRequest] = field(default_factory=list)  # want more annotators, task at max_overlap
    no_task: list[OpenRequest] = field(default_factory=list)  # item not queued in this project
    expert: list[OpenRequest] = field(default_factory=list)  # expert_review (and unknown actions)

    @property
    def needs_expert(self) -> list[OpenRequest]:
        """Requests a human expert has to settle: asked for one, or the crowd is at the cap."""
        return self.expert + self.at_cap


def plan_overlap_raises(requests: Sequence[OpenRequest], *, max_overlap: int) -> OverlapPlan:
    """Decide which open requests raise their task's overlap (see the module docstring for the rules).

    An item with several open ``more_annotators`` requests (two sources) is raised once, on behalf of
    its oldest request. Deterministic: the output follows request ids.
    """
    if max_overlap < 1:
        raise ValueError(f"max_overlap must be at least 1, got {max_overlap}")
    plan = OverlapPlan()
    seen_items: set[str] = set()
    for req in sorted(requests, key=lambda r: r.request_id):
        if req.action != MORE_ANNOTATORS:
            plan.expert.append(req)
            continue
        if req.item_id in seen_items:
            continue
        seen_items.add(req.item_id)
        if req.ls_task_id is None or req.required_annotations is None:
            plan.no_task.append(req)
            continue
        delivered = req.n_annotators or 0
        if delivered < req.required_annotations:
            plan.waiting.append(req)
            continue
        # +1 over what was delivered (an item can hold more annotations than its overlap asked for).
        current = max(req.required_annotations, delivered)
        if current >= max_overlap:
            plan.at_cap.append(req)
            continue
        plan.raises.append(
            OverlapRaise(req.request_id, req.item_id, req.ls_task_id, req.required_annotations, current + 1)
        )
    return plan


def consensus_review_requests(
    labels: pd.DataFrame,
    *,
    threshold: float,
    action: ReviewAction,
    max_annotators: int,
    reason_prefix: str,
) -> tuple[list[ReviewRequest], list[str]]:
    """Review requests for the consensus rows below ``threshold``, and the items now confident.

    A low-confidence item that already has ``max_annotators`` labelers goes to an expert even when
    ``action`` asks for more labelers: more of the same crowd is unlikely to settle it.
    """
    low = labels[labels["confidence"] < threshold]
    confident = labels.loc[labels["confidence"] >= threshold, "item_id"].tolist()
    requests = []
    for record in low.to_dict("records"):
        chosen: str = action
        if action == MORE_ANNOTATORS and record["n_annotators"] >= max_annotators:
            chosen = EXPERT_REVIEW
        reason = (
            f"{reason_prefix}: confidence {record['confidence']:.2f} < {threshold:.2f} "
            f"with {int(record['n_annotators'])} annotators (agreement {record['agreement']:.2f})"
        )
        requests.append(ReviewRequest(str(record["item_id"]), chosen, reason))
    return requests, confident


def label_issue_review_requests(flagged: pd.DataFrame) -> list[ReviewRequest]:
    """One expert review request per label issue (``find_issues`` rows), saying what the baseline thinks."""
    return [
        ReviewRequest(
            str(r["item_id"]),
            EXPERT_REVIEW,
            f"consensus {_said(r['given_label'])} but an out-of-sample baseline says {_said(r['suggested_label'])} "
            + (
                f"(confidence {r['suggested_probability']:.2f}, label quality {r['label_quality']:.3f})"
                if isinstance(r["suggested_label"], list | tuple)  # a set's is a mean over classes, not one p
                else f"(p={r['suggested_probability']:.2f}, label quality {r['label_quality']:.3f})"
            ),
        )
        for r in flagged.to_dict("records")
    ]


def _said(label: object) -> str:
    """A label in a sentence an expert reads: a class quoted as before, a set as {a, b} ("none of these" when
    empty), never a Python list repr."""
    if isinstance(label, list | tuple):
        return "{" + ", ".join(map(str, label)) + "}" if label else "none of these"
    return repr(label)


def overlap_drift(wanted: Mapping[int, int], remote: Mapping[int, int]) -> dict[int, int]:
    """Tasks whose Label Studio overlap is below the recorded one: ls_task_id -> overlap to set.

    Only raises: a task Label Studio holds at a higher overlap (someone raised it by hand) is left alone,
    and a task Label Studio no longer has is skipped.
    """
    return {tid: want for tid, want in sorted(wanted.items()) if tid in remote and remote[tid] < want}
