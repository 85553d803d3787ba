"""Automatic pause: a labeler whose gold gate is sure to fail stops counting without waiting for a person.

The rule is the gold check's ERROR: the upper end of the 95% Wilson interval of their gold score is below the
threshold (the kind's ``gold_gate_threshold`` or the project's setting; 9/10 at 0.8 never is; 5/30 is). The decision is pure; the asset records it as a pause event with
actor "gate", so consensus drops their later votes exactly as after ``labeling-assets labeler pause``.

- Idempotent: a labeler already paused (by a person or the gate) is not paused again.
- A person's ``labeler resume`` wins over old evidence: after a resume, only gold answers given after it
  (by ``created_at``; answers without one are not counted) are judged, so the same old failures never re-pause
  them; new failures that make the gate sure again do.
- The acceptance gate pauses the same way (spot checks: the share of a labeler's reviewed answers a reviewer
  accepted, surely below its threshold), so a labeler with no gold overlap is measured too; after a resume only
  verdicts on answers created after it count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from labeling_assets.core.consensus.adjudication import Interval
from labeling_assets.core.consensus.gates import (
    DEFAULT_MIN_GOLD_ACCURACY,
    GoldCounts,
    RateGate,
    gold_counts,
    gold_gate,
)
from labeling_assets.core.consensus.spot_check import (
    DEFAULT_ACCEPTANCE_THRESHOLD,
    acceptance_counts,
    acceptance_gate,
)

ACTOR = "gate"


@dataclass(frozen=True)
class AutoPause:
    labeler_id: str
    gate: RateGate
    evidence_since: dt.datetime | None  # the last resume (None: all their gold answers)

    @property
    def reason(self) -> str:
        since = f" since the resume at {self.evidence_since.isoformat()}" if self.evidence_since else ""
        return f"automatic: {self.gate.reason}{since}"


def _since(votes: pd.DataFrame, since: dt.datetime | None, column: str = "created_at") -> pd.DataFrame:
    if since is None:
        return votes
    created = pd.to_datetime(votes[column], utc=True, errors="coerce")
    stamp = pd.Timestamp(since)
    stamp = stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
    return votes[(created >= stamp).to_numpy(dtype=bool)]


def auto_pauses(
    votes: pd.DataFrame,
    truth: pd.Series,
    labeler_ids: Sequence[str],
    pauses: Mapping[str, Sequence[Interval]],
    threshold: float = DEFAULT_MIN_GOLD_ACCURACY,
    counts: GoldCounts = gold_counts,
    *,
    verdicts: pd.DataFrame | None = None,
    acceptance_threshold: float = DEFAULT_ACCEPTANCE_THRESHOLD,
) -> list[AutoPause]:
    """The labelers among ``labeler_ids`` to pause now: not paused, and their gold gate or their acceptance gate
    (on the answers since their last resume) fails. ``votes``: item_id, labeler_id, label, created_at; ``truth``:
    item_id -> label. ``counts``: (successes, trials) of a labeler's gold answers (label sets:
    ``multilabel_stats.set_gold_counts``). ``verdicts``: spot-check verdicts (``ls_annotation_id, labeler_id,
    verdict, answer_created_at``, in the order given; None: no acceptance gate)."""
    out = []
    for labeler_id in labeler_ids:
        spans = pauses.get(labeler_id) or []
        if spans and spans[-1][1] is None:
            continue  # paused now: nothing to do
        since = spans[-1][1] if spans else None
        theirs = votes[votes["labeler_id"].astype(str) == labeler_id] if not votes.empty else votes
        verdict = gold_gate(*counts(_since(theirs, since), truth), threshold) if not theirs.empty else None
        if (verdict is None or verdict.verdict != "fail") and verdicts is not None and not verdicts.empty:
            judged = _since(verdicts[verdicts["labeler_id"].astype(str) == labeler_id], since, "answer_created_at")
            verdict = acceptance_gate(*acceptance_counts(judged).get(labeler_id, (0, 0)), acceptance_threshold)
        if verdict is not None and verdict.verdict == "fail":
            out.append(AutoPause(labeler_id, verdict, since))
    return out
