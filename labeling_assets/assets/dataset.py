"""Stage dataset: frozen stratified splits with a versioned manifest, the dataset card, and exports."""

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from labeling_assets import lineage, stage
from labeling_assets.constants import GROUP_DATASET
from labeling_assets.core.consensus.review_routing import EXPERT_REVIEW, ReviewRequest
from labeling_assets.core.dataset import export as export_core
from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset import tiers as tiers_core
from labeling_assets.core.dataset.build import BuildInputs, BuiltDataset, build_dataset, with_previous
from labeling_assets.core.dataset.card import (
    CardInputs,
    render_card,
)
from labeling_assets.core.dataset.diff import render_diff
from labeling_assets.core.dataset.hub import HubPushError, push_dataset_dict
from labeling_assets.core.dataset.near_duplicates import DEFAULT_MAX_DISTANCE, HELD_OUT_REASON, group_summary
from labeling_assets.core.fields.consensus import (
    aggregate_fields,
    field_columns,
    fields_card,
    with_field_columns,
)
from labeling_assets.core.store.answer_fields import (
    current_field_answers,
    load_field_consensus,
    record_field_consensus,
)
from labeling_assets.core.store.class_changes import schema_change_report
from labeling_assets.core.store.consensus_versions import class_list_history, latest_consensus_choice
from labeling_assets.core.store.dataset_versions import (
    dataset_card,
    departures,
    frozen_splits,
    labeled_items,
    load_manifest,
    manifest_document,
    newest_version,
    record_dataset_version,
)
from labeling_assets.core.store.held_out import record_held_out
from labeling_assets.core.store.history import diff_versions, tags_of
from labeling_assets.core.store.phashes import ensure_phashes, load_phashes
from labeling_assets.core.store.queries import current_annotations, item_uris
from labeling_assets.core.store.reviews import sync_review_requests
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.store.tiers import (
    MachinePlan,
    plan_machine_labels,
    record_checks,
    record_decision,
    sampled_for_people,
    tier_frame,
)
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

HELD_OUT_SOURCE = "dataset_splits"  # review requests for items held out of a version


class DatasetSplitsConfig(dg.Config):
    """Targets for newly assigned items; items that already have a split keep it."""

    train_ratio: float = Field(default=0.70, description="Target share of the train split.")
    val_ratio: float = Field(default=0.15, description="Target share of the validation split.")
    test_ratio: float = Field(default=0.15, description="Target share of the (frozen) test split.")
    seed: int = Field(default=0, description="Seeds the placement of new items (reproducible).")
    near_duplicate_distance: int = Field(
        default=DEFAULT_MAX_DISTANCE,
        ge=-1,
        le=32,
        description="Items whose perceptual hashes differ in at most this many of 64 bits form one near-duplicate "
        "group, kept in one split; -1 turns near-duplicate grouping off.",
    )
    review_held_out: bool = Field(
        default=False,
        description="Also send each item held out of the version (a near-duplicate of frozen items in two splits) "
        "to expert review; held-out items are always listed on the card and in the metadata.",
    )


class DatasetExportConfig(dg.Config):
    formats: list[str] = Field(
        default=list(export_core.FORMATS),
        description=f"Any of {', '.join(export_core.FORMATS)}, as far as the project's kind of task has them: the "
        "default writes every format the kind has (a multi-label project: no ImageFolder, since one folder per class "
        "cannot hold a set of classes; a box project: coco, yolo, voc, jsonl and parquet), and asking for another one "
        "explicitly fails with the alternatives.",
    )
    push_to_hub: str = Field(
        default="",
        description="A Hugging Face Hub dataset repo (owner/name) to push the hf_datasets export to once it is "
        "written (text projects have one); empty, the default: nothing leaves the machine. The token is HF_TOKEN "
        "or the stored Hub login; a failed push fails the run after the files are written.",
    )
    hub_private: bool = Field(default=True, description="With push_to_hub: create the Hub repo private.")


def _mean(values: pd.Series) -> float | None:
    numeric = pd.to_numeric(values, errors="coerce").dropna()
    return float(numeric.mean()) if len(numeric) else None


def _card(
    store: LabelStore,
    project: ProjectSettings,
    config: DatasetSplitsConfig,
    labeled: pd.DataFrame,
    excluded: dict[str, int],
    built: BuiltDataset,
    previous: str | None,
) -> CardInputs:
    """What the dataset card says about this version: sizes, sources, agreement, what was left out."""
    assignment = built.assignment
    manifest = assignment.frame
    annotations = current_annotations(store)
    on_items = annotations.loc[annotations["item_id"].isin(set(manifest["item_id"])), ["item_id", "labeler_id", "label"]]
    n_labelers, n_annotations, kappa = task_kind(project.task_type).annotation_summary(on_items)
    return CardInputs(
        name=project.name,
        version=built.version,
        manifest=manifest,
        class_weights=built.class_weights,
        ratios={"train": config.train_ratio, "val": config.val_ratio, "test": config.test_ratio},
        seed=config.seed,
        previous_version=previous,
        n_new_items=assignment.n_new,
        n_annotators=n_labelers,
        n_annotations=n_annotations,
        fleiss_kappa=kappa,
        mean_agreement=_mean(labeled["agreement"]),
        mean_confidence=_mean(labeled["confidence"]),
        label_sources={str(k): int(v) for k, v in labeled["method"].value_counts().items()},
        n_gold_items=int(labeled["gold_label"].notna().sum()),
        expected_classes=list(project.classes),
        excluded=excluded,
        notes=assignment.notes,
        class_list_history=class_list_history(store),
        class_schema_changes=schema_change_report(store),
        departures=departures(store, load_manifest(store, previous), manifest) if previous else {},
        consensus_choice=latest_consensus_choice(store),
        near_duplicates=built.near_duplicates,
        near_duplicate_distance=config.near_duplicate_distance,
        task_type=project.task_type,
        held_out=built.held_out,
    )


def _split_metadata(
    inputs: CardInputs, previous: str | None, is_new: bool, excluded: dict[str, int], card: str, card_path: Path
) -> dict[str, Any]:
    manifest = inputs.manifest
    sizes = manifest["split"].value_counts()
    weights_key, imbalance = task_kind(inputs.task_type).split_balance(manifest, inputs.expected_classes)
    return {
        "dataset_version": dg.MetadataValue.text(inputs.version),
        "previous_version": dg.MetadataValue.text(previous or ""),
        "is_new_version": dg.MetadataValue.bool(is_new),
        "n_items": dg.MetadataValue.int(len(manifest)),
        "n_new_items": dg.MetadataValue.int(inputs.n_new_items),
        **{f"n_{s}": dg.MetadataValue.int(int(sizes.get(s, 0))) for s in split_core.SPLITS},
        weights_key: dg.MetadataValue.json(dict(inputs.class_weights)),
        "imbalance_ratio": dg.MetadataValue.float(round(imbalance, 4)),
        "excluded_items": dg.MetadataValue.json(excluded),
        "left_since_previous_version": dg.MetadataValue.json(dict(inputs.departures)),
        "limitations": dg.MetadataValue.json(list(inputs.notes)),
        "card": dg.MetadataValue.md(card),
        "card_path": dg.MetadataValue.path(str(card_path)),
        "near_duplicate_groups": dg.MetadataValue.json(group_summary(dict(inputs.near_duplicates))),
    }


# New consensus labels flow into a new dataset version without a manual step (STYLE §7).
@stage.asset(GROUP_DATASET, deps=["consensus_labels"], kinds={"python", "sql"}, eager=True)
def dataset_splits(
    context: dg.AssetExecutionContext,
    config: DatasetSplitsConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """The versioned train/val/test manifest of consensus-labeled items: stratified, group-aware, frozen."""
    store = label_store.get_store()
    ratios = split_core.SplitRatios(config.train_ratio, config.val_ratio, config.test_ratio)
    labeled, excluded = labeled_items(
        store, list(project.classes), task_type=project.task_type, allow_empty=project.allow_empty_set
    )
    if labeled.empty:
        raise dg.Failure(
            "No active item has a consensus label yet: materialize consensus_labels first.",
            metadata={"excluded": dg.MetadataValue.json(excluded)},
        )
    hashed = ensure_phashes(store, labeled["item_id"].tolist())  # items ingested before hashes existed
    existing = frozen_splits(store)
    context.log.info(
        f"Assigning {len(labeled)} labeled items ({len(existing)} already have a frozen split; "
        f"{hashed} perceptual hashes backfilled)"
    )
    newest, plan = newest_version(store), _machine_plan(store, project, labeled, existing)
    built = build_dataset(
        BuildInputs(
            labeled, existing, ratios, config.seed, load_phashes(store), config.near_duplicate_distance, None,
            task_type=project.task_type, classes=list(project.classes), machine=plan.labels if plan else {},
        )
    )
    version = built.version
    if built.held_out:
        excluded = {**excluded, HELD_OUT_REASON: len(built.held_out)}
        context.log.warning(f"{len(built.held_out)} items held out of {version}: {HELD_OUT_REASON}")
        if config.review_held_out:
            wanted = [ReviewRequest(item, EXPERT_REVIEW, HELD_OUT_REASON) for item in sorted(built.held_out)]
            sync_review_requests(store, HELD_OUT_SOURCE, wanted, settled=[])
    previous = newest if newest != version else None
    built = with_previous(built, previous)
    inputs = _card(store, project, config, labeled, excluded, built, previous)
    fields, in_version = project.answer_fields(), labeled[labeled["item_id"].isin(set(inputs.manifest["item_id"]))]
    answers = current_field_answers(store, inputs.manifest["item_id"])
    field_consensus = aggregate_fields(answers, fields)
    card = render_card(inputs) + fields_card(answers, field_consensus, fields, in_version) + _tiers_card(built, plan, project)
    is_new = record_dataset_version(
        store, built.assignment.frame, version, class_weights=built.class_weights,
        manifest_json=built.manifest_json, card=card,
    )
    record_held_out(store, version, built.held_out)
    record_field_consensus(store, version, field_consensus)  # what this version's exports carry as columns
    machine_metadata = _record_machine_labels(store, project, version, built, plan)
    card_path = project.data_path / "datasets" / version / "dataset_card.md"
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(card, encoding="utf-8")
    context.log.info(f"Dataset version {version}: {built.assignment.n_new} new items, {len(inputs.manifest)} in all")
    metadata = _split_metadata(inputs, newest, is_new, excluded, card, card_path)
    metadata["held_out_items"] = dg.MetadataValue.json([{"item_id": k, **v} for k, v in sorted(built.held_out.items())])
    metadata.update(lineage_metadata(store, version))
    return dg.MaterializeResult(metadata={**metadata, **machine_metadata}, data_version=dg.DataVersion(version))


def _machine_plan(
    store: LabelStore, project: ProjectSettings, labeled: pd.DataFrame, existing: pd.Series
) -> MachinePlan | None:
    """The machine-label decision for this version (docs/tiers.md); None when ``machine_label_target`` is unset."""
    if project.machine_label_target is None:
        return None
    return plan_machine_labels(store, labeled, existing, task_type=project.task_type,
                               target=project.machine_label_target, confidence=project.machine_label_confidence)  # fmt: skip


def _tiers_card(built: BuiltDataset, plan: MachinePlan | None, project: ProjectSettings) -> str:
    tiers = built.manifest_json.get("tier") or []
    return "\n" + tiers_core.card_section(
        tiers, plan.status if plan else "off", plan.decision if plan else None, plan.model_version if plan else None,
        plan.production if plan else None, project.machine_label_check_rate,
    )


def _record_machine_labels(
    store: LabelStore, project: ProjectSettings, version: str, built: BuiltDataset, plan: MachinePlan | None
) -> dict[str, Any]:
    """Store the version's decision and the check sample's machine labels; the metadata saying what was decided."""
    tiers = pd.Series(built.manifest_json.get("tier") or [], dtype=object).value_counts()
    out: dict[str, Any] = {"items_per_tier": dg.MetadataValue.json({t: int(tiers.get(t, 0)) for t in tiers_core.TIERS})}
    if plan is None:
        return out
    production = plan.production.as_dict() if plan.production else None
    record_decision(store, version, plan.model_version, plan.status, plan.decision, n_machine=len(built.machine),
                    production=production)  # fmt: skip
    sampled = sampled_for_people(built.machine, project.machine_label_check_rate, project.spot_check_seed)
    if plan.model_version and sampled:
        record_checks(store, version, plan.model_version, sampled)
    out["machine_labels"] = dg.MetadataValue.json({
        "status": plan.status, "model_version": plan.model_version, **plan.decision.as_dict(),
        "n_machine": len(built.machine), "left_to_people_in_groups": built.machine_left_out,
        "check_sample": len(sampled), "production_check": production,
    })  # fmt: skip
    return out


def lineage_metadata(store: LabelStore, version: str) -> dict[str, Any]:
    """The diff against the version stored before this one, and this version's tags."""
    diff = diff_versions(store, newest_version(store, other_than=version), version)
    return {
        **{f"items_{name}": dg.MetadataValue.int(n) for name, n in diff.counts().items()},
        "relabeled_by_transition": dg.MetadataValue.json(diff.transitions()),
        "diff": dg.MetadataValue.md(render_diff(diff)),
        "dataset_tags": dg.MetadataValue.json(tags_of(store, version)),
    }


def _push_to_hub(config: DatasetExportConfig, paths: Mapping[str, Path], log: Callable[[str], None]) -> str:
    """The hf_datasets export pushed to ``config.push_to_hub`` (its commit URL), or a one-line Failure."""
    if "hf_datasets" not in paths:
        raise dg.Failure(f"push_to_hub {config.push_to_hub}: this export wrote no hf_datasets folder (text projects "
                         "have one; add hf_datasets to formats)", allow_retries=False)  # fmt: skip
    try:
        url = push_dataset_dict(paths["hf_datasets"], config.push_to_hub, private=config.hub_private)
    except HubPushError as exc:
        raise dg.Failure(str(exc)) from None
    log(f"pushed {paths['hf_datasets']} to the Hub dataset {config.push_to_hub}: {url}")
    return url


@stage.asset(GROUP_DATASET, deps=[lineage.DATASET_SPLITS_KEY], kinds={"python", "parquet"})
def dataset_export(
    context: dg.AssetExecutionContext,
    config: DatasetExportConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """The current dataset version as files: JSONL, CSV, Parquet and an ImageFolder tree (boxes: COCO, YOLO, VOC)."""
    kind = task_kind(project.task_type)
    if config.formats == list(export_core.FORMATS):  # the default: every format the kind's labels fit
        formats = list(kind.export_formats)
    else:
        try:
            formats = export_core.validate_formats(config.formats, task_type=project.task_type)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc
    version = lineage.current_dataset_version(context.instance)
    if version is None:
        raise dg.Failure("dataset_splits has never been materialized in this instance: materialize it first.")
    lineage.refuse_failed_dataset(context.instance, version, refused="not exported", step="export")
    store = label_store.get_store()
    manifest = load_manifest(store, version)
    # One read of the uri column (not one query per chunk of ids); export_rows reports any item without one.
    rows = export_core.export_rows(manifest, item_uris(store))
    rows = with_field_columns(rows, field_columns(load_field_consensus(store, version), project.answer_fields()))
    rows = with_field_columns(rows, tier_frame(manifest_document(store, version)))  # tier, tier_confidence
    out_dir = project.data_path / "exports" / version
    started = dt.datetime.now(dt.UTC)
    try:
        report = kind.export(rows, out_dir, formats, list(project.classes))
    except ValueError as exc:  # e.g. two classes that would share an ImageFolder folder: one line, no retry
        raise dg.Failure(str(exc), allow_retries=False) from None
    for note in report.notes:
        context.log.warning(note)
    card = dataset_card(store, version)
    if card:
        # The card travels with the files (README.md is where dataset hubs look for it).
        (out_dir / "README.md").write_text(card, encoding="utf-8")
    hub = _push_to_hub(config, report.paths, context.log.info) if config.push_to_hub else None
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
            **({"export_notes": dg.MetadataValue.text("\n".join(report.notes))} if report.notes else {}),
            **({"hub_commit": dg.MetadataValue.url(hub)} if hub else {}),
        },
        data_version=dg.DataVersion(version),
    )
