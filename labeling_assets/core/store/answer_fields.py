"""The extra answer fields in the store (tables: ``fields_schema``, m016): written with their annotation version by
the sync, read as the fields of the current votes, and each dataset version's field consensus."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.store.fields_schema import answer_fields_table, field_consensus_table
from labeling_assets.core.store.heads_schema import annotation_heads_table
from labeling_assets.core.store.schema import LabelStore, annotations_table, chunked


def current_field_answers(store: LabelStore, item_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The fields of every current vote (latest version, not a tombstone): ``item_id, labeler_id, field, value``
    and the vote's ``label`` (what a self-rating is about); a labeler with two annotations of one item counts once
    (the newest)."""
    a, h, f = annotations_table, annotation_heads_table, answer_fields_table
    stmt = (
        sa.select(a.c.item_id, a.c.labeler_id, a.c.ls_annotation_id, f.c.field, f.c.value, a.c.label)
        .select_from(h.join(a, a.c.id == h.c.row_id).join(
            f, sa.and_(f.c.ls_annotation_id == a.c.ls_annotation_id, f.c.version == a.c.version)))
        .where(h.c.deleted.is_(False))
    )  # fmt: skip
    if item_ids is None:
        frame = pd.DataFrame(store.fetch(stmt))
    else:
        rows = [r for chunk in chunked(sorted(set(item_ids)), 900) for r in store.fetch(stmt.where(a.c.item_id.in_(chunk)))]
        frame = pd.DataFrame(rows)
    columns = ["item_id", "labeler_id", "field", "value", "label"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    newest = frame.sort_values("ls_annotation_id").drop_duplicates(["item_id", "labeler_id", "field"], keep="last")
    return newest.loc[:, columns].reset_index(drop=True)


def record_field_consensus(store: LabelStore, dataset_version: str, consensus: pd.DataFrame) -> None:
    """Replace the field consensus stored for ``dataset_version`` with ``consensus`` (``consensus.COLUMNS``)."""
    t = field_consensus_table
    rows = [{"dataset_version": dataset_version, **{str(k): v for k, v in r.items()}}
            for r in consensus.to_dict(orient="records")]  # fmt: skip
    with store.begin() as conn:
        conn.execute(t.delete().where(t.c.dataset_version == dataset_version))
        if rows:
            conn.execute(t.insert(), rows)


def load_field_consensus(store: LabelStore, dataset_version: str) -> pd.DataFrame:
    """The field consensus stored for a dataset version: ``item_id, field, value, confidence, n_answers``."""
    t = field_consensus_table
    stmt = sa.select(t.c.item_id, t.c.field, t.c.value, t.c.confidence, t.c.n_answers).where(
        t.c.dataset_version == dataset_version
    )
    frame = pd.DataFrame(store.fetch(stmt))
    return frame if not frame.empty else pd.DataFrame(columns=["item_id", "field", "value", "confidence", "n_answers"])
