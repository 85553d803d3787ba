"""The human loop on a box project, store-side: the gold gate pauses a labeler whose boxes surely fail the gold
(their later votes stop counting in consensus), and a scene the labelers disagree on goes back for more labelers,
or to an expert once it has as many as allowed. Real SQLite store; the box kind as a project registers it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.core.consensus.labeler_run import LabelerOptions, run_labeler_stats
from labeling_assets.core.consensus.review_routing import CONSENSUS_SOURCE
from labeling_assets.core.consensus.run import ConsensusOptions, run_consensus
from labeling_assets.core.store.human_loop import pause_intervals
from labeling_assets.core.store.reviews import open_request_items
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    items_table,
    review_requests_table,
    utcnow,
)
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.core.tasks.boxes.kind import KIND

CLASSES = ["cat", "dog"]
W, H = 200.0, 100.0
CAT = {"label": "cat", "x0": 10.0, "y0": 20.0, "x1": 60.0, "y1": 70.0}  # the one object of every scene
PHANTOM = {"label": "dog", "x0": 140.0, "y0": 20.0, "x1": 190.0, "y1": 70.0}  # where nothing is


def _answer(*boxes: dict[str, Any]) -> dict[str, Any]:
    return gold_answer(list(boxes), W, H)


def _items(store: LabelStore, ids: list[str], gold: set[str]) -> None:
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": i, "uri": f"/scenes/{i}.png", "source_path": f"{i}.png", "width": int(W), "height": int(H),
             "n_bytes": 1, "ingested_at": utcnow(), "status": "active",
             "gold_label": _answer(CAT) if i in gold else None}
            for i in ids
        ])  # fmt: skip


def _votes(store: LabelStore, votes: list[tuple[str, str, dict[str, Any]]], at: dt.datetime) -> None:
    """(item_id, labeler_id, stored answer) as synced Label Studio annotations, a minute apart from ``at``."""
    with store.begin() as conn:
        first = conn.execute(sa.select(sa.func.count()).select_from(annotations_table)).scalar_one() + 1
        conn.execute(annotations_table.insert(), [
            {"ls_annotation_id": first + n, "version": 1, "item_id": item, "labeler_id": labeler, "label": answer,
             "lead_time_s": 6.0, "created_at": at + dt.timedelta(minutes=n), "updated_at": at + dt.timedelta(minutes=n),
             "synced_at": utcnow(), "deleted": False, "content_hash": f"h{first + n}"}
            for n, (item, labeler, answer) in enumerate(votes)
        ])  # fmt: skip


def _consensus(store: LabelStore, run_id: str, **options: Any) -> dict[str, Any]:
    return run_consensus(store, KIND, ConsensusOptions(classes=CLASSES, method="majority", **options), run_id)


def _labels(store: LabelStore) -> pd.DataFrame:
    return pd.DataFrame(store.fetch(sa.select(consensus_table)))


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    store.migrate()
    return store


def _agreed_scenes(store: LabelStore, n: int, *, gold: int, spam: bool, at: dt.datetime) -> list[str]:
    """``n`` scenes of one cat (the first ``gold`` of them gold) that two careful labelers draw alike; a spammer,
    when asked, draws a dog where nothing is on each."""
    ids = [f"s{i:02d}" for i in range(n)]
    _items(store, ids, set(ids[:gold]))
    votes = [(i, who, _answer(CAT)) for who in ("careful1", "careful2") for i in ids]
    _votes(store, votes + [(i, "spam", _answer(PHANTOM)) for i in ids if spam], at)
    return ids


def test_the_gold_gate_pauses_a_box_labeler_who_surely_fails_and_their_later_boxes_stop_counting(
    store: LabelStore,
) -> None:
    yesterday = utcnow() - dt.timedelta(days=1)
    scenes = _agreed_scenes(store, 30, gold=20, spam=True, at=yesterday)
    _consensus(store, "before")
    assert set(_labels(store)["n_annotators"]) == {3}  # the spammer's boxes counted until now

    run = run_labeler_stats(store, KIND, LabelerOptions(classes=CLASSES), ["careful1", "careful2", "spam"])
    # 0 of 20 gold boxes found and 20 false boxes: the box gold score's interval is far below any threshold.
    assert run.auto_paused == ["spam"] and run.reports["spam"].stats.gold_accuracy == 0.0
    assert run.reports["careful1"].stats.gold_accuracy == 1.0
    [(since, until)] = pause_intervals(store)["spam"]
    assert until is None and set(pause_intervals(store)) == {"spam"}

    # New scenes: one careful labeler and the paused spammer answer each, after the pause.
    later = [f"n{i}" for i in range(5)]
    _items(store, later, set())
    _votes(store, [(i, who, _answer(CAT if who == "careful1" else PHANTOM)) for i in later
                   for who in ("careful1", "spam")], since + dt.timedelta(minutes=1))  # fmt: skip
    report = _consensus(store, "after")
    assert report["votes_of_paused_labelers_excluded"] == len(later)
    labels = _labels(store)
    # One labeler that counts is below min_annotators: no consensus yet on the new scenes (the spammer's vote
    # would have made two). What they answered before the pause still counts.
    assert not labels["item_id"].isin(later).any()
    newest = labels.sort_values("id").groupby("item_id").tail(1).set_index("item_id")
    assert set(newest.loc[scenes, "n_annotators"]) == {3}


@pytest.mark.parametrize(("max_annotators", "action"), [(5, "more_annotators"), (2, "expert_review")])
def test_a_box_scene_the_labelers_disagree_on_goes_back_for_more_labelers_or_to_an_expert(
    store: LabelStore, max_annotators: int, action: str
) -> None:
    """Dynamic overlap: box consensus below low_confidence_threshold asks for more labelers, or for an expert
    once the scene has max_annotators; the scenes both drew alike ask for nothing."""
    yesterday = utcnow() - dt.timedelta(days=1)
    _agreed_scenes(store, 20, gold=0, spam=False, at=yesterday)
    _items(store, ["kind_of_animal", "where_it_is"], set())
    _votes(store, [
        ("kind_of_animal", "careful1", _answer(CAT)), ("kind_of_animal", "careful2", _answer({**CAT, "label": "dog"})),
        ("where_it_is", "careful1", _answer(CAT)), ("where_it_is", "careful2", _answer({**CAT, "x0": 40.0, "x1": 90.0})),
    ], yesterday + dt.timedelta(hours=1))  # fmt: skip
    report = run_consensus(store, KIND, ConsensusOptions(classes=CLASSES, max_annotators=max_annotators), "r1")
    assert report["method"] == "box_em"
    labels = _labels(store).set_index("item_id")
    assert labels.loc[["kind_of_animal", "where_it_is"], "confidence"].max() < 0.6  # the default threshold
    assert labels.drop(["kind_of_animal", "where_it_is"])["confidence"].min() >= 0.6
    assert open_request_items(store, CONSENSUS_SOURCE) == {"kind_of_animal", "where_it_is"}
    requested = store.fetch(sa.select(review_requests_table.c.action, review_requests_table.c.reason))
    assert {r["action"] for r in requested} == {action} and all("box_em consensus: confidence" in r["reason"]
                                                                for r in requested)  # fmt: skip
    assert report["review_requests_new"] == {action: 2}
