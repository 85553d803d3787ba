"""Label issues: consensus labels that an out-of-sample model disagrees with, queued for re-review."""

from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import Field

from labeling_assets.assets.consensus import QUARANTINED, consensus_frame
from labeling_assets.constants import GROUP_QUALITY, OWNERS
from labeling_assets.core.consensus.label_issues import (
    DEFAULT_FEATURE_SIZE,
    cross_val_pred_probs,
    find_issues,
    image_features,
)
from labeling_assets.core.images import markdown_image, thumbnail_png
from labeling_assets.core.store.schema import LabelStore, items_table, review_requests_table, utcnow
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

REVIEW_SOURCE = "label_issues"
REVIEW_ACTION = "expert_review"


class LabelIssuesConfig(dg.Config):
    feature_size: int = Field(
        default=DEFAULT_FEATURE_SIZE, ge=2, description="Images are downsampled to this square."
    )
    n_folds: int = Field(default=5, ge=2, description="Cross-validation folds of the baseline.")
    top_issues_shown: int = Field(default=12, ge=0, description="Issues listed with thumbnails in metadata.")


def _thumbnail(uri: str) -> str:
    try:
        return markdown_image(thumbnail_png(Path(uri).read_bytes(), size=48), alt="item")
    except OSError:
        return "(unreadable)"


@dg.asset(
    group_name=GROUP_QUALITY,
    deps=["consensus_labels"],
    kinds={"python", "scikitlearn"},
    owners=OWNERS,
    automation_condition=dg.AutomationCondition.eager(),
)
def label_issues(
    context: dg.AssetExecutionContext,
    config: LabelIssuesConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
) -> dg.MaterializeResult:
    """Consensus labels that cleanlab flags as likely wrong, each recorded in review_requests for re-review."""
    store = label_store.get_store()
    classes = list(project.classes)
    labels = consensus_frame(store)
    item_rows = store.fetch(sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.status != QUARANTINED))
    uris = {r["item_id"]: r["uri"] for r in item_rows if r["uri"]}
    labels = labels[labels["item_id"].isin(list(uris)) & labels["label"].isin(classes)].sort_values("item_id")
    labels = labels.reset_index(drop=True)
    context.log.info(f"Searching label issues among {len(labels)} consensus labels")
    source = (
        f"{config.n_folds}-fold cross-validated logistic regression on {config.feature_size}x{config.feature_size} "
        "grayscale pixels (every item scored by a model that never saw it)"
    )
    metadata: dict[str, Any] = {
        "items": dg.MetadataValue.int(len(labels)),
        "probability_source": dg.MetadataValue.text(source),
    }
    if len(labels) < 2:
        context.log.warning("Fewer than two consensus labels with stored images; nothing to check.")
        return dg.MaterializeResult(metadata={**metadata, "issues": dg.MetadataValue.int(0)})

    features = image_features([uris[i] for i in labels["item_id"]], size=config.feature_size)
    codes = labels["label"].map({c: n for n, c in enumerate(classes)}).to_numpy(dtype=np.int64)
    probs = cross_val_pred_probs(features, codes, len(classes), n_folds=config.n_folds)
    result = find_issues(labels["item_id"].tolist(), labels["label"].tolist(), probs, classes)
    for note in result.notes:
        context.log.info(note)
    flagged = result.issues
    new_requests, resolved = _record_reviews(store, flagged, set(labels["item_id"]))
    context.log.info(f"{len(flagged)} label issues; {new_requests} new review requests, {resolved} resolved")

    lines = ["| image | item | consensus | suggested | label quality |", "|---|---|---|---|---:|"]
    for row in flagged.head(config.top_issues_shown).to_dict("records"):
        lines.append(
            f"| {_thumbnail(uris[row['item_id']])} | `{row['item_id'][:12]}` | {row['given_label']} | "
            f"{row['suggested_label']} ({row['suggested_probability']:.2f}) | {row['label_quality']:.3f} |"
        )
    metadata.update(
        {
            "issues": dg.MetadataValue.int(len(flagged)),
            "issue_share": dg.MetadataValue.float(round(len(flagged) / len(labels), 4)),
            "baseline_agreement_with_consensus": dg.MetadataValue.float(
                round(float((probs.argmax(axis=1) == codes).mean()), 4)
            ),
            "review_requests_new": dg.MetadataValue.int(new_requests),
            "review_requests_resolved": dg.MetadataValue.int(resolved),
            "issues_by_consensus_class": dg.MetadataValue.json(
                {str(k): int(v) for k, v in flagged["given_label"].value_counts().items()}
            ),
            "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes) or "-"),
            "top_issues": dg.MetadataValue.md("\n".join(lines) if len(flagged) else "No label issue found."),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


def _record_reviews(store: LabelStore, flagged: pd.DataFrame, checked: set[str]) -> tuple[int, int]:
    """One open request per flagged item; open requests of checked items no longer flagged are resolved."""
    rr = review_requests_table
    open_items = {
        r["item_id"]
        for r in store.fetch(
            sa.select(rr.c.item_id).where(rr.c.source == REVIEW_SOURCE, rr.c.resolved_at.is_(None))
        )
    }
    now = utcnow()
    rows = [
        {
            "item_id": r["item_id"],
            "source": REVIEW_SOURCE,
            "action": REVIEW_ACTION,
            "reason": (
                f"consensus {r['given_label']!r} but an out-of-sample baseline says {r['suggested_label']!r} "
                f"(p={r['suggested_probability']:.2f}, label quality {r['label_quality']:.3f})"
            ),
            "requested_at": now,
        }
        for r in flagged.to_dict("records")
        if r["item_id"] not in open_items
    ]
    cleared = sorted((open_items & checked) - set(flagged["item_id"]))
    resolved = 0
    with store.begin() as conn:
        if rows:
            conn.execute(rr.insert(), rows)
        for start in range(0, len(cleared), 500):
            part = cleared[start : start + 500]
            resolved += int(
                conn.execute(
                    rr.update()
                    .where(rr.c.source == REVIEW_SOURCE, rr.c.resolved_at.is_(None), rr.c.item_id.in_(part))
                    .values(resolved_at=now)
                ).rowcount
                or 0
            )
    return len(rows), resolved
