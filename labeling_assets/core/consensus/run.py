"""The consensus stage as one service: votes in, versioned consensus rows, retractions and review requests out.

``run_consensus(store, kind, options, run_id)`` is what the ``consensus_labels`` asset calls (the shape of
``ingest_source``): the kind of task (core/tasks) aggregates and reports; this module holds the workflow every
kind shares. The returned report holds plain values in the order a person reads them (``Markdown`` for tables).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.adjudication import ADJUDICATED, apply_adjudications, exclude_paused
from labeling_assets.core.consensus.bakeoff import MIN_GOLD_FOR_BAKEOFF
from labeling_assets.core.consensus.class_schema import ClassChange
from labeling_assets.core.consensus.label_issues import cross_val_pred_probs, image_features
from labeling_assets.core.consensus.methods import aggregate_full
from labeling_assets.core.consensus.review_routing import CONSENSUS_SOURCE, consensus_review_requests
from labeling_assets.core.consensus.votes import eligible_votes
from labeling_assets.core.display import clipped
from labeling_assets.core.fields.self_rating import without_guesses
from labeling_assets.core.fields.spec import SELF_CONFIDENCE
from labeling_assets.core.images import markdown_image
from labeling_assets.core.reporting import plots
from labeling_assets.core.store.answer_fields import current_field_answers
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
from labeling_assets.core.tasks.kind import ConsensusFailure, ConsensusOutcome, Markdown, TaskKind

Log = Callable[[str], None]


@dataclass(frozen=True)
class ConsensusOptions:
    """The run's knobs (the asset's ConsensusConfig) and the project's class list."""

    classes: Sequence[str]
    method: str = "auto"
    min_annotators: int = 2
    low_confidence_threshold: float = 0.6
    low_confidence_action: str = "more_annotators"
    max_annotators: int = 5
    class_thresholds: Mapping[str, float] = field(default_factory=dict)
    allow_empty: bool = True
    allow_overlap: bool = False  # text spans: ProjectSettings.allow_overlapping_spans
    class_list_change_reason: str | None = None
    class_changes: Sequence[ClassChange] = ()  # ProjectSettings.class_changes, parsed
    drop_self_rated_below: int = 0  # leave out votes self-rated under this (0: off; docs/answer_fields.md)


def run_consensus(
    store: LabelStore, kind: TaskKind, options: ConsensusOptions, run_id: str, *,
    log: Log = lambda _m: None, warn: Log = lambda _m: None,
) -> dict[str, Any]:
    """Aggregate every item with enough labelers, write new consensus versions, retract what lost its votes and
    route low-confidence items back; returns the report. Raises :class:`ConsensusFailure` (one line) when the
    method cannot run."""
    classes = list(options.classes)
    report = _follow_sources(store, kind, options)
    loaded = load_votes(store, classes, task_type=kind.name, allow_empty=options.allow_empty,
                        allow_overlap=options.allow_overlap)  # fmt: skip
    # Votes a labeler gave while paused count for nothing (`labeling-assets labeler pause|resume`).
    votes, paused_votes = exclude_paused(loaded.votes.frame, pause_intervals(store))
    eligible = eligible_votes(votes, options.min_annotators)
    ratings = current_field_answers(store) if options.drop_self_rated_below > 1 else pd.DataFrame()
    eligible, guesses = without_guesses(eligible, ratings[ratings["field"] == SELF_CONFIDENCE] if len(ratings) else ratings,
                                        options.drop_self_rated_below)  # fmt: skip
    n_annotated, n_eligible = int(votes["item_id"].nunique()), int(eligible["item_id"].nunique())
    log(
        f"{len(votes)} votes on {n_annotated} items; {n_eligible} items have >= {options.min_annotators} labelers; "
        f"skipped votes {loaded.votes.skipped or '{}'}, on quarantined items {loaded.excluded_quarantined}"
    )
    report = {**_vote_report(loaded, options, n_annotated, n_eligible), **report,
              "votes_of_paused_labelers_excluded": paused_votes, "votes_self_rated_as_guesses_left_out": guesses}
    if eligible.empty:
        warn("No item has enough labelers yet; nothing to aggregate.")
        report.update(_retract(store, loaded, set(), options, run_id, warn))
        return {**report, "consensus_items": 0, "coverage": 0.0}

    outcome = _aggregate(store, kind, eligible, options)
    result = outcome.result
    for note in result.notes:
        log(note)
    # An expert's answer overrides the crowd (method adjudicated, confidence 1), even below min_annotators.
    expert = kind.valid_answers(adjudicated_labels(store), classes)
    crowd, adjudicated = apply_adjudications(result.labels, votes, expert,
                                             lambda mine, truth: kind.gold_score(mine, truth, classes))  # fmt: skip
    labels = pd.concat([crowd, adjudicated], ignore_index=True) if not adjudicated.empty else crowd
    written = write_consensus(store, crowd, result.method, run_id, outcome.probabilities)
    written += write_consensus(store, adjudicated, ADJUDICATED, run_id)
    report["adjudicated_items"] = len(adjudicated)
    report.update(_record_choice(store, outcome, options, run_id))
    report.update(_retract(store, loaded, set(labels["item_id"].astype(str)), options, run_id, warn))
    requests, confident = consensus_review_requests(
        labels,
        threshold=options.low_confidence_threshold,
        action=options.low_confidence_action,  # type: ignore[arg-type]
        max_annotators=options.max_annotators,
        reason_prefix=f"{result.method} consensus",
    )
    reviews = sync_review_requests(store, CONSENSUS_SOURCE, requests, confident)
    log(
        f"{result.method}: {len(labels)} consensus labels, {written} new versions; review requests {reviews.requested}, "
        f"{reviews.resolved} resolved"
    )
    kind_report = kind.consensus_report(result, eligible, classes, labeler_keys(store))
    report.update(_result_report(result, kind_report, options, (n_annotated, n_eligible, written), reviews))
    return report


def _aggregate(store: LabelStore, kind: TaskKind, eligible: pd.DataFrame, options: ConsensusOptions) -> ConsensusOutcome:
    classes = list(options.classes)
    crowdlab = options.method == "crowdlab" and "crowdlab" in kind.consensus_methods  # else the kind refuses it
    pred_probs = _crowdlab_pred_probs(store, eligible, classes) if crowdlab else None
    # Each vote's item's stored copy, for a kind that reads its items (text spans tokenize the text).
    uris = item_uris(store)
    eligible = eligible.assign(uri=eligible["item_id"].map(lambda item: uris.get(item)))
    return kind.consensus(
        eligible, options.method, classes, gold_labels(store), pred_probs=pred_probs,
        thresholds=dict(options.class_thresholds), allow_empty=options.allow_empty, allow_overlap=options.allow_overlap,
    )


def _crowdlab_pred_probs(store: LabelStore, votes: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Out-of-sample probabilities for CROWDLAB: the pixel baseline cross-validated on majority labels."""
    majority = aggregate_full(votes, "majority", classes=classes).labels
    uris = item_uris(store)
    missing = [i for i in majority["item_id"] if not uris.get(i)]
    if missing:
        raise ConsensusFailure(
            f"crowdlab needs the stored image of every item; {len(missing)} have none, e.g. {missing[:3]}"
        )
    features = image_features([str(uris[i]) for i in majority["item_id"]])
    codes = majority["label"].map({c: n for n, c in enumerate(classes)}).to_numpy()
    probs = cross_val_pred_probs(features, codes, len(classes))
    return pd.DataFrame(probs, index=majority["item_id"], columns=classes)


def _choice_reason(outcome: ConsensusOutcome, method: str) -> tuple[str, str]:
    """(why this method, why no bake-off ran or '')."""
    result, n_gold = outcome.result, outcome.n_gold
    chose = next((n for n in result.notes if n.startswith("auto chose")), None)
    reason = chose or f"method {method} set in the run config"
    if result.scoreboard is not None:
        return reason, ""
    if outcome.no_bakeoff:
        return reason, outcome.no_bakeoff
    if method != "auto":
        return reason, f"no bake-off: method {method} was set in the run config (auto runs one)"
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


def _record_choice(store: LabelStore, outcome: ConsensusOutcome, options: ConsensusOptions, run_id: str) -> dict[str, Any]:
    """Store the method used, why, and the scoreboard with this run's id; the same in the report."""
    result = outcome.result
    reason, no_bakeoff = _choice_reason(outcome, options.method)
    record_consensus_choice(
        store, run_id=run_id, requested_method=options.method, method=result.method,
        reason=no_bakeoff or reason, n_gold=outcome.n_gold, scoreboard=result.scoreboard,
    )
    board = result.scoreboard
    return {
        "requested_method": options.method,
        "method_choice": reason,
        "gold_items_used": outcome.n_gold,
        "bakeoff_winner": result.method if board is not None else "",
        "bakeoff_scoreboard": Markdown(scoreboard_markdown(board) if board is not None else no_bakeoff),
    }


def _follow_sources(store: LabelStore, kind: TaskKind, options: ConsensusOptions) -> dict[str, Any]:
    """The class list as a versioned event, and the votes that stopped counting recorded with their reason."""
    change = record_class_list(store, list(options.classes), options.class_list_change_reason,
                               changes=options.class_changes, classes_of=kind.classes_of)
    retracted = record_vote_retractions(store, list(options.classes), classes_of=kind.classes_of)
    report: dict[str, Any] = {"votes_retracted_now": retracted}
    if change is not None:
        report["class_list_change"] = {"version": change.version, "added": list(change.added),
                                       "removed": list(change.removed), "reason": change.reason,
                                       "class_schema_changes": list(change.changes)}
    return report


def _retract(
    store: LabelStore, loaded: StoreVotes, aggregated: set[str], options: ConsensusOptions, run_id: str, warn: Log
) -> dict[str, Any]:
    """Retract (a new version, never a DELETE) the consensus of items that lost their live votes or item."""
    reasons = consensus_to_retract(
        store, loaded, aggregated, min_annotators=options.min_annotators, classes=list(options.classes)
    )
    written = retract_consensus(store, reasons, run_id)
    if written:
        warn(
            f"retracted the consensus of {written} items, e.g. "
            + "; ".join(f"{i[:12]}: {r}" for i, (r, _) in list(reasons.items())[:3])
        )
    return {
        "consensus_retracted_now": written,
        "retracted_quarantined_consensus_rows": sum(1 for r, _ in reasons.values() if r.startswith("item_quarantined")),
        "items_with_retracted_consensus": retraction_counts(store),
    }


def _vote_report(loaded: StoreVotes, options: ConsensusOptions, n_annotated: int, n_eligible: int) -> dict[str, Any]:
    """What went in: votes, items still waiting for labelers, votes left out and why."""
    votes = loaded.votes
    report: dict[str, Any] = {
        "min_annotators": options.min_annotators,
        "votes": len(votes.frame),
        "annotated_items": n_annotated,
        "items_waiting_for_annotators": n_annotated - n_eligible,
        "skipped_votes": {
            **votes.skipped,
            "on_quarantined_items": loaded.excluded_quarantined,
            "on_superseded_items": loaded.excluded_superseded,
            "on_unknown_items": loaded.excluded_unknown_item,
        },
    }
    if votes.examples:
        report["skipped_label_examples"] = {k: [clipped(repr(v)) for v in vs] for k, vs in votes.examples.items()}  # 1 MB
    return report


def _plots(labels: pd.DataFrame, distribution: Mapping[str, int], method: str) -> dict[str, Any]:
    bars = plots.bar_png({str(k): float(v) for k, v in distribution.items()}, "consensus labels per class", "items")
    histogram = plots.histogram_png(
        labels["confidence"].to_numpy(), f"{method} consensus confidence", "confidence", value_range=(0.0, 1.0)
    )
    return {
        "class_distribution_plot": Markdown(markdown_image(bars, "class distribution")),
        "confidence_histogram": Markdown(markdown_image(histogram, "confidence histogram")),
    }


def _result_report(
    result: Any, kind_report: dict[str, Any], options: ConsensusOptions, counts: tuple[int, int, int],
    reviews: ReviewSync,
) -> dict[str, Any]:
    """What came out: coverage, the kind's agreement and per-class figures, confidence, review requests, labelers."""
    labels = result.labels
    n_annotated, n_eligible, written = counts
    confidence = labels["confidence"].to_numpy()
    distribution = kind_report["class_distribution"]
    labeler_table = kind_report.pop("labeler_quality")
    return {
        "method": result.method,
        "method_notes": Markdown("\n".join(f"- {n}" for n in result.notes) or "-"),
        "consensus_items": len(labels),
        "coverage": round(len(labels) / max(n_eligible, 1), 4),
        "share_of_annotated_items": round(len(labels) / max(n_annotated, 1), 4),
        "new_versions_written": written,
        **kind_report,
        "mean_confidence": round(float(confidence.mean()), 4),
        "mean_agreement": round(float(labels["agreement"].mean()), 4),
        **_plots(labels, distribution, result.method),
        "low_confidence_threshold": options.low_confidence_threshold,
        "low_confidence_items": int((confidence < options.low_confidence_threshold).sum()),
        "review_requests_new": reviews.requested,
        "review_requests_already_open": reviews.already_open,
        "review_requests_resolved": reviews.resolved,
        "label_studio_overlap": (
            "not changed by this asset: low-confidence items are recorded in review_requests "
            f"(source={CONSENSUS_SOURCE}); the queue stage raises overlap or routes them to an expert"
        ),
        "labeler_quality": labeler_table,
    }

