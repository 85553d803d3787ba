"""Stage 5, consensus: one label per item from its labelers, and low-confidence items sent back.

A multi-label project (``task_type: multi_label``) aggregates label sets per class (core/consensus/multilabel.py):
the label is the set at the per-class thresholds, the stored probabilities are per-class marginals, and the
confidence (product over classes of max(p, 1 - p): the chance the whole set is right) routes items back with the same threshold as single-label.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from labeling_assets.constants import GROUP_CONSENSUS, OWNERS
from labeling_assets.core.consensus.adjudication import ADJUDICATED, apply_adjudications, exclude_paused
from labeling_assets.core.consensus.agreement import (
    fleiss_kappa_from_annotations,
    krippendorff_alpha_from_annotations,
)
from labeling_assets.core.consensus.bakeoff import MIN_GOLD_FOR_BAKEOFF
from labeling_assets.core.consensus.encoding import ConsensusResult, probabilities_by_item
from labeling_assets.core.consensus.label_issues import cross_val_pred_probs, image_features
from labeling_assets.core.consensus.methods import METHODS, aggregate_full
from labeling_assets.core.consensus.multilabel import (
    JOINT,
    SET_METHODS,
    SetConsensusResult,
    aggregate_sets,
    set_probabilities_by_item,
)
from labeling_assets.core.consensus.multilabel_quality import krippendorff_alpha_sets, per_class_fleiss_kappa
from labeling_assets.core.consensus.review_routing import (
    CONSENSUS_SOURCE,
    DEFAULT_LOW_CONFIDENCE_THRESHOLD,
    DEFAULT_MAX_ANNOTATORS,
    DEFAULT_MIN_ANNOTATORS,
    MORE_ANNOTATORS,
    ReviewAction,
    consensus_review_requests,
)
from labeling_assets.core.consensus.votes import eligible_votes, single_class
from labeling_assets.core.images import markdown_image
from labeling_assets.core.label_sets import LabelSetError, is_multi_label, label_set
from labeling_assets.core.reporting import plots
from labeling_assets.core.store.consensus_versions import (
    consensus_to_retract,
    record_class_list,
    record_consensus_choice,
    record_vote_retractions,
    retract_consensus,
    retraction_counts,
    write_consensus,
)
from labeling_assets.core.store.human_loop import adjudicated_labels, labeler_keys, pause_intervals
from labeling_assets.core.store.queries import StoreVotes, gold_labels, item_uris, load_votes
from labeling_assets.core.store.reviews import ReviewSync, sync_review_requests
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

LABELER_TABLE_ROWS = 30

# Every method core's aggregate() knows, from its one list (a new method needs no edit here), and the
# multi-label joint method (set projects only).
if TYPE_CHECKING:
    ConsensusMethod = str
else:
    ConsensusMethod = Literal[(*METHODS, JOINT)]


class ConsensusConfig(dg.Config):
    """Run-time knobs of consensus_labels (field names predate the vocabulary: they are public)."""

    method: ConsensusMethod = Field(
        default="auto",
        description="auto = with enough overlap, the Dawid-Skene prior (one-coin or pooled) that predicts "
        f"held-out answers better, else majority; when at least {MIN_GOLD_FOR_BAKEOFF} hidden gold items have "
        "enough labelers, a bake-off scored on them by cross-fitting replaces that choice only with a method "
        "significantly better on gold. crowdlab also uses out-of-sample probabilities of a cross-validated pixel "
        "baseline trained on the majority labels. The Dawid-Skene methods clamp the gold items' answers. "
        "Multi-label projects: majority, dawid_skene (per class), dawid_skene_pooled (per class) or dawid_skene_shared "
        "(per-labeler rates shared across classes; what auto picks with enough overlap).",
    )
    min_annotators: int = Field(
        default=DEFAULT_MIN_ANNOTATORS, ge=1, description="Items with fewer distinct labelers wait."
    )
    low_confidence_threshold: float = Field(
        default=DEFAULT_LOW_CONFIDENCE_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="Items whose consensus confidence is below go back.",
    )
    low_confidence_action: ReviewAction = Field(
        default=MORE_ANNOTATORS, description="What a low-confidence item needs: more labelers or an expert."
    )
    max_annotators: int = Field(
        default=DEFAULT_MAX_ANNOTATORS,
        ge=1,
        description="A low-confidence item that already has this many labelers goes to expert review.",
    )
    class_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="multi_label only: class -> threshold on P(present) for the set label (others 0.5).",
    )


def _crowdlab_pred_probs(store: LabelStore, votes: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Out-of-sample probabilities for CROWDLAB: the pixel baseline cross-validated on majority labels."""
    majority = aggregate_full(votes, "majority", classes=classes).labels
    uris = item_uris(store)
    missing = [i for i in majority["item_id"] if not uris.get(i)]
    if missing:
        raise dg.Failure(
            f"crowdlab needs the stored image of every item; {len(missing)} have none, e.g. {missing[:3]}"
        )
    features = image_features([str(uris[i]) for i in majority["item_id"]])
    codes = majority["label"].map({c: n for n, c in enumerate(classes)}).to_numpy()
    probs = cross_val_pred_probs(features, codes, len(classes))
    return pd.DataFrame(probs, index=majority["item_id"], columns=classes)


def _gold(store: LabelStore, eligible: pd.DataFrame, classes: list[str]) -> pd.Series:
    """Hidden gold answers (never sent to Label Studio) of the items being aggregated, in the class list."""
    gold = gold_labels(store).map(single_class).dropna()
    return gold[gold.index.isin(set(eligible["item_id"])) & gold.isin(classes)]


def _aggregate(
    store: LabelStore, eligible: pd.DataFrame, classes: list[str], config: ConsensusConfig
) -> tuple[ConsensusResult, int]:
    """The consensus with gold: auto's bake-off is scored on it, the Dawid-Skene methods clamp it."""
    pred_probs = _crowdlab_pred_probs(store, eligible, classes) if config.method == "crowdlab" else None
    gold = _gold(store, eligible, classes)
    return aggregate_full(eligible, config.method, pred_probs, classes=classes, gold=gold), len(gold)


def _valid_sets(labels: pd.Series, classes: list[str]) -> pd.Series:
    """The values of ``labels`` that are label sets of the project (sorted lists); others are left out."""
    out = {}
    for item, value in labels.items():
        try:
            out[str(item)] = label_set(value, classes, allow_empty=True)
        except LabelSetError:
            continue
    return pd.Series(out, dtype=object)


def _aggregate_sets(
    store: LabelStore,
    eligible: pd.DataFrame,
    classes: list[str],
    config: ConsensusConfig,
    allow_empty: bool = True,
) -> tuple[SetConsensusResult, int]:
    """Set consensus with the hidden gold sets clamped (Dawid-Skene methods); the method must be a set method."""
    if config.method not in SET_METHODS:
        raise dg.Failure(
            f"consensus method {config.method!r} is single-label only; a multi_label project uses one of "
            f"{', '.join(SET_METHODS)}"
        )
    gold = _valid_sets(gold_labels(store), classes)
    gold = gold[gold.index.isin(set(eligible["item_id"].astype(str)))]
    thresholds = config.class_thresholds or None
    result = aggregate_sets(
        eligible, config.method, classes=classes, gold=gold, thresholds=thresholds, allow_empty=allow_empty
    )
    return result, len(gold)


def _consensus(
    store: LabelStore, eligible: pd.DataFrame, project: ProjectSettings, config: ConsensusConfig
) -> tuple[ConsensusResult | SetConsensusResult, int, dict[str, dict[str, float]] | None, pd.Series]:
    """(result, gold items used, probabilities to store, expert answers); label sets in a multi-label project:
    per-class marginals are the stored probabilities and expert answers are read as sets."""
    classes = list(project.classes)
    if is_multi_label(project.task_type):
        sets, n_gold = _aggregate_sets(store, eligible, classes, config, project.allow_empty_set)
        return sets, n_gold, set_probabilities_by_item(sets), _valid_sets(adjudicated_labels(store), classes)
    result, n_gold = _aggregate(store, eligible, classes, config)
    return result, n_gold, probabilities_by_item(result), adjudicated_labels(store)


def _choice_reason(
    result: ConsensusResult | SetConsensusResult, config: ConsensusConfig, n_gold: int
) -> tuple[str, str]:
    """(why this method, why no bake-off ran or '')."""
    chose = next((n for n in result.notes if n.startswith("auto chose")), None)
    reason = chose or f"method {config.method} set in the run config"
    if result.scoreboard is not None:
        return reason, ""
    if isinstance(result, SetConsensusResult):
        return reason, "no bake-off: multi-label consensus has none (auto picks by overlap; gold is clamped)"
    if config.method != "auto":
        return reason, f"no bake-off: method {config.method} was set in the run config (auto runs one)"
    if n_gold < MIN_GOLD_FOR_BAKEOFF:
        return reason, (
            f"no bake-off: too little gold ({n_gold} gold items with enough labelers, "
            f"at least {MIN_GOLD_FOR_BAKEOFF} needed)"
        )
    return reason, "no bake-off: the gold items lack overlap (one labeler, or no item with two labels)"


def scoreboard_markdown(board: pd.DataFrame) -> str:
    """The bake-off as a Markdown table: accuracy on gold (cross-fitted) with its Wilson 95% interval."""
    lines = ["| method | accuracy on gold | 95% CI | correct / gold | |", "|---|---:|---|---:|---|"]
    for r in board.sort_values("accuracy", ascending=False, kind="stable").to_dict("records"):
        lines.append(
            f"| {r['method']} | {r['accuracy']:.1%} | {r['ci_low']:.1%} - {r['ci_high']:.1%} | "
            f"{int(r['correct'])} / {int(r['n_gold'])} | {'**winner**' if r['chosen'] else ''} |"
        )
    return "\n".join(lines)


def _record_choice(
    context: dg.AssetExecutionContext,
    store: LabelStore,
    result: ConsensusResult | SetConsensusResult,
    config: ConsensusConfig,
    n_gold: int,
) -> dict[str, Any]:
    """Store the method used, why, and the scoreboard with this run's id; the same as metadata."""
    reason, no_bakeoff = _choice_reason(result, config, n_gold)
    record_consensus_choice(
        store,
        run_id=context.run_id,
        requested_method=config.method,
        method=result.method,
        reason=no_bakeoff or reason,
        n_gold=n_gold,
        scoreboard=result.scoreboard,
    )
    board = result.scoreboard
    return {
        "requested_method": dg.MetadataValue.text(config.method),
        "method_choice": dg.MetadataValue.text(reason),
        "gold_items_used": dg.MetadataValue.int(n_gold),
        "bakeoff_winner": dg.MetadataValue.text(result.method if board is not None else ""),
        "bakeoff_scoreboard": dg.MetadataValue.md(
            scoreboard_markdown(board) if board is not None else no_bakeoff
        ),
    }


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _follow_sources(store: LabelStore, project: ProjectSettings) -> dict[str, Any]:
    """The class list as a versioned event, and the votes that stopped counting recorded with their reason."""
    change = record_class_list(store, list(project.classes), project.class_list_change_reason)
    retracted = record_vote_retractions(
        store, list(project.classes), multi_label=is_multi_label(project.task_type)
    )
    metadata: dict[str, Any] = {"votes_retracted_now": dg.MetadataValue.json(retracted)}
    if change is not None:
        metadata["class_list_change"] = dg.MetadataValue.json(
            {
                "version": change.version,
                "added": list(change.added),
                "removed": list(change.removed),
                "reason": change.reason,
            }
        )
    return metadata


def _retract(
    context: dg.AssetExecutionContext,
    store: LabelStore,
    loaded: StoreVotes,
    aggregated: set[str],
    config: ConsensusConfig,
    classes: list[str],
) -> dict[str, Any]:
    """Retract (a new version, never a DELETE) the consensus of items that lost their live votes or item."""
    reasons = consensus_to_retract(
        store, loaded, aggregated, min_annotators=config.min_annotators, classes=classes
    )
    written = retract_consensus(store, reasons, context.run_id)
    if written:
        context.log.warning(
            f"retracted the consensus of {written} items, e.g. "
            + "; ".join(f"{i[:12]}: {r}" for i, (r, _) in list(reasons.items())[:3])
        )
    return {
        "consensus_retracted_now": dg.MetadataValue.int(written),
        "retracted_quarantined_consensus_rows": dg.MetadataValue.int(
            sum(1 for r, _ in reasons.values() if r.startswith("item_quarantined"))
        ),
        "items_with_retracted_consensus": dg.MetadataValue.json(retraction_counts(store)),
    }


def _vote_metadata(
    loaded: StoreVotes, config: ConsensusConfig, n_annotated: int, n_eligible: int
) -> dict[str, Any]:
    """What went in: votes, items still waiting for labelers, votes left out and why."""
    votes = loaded.votes
    metadata: dict[str, Any] = {
        "min_annotators": dg.MetadataValue.int(config.min_annotators),
        "votes": dg.MetadataValue.int(len(votes.frame)),
        "annotated_items": dg.MetadataValue.int(n_annotated),
        "items_waiting_for_annotators": dg.MetadataValue.int(n_annotated - n_eligible),
        "skipped_votes": dg.MetadataValue.json(
            {
                **votes.skipped,
                "on_quarantined_items": loaded.excluded_quarantined,
                "on_superseded_items": loaded.excluded_superseded,
                "on_unknown_items": loaded.excluded_unknown_item,
            }
        ),
    }
    if votes.examples:
        metadata["skipped_label_examples"] = dg.MetadataValue.json(
            {k: [repr(v) for v in vs] for k, vs in votes.examples.items()}
        )
    return metadata


def _labeler_table(result: ConsensusResult) -> str:
    table = result.labeler_quality.sort_values("quality", ascending=True, na_position="last")
    lines = ["| labeler | labels | estimated accuracy | agreement with consensus |", "|---|---:|---:|---:|"]
    for row in table.head(LABELER_TABLE_ROWS).to_dict("records"):
        lines.append(
            f"| {row['labeler_id']} | {row['n_labels']} | {row['quality']:.3f} | {row['agreement_with_consensus']:.3f} |"
        )
    return "\n".join(lines)


def _plots(labels: pd.DataFrame, distribution: pd.Series, method: str) -> dict[str, Any]:
    bars = plots.bar_png(
        {str(k): float(v) for k, v in distribution.items()}, "consensus labels per class", "items"
    )
    histogram = plots.histogram_png(
        labels["confidence"].to_numpy(),
        f"{method} consensus confidence",
        "confidence",
        value_range=(0.0, 1.0),
    )
    return {
        "class_distribution_plot": dg.MetadataValue.md(markdown_image(bars, "class distribution")),
        "confidence_histogram": dg.MetadataValue.md(markdown_image(histogram, "confidence histogram")),
    }


def _result_metadata(
    result: ConsensusResult,
    eligible: pd.DataFrame,
    classes: list[str],
    config: ConsensusConfig,
    counts: tuple[int, int, int],
    reviews: ReviewSync,
) -> dict[str, Any]:
    """What came out: coverage, agreement, confidence, the review requests and each labeler's quality."""
    labels = result.labels
    n_annotated, n_eligible, written = counts
    fleiss = fleiss_kappa_from_annotations(eligible, classes=classes)
    distribution = labels["label"].value_counts().reindex(classes, fill_value=0)
    confidence = labels["confidence"].to_numpy()
    return {
        "method": dg.MetadataValue.text(result.method),
        "method_notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes) or "-"),
        "consensus_items": dg.MetadataValue.int(len(labels)),
        "coverage": dg.MetadataValue.float(round(len(labels) / max(n_eligible, 1), 4)),
        "share_of_annotated_items": dg.MetadataValue.float(round(len(labels) / max(n_annotated, 1), 4)),
        "new_versions_written": dg.MetadataValue.int(written),
        "fleiss_kappa": dg.FloatMetadataValue(_finite(fleiss.kappa)),
        "fleiss_kappa_per_class": dg.MetadataValue.json(
            {str(k): _finite(v) for k, v in fleiss.per_class.items()}
        ),
        "krippendorff_alpha": dg.FloatMetadataValue(_finite(krippendorff_alpha_from_annotations(eligible))),
        "mean_confidence": dg.MetadataValue.float(round(float(confidence.mean()), 4)),
        "mean_agreement": dg.MetadataValue.float(round(float(labels["agreement"].mean()), 4)),
        "class_distribution": dg.MetadataValue.json({str(k): int(v) for k, v in distribution.items()}),
        **_plots(labels, distribution, result.method),
        "low_confidence_threshold": dg.MetadataValue.float(config.low_confidence_threshold),
        "low_confidence_items": dg.MetadataValue.int(
            int((confidence < config.low_confidence_threshold).sum())
        ),
        "review_requests_new": dg.MetadataValue.json(reviews.requested),
        "review_requests_already_open": dg.MetadataValue.int(reviews.already_open),
        "review_requests_resolved": dg.MetadataValue.int(reviews.resolved),
        "label_studio_overlap": dg.MetadataValue.text(
            "not changed by this asset: low-confidence items are recorded in review_requests "
            f"(source={CONSENSUS_SOURCE}); the queue stage raises overlap or routes them to an expert"
        ),
        "labeler_quality": dg.MetadataValue.md(_labeler_table(result)),
    }


def _set_labeler_table(result: SetConsensusResult, names: Mapping[str, str]) -> str:
    """Labelers by name (people do not know who labeler "6" is), worst sensitivity first."""
    table = result.labeler_quality.sort_values("sensitivity", ascending=True, na_position="last")
    lines = [
        "| labeler | labels | sensitivity | specificity | exact agreement with consensus |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in table.head(LABELER_TABLE_ROWS).to_dict("records"):
        lines.append(
            f"| {names.get(str(row['labeler_id']), row['labeler_id'])} | {row['n_labels']} | {row['sensitivity']:.3f} | "
            f"{row['specificity']:.3f} | {row['agreement_with_consensus']:.3f} |"
        )
    return "\n".join(lines)


def _per_class_table(result: SetConsensusResult, kappa: dict[str, float]) -> str:
    """One row per class: how common it is, how many items have it, its threshold and how well labelers agree."""
    lines = ["| class | prevalence (mean P) | items with it | threshold | Fleiss kappa | method |",
             "|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for row in result.per_class.to_dict("records"):
        value = _finite(kappa.get(row["class"]))
        lines.append(
            f"| {row['class']} | {row['prevalence']:.3f} | {row['n_items']} | {row['threshold']:.2f} | "
            f"{'-' if value is None else f'{value:.3f}'} | {result.method} |"
        )
    return "\n".join(lines)


def _set_result_metadata(
    result: SetConsensusResult,
    eligible: pd.DataFrame,
    classes: list[str],
    config: ConsensusConfig,
    counts: tuple[int, int, int],
    reviews: ReviewSync,
    names: Mapping[str, str],
) -> dict[str, Any]:
    """_result_metadata for label sets: per-class agreement and prevalence, set alpha (MASI), per-class plot."""
    labels = result.labels
    n_annotated, n_eligible, written = counts
    kappa = per_class_fleiss_kappa(eligible, classes)
    defined = [v for v in kappa.values() if np.isfinite(v)]
    distribution = result.per_class.set_index("class")["n_items"].reindex(classes, fill_value=0)
    confidence = labels["confidence"].to_numpy()
    return {
        "task_type": dg.MetadataValue.text("multi_label"),
        "method": dg.MetadataValue.text(result.method),
        "method_notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes) or "-"),
        "consensus_items": dg.MetadataValue.int(len(labels)),
        "coverage": dg.MetadataValue.float(round(len(labels) / max(n_eligible, 1), 4)),
        "share_of_annotated_items": dg.MetadataValue.float(round(len(labels) / max(n_annotated, 1), 4)),
        "new_versions_written": dg.MetadataValue.int(written),
        "per_class": dg.MetadataValue.md(_per_class_table(result, kappa)),
        "fleiss_kappa": dg.FloatMetadataValue(_finite(float(np.mean(defined))) if defined else None),
        "fleiss_kappa_per_class": dg.MetadataValue.json({str(k): _finite(v) for k, v in kappa.items()}),
        "krippendorff_alpha_masi": dg.FloatMetadataValue(_finite(krippendorff_alpha_sets(eligible, classes))),
        "class_thresholds": dg.MetadataValue.json(
            dict(zip(classes, result.thresholds.tolist(), strict=True))
        ),
        "empty_sets": dg.MetadataValue.int(int((labels["label"].map(len) == 0).sum())),
        "mean_confidence": dg.MetadataValue.float(round(float(confidence.mean()), 4)),
        "mean_agreement": dg.MetadataValue.float(round(float(labels["agreement"].mean()), 4)),
        "class_distribution": dg.MetadataValue.json({str(k): int(v) for k, v in distribution.items()}),
        **_plots(labels, distribution, result.method),
        "low_confidence_threshold": dg.MetadataValue.float(config.low_confidence_threshold),
        "low_confidence_items": dg.MetadataValue.int(
            int((confidence < config.low_confidence_threshold).sum())
        ),
        "review_requests_new": dg.MetadataValue.json(reviews.requested),
        "review_requests_already_open": dg.MetadataValue.int(reviews.already_open),
        "review_requests_resolved": dg.MetadataValue.int(reviews.resolved),
        "labeler_quality": dg.MetadataValue.md(_set_labeler_table(result, names)),
    }


@dg.asset(
    group_name=GROUP_CONSENSUS,
    deps=["annotations"],
    kinds={"python", "sql"},
    owners=OWNERS,
    automation_condition=dg.AutomationCondition.eager(),
)
def consensus_labels(
    context: dg.AssetExecutionContext,
    config: ConsensusConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """The consensus label of every item with enough labelers, versioned in the label store's consensus table."""
    store = label_store.get_store()
    classes = list(project.classes)
    followed = _follow_sources(store, project)
    loaded = load_votes(store, classes, task_type=project.task_type, allow_empty=project.allow_empty_set)
    # Votes a labeler gave while paused count for nothing (`labeling-assets labeler pause|resume`).
    votes, paused_votes = exclude_paused(loaded.votes.frame, pause_intervals(store))
    eligible = eligible_votes(votes, config.min_annotators)
    n_annotated = int(votes["item_id"].nunique())
    n_eligible = int(eligible["item_id"].nunique())
    context.log.info(
        f"{len(votes)} votes on {n_annotated} items; {n_eligible} items have >= {config.min_annotators} labelers; "
        f"skipped votes {loaded.votes.skipped or '{}'}, on quarantined items {loaded.excluded_quarantined}"
    )
    metadata = {**_vote_metadata(loaded, config, n_annotated, n_eligible), **followed,
                "votes_of_paused_labelers_excluded": dg.MetadataValue.int(paused_votes)}  # fmt: skip
    if eligible.empty:
        context.log.warning("No item has enough labelers yet; nothing to aggregate.")
        empty = {"consensus_items": dg.MetadataValue.int(0), "coverage": dg.MetadataValue.float(0.0)}
        metadata.update(_retract(context, store, loaded, set(), config, classes))
        return dg.MaterializeResult(metadata={**metadata, **empty})

    result, n_gold, probabilities, expert = _consensus(store, eligible, project, config)
    for note in result.notes:
        context.log.info(note)
    # An expert's answer overrides the crowd (method adjudicated, confidence 1), even below min_annotators.
    crowd, adjudicated = apply_adjudications(result.labels, votes, expert)
    labels = pd.concat([crowd, adjudicated], ignore_index=True) if not adjudicated.empty else crowd
    written = write_consensus(store, crowd, result.method, context.run_id, probabilities)
    written += write_consensus(store, adjudicated, ADJUDICATED, context.run_id)
    metadata["adjudicated_items"] = dg.MetadataValue.int(len(adjudicated))
    metadata.update(_record_choice(context, store, result, config, n_gold))
    metadata.update(_retract(context, store, loaded, set(labels["item_id"].astype(str)), config, classes))
    requests, confident = consensus_review_requests(
        labels,
        threshold=config.low_confidence_threshold,
        action=config.low_confidence_action,
        max_annotators=config.max_annotators,
        reason_prefix=f"{result.method} consensus",
    )
    reviews = sync_review_requests(store, CONSENSUS_SOURCE, requests, confident)
    context.log.info(
        f"{result.method}: {len(labels)} consensus labels, {written} new versions; review requests {reviews.requested}, "
        f"{reviews.resolved} resolved"
    )
    counts = (n_annotated, n_eligible, written)
    if isinstance(result, SetConsensusResult):
        metadata.update(
            _set_result_metadata(result, eligible, classes, config, counts, reviews, labeler_keys(store))
        )
    else:
        metadata.update(_result_metadata(result, eligible, classes, config, counts, reviews))
    return dg.MaterializeResult(metadata=metadata)
