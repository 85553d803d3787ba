"""Spot-check review: a random, seeded, auditable share of every labeler's answers is judged by a reviewer.

Pure functions (the store side is ``core/store/spot_checks.py``, the Label Studio side
``core/labelstudio/spot_check.py``):

- :func:`draw`: each answer's draw in [0, 1), a keyed hash (BLAKE2b, the seed as key) of its Label Studio
  annotation id. It depends on nothing else, so a rerun draws the same, and new answers never change whether an
  earlier one is picked: an answer is sampled when its draw is below its labeler's rate.
- :func:`labeler_rate`: the labeler's rate and why: the new-labeler rate until the 95% Wilson interval of their
  gold score clears the gold gate (the gate passes), then the base rate.
- :func:`pick_sample`: the answers to sample now, with draw, rate and reason (what the audit row stores). A pick
  is never withdrawn; a labeler whose rate rises (a gold gate no longer clear) has more of their answers picked.
- :func:`acceptance_counts` and :func:`acceptance_gate`: accepted / reviewed per labeler (the newest verdict per
  sampled answer; a fix is not an acceptance) and its Wilson gate, which pauses a labeler like a failed gold gate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.gates import RateGate, gate

ACCEPT = "accept"
REJECT = "reject"
FIX = "fix"
VERDICTS = (ACCEPT, REJECT, FIX)
DEFAULT_RATE = 0.10
DEFAULT_NEW_LABELER_RATE = 0.30
# A reviewer who must reject or correct more than one answer in five (surely, by the Wilson interval) is looking
# at a labeler the crowd should not count on: the class kinds' gold gate, on a person's judgement instead of gold.
DEFAULT_ACCEPTANCE_THRESHOLD = 0.8
SAMPLE_COLUMNS = ["ls_annotation_id", "item_id", "labeler_id", "answer", "answer_created_at", "draw", "rate",
                  "reason"]  # fmt: skip


def draw(seed: int, ls_annotation_id: int) -> float:
    """The answer's draw in [0, 1): a keyed hash of its annotation id (the same on every run and machine)."""
    key = int(seed).to_bytes(8, "big", signed=True)
    digest = hashlib.blake2b(str(int(ls_annotation_id)).encode(), digest_size=8, key=key).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class SamplingRates:
    """The project's spot-check settings."""

    rate: float = DEFAULT_RATE
    new_labeler_rate: float = DEFAULT_NEW_LABELER_RATE
    seed: int = 0


def labeler_rate(gold: RateGate | None, rates: SamplingRates) -> tuple[float, str]:
    """(rate, why) for a labeler whose gold gate is ``gold`` (None: no gold answered): the new-labeler rate until
    the gold interval is clear of the gate's threshold, then the base rate."""
    if gold is not None and gold.verdict == "pass":
        return rates.rate, f"base rate: {gold.reason}"
    why = gold.reason if gold is not None and gold.verdict != "no_data" else "no gold answered yet"
    return max(rates.rate, rates.new_labeler_rate), f"new labeler until the gold interval clears the gate: {why}"


def pick_sample(
    answers: pd.DataFrame,
    rates: Mapping[str, tuple[float, str]],
    seed: int,
    already: set[int],
) -> pd.DataFrame:
    """The answers to sample now (:data:`SAMPLE_COLUMNS`), by annotation id: those not sampled yet (``already``)
    whose draw is below their labeler's rate (``rates``: labeler id -> (rate, why); a labeler absent: not
    sampled). ``answers``: ``ls_annotation_id, item_id, labeler_id, label`` and optionally ``created_at``."""
    if answers.empty:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    rows = []
    for record in answers.to_dict("records"):
        annotation = int(record["ls_annotation_id"])
        labeler_id = str(record["labeler_id"])
        if annotation in already or labeler_id not in rates:
            continue
        rate, why = rates[labeler_id]
        value = draw(seed, annotation)
        if value < rate:
            created: Any = record.get("created_at")
            rows.append({"ls_annotation_id": annotation, "item_id": str(record["item_id"]), "labeler_id": labeler_id,
                         "answer": record["label"], "answer_created_at": None if pd.isna(created) else pd.Timestamp(created),
                         "draw": value, "rate": float(rate), "reason": why})  # fmt: skip
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS).sort_values("ls_annotation_id", ignore_index=True)


def acceptance_counts(verdicts: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """Labeler id -> (accepted, reviewed) from the newest verdict per sampled answer (``verdicts``:
    ``ls_annotation_id, labeler_id, verdict`` in the order they were given)."""
    if verdicts.empty:
        return {}
    newest = verdicts.drop_duplicates("ls_annotation_id", keep="last")
    out = {}
    for labeler_id, rows in newest.groupby("labeler_id", sort=True):
        out[str(labeler_id)] = (int((rows["verdict"] == ACCEPT).sum()), len(rows))
    return out


def acceptance_gate(accepted: int, reviewed: int, threshold: float = DEFAULT_ACCEPTANCE_THRESHOLD) -> RateGate:
    """The share of a labeler's reviewed answers a reviewer accepted, judged by its 95% Wilson interval (fails only
    when the whole interval is below ``threshold``)."""
    return gate(accepted, reviewed, threshold, higher_is_better=True, what="acceptance rate")
