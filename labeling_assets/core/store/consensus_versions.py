"""Consensus rows in the label store: versioned (a new row only when an item's result changes).

Consensus is derived data: the annotations behind it stay, so an item's rows can be retracted (its
item was quarantined) and computed again.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.consensus.encoding import json_label
from labeling_assets.core.store.queries import QUARANTINED
from labeling_assets.core.store.schema import (
    LabelStore,
    chunked,
    consensus_table,
    items_table,
    latest_consensus_query,
    utcnow,
)


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
        label = json_label(record["label"])
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
