"""The human loop on a text-spans project, store-side: a text the labelers mark differently goes back for more
labelers (dynamic overlap), or to an expert once it has as many as allowed; a paused labeler's later spans stop
counting. Real SQLite store and stored texts; the span kind as a project registers it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.core.consensus.review_routing import CONSENSUS_SOURCE
from labeling_assets.core.consensus.run import ConsensusOptions, run_consensus
from labeling_assets.core.store.human_loop import PAUSE, record_pause_event
from labeling_assets.core.store.reviews import open_request_items
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    items_table,
    review_requests_table,
    utcnow,
)
from labeling_assets.core.tasks import task_kind

KIND = task_kind("text_spans")
TYPES = ["PER", "ORG", "LOC"]
TEXT = "Ada Lovelace joined Acme Corp in London."
ADA, ACME, LONDON = [0, 12, "PER"], [20, 29, "ORG"], [33, 39, "LOC"]


def _texts(store: LabelStore, folder: Path, ids: list[str]) -> None:
    rows = []
    for item in ids:
        path = folder / f"{item}.txt"
        path.write_text(TEXT, encoding="utf-8")
        rows.append({"item_id": item, "uri": str(path), "source_path": path.name, "n_bytes": len(TEXT),
                     "ingested_at": utcnow(), "status": "active"})  # fmt: skip
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)


def _votes(store: LabelStore, votes: list[tuple[str, str, list[Any]]], at: dt.datetime) -> None:
    """(item_id, labeler_id, stored spans) as synced Label Studio annotations, a minute apart from ``at``."""
    with store.begin() as conn:
        first = conn.execute(sa.select(sa.func.count()).select_from(annotations_table)).scalar_one() + 1
        conn.execute(annotations_table.insert(), [
            {"ls_annotation_id": first + n, "version": 1, "item_id": item, "labeler_id": labeler, "label": spans,
             "lead_time_s": 9.0, "created_at": at + dt.timedelta(minutes=n), "updated_at": at + dt.timedelta(minutes=n),
             "synced_at": utcnow(), "deleted": False, "content_hash": f"h{first + n}"}
            for n, (item, labeler, spans) in enumerate(votes)
        ])  # fmt: skip


def _labels(store: LabelStore) -> pd.DataFrame:
    return pd.DataFrame(store.fetch(sa.select(consensus_table)))


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    store.migrate()
    (tmp_path / "texts").mkdir()
    return store


def _agreed(store: LabelStore, folder: Path, n: int, at: dt.datetime) -> list[str]:
    """``n`` texts two careful labelers mark alike (a person, an organisation, a place)."""
    ids = [f"t{i:02d}" for i in range(n)]
    _texts(store, folder, ids)
    _votes(store, [(i, who, [ADA, ACME, LONDON]) for who in ("careful1", "careful2") for i in ids], at)
    return ids


@pytest.mark.parametrize(("max_annotators", "action"), [(5, "more_annotators"), (2, "expert_review")])
def test_a_text_the_labelers_mark_differently_goes_back_for_more_labelers_or_to_an_expert(
    store: LabelStore, tmp_path: Path, max_annotators: int, action: str
) -> None:
    """Dynamic overlap: span consensus below low_confidence_threshold asks for more labelers, or for an expert
    once the text has max_annotators; the texts both marked alike ask for nothing."""
    yesterday = utcnow() - dt.timedelta(days=1)
    _agreed(store, tmp_path / "texts", 20, yesterday)
    _texts(store, tmp_path / "texts", ["which_type", "where_it_ends"])
    _votes(store, [
        ("which_type", "careful1", [ADA, ACME, LONDON]), ("which_type", "careful2", [ADA, [20, 29, "LOC"], LONDON]),
        ("where_it_ends", "careful1", [ADA, ACME, LONDON]), ("where_it_ends", "careful2", [[0, 3, "PER"], ACME, LONDON]),
    ], yesterday + dt.timedelta(hours=1))  # fmt: skip
    report = run_consensus(store, KIND, ConsensusOptions(classes=TYPES, max_annotators=max_annotators), "r1")
    assert report["method"] == "span_em"
    labels = _labels(store).set_index("item_id")
    disputed = ["which_type", "where_it_ends"]
    assert labels.loc[disputed, "confidence"].max() < 0.6 <= labels.drop(disputed)["confidence"].min()
    assert open_request_items(store, CONSENSUS_SOURCE) == set(disputed)
    requested = store.fetch(sa.select(review_requests_table.c.action, review_requests_table.c.reason))
    assert {r["action"] for r in requested} == {action} and all("span_em consensus: confidence" in r["reason"]
                                                                for r in requested)  # fmt: skip
    assert report["review_requests_new"] == {action: 2}


def test_a_paused_span_labelers_later_answers_stop_counting(store: LabelStore, tmp_path: Path) -> None:
    yesterday = utcnow() - dt.timedelta(days=1)
    texts = _agreed(store, tmp_path / "texts", 5, yesterday)
    record_pause_event(store, "careful2", PAUSE, reason="test", actor="gate", label_studio_effect=None)
    later = ["l0", "l1", "l2"]
    _texts(store, tmp_path / "texts", later)
    _votes(store, [(i, who, [ADA, ACME, LONDON]) for i in later for who in ("careful1", "careful2")],
           utcnow() + dt.timedelta(minutes=1))  # fmt: skip
    report = run_consensus(store, KIND, ConsensusOptions(classes=TYPES), "r1")
    assert report["votes_of_paused_labelers_excluded"] == len(later)
    labels = _labels(store)
    assert set(labels["item_id"]) == set(texts)  # the later texts have one labeler that counts: no consensus
    assert set(labels["n_annotators"]) == {2}  # the answers before the pause still count
