"""Stored pre-labels that are out of sample: the output of a model that did not train on the item.

A pre-label row names its model as ``name/version`` (``RegisteredModel.label``); ``model_trainings`` says which
dataset version that model trained on, and the version's manifest which items were in its train split. A model's
output on an item of its own train split memorises the label it learned and hides its errors (the point of
out-of-sample scores in label-issue search); items in its val or test split, or not in its version at all, are
out of sample. A pre-label whose model has no ``model_trainings`` row (a baseline, a model trained elsewhere) is not
used: nothing says what it saw.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from labeling_assets.core.store.dataset_versions import load_manifest
from labeling_assets.core.store.lineage_schema import model_trainings_table
from labeling_assets.core.store.schema import LabelStore, chunked, prelabels_table


def trained_items(store: LabelStore, model_version: str) -> set[str] | None:
    """The items in the train split of every dataset version ``model_version`` (``name/version``) trained on;
    None when the store has no training of it."""
    name, _, number = model_version.rpartition("/")
    if not name or not number.isdigit():
        return None
    t = model_trainings_table
    versions = {r["dataset_version"] for r in store.fetch(
        sa.select(t.c.dataset_version).where(t.c.model_name == name, t.c.model_version == int(number)))}  # fmt: skip
    if not versions:
        return None
    seen: set[str] = set()
    for version in versions:
        try:
            manifest = load_manifest(store, version)
        except ValueError:  # a version the store no longer holds: nothing says what the model saw
            return None
        seen |= set(manifest.loc[manifest["split"] == "train", "item_id"].astype(str))
    return seen


def out_of_sample_prelabels(store: LabelStore, item_ids: Sequence[str]) -> dict[str, tuple[Any, str]]:
    """item -> (the newest stored pre-label of a model that did not train on it, that model's version)."""
    p = prelabels_table
    rows: list[dict[str, Any]] = []
    for part in chunked(list(item_ids)):
        rows += store.fetch(sa.select(p.c.item_id, p.c.model_version, p.c.probs, p.c.computed_at)
                            .where(p.c.item_id.in_(list(part))))  # fmt: skip
    seen: dict[str, set[str] | None] = {}
    found: dict[str, tuple[Any, str]] = {}
    for row in sorted(rows, key=lambda r: (r["computed_at"], r["model_version"])):  # newest last: it wins
        model = str(row["model_version"])
        if model not in seen:
            seen[model] = trained_items(store, model)
        trained = seen[model]
        if trained is None or str(row["item_id"]) in trained:
            continue
        probs = row["probs"]
        found[str(row["item_id"])] = (json.loads(probs) if isinstance(probs, str) else probs, model)
    return found
