"""Label issues: consensus labels that an out-of-sample model disagrees with, queued for re-review."""

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from labeling_assets import stage
from labeling_assets.constants import GROUP_QUALITY
from labeling_assets.core.consensus.label_issues import DEFAULT_FEATURE_SIZE
from labeling_assets.core.consensus.review_routing import LABEL_ISSUES_SOURCE, label_issue_review_requests
from labeling_assets.core.display import md_text
from labeling_assets.core.images import markdown_image, thumbnail_png
from labeling_assets.core.ingest.text import read_stored_text
from labeling_assets.core.label_sets import (
    shown_label,
)
from labeling_assets.core.store.queries import consensus_frame, item_uris
from labeling_assets.core.store.reviews import sync_review_requests
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class LabelIssuesConfig(dg.Config):
    feature_size: int = Field(
        default=DEFAULT_FEATURE_SIZE, ge=2, description="Images are downsampled to this square."
    )
    n_folds: int = Field(default=5, ge=2, description="Cross-validation folds of the baseline.")
    top_issues_shown: int = Field(default=12, ge=0, description="Issues listed with thumbnails in metadata.")


def _thumbnail(uri: str) -> str:
    """The item as the table shows it: a thumbnail, or a text item's first characters."""
    try:
        if Path(uri).suffix == ".txt":  # a text item's stored copy (core.ingest.text_scan)
            return md_text(read_stored_text(uri).strip(), 80)
        return markdown_image(thumbnail_png(Path(uri).read_bytes(), size=48), alt="item")
    except (OSError, ValueError):
        return "(unreadable)"


@stage.asset(GROUP_QUALITY, deps=["consensus_labels"], kinds={"python", "scikitlearn"}, eager=True)
def label_issues(
    context: dg.AssetExecutionContext,
    config: LabelIssuesConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """Consensus labels (label sets, boxes) that cleanlab flags as likely wrong, each recorded in review_requests;
    each kind says what scores them out of sample (``label_issue_inputs``)."""
    store = label_store.get_store()
    classes, kind = list(project.classes), task_kind(project.task_type)
    uris = {item: uri for item, uri in item_uris(store, exclude_quarantined=True).items() if uri}
    labels = consensus_frame(store)
    valid = labels["label"].map(lambda v: kind.is_answer(v, classes))
    labels = labels[labels["item_id"].isin(list(uris)) & valid.astype(bool)].sort_values("item_id")
    labels = labels.reset_index(drop=True)
    context.log.info(f"Searching label issues among {len(labels)} consensus labels")
    metadata: dict[str, Any] = {
        "items": dg.MetadataValue.int(len(labels)),
        "probability_source": dg.MetadataValue.text(kind.label_issue_model),
    }
    if len(labels) < 2:
        context.log.warning("Fewer than two consensus labels with stored images; nothing to check.")
        return dg.MaterializeResult(metadata={**metadata, "issues": dg.MetadataValue.int(0)})

    ids = labels["item_id"].tolist()
    features, source = kind.label_issue_inputs(
        store, ids, [uris[i] for i in ids], feature_size=config.feature_size, n_folds=config.n_folds
    )
    metadata["probability_source"] = dg.MetadataValue.text(source)
    result, agreement = kind.find_label_issues(
        labels["item_id"].tolist(), labels["label"].tolist(), features, classes, config.n_folds
    )
    for note in result.notes:
        context.log.info(note)
    flagged = result.issues
    # Checked items no longer flagged settle their open requests from this source.
    settled = set(labels["item_id"]) - set(flagged["item_id"])
    reviews = sync_review_requests(store, LABEL_ISSUES_SOURCE, label_issue_review_requests(flagged), settled)
    new_requests = sum(reviews.requested.values())
    context.log.info(f"{len(flagged)} label issues; {new_requests} new review requests, {reviews.resolved} resolved")
    metadata.update(_issue_metadata(flagged, uris, len(labels), agreement, config.top_issues_shown))
    metadata["review_requests_new"] = dg.MetadataValue.int(new_requests)
    metadata["review_requests_resolved"] = dg.MetadataValue.int(reviews.resolved)
    metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes) or "-")
    return dg.MaterializeResult(metadata=metadata)


def _issue_metadata(
    flagged: pd.DataFrame, uris: dict[str, str], n_items: int, agreement: float, shown: int
) -> dict[str, Any]:
    """The issues: how many, by class, and the worst ones with thumbnails."""
    lines = ["| image | item | consensus | suggested | label quality |", "|---|---|---|---|---:|"]
    for row in flagged.head(shown).to_dict("records"):
        lines.append(
            f"| {_thumbnail(uris[row['item_id']])} | `{row['item_id'][:12]}` | {md_text(shown_label(row['given_label']))} | "
            f"{md_text(shown_label(row['suggested_label']))} ({row['suggested_probability']:.2f}) | {row['label_quality']:.3f} |"
        )
    return {
        "issues": dg.MetadataValue.int(len(flagged)),
        "issue_share": dg.MetadataValue.float(round(len(flagged) / n_items, 4)),
        "baseline_agreement_with_consensus": dg.MetadataValue.float(round(agreement, 4)),
        "issues_by_consensus_class": dg.MetadataValue.json(
            # A set counts once for each class it holds (explode leaves single classes as they are).
            {str(k): int(v) for k, v in flagged["given_label"].explode().dropna().value_counts().items()}
        ),
        "top_issues": dg.MetadataValue.md("\n".join(lines) if len(flagged) else "No label issue found."),
    }
