"""Checks on consensus_labels, one property each; thresholds are set where the checks are built."""

import dagster as dg
import pandas as pd

from labeling_assets.core.consensus.review_routing import DEFAULT_MIN_ANNOTATORS
from labeling_assets.core.consensus.votes import eligible_votes
from labeling_assets.core.store.queries import (
    consensus_frame,
    consensus_outside_class_list,
    load_votes,
    quarantined_items_with_consensus,
)
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

CONSENSUS_KEY = dg.AssetKey("consensus_labels")

# Landis & Koch call 0.41-0.60 "moderate" agreement: below it the task or the guidelines need a look.
DEFAULT_MIN_FLEISS_KAPPA = 0.4
DEFAULT_MIN_COVERAGE = 0.95
EXAMPLES = 10


def _min_annotators(context: dg.AssetCheckExecutionContext) -> int:
    """The min_annotators of the latest consensus_labels materialization (its config default if none)."""
    event = context.instance.get_latest_materialization_event(CONSENSUS_KEY)
    materialization = event.asset_materialization if event else None
    entry = materialization.metadata.get("min_annotators") if materialization else None
    value = getattr(entry, "value", None)
    return int(value) if isinstance(value, int) else DEFAULT_MIN_ANNOTATORS


def _votes(store: LabelStore, project: ProjectSettings) -> pd.DataFrame:
    """The project's votes: label sets in a multi-label project, single classes otherwise."""
    loaded = load_votes(store, list(project.classes), task_type=project.task_type, allow_empty=project.allow_empty_set,
                        allow_overlap=project.allow_overlapping_spans)  # fmt: skip
    return loaded.votes.frame


def build_consensus_checks(
    *, min_coverage: float = DEFAULT_MIN_COVERAGE, min_fleiss_kappa: float = DEFAULT_MIN_FLEISS_KAPPA
) -> list[dg.AssetChecksDefinition]:
    """The consensus checks with their thresholds."""

    @dg.asset_check(asset=CONSENSUS_KEY)
    def consensus_coverage(
        context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
    ) -> dg.AssetCheckResult:
        """Every item with enough annotators (and not quarantined) has a consensus label."""
        store = label_store.get_store()
        min_annotators = _min_annotators(context)
        eligible = set(eligible_votes(_votes(store, project), min_annotators)["item_id"])
        have = set(consensus_frame(store)["item_id"])
        missing = sorted(eligible - have)
        coverage = 1.0 if not eligible else 1.0 - len(missing) / len(eligible)
        return dg.AssetCheckResult(
            passed=coverage >= min_coverage,
            metadata={
                "coverage": dg.MetadataValue.float(round(coverage, 4)),
                "min_coverage": dg.MetadataValue.float(min_coverage),
                "eligible_items": dg.MetadataValue.int(len(eligible)),
                "items_without_consensus": dg.MetadataValue.int(len(missing)),
                "min_annotators": dg.MetadataValue.int(min_annotators),
                "examples": dg.MetadataValue.json(missing[:EXAMPLES]),
            },
        )

    @dg.asset_check(asset=CONSENSUS_KEY)
    def consensus_fleiss_kappa_above_threshold(
        context: dg.AssetCheckExecutionContext, label_store: LabelStoreResource, project: ProjectSettings
    ) -> dg.AssetCheckResult:
        """Labelers agree beyond chance: Fleiss' kappa over the consensus items is at least the threshold (label
        sets: the mean of the per-class kappas)."""
        votes = eligible_votes(_votes(label_store.get_store(), project), _min_annotators(context))
        if votes.empty:
            return dg.AssetCheckResult(
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"note": dg.MetadataValue.text("no item has enough annotators yet")},
            )
        fleiss = task_kind(project.task_type).agreement(votes, list(project.classes))
        if fleiss.n_items == 0:  # min_annotators=1 and no overlap: agreement cannot be measured
            return dg.AssetCheckResult(
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"note": dg.MetadataValue.text("no item has two annotators: agreement unknown")},
            )
        kappa = fleiss.kappa
        worst = sorted(
            ((str(c), v) for c, v in fleiss.per_class.items() if v == v),  # v == v drops NaN (unused classes)
            key=lambda pair: pair[1],
        )[:3]
        return dg.AssetCheckResult(
            passed=bool(kappa == kappa and kappa >= min_fleiss_kappa),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "fleiss_kappa": dg.FloatMetadataValue(float(kappa) if kappa == kappa else None),
                "min_fleiss_kappa": dg.MetadataValue.float(min_fleiss_kappa),
                "items": dg.MetadataValue.int(fleiss.n_items),
                "least_agreed_classes": dg.MetadataValue.json({c: round(v, 3) for c, v in worst}),
            },
        )

    @dg.asset_check(asset=CONSENSUS_KEY, blocking=True)
    def no_consensus_for_quarantined_items(label_store: LabelStoreResource) -> dg.AssetCheckResult:
        """No quarantined item has a consensus label (it would reach the dataset splits)."""
        found = quarantined_items_with_consensus(label_store.get_store())
        return dg.AssetCheckResult(
            passed=not found,
            metadata={
                "quarantined_items_with_consensus": dg.MetadataValue.int(len(found)),
                "examples": dg.MetadataValue.json(found[:EXAMPLES]),
            },
        )

    @dg.asset_check(asset=CONSENSUS_KEY, blocking=True)
    def consensus_labels_in_class_list(
        label_store: LabelStoreResource, project: ProjectSettings
    ) -> dg.AssetCheckResult:
        """Every live consensus label is a class of the current class list (a removed class's consensus is
        retracted, so a stale one never reaches a dataset)."""
        stale = consensus_outside_class_list(label_store.get_store(), list(project.classes), task_type=project.task_type)
        return dg.AssetCheckResult(
            passed=not stale,
            metadata={
                "consensus_outside_class_list": dg.MetadataValue.int(len(stale)),
                "class_list": dg.MetadataValue.json(list(project.classes)),
                "examples": dg.MetadataValue.json(
                    [{**r, "label": repr(r["label"])} for r in stale[:EXAMPLES]]
                ),
            },
        )

    return [
        consensus_coverage,
        consensus_fleiss_kappa_above_threshold,
        no_consensus_for_quarantined_items,
        consensus_labels_in_class_list,
    ]


consensus_checks = build_consensus_checks()
