"""Stage 5, consensus: one label per item from its annotators, and low-confidence items sent back."""

from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import Field

from labeling_assets.constants import GROUP_CONSENSUS, OWNERS
from labeling_assets.core.consensus.agreement import (
    fleiss_kappa_from_annotations,
    krippendorff_alpha_from_annotations,
)
from labeling_assets.core.consensus.methods import ConsensusResult, Votes, aggregate_full, latest_votes
from labeling_assets.core.images import markdown_image
from labeling_assets.core.reporting import plots
from labeling_assets.core.store.schema import (
    LabelStore,
    chunked,
    consensus_table,
    current_annotations_query,
    items_table,
    latest_consensus_query,
    review_requests_table,
    utcnow,
)
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

QUARANTINED = "quarantined"
REVIEW_SOURCE = "consensus"
MORE_ANNOTATORS = "more_annotators"
EXPERT_REVIEW = "expert_review"
LABELER_TABLE_ROWS = 30


class ConsensusConfig(dg.Config):
    """Run-time knobs of consensus_labels."""

    method: Literal["auto", "majority", "dawid_skene", "crowdlab"] = Field(
        default="auto",
        description="auto = Dawid-Skene with enough overlap, else majority. crowdlab also uses "
        "out-of-sample probabilities of a cross-validated pixel baseline trained on the majority labels.",
    )
    min_annotators: int = Field(default=2, ge=1, description="Items with fewer distinct annotators wait.")
    low_confidence_threshold: float = Field(
        default=0.7, ge=0.0, le=1.0, description="Items whose consensus confidence is below go back."
    )
    low_confidence_action: Literal["more_annotators", "expert_review"] = Field(
        default=MORE_ANNOTATORS, description="What a low-confidence item needs: more annotators or an expert."
    )
    max_annotators: int = Field(
        default=5,
        ge=1,
        description="A low-confidence item that already has this many annotators goes to expert review.",
    )


@dataclass(frozen=True)
class StoreVotes:
    """Votes read from the label store, with what was left out and why."""

    votes: Votes
    statuses: dict[str, str]  # item_id -> items.status
    excluded_quarantined: int  # votes on quarantined items
    excluded_unknown_item: int  # votes on item ids the store does not know


def load_votes(store: LabelStore, classes: list[str]) -> StoreVotes:
    """One valid vote per (item, labeler) on items that are not quarantined (shared with checks)."""
    rows = pd.DataFrame(store.fetch(current_annotations_query()))
    if rows.empty:
        rows = pd.DataFrame(
            columns=["ls_annotation_id", "item_id", "labeler_id", "label", "created_at", "updated_at"]
        )
    statuses = {r["item_id"]: r["status"] for r in store.fetch(sa.select(items_table.c.item_id, items_table.c.status))}
    votes = latest_votes(rows, classes)
    status = votes.frame["item_id"].map(statuses)
    quarantined = (status == QUARANTINED).to_numpy()
    unknown = status.isna().to_numpy()
    frame = votes.frame[~quarantined & ~unknown].reset_index(drop=True)
    return StoreVotes(
        votes=Votes(frame, votes.skipped, votes.examples),
        statuses=statuses,
        excluded_quarantined=int(quarantined.sum()),
        excluded_unknown_item=int(unknown.sum()),
    )


def eligible_votes(votes: pd.DataFrame, min_annotators: int) -> pd.DataFrame:
    """Votes of the items with at least ``min_annotators`` distinct annotators."""
    per_item = votes.groupby("item_id")["labeler_id"].transform("nunique")
    return votes[(per_item >= min_annotators).to_numpy()].reset_index(drop=True)


def _json_label(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def probabilities_by_item(result: ConsensusResult) -> dict[str, dict[str, float]] | None:
    """Each item's class probabilities (class name -> probability) of ``result``; None when it has none.

    Stored with the consensus row so training can use them as soft targets (crowdlab has none).
    """
    if result.probabilities is None:
        return None
    names = [str(_json_label(c)) for c in result.classes]
    return {
        str(item): {name: round(float(p), 6) for name, p in zip(names, row, strict=True)}
        for item, row in zip(result.labels["item_id"], result.probabilities, strict=True)
    }


def write_consensus(
    store: LabelStore,
    labels: pd.DataFrame,
    method: str,
    run_id: str | None,
    probabilities: dict[str, dict[str, float]] | None = None,
) -> int:
    """Append a new consensus version for every item whose result changed; return how many were written.

    Unchanged items keep their version, so re-running on the same annotations writes nothing. The class
    probabilities are stored with each new version but do not by themselves make one: the label,
    confidence, agreement and annotator count already change whenever the votes do. Unchanged rows
    written without probabilities (before schema migration 3) get them filled in place.
    """
    previous = {row["item_id"]: row for row in store.fetch(latest_consensus_query())}
    now = utcnow()
    rows = []
    backfill = []  # unchanged rows written before probabilities were stored (schema migration 3)
    for record in labels.to_dict("records"):
        label = _json_label(record["label"])
        old = previous.get(record["item_id"])
        probs = (probabilities or {}).get(str(record["item_id"]))
        if (
            old is not None
            and old["label"] == label
            and old["method"] == method
            and old["n_annotators"] == int(record["n_annotators"])
            and abs(old["confidence"] - float(record["confidence"])) < 1e-9
        ):
            if old.get("probabilities") is None and probs is not None:
                backfill.append({"row_id": old["id"], "probs": probs})
            continue
        rows.append(
            {
                "item_id": record["item_id"],
                "version": (old["version"] + 1) if old is not None else 1,
                "label": label,
                "method": method,
                "confidence": float(record["confidence"]),
                "agreement": float(record["agreement"]),
                "n_annotators": int(record["n_annotators"]),
                "computed_at": now,
                "run_id": run_id,
                "probabilities": probs,
            }
        )
    with store.begin() as conn:
        for part in chunked(rows):
            conn.execute(consensus_table.insert(), list(part))
        if backfill:  # derived data filled in place: not a new consensus version
            conn.execute(
                consensus_table.update()
                .where(consensus_table.c.id == sa.bindparam("row_id"))
                .values(probabilities=sa.bindparam("probs")),
                backfill,
            )
    return len(rows)


def retract_quarantined(store: LabelStore) -> int:
    """Delete consensus rows of items that were quarantined after their consensus was computed.

    Consensus is derived data (the annotations behind it stay), and a quarantined image must not reach
    a split through an old consensus row.
    """
    quarantined = sa.select(items_table.c.item_id).where(items_table.c.status == QUARANTINED)
    with store.begin() as conn:
        return int(conn.execute(consensus_table.delete().where(consensus_table.c.item_id.in_(quarantined))).rowcount or 0)


@dataclass(frozen=True)
class ReviewOutcome:
    requested: dict[str, int]  # action -> new requests
    already_open: int
    resolved: int


def request_reviews(
    store: LabelStore, labels: pd.DataFrame, config: ConsensusConfig, reason_prefix: str
) -> ReviewOutcome:
    """Record low-confidence items in review_requests; close open requests of items now confident."""
    low = labels[labels["confidence"] < config.low_confidence_threshold]
    confident = labels.loc[labels["confidence"] >= config.low_confidence_threshold, "item_id"].tolist()
    open_rows = store.fetch(
        sa.select(review_requests_table.c.item_id).where(
            review_requests_table.c.source == REVIEW_SOURCE, review_requests_table.c.resolved_at.is_(None)
        )
    )
    open_items = {r["item_id"] for r in open_rows}
    now = utcnow()
    new_rows = []
    requested: dict[str, int] = {}
    for record in low.to_dict("records"):
        if record["item_id"] in open_items:  # one open request per item: no duplicates on re-runs
            continue
        action = config.low_confidence_action
        if action == MORE_ANNOTATORS and record["n_annotators"] >= config.max_annotators:
            action = EXPERT_REVIEW  # more of the same crowd is unlikely to settle it
        requested[action] = requested.get(action, 0) + 1
        new_rows.append(
            {
                "item_id": record["item_id"],
                "source": REVIEW_SOURCE,
                "action": action,
                "reason": (
                    f"{reason_prefix}: confidence {record['confidence']:.2f} < {config.low_confidence_threshold:.2f} "
                    f"with {int(record['n_annotators'])} annotators (agreement {record['agreement']:.2f})"
                ),
                "requested_at": now,
            }
        )
    with store.begin() as conn:
        for part in chunked(new_rows):
            conn.execute(review_requests_table.insert(), list(part))
        resolved = 0
        to_close = sorted(open_items.intersection(confident))
        for part in chunked(to_close):
            resolved += int(
                conn.execute(
                    review_requests_table.update()
                    .where(
                        review_requests_table.c.source == REVIEW_SOURCE,
                        review_requests_table.c.resolved_at.is_(None),
                        review_requests_table.c.item_id.in_(list(part)),
                    )
                    .values(resolved_at=now)
                ).rowcount
                or 0
            )
    return ReviewOutcome(requested, len(open_items.intersection(low["item_id"])), resolved)


def _crowdlab_pred_probs(store: LabelStore, votes: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Out-of-sample probabilities for CROWDLAB: the pixel baseline cross-validated on majority labels."""
    from labeling_assets.core.consensus.label_issues import cross_val_pred_probs, image_features

    majority = aggregate_full(votes, "majority", classes=classes).labels
    uris = {
        r["item_id"]: r["uri"]
        for r in store.fetch(
            sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.item_id.in_(majority["item_id"]))
        )
    }
    missing = [i for i in majority["item_id"] if not uris.get(i)]
    if missing:
        raise dg.Failure(
            f"crowdlab needs the stored image of every item; {len(missing)} have none, e.g. {missing[:3]}"
        )
    features = image_features([uris[i] for i in majority["item_id"]])
    codes = majority["label"].map({c: n for n, c in enumerate(classes)}).to_numpy()
    probs = cross_val_pred_probs(features, codes, len(classes))
    return pd.DataFrame(probs, index=majority["item_id"], columns=classes)


def _labeler_table(result: ConsensusResult) -> str:
    table = result.labeler_quality.sort_values("quality", ascending=True, na_position="last")
    lines = ["| labeler | labels | estimated accuracy | agreement with consensus |", "|---|---:|---:|---:|"]
    for row in table.head(LABELER_TABLE_ROWS).to_dict("records"):
        lines.append(
            f"| {row['labeler_id']} | {row['n_labels']} | {row['quality']:.3f} | {row['agreement_with_consensus']:.3f} |"
        )
    return "\n".join(lines)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


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
) -> dg.MaterializeResult:
    """The consensus label of every item with enough annotators, versioned in the label store's consensus table."""
    store = label_store.get_store()
    classes = list(project.classes)
    loaded = load_votes(store, classes)
    votes = loaded.votes.frame
    eligible = eligible_votes(votes, config.min_annotators)
    n_annotated = int(votes["item_id"].nunique())
    n_eligible = int(eligible["item_id"].nunique())
    context.log.info(
        f"{len(votes)} votes on {n_annotated} items; {n_eligible} items have >= {config.min_annotators} annotators; "
        f"skipped votes {loaded.votes.skipped or '{}'}, on quarantined items {loaded.excluded_quarantined}"
    )
    retracted = retract_quarantined(store)
    metadata: dict[str, Any] = {
        "min_annotators": dg.MetadataValue.int(config.min_annotators),
        "votes": dg.MetadataValue.int(len(votes)),
        "annotated_items": dg.MetadataValue.int(n_annotated),
        "items_waiting_for_annotators": dg.MetadataValue.int(n_annotated - n_eligible),
        "skipped_votes": dg.MetadataValue.json(
            {
                **loaded.votes.skipped,
                "on_quarantined_items": loaded.excluded_quarantined,
                "on_unknown_items": loaded.excluded_unknown_item,
            }
        ),
        "retracted_quarantined_consensus_rows": dg.MetadataValue.int(retracted),
    }
    if loaded.votes.examples:
        metadata["skipped_label_examples"] = dg.MetadataValue.json(
            {k: [repr(v) for v in vs] for k, vs in loaded.votes.examples.items()}
        )
    if eligible.empty:
        context.log.warning("No item has enough annotators yet; nothing to aggregate.")
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "consensus_items": dg.MetadataValue.int(0),
                "coverage": dg.MetadataValue.float(0.0),
            }
        )

    pred_probs = _crowdlab_pred_probs(store, eligible, classes) if config.method == "crowdlab" else None
    result = aggregate_full(eligible, config.method, pred_probs, classes=classes)
    for note in result.notes:
        context.log.info(note)
    labels = result.labels
    written = write_consensus(store, labels, result.method, context.run_id, probabilities_by_item(result))
    outcome = request_reviews(store, labels, config, f"{result.method} consensus")
    context.log.info(
        f"{result.method}: {len(labels)} consensus labels, {written} new versions; review requests {outcome.requested}, "
        f"{outcome.resolved} resolved"
    )

    fleiss = fleiss_kappa_from_annotations(eligible, classes=classes)
    distribution = labels["label"].value_counts().reindex(classes, fill_value=0)
    confidence = labels["confidence"].to_numpy()
    n_low = int((confidence < config.low_confidence_threshold).sum())
    metadata.update(
        {
            "method": dg.MetadataValue.text(result.method),
            "method_notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes) or "-"),
            "consensus_items": dg.MetadataValue.int(len(labels)),
            "coverage": dg.MetadataValue.float(round(len(labels) / max(n_eligible, 1), 4)),
            "share_of_annotated_items": dg.MetadataValue.float(round(len(labels) / max(n_annotated, 1), 4)),
            "new_versions_written": dg.MetadataValue.int(written),
            "fleiss_kappa": dg.MetadataValue.float(_finite(fleiss.kappa)),
            "fleiss_kappa_per_class": dg.MetadataValue.json(
                {str(k): _finite(v) for k, v in fleiss.per_class.items()}
            ),
            "krippendorff_alpha": dg.MetadataValue.float(
                _finite(krippendorff_alpha_from_annotations(eligible))
            ),
            "mean_confidence": dg.MetadataValue.float(round(float(confidence.mean()), 4)),
            "mean_agreement": dg.MetadataValue.float(round(float(labels["agreement"].mean()), 4)),
            "class_distribution": dg.MetadataValue.json({str(k): int(v) for k, v in distribution.items()}),
            "class_distribution_plot": dg.MetadataValue.md(
                markdown_image(
                    plots.bar_png(
                        {str(k): float(v) for k, v in distribution.items()},
                        "consensus labels per class",
                        "items",
                    ),
                    "class distribution",
                )
            ),
            "confidence_histogram": dg.MetadataValue.md(
                markdown_image(
                    plots.histogram_png(
                        confidence,
                        f"{result.method} consensus confidence",
                        "confidence",
                        value_range=(0.0, 1.0),
                    ),
                    "confidence histogram",
                )
            ),
            "low_confidence_threshold": dg.MetadataValue.float(config.low_confidence_threshold),
            "low_confidence_items": dg.MetadataValue.int(n_low),
            "review_requests_new": dg.MetadataValue.json(outcome.requested),
            "review_requests_already_open": dg.MetadataValue.int(outcome.already_open),
            "review_requests_resolved": dg.MetadataValue.int(outcome.resolved),
            "label_studio_overlap": dg.MetadataValue.text(
                "not changed by this asset: low-confidence items are recorded in review_requests "
                f"(source={REVIEW_SOURCE}); the queue stage raises overlap or routes them to an expert"
            ),
            "labeler_quality": dg.MetadataValue.md(_labeler_table(result)),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


def consensus_frame(store: LabelStore) -> pd.DataFrame:
    """The newest consensus row per item (item_id, label, confidence, n_annotators, computed_at)."""
    rows = store.fetch(latest_consensus_query())
    columns = [
        "item_id",
        "label",
        "method",
        "confidence",
        "agreement",
        "n_annotators",
        "version",
        "computed_at",
    ]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(rows)[columns]
