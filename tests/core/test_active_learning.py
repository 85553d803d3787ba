import numpy as np
import pytest

from labeling_assets.core.training import active_learning as al


def test_scores_order_items_from_certain_to_uncertain() -> None:
    probs = np.array([[1.0, 0.0, 0.0], [0.6, 0.3, 0.1], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    for name in al.UNCERTAINTY_STRATEGIES:
        scores = al.uncertainty_scores(probs, name)
        assert scores[0] == pytest.approx(0.0)
        assert scores[0] < scores[1] < scores[3], name
    assert al.margin(probs)[2] == pytest.approx(1.0)  # a tie between the top two is maximally uncertain
    assert al.entropy(probs)[3] == pytest.approx(1.0)  # uniform is 1 after normalising by log(k)
    assert al.least_confidence(probs)[1] == pytest.approx(0.4)


def test_top_k_breaks_ties_by_index() -> None:
    assert al.top_k(np.array([0.5, 0.9, 0.5, 0.9]), 3).tolist() == [1, 3, 0]


def test_invalid_probs_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        al.entropy(np.array([0.2, 0.8]))
    with pytest.raises(ValueError, match="finite"):
        al.margin(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="unknown strategy"):
        al.select("bald", 2, probs=np.ones((3, 2)) / 2)


def test_k_center_greedy_covers_every_cluster_before_repeating_one() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    features = np.concatenate([c + rng.normal(scale=0.1, size=(50, 2)) for c in centers])
    picked = al.k_center_greedy(features, 4, seed=3)
    assert sorted(picked // 50) == [0, 1, 2, 3]
    assert len(set(picked.tolist())) == 4


def test_k_center_greedy_avoids_the_labeled_neighbourhood() -> None:
    features = np.array([[0.0], [0.3], [5.0], [9.9], [10.0]])
    picked = al.k_center_greedy(features, 2, labeled_features=np.array([[0.0], [10.0]]))
    assert picked.tolist() == [2, 1]  # 5.0 is farthest from the labels; then 0.3 (0.1 from 9.9 is closer)


def test_hybrid_picks_uncertain_items_spread_over_the_space() -> None:
    # Items 0-9 are uncertain but near-duplicates; items 10-11 are uncertain and far apart; 12-19 are certain.
    features = np.concatenate([np.zeros((10, 2)), [[5.0, 5.0], [-5.0, 5.0]], np.full((8, 2), 20.0)])
    probs = np.concatenate([np.full((12, 2), 0.5), np.tile([[0.99, 0.01]], (8, 1))])
    picked = al.select("hybrid", 3, probs=probs, features=features, candidate_factor=4)
    assert set(picked.tolist()) >= {10, 11}
    assert all(i < 12 for i in picked)  # never a confident item
    assert int((picked < 10).sum()) <= 1  # at most one of the near-duplicates


def test_select_random_is_seeded_and_capped_at_the_pool() -> None:
    probs = np.full((5, 2), 0.5)
    a = al.select("random", 10, probs=probs, seed=1)
    assert sorted(a.tolist()) == [0, 1, 2, 3, 4]
    assert (
        al.select("random", 3, probs=probs, seed=1).tolist()
        == al.select("random", 3, probs=probs, seed=1).tolist()
    )


def test_select_needs_the_inputs_of_its_strategy() -> None:
    with pytest.raises(ValueError, match="needs features"):
        al.select("k_center", 2, probs=np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="needs probs"):
        al.select("margin", 2, features=np.ones((3, 2)))
    with pytest.raises(ValueError, match="different pools"):
        al.select("hybrid", 2, probs=np.ones((3, 2)) / 2, features=np.ones((4, 2)))
