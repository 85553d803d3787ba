"""ProjectSettings.allow_overlapping_spans reaches the span kind through consensus_labels (issue 31, item 2): the
same stored answers, nested entities of different types ("Bank of America" ORG with "America" LOC inside it), give
consensus with both entities where the project allows overlaps, and only the answers without an overlap count as
votes where it forbids them (the default). Real SQLite store and stored texts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.assets.consensus import consensus_labels
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    items_table,
    utcnow,
)
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

TYPES = ["PER", "ORG", "LOC"]
TEXT = "Ada Lovelace banked at Bank of America."
ADA, BANK, AMERICA = [0, 12, "PER"], [23, 38, "ORG"], [31, 38, "LOC"]


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    store.migrate()
    path = tmp_path / "n.txt"
    path.write_text(TEXT, encoding="utf-8")
    answers = [*((f"L{k}", [ADA, BANK, AMERICA]) for k in range(3)), ("L3", [ADA, BANK]), ("L4", [ADA, BANK])]
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": "n", "uri": str(path), "source_path": path.name,
                                             "n_bytes": len(TEXT), "ingested_at": utcnow(), "status": "active"}])
        conn.execute(annotations_table.insert(), [
            {"ls_annotation_id": k + 1, "version": 1, "item_id": "n", "labeler_id": who, "label": spans,
             "lead_time_s": 9.0, "created_at": at, "updated_at": at, "synced_at": utcnow(), "deleted": False,
             "content_hash": f"h{k}"}
            for k, (who, spans) in enumerate(answers)
        ])  # fmt: skip
    return store


@pytest.mark.parametrize(("allow", "expected", "skipped"), [
    (True, [ADA, BANK, AMERICA], {}),
    (False, [ADA, BANK], {"overlapping_span": 3}),
])  # fmt: skip
def test_the_project_setting_decides_whether_nested_entities_reach_consensus(
    store: LabelStore, tmp_path: Path, allow: bool, expected: list, skipped: dict
) -> None:
    project = ProjectSettings(data_dir=str(tmp_path), task_type="text_spans", classes=TYPES,
                              allow_overlapping_spans=allow)  # fmt: skip
    result = dg.materialize([consensus_labels], resources={"label_store": LabelStoreResource(url=store.url),
                                                           "project": project}, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    (label,) = pd.DataFrame(store.fetch(sa.select(consensus_table)))["label"].tolist()
    assert label == expected
    metadata = result.asset_materializations_for_node("consensus_labels")[0].metadata
    assert {k: n for k, n in metadata["skipped_votes"].value.items() if not k.startswith("on_")} == skipped


@pytest.mark.parametrize(("allow", "votes_of_l0"), [(True, 1), (False, 0)])
def test_labeler_statistics_read_the_votes_by_the_same_setting(store: LabelStore, allow: bool, votes_of_l0: int) -> None:
    """The labeler board counts L0's nested answer as a vote exactly where consensus does (it read every project's
    votes with overlaps forbidden, whatever the setting)."""
    from labeling_assets.core.consensus.labeler_run import LabelerOptions, labeler_board
    from labeling_assets.core.tasks import task_kind

    board = labeler_board(store, task_kind("text_spans"), LabelerOptions(TYPES, allow_overlap=allow))
    counted = board.set_index(board["labeler_id"].astype(str))["n_labels"] if len(board) else pd.Series(dtype=int)
    assert int(counted.get("L0", 0)) == votes_of_l0
