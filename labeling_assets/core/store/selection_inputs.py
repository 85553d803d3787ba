"""What the queue's strategies beyond uncertainty read from the label store (rules: core/labelstudio/selection.py).

``diversity`` and ``hybrid``: each candidate's perceptual hash (item_phashes, stored at ingest) as its embedding, and
those of the newest already queued items. ``committee``: the pre-labels each candidate has, one per model version (the newest ``COMMITTEE_SIZE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from labeling_assets.core.labelstudio.selection import (
    COMMITTEE_SIZE,
    EMBEDDING_STRATEGIES,
    QUEUED_CAP,
    SelectionInputs,
    phash_embedding,
)
from labeling_assets.core.store.phashes import load_phashes
from labeling_assets.core.store.schema import LabelStore, chunked, prelabels_table, tasks_table


def selection_inputs(store: LabelStore, strategy: str, item_ids: Sequence[str], project_ids: Sequence[int]) -> SelectionInputs:
    """The inputs ``strategy`` needs for the candidates ``item_ids`` in the projects ``project_ids`` (empty for the
    uncertainty strategies, which read only the newest pre-label the candidates already carry)."""
    if strategy in EMBEDDING_STRATEGIES:
        phashes = load_phashes(store)
        wanted = set(item_ids)
        embeddings = {str(i): phash_embedding(str(h)) for i, h in phashes.items() if i in wanted}
        t = tasks_table
        queued_ids = [r["item_id"] for r in store.fetch(
            sa.select(t.c.item_id).where(t.c.ls_project_id.in_(list(project_ids))).order_by(t.c.id.desc()).limit(QUEUED_CAP))]  # fmt: skip
        queued = [phash_embedding(str(phashes[i])) for i in queued_ids if i in phashes.index]
        return SelectionInputs(embeddings=embeddings, queued=np.stack(queued) if queued else None)
    if strategy == "committee":
        p = prelabels_table
        committees: dict[str, list[dict[str, Any]]] = {}
        for part in chunked(list(item_ids)):
            rows = store.fetch(sa.select(p.c.item_id, p.c.probs).where(p.c.item_id.in_(list(part)))
                               .order_by(p.c.item_id, p.c.computed_at))  # fmt: skip
            for r in rows:
                committees.setdefault(str(r["item_id"]), []).append(r["probs"])
        return SelectionInputs(committees={i: members[-COMMITTEE_SIZE:] for i, members in committees.items()})
    return SelectionInputs()
