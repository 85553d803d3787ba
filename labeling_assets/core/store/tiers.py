"""Machine labels in the label store (migration 20, docs/tiers.md): the champion's pre-labels, the candidates,
each version's threshold decision and the check sample. Pure decisions are in ``core/dataset/tiers.py``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.dataset.tiers import (
    ProductionCheck,
    ThresholdDecision,
    check_sample,
    choose_threshold,
    machine_labels,
    production_check,
    reference,
)
from labeling_assets.core.store.dataset_versions import manifest_document, newest_version
from labeling_assets.core.store.schema import LabelStore, items_table, prelabels_table, utcnow
from labeling_assets.core.store.tiers_schema import machine_label_checks_table, machine_label_decisions_table

BASELINE_PREFIX = "baseline-"  # the pixel baseline's model versions (core/training/baseline.py): never a champion


def champion_prelabels(store: LabelStore) -> tuple[str | None, dict[str, Any]]:
    """The champion's model version and its pre-labels (item -> class probabilities). Only a champion pre-labels
    once one exists (``prelabels``), so it is the newest pre-label model that is not a pixel baseline: a baseline
    is fitted on every consensus label, so none of them could serve as a held-out reference."""
    p = prelabels_table
    newest = store.fetch(
        sa.select(p.c.model_version, sa.func.max(p.c.computed_at).label("at"))
        .where(~p.c.model_version.startswith(BASELINE_PREFIX))
        .group_by(p.c.model_version)
        .order_by(sa.desc("at"))
        .limit(1)
    )
    if not newest:
        return None, {}
    version = str(newest[0]["model_version"])
    rows = store.fetch(sa.select(p.c.item_id, p.c.probs).where(p.c.model_version == version))
    return version, {str(r["item_id"]): _json(r["probs"]) for r in rows}


def unlabeled_candidates(store: LabelStore, labeled: set[str]) -> set[str]:
    """Active items that may take a machine label: no live human label (``labeled``), not gold, no path-pattern
    group (a group's items go to one split together, and machine labels go to train only)."""
    t = items_table
    rows = store.fetch(
        sa.select(t.c.item_id).where(t.c.status == "active", t.c.group_key.is_(None), t.c.gold_label.is_(None))
    )
    return {str(r["item_id"]) for r in rows} - labeled


def record_decision(
    store: LabelStore, version: str, model_version: str | None, status: str, decision: ThresholdDecision,
    *, n_machine: int, production: Mapping[str, Any] | None,
) -> bool:  # fmt: skip
    """Store ``version``'s decision once (a version rebuilt with the same content keeps its first); True if new."""
    t = machine_label_decisions_table
    with store.begin() as conn:
        if conn.execute(sa.select(t.c.dataset_version).where(t.c.dataset_version == version)).first() is not None:
            return False
        conn.execute(t.insert().values(
            dataset_version=version, model_version=model_version, status=status, target=decision.target,
            confidence=decision.confidence, threshold=decision.threshold, lower_bound=decision.lower_bound,
            n=decision.n, n_correct=decision.n_correct, n_reference=decision.n_reference, n_machine=n_machine,
            reason=decision.reason, production=dict(production) if production else None, decided_at=utcnow(),
        ))  # fmt: skip
    return True


def decision_of(store: LabelStore, version: str | None = None) -> dict[str, Any] | None:
    """A version's decision (the newest decided when ``version`` is None), with ``production`` as a dict."""
    t = machine_label_decisions_table
    query = sa.select(t)
    query = query.where(t.c.dataset_version == version) if version else query.order_by(t.c.decided_at.desc()).limit(1)
    rows = store.fetch(query)
    if not rows:
        return None
    row = dict(rows[0])
    row["production"] = _json(row["production"]) if row["production"] is not None else None
    return row


def record_checks(store: LabelStore, version: str, model_version: str, sampled: Mapping[str, tuple[str, float]]) -> int:
    """Add the machine-labeled items sampled for people (item -> (label, confidence)) not recorded yet for this model;
    returns how many were new."""
    t = machine_label_checks_table
    known = {str(r["item_id"]) for r in store.fetch(sa.select(t.c.item_id).where(t.c.model_version == model_version))}
    now = utcnow()
    rows = [{"item_id": i, "model_version": model_version, "label": str(lab), "confidence": float(c),
             "dataset_version": version, "sampled_at": now}
            for i, (lab, c) in sorted(sampled.items()) if i not in known]  # fmt: skip
    if rows:
        with store.begin() as conn:
            conn.execute(t.insert(), rows)
    return len(rows)


def check_sample_labels(store: LabelStore, model_version: str) -> dict[str, str]:
    """item -> the machine label of every item sampled for people under ``model_version``."""
    t = machine_label_checks_table
    rows = store.fetch(sa.select(t.c.item_id, t.c.label).where(t.c.model_version == model_version))
    return {str(r["item_id"]): str(r["label"]) for r in rows}


def checked_items(store: LabelStore) -> set[str]:
    """Every item ever sampled for people's check (under any model)."""
    return {str(r["item_id"]) for r in store.fetch(sa.select(machine_label_checks_table.c.item_id))}


def machine_labeled_not_for_people(store: LabelStore) -> set[str]:
    """The items the queue leaves out: the newest dataset version's machine tier (when its decision is ``on``),
    less the check sample, which still goes to people."""
    newest = newest_version(store)
    decided = decision_of(store, newest) if newest else None
    if not newest or not decided or decided["status"] != "on":
        return set()
    return machine_tier_items(manifest_document(store, newest)) - checked_items(store)


def machine_tier_items(manifest: Mapping[str, Any] | None) -> set[str]:
    """The items a stored manifest document holds with the machine tier (none for a version without tiers)."""
    if not manifest or "tier" not in manifest:
        return set()
    return {str(i) for i, tier in zip(manifest["item_id"], manifest["tier"], strict=True) if tier == "machine"}


def tier_frame(manifest: Mapping[str, Any] | None) -> pd.DataFrame:
    """item_id -> tier, tier_confidence of a stored manifest document (empty when it has no tiers)."""
    if not manifest or "tier" not in manifest:
        return pd.DataFrame(columns=["tier", "tier_confidence"], index=pd.Index([], name="item_id"))
    return pd.DataFrame(
        {"tier": manifest["tier"], "tier_confidence": manifest["tier_confidence"]},
        index=pd.Index([str(i) for i in manifest["item_id"]], name="item_id"),
    )


# The kinds whose label is one class name, so a pre-label's top class is a label (class kinds first; the set, box
# and span kinds would need a confidence for a whole answer and a rule for comparing one with a human's).
MACHINE_LABEL_KINDS = frozenset({"single_label", "text_classes"})


@dataclass(frozen=True)
class MachinePlan:
    """What ``dataset_splits`` does about machine labels this version."""

    status: str  # on | no threshold | no champion | suspended | not for this kind
    model_version: str | None
    decision: ThresholdDecision
    labels: dict[str, tuple[str, float]] = field(default_factory=dict)  # item -> (label, confidence)
    production: ProductionCheck | None = None


def plan_machine_labels(
    store: LabelStore, labeled: pd.DataFrame, existing: pd.Series, *, task_type: str, target: float,
    confidence: float,
) -> MachinePlan:  # fmt: skip
    """The champion's threshold decision on the human-labeled items it did not train on (every item not frozen in
    train: val, test and items labeled since), the production check of its check sample, and the machine labels.

    The machine tier is suspended while the check sample's upper bound is below the target: the version is built
    without machine labels and those items go back to people's queue.
    """
    def plan(status: str, reason: str, model: str | None = None, check: ProductionCheck | None = None) -> MachinePlan:
        return MachinePlan(status, model, ThresholdDecision(target, confidence, None, None, 0, 0, 0, (), reason),
                           production=check)  # fmt: skip

    if task_type not in MACHINE_LABEL_KINDS:
        return plan("not for this kind", f"{task_type} has no machine tier (class kinds only)")
    model, prelabels = champion_prelabels(store)
    if model is None:
        return plan("no champion", "no champion has pre-labeled items yet (a pixel baseline never machine-labels)")
    human = {str(i): str(lab) for i, lab in zip(labeled["item_id"], labeled["label"], strict=True)}
    check = production_check(check_sample_labels(store, model), human, target=target, confidence=confidence)
    if check.below_target:
        return plan("suspended", f"the check sample of {model}: {check.n_agree}/{check.n} agree with people, upper "
                    f"bound {check.upper:.4f} < target {target:g}", model, check)  # fmt: skip
    held_out = {i: lab for i, lab in human.items() if existing.get(i) != "train" and i in prelabels}
    conf, correct = reference({i: prelabels[i] for i in held_out}, held_out)
    decision = choose_threshold(conf, correct, target=target, confidence=confidence)
    if not decision.on:
        return MachinePlan("no threshold", model, decision, production=check)
    unlabeled = unlabeled_candidates(store, set(human))
    chosen = machine_labels({i: p for i, p in prelabels.items() if i in unlabeled}, float(decision.threshold or 1))
    return MachinePlan("on", model, decision, chosen, check)


def sampled_for_people(labels: Mapping[str, tuple[str, float]], rate: float, seed: int) -> dict[str, tuple[str, float]]:
    """The machine labels whose items still go to people (the check sample)."""
    ids = sorted(labels)
    picked = check_sample(ids, rate, seed)
    return {i: labels[i] for i, keep in zip(ids, picked, strict=True) if keep}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
