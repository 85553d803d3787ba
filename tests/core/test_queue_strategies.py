"""The queue's strategies beyond uncertainty: diversity, hybrid and committee (core/labelstudio/selection.py), their
fall-backs with counted reasons, and the store reads that feed them (core/store/selection_inputs.py)."""

import datetime as dt
from typing import Any

import numpy as np
import pytest

from labeling_assets.assets.queue import QueueConfig
from labeling_assets.core.labelstudio.selection import (
    NO_EMBEDDING,
    NOT_CLASS_PROBS,
    ONE_MODEL,
    SelectionInputs,
    committee_disagreement,
    phash_embedding,
)
from labeling_assets.core.labelstudio.tasks import STRATEGIES, Candidate, choose_queue
from labeling_assets.core.store.lineage_schema import item_phashes_table
from labeling_assets.core.store.schema import LabelStore, items_table, prelabels_table, tasks_table, utcnow
from labeling_assets.core.store.selection_inputs import selection_inputs
from labeling_assets.core.tasks import task_kind

SINGLE = task_kind("single_label")


def _order(cands: list[Candidate], strategy: str, limit: int, inputs: SelectionInputs | None = None,
           kind: Any = SINGLE) -> tuple[list[str], dict[str, int]]:  # fmt: skip
    chosen = choose_queue(cands, limit=limit, gold_rate=0.0, strategy=strategy, kind=kind, inputs=inputs)
    return [q.item_id for q in chosen.queue], dict(chosen.fallbacks)


def _cluster(center: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` 64-bit embeddings within 2 bits of ``center``'s."""
    base = phash_embedding(f"{center:016x}")
    out = []
    for _ in range(n):
        v, flip = base.copy(), rng.choice(64, 2, replace=False)
        v[flip] = 1 - v[flip]
        out.append(v)
    return out


# -- committee ---------------------------------------------------------------------------------------------


def test_committee_disagreement_is_zero_for_agreeing_models_and_one_for_opposite_sure_ones() -> None:
    assert committee_disagreement(SINGLE, [{"a": 0.5, "b": 0.5}] * 3) == pytest.approx(0.0)
    assert committee_disagreement(SINGLE, [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}]) == pytest.approx(1.0)
    assert committee_disagreement(SINGLE, [{"a": 0.9, "b": 0.1}]) is None  # one model is no committee
    sets = task_kind("multi_label")  # label sets: per-class marginals, binary entropies
    assert committee_disagreement(sets, [{"a": 0.9, "b": 0.9}, {"a": 0.9, "b": 0.9}]) == pytest.approx(0.0)
    assert committee_disagreement(sets, [{"a": 1.0, "b": 0.5}, {"a": 0.0, "b": 0.5}]) == pytest.approx(0.5)


def test_committee_queues_where_the_models_disagree_before_where_they_agree_they_are_unsure() -> None:
    """Query-by-committee is not uncertainty: two models both at 50/50 agree (nothing to learn from their split);
    two sure models that contradict each other are what a label settles."""
    cands = [Candidate("agree-unsure", probs={"a": 0.5, "b": 0.5}), Candidate("split", probs={"a": 0.8, "b": 0.2}),
             Candidate("agree-sure", probs={"a": 0.95, "b": 0.05}), Candidate("one-model", probs={"a": 0.6, "b": 0.4}),
             Candidate("unscored")]  # fmt: skip
    committees = {"agree-unsure": [{"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}],
                  "split": [{"a": 0.05, "b": 0.95}, {"a": 0.8, "b": 0.2}],
                  "agree-sure": [{"a": 0.9, "b": 0.1}, {"a": 0.95, "b": 0.05}],
                  "one-model": [{"a": 0.6, "b": 0.4}]}  # fmt: skip
    order, fallbacks = _order(cands, "committee", 5, SelectionInputs(committees=committees))
    assert order[:3] == ["split", "agree-sure", "agree-unsure"]
    # Without a committee: after the committee's items, in the uncertainty order (scored first, unscored last).
    assert order[3:] == ["one-model", "unscored"] and fallbacks == {ONE_MODEL: 2}
    assert _order(cands, "uncertainty", 5)[0][0] == "agree-unsure"


def test_committee_falls_back_for_boxes_whose_pre_labels_are_not_class_probabilities() -> None:
    boxes = task_kind("boxes")
    sure = {"boxes": [{"label": "a", "x0": 1, "y0": 1, "x1": 5, "y1": 5, "score": 0.99}], "image_width": 10,
            "image_height": 10}  # fmt: skip
    unsure = {**sure, "boxes": [{**sure["boxes"][0], "score": 0.5}]}
    cands = [Candidate("sure", probs=sure), Candidate("unsure", probs=unsure)]
    order, fallbacks = _order(cands, "committee", 2, SelectionInputs(committees={"sure": [sure, unsure],
                                                                                 "unsure": [unsure, sure]}), boxes)  # fmt: skip
    assert order == ["unsure", "sure"] and fallbacks == {NOT_CLASS_PROBS: 2}


# -- diversity and hybrid ------------------------------------------------------------------------------------


def _clustered_pool() -> tuple[list[Candidate], dict[str, np.ndarray]]:
    """Three clusters of 6 near-identical images; cluster 0 holds the most uncertain items."""
    rng = np.random.default_rng(0)
    cands, embeddings = [], {}
    for c, center in enumerate((0x0, 0xFFFFFFFF00000000, 0x00000000FFFFFFFF)):
        for i, v in enumerate(_cluster(center, 6, rng)):
            p = 0.5 + 0.02 * i + (0.0 if c == 0 else 0.3)
            cands.append(Candidate(f"c{c}-{i}", probs={"a": min(p, 0.99), "b": 1 - min(p, 0.99)}))
            embeddings[f"c{c}-{i}"] = v
    return cands, embeddings


def test_diversity_spreads_a_batch_over_the_clusters_where_uncertainty_takes_one_cluster() -> None:
    cands, embeddings = _clustered_pool()
    by_uncertainty, _ = _order(cands, "uncertainty", 3)
    assert {i[:2] for i in by_uncertainty} == {"c0"}
    spread, fallbacks = _order(cands, "diversity", 3, SelectionInputs(embeddings=embeddings))
    assert {i[:2] for i in spread} == {"c0", "c1", "c2"} and fallbacks == {}


def test_diversity_keeps_away_from_what_is_already_queued() -> None:
    cands, embeddings = _clustered_pool()
    queued = np.stack([embeddings["c0-0"], embeddings["c1-0"]])  # clusters 0 and 1 are already with labelers
    rest = [c for c in cands if c.item_id not in ("c0-0", "c1-0")]
    first, _ = _order(rest, "diversity", 1, SelectionInputs(embeddings=embeddings, queued=queued))
    assert first[0].startswith("c2")


def test_items_without_an_embedding_follow_in_the_uncertainty_order_and_are_counted() -> None:
    cands, embeddings = _clustered_pool()
    text = [Candidate("text-unsure", probs={"a": 0.5, "b": 0.5}), Candidate("text-sure", probs={"a": 0.99, "b": 0.01})]
    order, fallbacks = _order(cands[:2] + text, "diversity", 4, SelectionInputs(embeddings=embeddings))
    assert set(order[:2]) == {"c0-0", "c0-1"} and order[2:] == ["text-unsure", "text-sure"]
    assert fallbacks == {NO_EMBEDDING: 2}
    # No embedding at all (a text project): hybrid is the uncertainty order.
    assert _order(text, "hybrid", 2, SelectionInputs()) == (["text-unsure", "text-sure"], {NO_EMBEDDING: 2})


def test_hybrid_spreads_the_batch_over_the_most_uncertain_items_only() -> None:
    cands, embeddings = _clustered_pool()
    # Two uncertain clusters: make cluster 1 as unsure as cluster 0; cluster 2 stays sure.
    unsure = [Candidate(c.item_id, probs={"a": 0.5, "b": 0.5}) if c.item_id.startswith("c1") else c for c in cands]
    order, _ = _order(unsure, "hybrid", 2, SelectionInputs(embeddings=embeddings))
    assert {i[:2] for i in order} == {"c0", "c1"}  # one per uncertain cluster, none from the sure one
    diverse, _ = _order(unsure, "diversity", 3, SelectionInputs(embeddings=embeddings))
    assert {i[:2] for i in diverse} == {"c0", "c1", "c2"}


def test_every_strategy_is_seeded_and_hides_gold_at_the_rate() -> None:
    cands, embeddings = _clustered_pool()
    cands += [Candidate(f"g{i}", is_gold=True, probs={"a": 0.7, "b": 0.3}) for i in range(5)]
    committees = {c.item_id: [c.probs, {"a": 0.5, "b": 0.5}] for c in cands if c.probs}
    inputs = SelectionInputs(embeddings=embeddings, committees=committees)
    for strategy in STRATEGIES:
        a = choose_queue(cands, limit=10, gold_rate=0.2, strategy=strategy, seed=3, kind=SINGLE, inputs=inputs).queue
        b = choose_queue(cands, limit=10, gold_rate=0.2, strategy=strategy, seed=3, kind=SINGLE, inputs=inputs).queue
        assert [q.item_id for q in a] == [q.item_id for q in b], strategy
        assert sum(q.is_gold for q in a) == 2 and len({q.item_id for q in a}) == 10, strategy
        assert all(0.0 <= q.priority <= 1.0 for q in a), strategy


def test_the_queue_config_accepts_every_strategy_and_refuses_others() -> None:
    for strategy in ("diversity", "hybrid", "committee", "uncertainty", "random"):
        assert QueueConfig(strategy=strategy).strategy == strategy  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strategy"):
        QueueConfig(strategy="k_center")  # type: ignore[arg-type]


# -- what the store gives them -------------------------------------------------------------------------------


def test_the_store_gives_phash_embeddings_the_queued_items_and_every_models_pre_label(sqlite_store: LabelStore) -> None:
    now = utcnow()
    items = ["aa", "bb", "cc"]
    with sqlite_store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": i, "uri": None, "source_path": f"{i}.png", "n_bytes": 1,
                                             "ingested_at": now, "status": "active"} for i in items])  # fmt: skip
        conn.execute(item_phashes_table.insert(), [
            {"item_id": "aa", "phash": "ffffffffffffffff", "computed_at": now},
            {"item_id": "bb", "phash": None, "problem": "not decodable", "computed_at": now},
            {"item_id": "cc", "phash": "0000000000000001", "computed_at": now}])  # fmt: skip
        conn.execute(tasks_table.insert(), [{"item_id": "cc", "ls_project_id": 7, "ls_task_id": 1,
                                             "required_annotations": 3, "is_gold": False}])  # fmt: skip
        conn.execute(prelabels_table.insert(), [
            {"item_id": "aa", "model_version": "baseline", "probs": {"a": 0.9, "b": 0.1},
             "computed_at": now - dt.timedelta(hours=1)},
            {"item_id": "aa", "model_version": "champion-2", "probs": {"a": 0.2, "b": 0.8}, "computed_at": now}])  # fmt: skip
    found = selection_inputs(sqlite_store, "diversity", ["aa", "bb"], [7])
    assert set(found.embeddings) == {"aa"} and found.embeddings["aa"].sum() == 64  # "bb" did not decode
    assert found.queued is not None and found.queued.tolist() == [phash_embedding("0000000000000001").tolist()]
    committee = selection_inputs(sqlite_store, "committee", ["aa", "bb"], [7])
    assert committee.committees == {"aa": [{"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}]}
    assert selection_inputs(sqlite_store, "margin", ["aa"], [7]) == SelectionInputs()
