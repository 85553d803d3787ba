"""Adjudication and pauses: an expert's answer overrides the crowd; a paused labeler's new votes count for nothing.

Pure functions of DataFrames (the store reads are in ``core/store/human_loop.py``):
- :func:`exclude_paused` drops the votes a labeler gave while paused (votes from before still count: the pause
  is about what they do from then on, and a person can inspect the rest).
- :func:`apply_adjudications` replaces the crowd's consensus of adjudicated items by the expert's class with
  method ``adjudicated`` and confidence 1 (agreement still says how many labelers had it right).
- :func:`least_confident` picks the k items an expert should see first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

ADJUDICATED = "adjudicated"
CONSENSUS_COLUMNS = ["item_id", "label", "confidence", "agreement", "n_annotators"]


Interval = tuple[dt.datetime, dt.datetime | None]  # a pause: from, until (None: still paused)


def _utc(value: dt.datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")


def exclude_paused(votes: pd.DataFrame, pauses: Mapping[str, Sequence[Interval]]) -> tuple[pd.DataFrame, int]:
    """Votes without those a labeler created while paused; (kept, dropped). Votes from before a pause count, and
    so do those after a person resumed them; a paused labeler's vote with no ``created_at`` is dropped."""
    if not pauses or votes.empty:
        return votes, 0
    labelers = votes["labeler_id"].astype(str).to_numpy()
    created = pd.to_datetime(votes["created_at"], utc=True, errors="coerce") if "created_at" in votes else None
    drop = pd.Series(False, index=votes.index)
    for labeler_id, intervals in pauses.items():
        theirs = pd.Series(labelers == labeler_id, index=votes.index)
        if created is None:
            drop |= theirs
            continue
        for start, end in intervals:
            inside = created >= _utc(start)
            if end is not None:
                inside &= created < _utc(end)
            drop |= theirs & (inside | created.isna())
    mask = drop.to_numpy(dtype=bool)
    return votes[~mask].reset_index(drop=True), int(mask.sum())


def apply_adjudications(
    labels: pd.DataFrame, votes: pd.DataFrame, adjudicated: pd.Series,
    score: Callable[[pd.DataFrame, pd.Series], tuple[int, int]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the consensus into (crowd rows without adjudicated items, adjudicated rows).

    Adjudicated rows exist for every adjudicated item with at least one vote, aggregated or not (an item the
    crowd could not settle at ``max_overlap`` may be below ``min_annotators`` of valid votes): label = the
    expert's answer, confidence 1, agreement = the item's votes scored against it as against gold (``score``: the
    kind's ``gold_score``, e.g. boxes matched / (expert's boxes + false boxes); by default the share of votes equal
    to it).
    """
    adjudicated = adjudicated[adjudicated.notna()]
    crowd = labels[~labels["item_id"].astype(str).isin(set(adjudicated.index))].reset_index(drop=True)
    voted = votes[votes["item_id"].astype(str).isin(set(adjudicated.index))]
    rows = []
    for item_id, item_votes in voted.groupby("item_id", sort=True):
        truth = adjudicated.loc[str(item_id)]
        n = int(item_votes["labeler_id"].nunique())
        if score is None:
            matches = float((item_votes["label"].astype(str) == str(truth)).mean())
        else:
            right, total = score(item_votes, pd.Series({str(item_id): truth}, dtype=object))
            matches = right / total if total else 1.0
        rows.append({"item_id": str(item_id), "label": truth, "confidence": 1.0, "agreement": matches,
                     "n_annotators": n})  # fmt: skip
    return crowd, pd.DataFrame(rows, columns=CONSENSUS_COLUMNS)


def truth_for_stats(gold: pd.Series, adjudicated: pd.Series) -> pd.Series:
    """What labelers are scored against: hidden gold, plus adjudicated answers on the other items (gold wins)."""
    extra = adjudicated[~adjudicated.index.isin(gold.index) & adjudicated.notna()]
    return pd.concat([gold, extra]) if not extra.empty else gold


def least_confident(labels: pd.DataFrame, k: int, *, exclude: set[str] | None = None) -> list[str]:
    """The ``k`` items with the lowest consensus confidence (ties by item id), leaving out ``exclude``."""
    pool = labels if not exclude else labels[~labels["item_id"].astype(str).isin(exclude)]
    ordered = pool.sort_values(["confidence", "item_id"], kind="stable")
    return [str(i) for i in ordered["item_id"].head(max(k, 0))]
