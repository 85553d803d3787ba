"""Stage dataset: frozen stratified splits with a versioned manifest, the dataset card, and exports."""

import datetime as dt
from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from pydantic import Field

from labeling_assets.constants import GROUP_DATASET, OWNERS
from labeling_assets.core.consensus.agreement import fleiss_kappa_from_annotations
from labeling_assets.core.dataset import export as export_core
from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.card import CardInputs, render_card
from labeling_assets.core.store.schema import (
    LabelStore,
    current_annotations_query,
    dataset_versions_table,
    items_table,
    latest_consensus_query,
    splits_table,
    utcnow,
)
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

DATASET_SPLITS_KEY = dg.AssetKey("dataset_splits")
# The blocking checks of labeling_assets/checks/dataset.py: a version that failed one is never exported,
# not even by a later run that selects only the export.
BLOCKING_CHECKS: tuple[str, ...] = (
    "dataset_splits_no_hash_in_two_splits",
    "dataset_splits_no_group_in_two_splits",
    "dataset_splits_class_proportions_within_tolerance",
    "dataset_splits_frozen_assignments_unchanged",
)


class DatasetSplitsConfig(dg.Config):
    """Targets for newly assigned items; items that already have a split keep it."""

    train_ratio: float = Field(default=0.70, description="Target share of the train split.")
    val_ratio: float = Field(default=0.15, description="Target share of the validation split.")
    test_ratio: float = Field(default=0.15, description="Target share of the (frozen) test split.")
    seed: int = Field(default=0, description="Seeds the placement of new items (reproducible).")


class DatasetExportConfig(dg.Config):
    formats: list[str] = Field(
        default=list(export_core.FORMATS),
        description=f"Any of {', '.join(export_core.FORMATS)}.",
    )


def current_dataset_version(instance: dg.DagsterInstance) -> str | None:
    """The dataset version of the latest ``dataset_splits`` materialization (what downstream reads)."""
    event = instance.get_latest_materialization_event(DATASET_SPLITS_KEY)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("dataset_version")
    return str(value.value) if value is not None else None


def failed_blocking_checks(instance: dg.DagsterInstance) -> list[str]:
    """Blocking dataset checks whose latest evaluation failed (checks never run count as not failed)."""
    failed = []
    for name in BLOCKING_CHECKS:
        record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(DATASET_SPLITS_KEY, name))
        if record is not None and record.status.value == "FAILED":
            failed.append(name)
    return failed


def load_manifest(store: LabelStore, version: str) -> pd.DataFrame:
    """The (item_id, label, split[, sample_weight]) manifest stored for a dataset version."""
    rows = store.fetch(
        sa.select(dataset_versions_table.c.manifest).where(dataset_versions_table.c.dataset_version == version)
    )
    if not rows:
        raise ValueError(f"dataset version {version!r} is not in the label store")
    return split_core.manifest_from_json(rows[0]["manifest"])


def _labeled_items(store: LabelStore) -> tuple[pd.DataFrame, dict[str, int]]:
    """Latest consensus per active item with its group key; counts of consensus items left out, by reason."""
    latest = latest_consensus_query().subquery("latest_consensus")
    query = sa.select(
        latest.c.item_id,
        latest.c.label,
        latest.c.method,
        latest.c.confidence,
        latest.c.agreement,
        items_table.c.status,
        items_table.c.group_key,
        items_table.c.gold_label,
    ).select_from(latest.outerjoin(items_table, items_table.c.item_id == latest.c.item_id))
    frame = pd.DataFrame(
        store.fetch(query),
        columns=[
            "item_id",
            "label",
            "method",
            "confidence",
            "agreement",
            "status",
            "group_key",
            "gold_label",
        ],
    )
    # Only active items go into a dataset: quarantined bytes are unusable, superseded ones were replaced
    # at their source path (their frozen split rows stay in the store for when they come back).
    status = frame["status"].fillna("not ingested")
    excluded = {f"item is {s}": int(n) for s, n in status[status != "active"].value_counts().items()}
    frame = frame[status == "active"].reset_index(drop=True)
    # A consensus that names no class or several cannot train a single-label model: leave the item out
    # (the card counts it) rather than block the whole dataset on it.
    single = frame["label"].map(_is_single_label).astype(bool)
    if not single.all():
        excluded["consensus label is not exactly one class"] = int((~single).sum())
    return frame[single].reset_index(drop=True), excluded


def _is_single_label(value: Any) -> bool:
    try:
        split_core.normalize_label(value)
    except ValueError:
        return False
    return True


def _annotation_summary(store: LabelStore, item_ids: set[str]) -> tuple[int, int, float | None]:
    """(annotators, annotations, Fleiss' kappa) over the current annotations of the dataset's items."""
    frame = pd.DataFrame(store.fetch(current_annotations_query()), columns=["item_id", "labeler_id", "label"])
    frame = frame[frame["item_id"].isin(item_ids)]
    if frame.empty:
        return 0, 0, None
    labels = []
    for value in frame["label"]:
        try:
            labels.append(split_core.normalize_label(value))
        except ValueError:  # multi-class or empty answers do not enter a single-label kappa
            labels.append(None)
    frame = frame.assign(label=labels).dropna(subset=["label"])
    kappa = fleiss_kappa_from_annotations(frame).kappa if not frame.empty else float("nan")
    return int(frame["labeler_id"].nunique()), len(frame), (None if pd.isna(kappa) else float(kappa))


def _previous_version(store: LabelStore) -> str | None:
    rows = store.fetch(
        sa.select(dataset_versions_table.c.dataset_version).order_by(dataset_versions_table.c.created_at.desc()).limit(1)
    )
    return rows[0]["dataset_version"] if rows else None


@dg.asset(
    group_name=GROUP_DATASET,
    deps=["consensus_labels"],
    kinds={"python", "sql"},
    owners=OWNERS,
    # New consensus labels flow into a new dataset version without a manual step (STYLE §7).
    automation_condition=dg.AutomationCondition.eager(),
)
def dataset_splits(
    context: dg.AssetExecutionContext,
    config: DatasetSplitsConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult:
    """The versioned train/val/test manifest of consensus-labeled items: stratified, group-aware, frozen."""
    store = label_store.get_store()
    ratios = split_core.SplitRatios(config.train_ratio, config.val_ratio, config.test_ratio)
    labeled, excluded = _labeled_items(store)
    if labeled.empty:
        raise dg.Failure(
            "No active item has a consensus label yet: materialize consensus_labels first.",
            metadata={"excluded": dg.MetadataValue.json(excluded)},
        )
    existing = pd.DataFrame(
        store.fetch(sa.select(splits_table.c.item_id, splits_table.c.split)), columns=["item_id", "split"]
    )
    context.log.info(f"Assigning {len(labeled)} labeled items ({len(existing)} already have a frozen split)")
    assignment = split_core.assign_splits(
        labeled[["item_id", "label", "group_key"]],
        existing=existing.set_index("item_id")["split"],
        ratios=ratios,
        seed=config.seed,
    )
    manifest = assignment.frame
    version = split_core.manifest_version(manifest)
    weights = split_core.class_weights(manifest.loc[manifest["split"] == "train", "label"])
    previous = _previous_version(store)
    n_annotators, n_annotations, kappa = _annotation_summary(store, set(manifest["item_id"]))

    card = render_card(
        CardInputs(
            name=project.name,
            version=version,
            manifest=manifest,
            class_weights=weights,
            ratios=ratios.as_dict(),
            seed=config.seed,
            previous_version=previous if previous != version else None,
            n_new_items=assignment.n_new,
            n_annotators=n_annotators,
            n_annotations=n_annotations,
            fleiss_kappa=kappa,
            mean_agreement=_mean(labeled["agreement"]),
            mean_confidence=_mean(labeled["confidence"]),
            label_sources={str(k): int(v) for k, v in labeled["method"].value_counts().items()},
            n_gold_items=int(labeled["gold_label"].notna().sum()),
            expected_classes=list(project.classes),
            excluded=excluded,
            notes=assignment.notes,
        )
    )
    now = utcnow()
    new_rows = manifest.loc[manifest["is_new"], ["item_id", "split"]]
    with store.begin() as conn:
        # Only new items get a row: an existing row is the frozen assignment and is never rewritten.
        if len(new_rows):
            conn.execute(
                splits_table.insert(),
                [
                    {"item_id": i, "split": s, "dataset_version": version, "assigned_at": now}
                    for i, s in new_rows.itertuples(index=False)
                ],
            )
        known = conn.execute(
            sa.select(dataset_versions_table.c.dataset_version).where(dataset_versions_table.c.dataset_version == version)
        ).first()
        if known is None:
            conn.execute(
                dataset_versions_table.insert().values(
                    dataset_version=version,
                    created_at=now,
                    n_items=len(manifest),
                    class_weights=weights,
                    manifest=split_core.manifest_to_json(
                        manifest,
                        previous_version=previous if previous != version else None,
                        extra={"ratios": ratios.as_dict(), "seed": config.seed, "notes": assignment.notes},
                        weights=weights,
                    ),
                    card=card,
                )
            )
    card_path = project.data_path / "datasets" / version / "dataset_card.md"
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(card, encoding="utf-8")
    context.log.info(f"Dataset version {version}: {assignment.n_new} new items, {len(manifest)} in all")

    sizes = manifest["split"].value_counts()
    metadata: dict[str, Any] = {
        "dataset_version": dg.MetadataValue.text(version),
        "previous_version": dg.MetadataValue.text(previous or ""),
        "is_new_version": dg.MetadataValue.bool(known is None),
        "n_items": dg.MetadataValue.int(len(manifest)),
        "n_new_items": dg.MetadataValue.int(assignment.n_new),
        **{f"n_{s}": dg.MetadataValue.int(int(sizes.get(s, 0))) for s in split_core.SPLITS},
        "class_weights": dg.MetadataValue.json(weights),
        "imbalance_ratio": dg.MetadataValue.float(round(split_core.imbalance_ratio(manifest["label"]), 4)),
        "excluded_items": dg.MetadataValue.json(excluded),
        "limitations": dg.MetadataValue.json(list(assignment.notes)),
        "card": dg.MetadataValue.md(card),
        "card_path": dg.MetadataValue.path(str(card_path)),
    }
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(version))


def _mean(values: pd.Series) -> float | None:
    numeric = pd.to_numeric(values, errors="coerce").dropna()
    return float(numeric.mean()) if len(numeric) else None


@dg.asset(
    group_name=GROUP_DATASET,
    deps=[DATASET_SPLITS_KEY],
    kinds={"python", "parquet"},
    owners=OWNERS,
)
def dataset_export(
    context: dg.AssetExecutionContext,
    config: DatasetExportConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult:
    """The current dataset version as files: JSONL, CSV, Parquet and an ImageFolder tree."""
    formats = export_core.validate_formats(config.formats)
    version = current_dataset_version(context.instance)
    if version is None:
        raise dg.Failure("dataset_splits has never been materialized in this instance: materialize it first.")
    failed = failed_blocking_checks(context.instance)
    if failed:
        raise dg.Failure(
            f"dataset version {version} failed blocking checks {', '.join(failed)}: not exported. "
            "Fix the data (see the check metadata), re-materialize dataset_splits, then export.",
            metadata={"failed_checks": dg.MetadataValue.json(failed)},
        )
    store = label_store.get_store()
    manifest = load_manifest(store, version)
    # One read of the uri column (not one query per chunk of ids); export_rows reports any item without one.
    uris: dict[str, str | None] = {
        r["item_id"]: r["uri"] for r in store.fetch(sa.select(items_table.c.item_id, items_table.c.uri))
    }
    rows = export_core.export_rows(manifest, uris)
    out_dir = project.data_path / "exports" / version
    started = dt.datetime.now(dt.UTC)
    report = export_core.export_dataset(rows, out_dir, formats)
    card = store.fetch(
        sa.select(dataset_versions_table.c.card).where(dataset_versions_table.c.dataset_version == version)
    )
    if card and card[0]["card"]:
        # The card travels with the files (README.md is where dataset hubs look for it).
        (out_dir / "README.md").write_text(card[0]["card"], encoding="utf-8")
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    context.log.info(f"Exported {len(rows)} items of {version} as {formats} to {out_dir} in {seconds:.1f}s")
    return dg.MaterializeResult(
        metadata={
            "dataset_version": dg.MetadataValue.text(version),
            "n_items": dg.MetadataValue.int(len(rows)),
            "export_dir": dg.MetadataValue.path(str(out_dir)),
            **{f"path_{name}": dg.MetadataValue.path(str(path)) for name, path in report.paths.items()},
            "imagefolder_hard_links": dg.MetadataValue.int(report.linked),
            "imagefolder_copies": dg.MetadataValue.int(report.copied),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
        },
        data_version=dg.DataVersion(version),
    )
