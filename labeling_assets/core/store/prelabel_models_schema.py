"""Schema migration 11: the decision thresholds of the models whose pre-labels the store holds.

A multi-label model's sigmoids are not calibrated at 0.5 (``pos_weight`` and the rare-label sampler push them
around); training picks a threshold per class on val (``core.training.multilabel``), saved with the model. The
queue pre-checks a class in a Label Studio task when the model's probability reaches *that model's* threshold for
the class, so the pre-fill is the model's own prediction. ``prelabel_models`` keeps those thresholds per
pre-label model version, beside the pre-labels, so the queue needs no model registry. A version without a row
(the pixel baseline, a single-label model) pre-fills at 0.5. Written by ``datasets.record_thresholds``, read by
``labelstudio_sync.thresholds_of``.

Own ``MetaData`` (like ``human_loop_schema``): migration 11 creates the table on every database, fresh or old.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

prelabel_models_table = sa.Table(
    "prelabel_models",
    metadata,
    sa.Column("model_version", sa.String(200), primary_key=True),  # as in prelabels.model_version
    sa.Column("thresholds", sa.JSON, nullable=False),  # class -> decision threshold on P(class present)
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


def m011_prelabel_models(conn: Connection) -> None:
    """Create ``prelabel_models``."""
    metadata.create_all(conn, checkfirst=True)
