import datetime as dt
import json
from pathlib import Path

import pytest

from labeling_assets.core.labelstudio.tasks import (
    Candidate,
    awaiting_prelabel,
    build_payloads,
    image_url,
    payload_leaks,
    select_queue,
    shown_model_version,
    task_payload,
    uncertainty,
)


def _candidates(n_regular: int, n_gold: int, scored: bool = False) -> list[Candidate]:
    out = []
    for i in range(n_regular):
        probs = {"a": 0.5 + i / (2 * n_regular), "b": 0.5 - i / (2 * n_regular)} if scored else None
        out.append(Candidate(item_id=f"r{i:03d}", probs=probs, model_version="m1" if scored else None))
    out += [Candidate(item_id=f"g{i:03d}", is_gold=True) for i in range(n_gold)]
    return out


def test_uncertainty_orders_confident_last() -> None:
    assert uncertainty({"a": 0.5, "b": 0.5}) > uncertainty({"a": 0.9, "b": 0.1})
    assert uncertainty({"a": 0.5, "b": 0.5}, "entropy") == pytest.approx(1.0)
    assert uncertainty({"a": 1.0, "b": 0.0}, "margin") == pytest.approx(0.0)
    assert uncertainty(None) == 1.0


def test_most_uncertain_items_are_queued_first() -> None:
    queue = select_queue(_candidates(50, 0, scored=True), limit=10, gold_rate=0.0)
    assert [q.item_id for q in queue] == [f"r{i:03d}" for i in range(10)]
    assert [q.position for q in queue] == list(range(10))


def test_without_prelabels_the_order_is_a_seeded_shuffle() -> None:
    cands = _candidates(100, 0)
    a = [q.item_id for q in select_queue(cands, limit=20, seed=1)]
    assert a == [q.item_id for q in select_queue(cands, limit=20, seed=1)]
    assert a != [q.item_id for q in select_queue(cands, limit=20, seed=2)]
    assert a != sorted(a)


def test_items_with_a_pre_label_are_queued_before_items_without_one() -> None:
    """Issue 26: an unscored item counted as maximally uncertain and went first, to a task with no prediction."""
    scored = _candidates(4, 0, scored=True)
    unscored = [Candidate(item_id=f"new{i}") for i in range(4)]
    gold = [Candidate(item_id="g-new", is_gold=True), Candidate(item_id="g-old", is_gold=True, probs={"a": 1.0})]
    queue = select_queue(unscored + scored + gold, limit=6, gold_rate=0.2)
    regular = [q.item_id for q in queue if not q.is_gold]
    assert set(regular[:4]) == {c.item_id for c in scored} and set(regular[4:]) <= {c.item_id for c in unscored}
    assert [q.item_id for q in queue if q.is_gold] == ["g-old"]
    assert len(select_queue(unscored, limit=3)) == 3  # with nothing scored, unscored items are still queued


def test_new_items_wait_for_their_pre_label_run_only_once_a_model_pre_labels_and_only_for_a_while() -> None:
    now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    minutes = lambda m: now + dt.timedelta(minutes=m)  # noqa: E731
    items = [
        Candidate(item_id="scored", probs={"a": 0.6, "b": 0.4}, ingested_at=minutes(-1)),
        Candidate(item_id="new", ingested_at=minutes(-1)),  # ingested after the last pre-label run: wait
        Candidate(item_id="passed_over", ingested_at=minutes(-8)),  # before it: that run left it, do not wait
        Candidate(item_id="stale", ingested_at=minutes(-30)),  # waited past the bound: queue without one
    ]
    held = awaiting_prelabel(items, last_prelabel_at=minutes(-5), ingested_after=minutes(-10))
    assert [c.item_id for c in held] == ["new"]
    assert [c.item_id for c in awaiting_prelabel(items, last_prelabel_at=minutes(-40), ingested_after=minutes(-10))] == [
        "new", "passed_over"]  # fmt: skip
    assert awaiting_prelabel(items, last_prelabel_at=None, ingested_after=minutes(-10)) == []  # no model yet


def test_gold_is_interleaved_at_the_gold_rate() -> None:
    queue = select_queue(_candidates(200, 50), limit=100, gold_rate=0.1, seed=0)
    gold_positions = [q.position for q in queue if q.is_gold]
    assert len(queue) == 100 and len(gold_positions) == 10
    assert gold_positions != list(range(90, 100)) and gold_positions != list(range(10))


def test_limit_and_available_items_bound_the_queue() -> None:
    assert len(select_queue(_candidates(3, 1), limit=100, gold_rate=0.1)) == 4
    assert select_queue(_candidates(3, 1), limit=0) == []


def test_payload_never_carries_gold_and_looks_the_same_for_gold_items() -> None:
    gold = {"g000": "b"}
    regular = task_payload("r000", "/img/r", probs={"a": 0.7, "b": 0.3}, model_version="m1")
    gold_task = task_payload("g000", "/img/g", probs={"a": 0.2, "b": 0.8}, model_version="m1")
    assert regular.keys() == gold_task.keys() and regular["data"].keys() == gold_task["data"].keys()
    assert gold_task["predictions"][0]["model_version"] == "m1"
    assert payload_leaks([regular, gold_task], gold) == []
    assert "gold" not in json.dumps(gold_task)


def test_payload_leaks_flags_gold_fields_and_gold_answers() -> None:
    gold = {"g000": "b"}
    bad = {"data": {"image": "/x", "item_id": "g000", "hint": "b"}}
    assert payload_leaks(bad, gold)
    assert payload_leaks({"data": {"image": "/x", "item_id": "r1", "is_gold": True}}, gold)
    assert payload_leaks({"data": {"image": "/x", "item_id": "g000"}, "annotations": []}, gold)


def test_images_under_the_data_folder_are_served_by_label_studio_and_others_pass_through(tmp_path: Path) -> None:
    assert image_url(str(tmp_path / "raw" / "ab.png"), tmp_path) == "/data/local-files/?d=raw/ab.png"
    assert image_url("/elsewhere/ab.png", tmp_path) == "/elsewhere/ab.png"
    assert image_url("s3://bucket/ab.png", tmp_path) == "s3://bucket/ab.png"
    assert image_url(None, tmp_path) == ""


def test_payloads_follow_the_pending_order_and_carry_the_newest_prelabel(tmp_path: Path) -> None:
    pending = [{"item_id": "i2", "uri": str(tmp_path / "raw/2.png")}, {"item_id": "i1", "uri": None}]
    payloads = build_payloads(pending, {"i1": ({"cat": 0.8, "dog": 0.2}, "clf/4")}, tmp_path)
    assert [p["data"]["item_id"] for p in payloads] == ["i2", "i1"]
    assert "predictions" not in payloads[0] and payloads[1]["predictions"][0]["model_version"] == "clf/4"
    assert payloads[0]["data"]["image"] == "/data/local-files/?d=raw/2.png"


def test_label_studio_shows_the_model_version_most_tasks_carry() -> None:
    def scored(version: str) -> dict:
        return task_payload("x", "/img", probs={"a": 1.0}, model_version=version)

    assert shown_model_version([scored("m/1"), scored("m/2"), scored("m/2"), task_payload("y", "/img")]) == "m/2"
    assert shown_model_version([scored("m/2"), scored("m/1")]) == "m/1"  # a tie: the first in sort order
    assert shown_model_version([task_payload("y", "/img")]) is None
