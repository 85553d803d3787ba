"""The simulated multi-label crowd: per-class misses and false alarms, presets, assignment and lead times."""

from collections import Counter

import numpy as np
import pytest

from labeling_assets.core.labelstudio.crowd import (
    SET_PRESETS,
    SetLabelerSpec,
    class_rates,
    default_set_crowd,
    plan_set_crowd,
)

CLASSES = [str(i) for i in range(6)]


def _truth(n: int) -> dict[int, list[str]]:
    """Items with 0, 1 or 2 classes present, in a fixed pattern."""
    return {t: [CLASSES[t % 6], CLASSES[(t + 2) % 6]][: t % 3] for t in range(n)}


def _rates(plan_annotations: list, truth: dict[int, list[str]], name: str) -> tuple[float, float]:
    """Empirical (miss, false alarm) rate of one labeler over every (item, class) pair."""
    misses = present = alarms = absent = 0
    for a in plan_annotations:
        if a.labeler != name:
            continue
        for c in CLASSES:
            if c in truth[a.item_id]:
                present += 1
                misses += c not in a.labels
            else:
                absent += 1
                alarms += c in a.labels
    return misses / present, alarms / absent


@pytest.mark.parametrize("preset", sorted(SET_PRESETS))
def test_each_preset_misses_and_false_alarms_at_its_rates(preset: str) -> None:
    truth = _truth(3000)
    plan = plan_set_crowd(truth, [SetLabelerSpec("a", preset)], CLASSES, overlap=1, seed=1)
    miss, false_alarm = _rates(plan.annotations, truth, "a")
    assert miss == pytest.approx(SET_PRESETS[preset][0], abs=0.03)
    assert false_alarm == pytest.approx(SET_PRESETS[preset][1], abs=0.015)


def test_the_lazy_labeler_misses_findings_but_rarely_invents_them() -> None:
    lazy_miss, lazy_alarm, _ = SET_PRESETS["lazy"]
    expert_miss, _, _ = SET_PRESETS["expert"]
    assert lazy_miss >= 5 * expert_miss and lazy_alarm <= 0.02


def test_a_spammer_ticks_boxes_whatever_the_image_shows() -> None:
    miss, false_alarm = class_rates(SetLabelerSpec("s", "spammer"), CLASSES)
    np.testing.assert_allclose(1 - miss, false_alarm)  # P(tick | present) == P(tick | absent)


def test_per_class_rates_override_the_preset_for_that_class_only() -> None:
    spec = SetLabelerSpec("a", "expert", class_miss={"3": 0.9}, false_alarm=0.2)
    miss, false_alarm = class_rates(spec, CLASSES)
    assert miss.tolist() == [0.05, 0.05, 0.05, 0.9, 0.05, 0.05]
    assert false_alarm.tolist() == [0.2] * 6
    truth = {t: ["3", "4"] for t in range(2000)}
    plan = plan_set_crowd(truth, [spec], CLASSES, overlap=1, seed=0)
    seen = Counter(c for a in plan.annotations for c in a.labels)
    assert seen["3"] / 2000 == pytest.approx(0.1, abs=0.03)
    assert seen["4"] / 2000 == pytest.approx(0.95, abs=0.02)


def test_rates_for_unknown_classes_or_outside_0_1_are_refused() -> None:
    with pytest.raises(ValueError, match="not in the class list"):
        class_rates(SetLabelerSpec("a", class_miss={"cat": 0.5}), CLASSES)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SetLabelerSpec("a", miss=1.5)
    with pytest.raises(ValueError, match="unknown labeler preset"):
        SetLabelerSpec("a", "noisy")
    with pytest.raises(ValueError, match="not in the class list"):
        plan_set_crowd({0: ["cat"]}, [SetLabelerSpec("a")], CLASSES)


def test_answers_are_sorted_sets_and_an_empty_answer_is_the_empty_tuple() -> None:
    plan = plan_set_crowd(_truth(300), default_set_crowd(5), CLASSES, overlap=3, seed=0)
    assert all(list(a.labels) == sorted(set(a.labels)) for a in plan.annotations)
    assert any(a.labels == () for a in plan.annotations)
    expert = [a for a in plan.annotations if a.labeler.endswith("expert")]
    assert sum(a.labels == () for a in expert) == pytest.approx(100 * len(expert) / 300, rel=0.35)


def test_the_default_crowd_mixes_expert_average_lazy_and_spammer() -> None:
    crowd = default_set_crowd(5)
    assert [s.preset for s in crowd] == ["expert", "average", "lazy", "average", "spammer"]
    assert len({s.name for s in crowd}) == 5


def test_overlap_is_respected_nobody_labels_twice_and_a_second_run_only_tops_up() -> None:
    crowd = default_set_crowd(4)
    plan = plan_set_crowd(_truth(100), crowd, CLASSES, overlap=3, seed=0)
    assert set(Counter(a.item_id for a in plan.annotations).values()) == {3}
    assert len({(a.item_id, a.labeler) for a in plan.annotations}) == len(plan.annotations)
    done = {0: {crowd[0].name, crowd[1].name}, 1: {c.name for c in crowd[:3]}}
    top_up = plan_set_crowd(_truth(2), crowd, CLASSES, overlap=3, seed=0, already_done=done)
    assert [(a.item_id) for a in top_up.annotations] == [0] and top_up.annotations[0].labeler not in done[0]


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    crowd = default_set_crowd(5)
    a = plan_set_crowd(_truth(60), crowd, CLASSES, seed=3)
    b = plan_set_crowd(dict(reversed(list(_truth(60).items()))), crowd, CLASSES, seed=3)
    assert a == b
    assert a != plan_set_crowd(_truth(60), crowd, CLASSES, seed=4)


def test_lead_times_are_lognormal_per_preset_and_grow_with_the_findings_ticked() -> None:
    truth = {t: [] for t in range(2000)} | {t: ["0", "1", "2"] for t in range(2000, 4000)}
    crowd = [SetLabelerSpec("e", "expert", false_alarm=0.0, miss=0.0)]
    plan = plan_set_crowd(truth, crowd, CLASSES, overlap=1, seed=0)
    empty = np.array([a.lead_time_s for a in plan.annotations if a.labels == ()])
    three = np.array([a.lead_time_s for a in plan.annotations if len(a.labels) == 3])
    assert np.median(empty) == pytest.approx(SET_PRESETS["expert"][2], rel=0.1)
    assert np.median(three) / np.median(empty) == pytest.approx(1.75, rel=0.1)
    assert np.std(np.log(empty)) == pytest.approx(0.5, rel=0.1)
    spammer = SetLabelerSpec("s", "spammer")
    assert (
        spammer.median_lead_time_s
        < SetLabelerSpec("x", "lazy").median_lead_time_s
        < crowd[0].median_lead_time_s
    )
