from collections import Counter

import numpy as np
import pytest

from labeling_assets.core.labelstudio.crowd import LabelerSpec, confusion_matrix, default_crowd, plan_crowd

CLASSES = [str(i) for i in range(5)]


@pytest.mark.parametrize("preset", ["expert", "average", "noisy", "spammer", "biased"])
def test_confusion_matrices_are_row_stochastic(preset: str) -> None:
    m = confusion_matrix(LabelerSpec("a", preset=preset), CLASSES)
    assert m.shape == (5, 5)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)


def test_preset_accuracies_and_bias() -> None:
    assert confusion_matrix(LabelerSpec("a", "expert"), CLASSES)[2, 2] == pytest.approx(0.95)
    assert confusion_matrix(LabelerSpec("a", "noisy"), CLASSES)[2, 2] == pytest.approx(0.60)
    assert confusion_matrix(LabelerSpec("a", "spammer"), CLASSES)[2, 2] == pytest.approx(0.2)
    biased = confusion_matrix(LabelerSpec("a", "biased", biased_toward="4"), CLASSES)
    assert biased[0, 4] == pytest.approx(0.4) and biased[4, 4] == pytest.approx(1.0)


def _truth(n: int) -> dict[int, str]:
    return {t: CLASSES[t % 5] for t in range(n)}


def test_empirical_accuracy_matches_the_preset() -> None:
    crowd = [LabelerSpec("e", "expert"), LabelerSpec("n", "noisy"), LabelerSpec("s", "spammer")]
    truth = _truth(3000)
    plan = plan_crowd(truth, crowd, CLASSES, overlap=3, seed=1)
    acc = {
        name: np.mean([a.label == truth[a.item_id] for a in plan.annotations if a.labeler == name])
        for name in ("e", "n", "s")
    }
    assert acc["e"] == pytest.approx(0.95, abs=0.02)
    assert acc["n"] == pytest.approx(0.60, abs=0.03)
    assert acc["s"] == pytest.approx(0.20, abs=0.03)


def test_overlap_is_respected_and_nobody_labels_a_task_twice() -> None:
    plan = plan_crowd(_truth(200), default_crowd(5), CLASSES, overlap=3, seed=0)
    per_task = Counter(a.item_id for a in plan.annotations)
    assert set(per_task.values()) == {3}
    pairs = [(a.item_id, a.labeler) for a in plan.annotations]
    assert len(pairs) == len(set(pairs))


def test_overlap_larger_than_the_crowd_uses_everyone_once() -> None:
    plan = plan_crowd(_truth(10), default_crowd(2), CLASSES, overlap=5, seed=0)
    assert Counter(a.item_id for a in plan.annotations) == Counter({t: 2 for t in range(10)})


def test_second_run_only_tops_up() -> None:
    crowd = default_crowd(4)
    done = {0: {crowd[0].name, crowd[1].name}, 1: {crowd[0].name, crowd[1].name, crowd[2].name}}
    plan = plan_crowd(_truth(2), crowd, CLASSES, overlap=3, seed=0, already_done=done)
    assert [(a.item_id) for a in plan.annotations] == [0]
    assert plan.annotations[0].labeler not in done[0]


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    crowd = default_crowd(5)
    a = plan_crowd(_truth(50), crowd, CLASSES, seed=3)
    b = plan_crowd(dict(reversed(list(_truth(50).items()))), crowd, CLASSES, seed=3)
    c = plan_crowd(_truth(50), crowd, CLASSES, seed=4)
    assert a == b
    assert a != c


def test_lead_times_are_lognormal_around_the_median() -> None:
    crowd = [LabelerSpec("a", median_lead_time_s=10.0, lead_time_sigma=0.5)]
    plan = plan_crowd(_truth(2000), crowd, CLASSES, overlap=1, seed=0)
    times = np.array([a.lead_time_s for a in plan.annotations])
    assert (times > 0).all()
    assert np.median(times) == pytest.approx(10.0, rel=0.1)
    assert np.std(np.log(times)) == pytest.approx(0.5, rel=0.1)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="preset"):
        LabelerSpec("a", preset="genius")
    with pytest.raises(ValueError, match="not in the class list"):
        plan_crowd({0: "zebra"}, default_crowd(2), CLASSES)
    with pytest.raises(ValueError, match="distinct"):
        plan_crowd({0: "1"}, [LabelerSpec("a"), LabelerSpec("a")], CLASSES)
