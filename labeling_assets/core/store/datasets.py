"""Store reads and writes of the training chain: the current dataset, soft targets, the pre-label pool.

Errors are plain exceptions naming what to materialize; the assets turn them into ``dg.Failure``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.consensus.class_schema import map_answer
from labeling_assets.core.consensus.methods import PRIOR_STRENGTH
from labeling_assets.core.dataset.splits import manifest_from_json, normalize_label
from labeling_assets.core.store.class_changes import class_mapping
from labeling_assets.core.store.prelabel_models_schema import prelabel_models_table
from labeling_assets.core.store.schema import (
    LabelStore,
    chunked,
    dataset_versions_table,
    items_table,
    latest_consensus_query,
    prelabels_table,
    splits_table,
    utcnow,
)

TargetsMode = Literal["auto", "hard", "soft"]
# Consensus methods whose stored probabilities are a posterior over the true class: the Dawid-Skene family
# (every method with an EM prior strength), dawid_skene_pooled included. Majority stores vote shares.
POSTERIOR_METHODS = frozenset(PRIOR_STRENGTH)


class NoDatasetVersion(LookupError):
    """No dataset version in the store yet (dataset_splits never materialized)."""


class UnknownLabels(ValueError):
    """Labels outside the project's class list."""


@dataclass(frozen=True)
class DatasetSnapshot:
    """The current dataset version: one row per item with item_id, label, split, uri."""

    version: str
    frame: pd.DataFrame
    dropped: int  # manifest rows without a readable stored copy

    def split(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["split"] == name].sort_values("item_id", kind="stable")


def current_dataset(store: LabelStore, version: str | None) -> DatasetSnapshot:
    """Dataset ``version`` (the newest stored one when None) joined with the items' stored copies.

    Versions are content hashes: when labels flip back, the current version is an older row, so the
    newest row by time is not necessarily current; the caller passes the version dataset_splits
    materialized. The version's own manifest (item, label, split) is used when stored, so training sees
    exactly the labels that were versioned; otherwise the splits table joined with the newest consensus.

    Raises:
        NoDatasetVersion: no dataset version exists yet.
    """
    query = sa.select(dataset_versions_table)
    if version is not None:
        query = query.where(dataset_versions_table.c.dataset_version == version)
    rows = store.fetch(query.order_by(dataset_versions_table.c.created_at.desc()).limit(1))
    if not rows:
        raise NoDatasetVersion("no dataset version in the label store yet: materialize dataset_splits first")
    row = rows[0]
    manifest = None
    if isinstance(row.get("manifest"), dict | str):
        try:
            manifest = manifest_from_json(row["manifest"])
        except (KeyError, ValueError):
            manifest = None
    if manifest is None or manifest.empty:
        manifest = _manifest_from_tables(store)
    located = pd.DataFrame(
        store.fetch(
            sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.status == "active")
        ),
        columns=["item_id", "uri"],
    )
    frame = manifest.merge(located, on="item_id", how="left")
    missing = frame["uri"].isna()
    return DatasetSnapshot(
        version=str(row["dataset_version"]),
        frame=frame[~missing].reset_index(drop=True),
        dropped=int(missing.sum()),
    )


def with_consensus_confidence(store: LabelStore, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with a ``confidence`` column: each item's live consensus confidence (NaN without one). A trainer
    weighs its items by it; the version's manifest keeps the answers, not how sure consensus was of them."""
    latest = latest_consensus_query().subquery()
    found: dict[str, float] = {}
    for part in chunked(rows["item_id"].astype(str).tolist()):
        query = sa.select(latest.c.item_id, latest.c.confidence).where(latest.c.item_id.in_(list(part)))
        found.update({str(r["item_id"]): r["confidence"] for r in store.fetch(query)})
    confidence = rows["item_id"].astype(str).map(found)
    return rows.assign(confidence=pd.to_numeric(confidence, errors="coerce"))


def _manifest_from_tables(store: LabelStore) -> pd.DataFrame:
    latest = latest_consensus_query().subquery()
    query = sa.select(splits_table.c.item_id, splits_table.c.split, latest.c.label).join(
        latest, latest.c.item_id == splits_table.c.item_id
    )
    frame = pd.DataFrame(store.fetch(query), columns=["item_id", "split", "label"])
    frame["label"] = frame["label"].map(normalize_label)
    return frame


def label_indices(labels: Iterable[Any], classes: Sequence[str]) -> npt.NDArray[np.int64]:
    """Class indices of ``labels``.

    Raises:
        UnknownLabels: a label is outside the class list.
    """
    index = {name: k for k, name in enumerate(classes)}
    names = [str(label) for label in labels]
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise UnknownLabels(f"labels not in the project's class list {list(classes)}: {unknown[:10]}")
    return np.array([index[name] for name in names], dtype=np.int64)


def stored_gold(store: LabelStore, item_ids: Sequence[str]) -> dict[str, Any]:
    """item_id -> the stored hidden gold answer, for the items of ``item_ids`` that have one."""
    gold: dict[str, Any] = {}
    for part in chunked(list(item_ids)):
        rows = store.fetch(
            sa.select(items_table.c.item_id, items_table.c.gold_label).where(
                items_table.c.item_id.in_(list(part)), items_table.c.gold_label.is_not(None)
            )
        )
        gold.update({r["item_id"]: r["gold_label"] for r in rows})
    mapping = class_mapping(store)  # a renamed or merged class reads as the class it became
    return {item: map_answer(label, mapping) for item, label in gold.items()} if mapping else gold


def gold_label_indices(store: LabelStore, item_ids: Sequence[str], classes: Sequence[str]) -> list[int | None]:
    """Per item, the class index of its hidden gold label; None when it is not gold or its gold label is
    not one class of ``classes`` (a multi-label gold set, a class since removed)."""
    index = {name: k for k, name in enumerate(classes)}
    gold = stored_gold(store, item_ids)
    found: list[int | None] = []
    for item in item_ids:
        try:
            label = normalize_label(gold[item]) if item in gold else None
        except ValueError:
            label = None
        found.append(index.get(label) if label is not None else None)
    return found


# --- soft targets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredTargets:
    """Soft targets of a split from the latest consensus rows, in the cache's class order."""

    targets: npt.NDArray[np.float32]  # (n, n_classes) rows summing to 1
    missing: int  # items without usable stored probabilities: one-hot of their label instead
    not_posterior: int  # items whose probabilities come from a method without a posterior (majority)

    def note(self) -> str:
        """Why some items are not on a posterior, for the run log ('' when all are)."""
        notes = []
        if self.missing:
            notes.append(
                f"{self.missing} have no usable stored probabilities (one-hot of their label if soft)"
            )
        if self.not_posterior:
            notes.append(f"{self.not_posterior} have vote shares, not a Dawid-Skene posterior")
        return f" (of {len(self.targets)} training items: {'; '.join(notes)})" if notes else ""


def stored_soft_targets(
    store: LabelStore, item_ids: list[str], labels: npt.NDArray[np.int64], classes: list[str]
) -> StoredTargets:
    """The stored consensus probabilities of ``item_ids`` as an (n, n_classes) array.

    An item's probabilities are used only when its latest consensus label is still its dataset label
    (a later relabel, e.g. by an expert, would otherwise contradict the label it is versioned with) and
    they name only known classes; every other item gets the one-hot of its label and is counted missing.
    """
    latest = latest_consensus_query().subquery()
    rows = store.fetch(sa.select(latest.c.item_id, latest.c.label, latest.c.method, latest.c.probabilities))
    by_item = {r["item_id"]: r for r in rows}
    names = [str(c) for c in classes]
    targets = np.zeros((len(item_ids), len(classes)), dtype=np.float32)
    missing = not_posterior = 0
    for i, (item, code) in enumerate(zip(item_ids, labels.tolist(), strict=True)):
        vector = _probability_vector(by_item.get(item), names, names[int(code)])
        if vector is None:
            missing += 1
            targets[i, int(code)] = 1.0
        else:
            targets[i] = vector
            not_posterior += by_item[item]["method"] not in POSTERIOR_METHODS
    return StoredTargets(targets, missing, not_posterior)


def _probability_vector(
    row: dict[str, Any] | None, names: list[str], label: str
) -> npt.NDArray[np.float32] | None:
    if row is None or row.get("probabilities") is None:
        return None
    probs = row["probabilities"]
    if isinstance(probs, str):
        probs = json.loads(probs)
    try:
        if str(normalize_label(row["label"])) != label:
            return None
    except ValueError:
        return None
    if not isinstance(probs, dict) or not set(map(str, probs)) <= set(names):
        return None
    values = {str(k): v for k, v in probs.items()}
    vector = np.array([float(values.get(name, 0.0)) for name in names], dtype=np.float64)
    total = vector.sum()
    if not np.all(np.isfinite(vector)) or (vector < 0).any() or total <= 0:
        return None
    normalized: npt.NDArray[np.float32] = (vector / total).astype(np.float32)
    return normalized


def resolve_targets(mode: TargetsMode, stored: StoredTargets | None) -> Literal["hard", "soft"]:
    """``hard`` or ``soft``: auto is soft only when every training item has a stored posterior."""
    if mode == "hard" or stored is None:
        return "hard"
    if mode == "soft":
        return "soft"
    complete = stored.missing == 0 and stored.not_posterior == 0
    return "soft" if complete and len(stored.targets) else "hard"


# --- pre-labels ----------------------------------------------------------------------------------


def active_items_with_copies(store: LabelStore) -> pd.DataFrame:
    """(item_id, uri) of every active item with a stored copy, ordered by item id."""
    frame = pd.DataFrame(
        store.fetch(
            sa.select(items_table.c.item_id, items_table.c.uri).where(
                items_table.c.status == "active", items_table.c.uri.is_not(None)
            )
        ),
        columns=["item_id", "uri"],
    )
    return frame.sort_values("item_id", kind="stable")


def prelabeled_by(store: LabelStore, model_version: str, item_ids: Sequence[str] | None = None) -> set[str]:
    """The items ``model_version`` has pre-labeled (of ``item_ids`` only, when given)."""
    p = prelabels_table
    query = sa.select(p.c.item_id).where(p.c.model_version == model_version)
    if item_ids is not None:
        query = query.where(p.c.item_id.in_(item_ids))
    return {str(row["item_id"]) for row in store.fetch(query)}


def items_without_prelabels(store: LabelStore, pool: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """The rows of ``pool`` that ``model_version`` has not pre-labelled yet."""
    return pool[~pool["item_id"].isin(prelabeled_by(store, model_version))].reset_index(drop=True)


def insert_prelabels(
    store: LabelStore,
    item_ids: Sequence[str],
    probs: npt.NDArray[Any] | Sequence[Any],
    classes: Sequence[str],
    model_version: str,
) -> int:
    """One pre-label row per item (class -> probability, from a row of ``probs``); a row that is a mapping already (a
    trainer kind's output for the item, e.g. a detector's boxes) is stored as it is, as JSON. Returns the number
    written."""
    now = utcnow()
    rows = [
        {
            "item_id": item_id,
            "model_version": model_version,
            "probs": dict(row) if isinstance(row, Mapping) else
            {name: round(float(p), 6) for name, p in zip(classes, row, strict=True)},  # fmt: skip
            "computed_at": now,
        }
        for item_id, row in zip(item_ids, probs, strict=True)
    ]
    with store.begin() as conn:
        for part in chunked(rows):
            conn.execute(prelabels_table.insert(), list(part))
    return len(rows)


def record_thresholds(store: LabelStore, model_version: str, thresholds: Mapping[str, float]) -> None:
    """Keep a model version's per-class thresholds (a version is immutable: the first record stands)."""
    values = {str(c): round(float(t), 6) for c, t in thresholds.items()}
    try:
        with store.begin() as conn:
            known = conn.execute(
                sa.select(prelabel_models_table.c.model_version).where(prelabel_models_table.c.model_version == model_version)
            ).first()
            if known is None:
                conn.execute(
                    prelabel_models_table.insert().values(model_version=model_version, thresholds=values, recorded_at=utcnow())
                )
    except sa.exc.IntegrityError:  # a concurrent prelabels run recorded the same version first
        pass


def active_consensus(store: LabelStore) -> list[dict[str, Any]]:
    """The latest consensus (``item_id``, ``label``, ``uri``) of every active item with a stored copy, by item id."""
    latest = latest_consensus_query().subquery()
    return store.fetch(
        sa.select(latest.c.item_id, latest.c.label, items_table.c.uri)
        .join(items_table, items_table.c.item_id == latest.c.item_id)
        .where(items_table.c.status == "active", items_table.c.uri.is_not(None))
        .order_by(latest.c.item_id)
    )


def consensus_examples(store: LabelStore, classes: Sequence[str]) -> list[tuple[str, str]]:
    """(uri, label) of active items whose latest consensus is one known class, ordered by item id."""
    labeled: list[tuple[str, str]] = []
    for row in active_consensus(store):
        try:
            label = normalize_label(row["label"])
        except ValueError:
            continue  # multi-class or empty consensus: not a training example for a single-label model
        if label in classes:
            labeled.append((str(row["uri"]), str(label)))
    return labeled
