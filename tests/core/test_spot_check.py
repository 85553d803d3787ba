"""Spot-check review without a server: the seeded sample, the verdicts read back for every kind, the acceptance
rate and its gate, and what the store keeps (core/consensus/spot_check.py, core/labelstudio/spot_check.py,
core/store/spot_checks.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree

import pandas as pd
import pytest

from labeling_assets.core.consensus.auto_pause import auto_pauses
from labeling_assets.core.consensus.gates import gold_gate
from labeling_assets.core.consensus.spot_check import (
    ACCEPT,
    FIX,
    REJECT,
    SamplingRates,
    acceptance_counts,
    acceptance_gate,
    draw,
    labeler_rate,
    pick_sample,
)
from labeling_assets.core.labelstudio.spot_check import (
    LABELER_VERSION,
    VERDICT_NAME,
    read_verdict,
    spot_check_config,
    spot_check_task,
    spot_check_title,
)
from labeling_assets.core.store.human_loop import adjudicated_labels, record_adjudications
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.store.spot_checks import (
    acceptance,
    fix_adjudications,
    read_verdicts,
    record_samples,
    record_verdicts,
    sampled_ids,
    samples,
    verdict_frame,
)
from labeling_assets.core.tasks import KINDS, task_kind
from labeling_assets.core.tasks.kind import ItemMedia
from tests.core.test_task_kinds import CLASSES, _answer, _probs, _same

RATES = {"ann": (0.10, "base rate"), "new": (0.30, "new labeler")}


def _answers(n: int, labeler: str = "ann", start: int = 1000) -> pd.DataFrame:
    return pd.DataFrame({"ls_annotation_id": range(start, start + n), "item_id": [f"i{k}" for k in range(n)],
                         "labeler_id": labeler, "label": "cat"})  # fmt: skip


def test_the_draw_is_a_keyed_hash_of_the_answer_the_same_on_every_run_and_another_under_another_seed() -> None:
    assert draw(0, 17) == draw(0, 17)
    assert 0.0 <= draw(0, 17) < 1.0
    assert draw(0, 17) != draw(1, 17)
    assert len({draw(0, a) for a in range(1000)}) == 1000


def test_each_labeler_is_sampled_at_their_rate_within_tolerance() -> None:
    answers = pd.concat([_answers(4000, "ann"), _answers(4000, "new", start=50_000)], ignore_index=True)
    picks = pick_sample(answers, RATES, seed=7, already=set())
    shares = picks.groupby("labeler_id").size() / 4000
    # Binomial standard error at n = 4000: 0.005 (rate 0.1), 0.007 (rate 0.3); 3 of them either way.
    assert shares["ann"] == pytest.approx(0.10, abs=0.015)
    assert shares["new"] == pytest.approx(0.30, abs=0.022)
    assert (picks["draw"] < picks["rate"]).all()
    assert set(picks.loc[picks["labeler_id"] == "new", "reason"]) == {"new labeler"}


def test_a_rerun_picks_the_same_answers_and_new_answers_never_change_earlier_picks() -> None:
    first = pick_sample(_answers(500), RATES, seed=3, already=set())
    again = pick_sample(_answers(500), RATES, seed=3, already=set())
    assert first.equals(again)
    grown = pick_sample(_answers(1000), RATES, seed=3, already=set())
    assert grown[grown["ls_annotation_id"] < 1500]["ls_annotation_id"].tolist() == first["ls_annotation_id"].tolist()
    later = pick_sample(_answers(1000), RATES, seed=3, already=set(first["ls_annotation_id"]))
    assert set(later["ls_annotation_id"]) == set(grown["ls_annotation_id"]) - set(first["ls_annotation_id"])
    assert pick_sample(_answers(500), RATES, seed=4, already=set())["ls_annotation_id"].tolist() != first[
        "ls_annotation_id"
    ].tolist()


def test_a_labeler_is_sampled_at_the_new_labeler_rate_until_the_gold_interval_clears_the_gate() -> None:
    rates = SamplingRates(rate=0.1, new_labeler_rate=0.3)
    assert labeler_rate(None, rates)[0] == 0.3
    assert "no gold answered" in labeler_rate(None, rates)[1]
    straddles = gold_gate(9, 10, 0.8)  # 0.9 on 10: the interval still holds 0.8
    assert straddles.verdict == "warn" and labeler_rate(straddles, rates)[0] == 0.3
    clear = gold_gate(48, 50, 0.8)
    assert clear.verdict == "pass" and labeler_rate(clear, rates) == (0.1, f"base rate: {clear.reason}")
    assert labeler_rate(gold_gate(2, 20, 0.8), rates)[0] == 0.3  # surely bad: reviewed more, until paused


def test_acceptance_is_the_share_accepted_of_the_newest_verdict_per_answer_a_fix_not_accepted() -> None:
    verdicts = pd.DataFrame(
        [(1, "ann", REJECT), (1, "ann", ACCEPT), (2, "ann", FIX), (3, "ann", ACCEPT), (4, "bob", REJECT)],
        columns=["ls_annotation_id", "labeler_id", "verdict"],
    )
    assert acceptance_counts(verdicts) == {"ann": (2, 3), "bob": (0, 1)}
    assert acceptance_counts(verdicts.iloc[0:0]) == {}
    assert acceptance_gate(2, 20).verdict == "fail" and acceptance_gate(9, 10).verdict == "warn"
    assert acceptance_gate(0, 0).verdict == "no_data"


def test_a_labeler_without_gold_whose_acceptance_is_surely_low_is_paused_and_a_resume_forgets_old_verdicts() -> None:
    created = pd.Timestamp("2026-01-05", tz="UTC")
    verdicts = pd.DataFrame(
        [(n, "spam", ACCEPT if n < 2 else REJECT, created) for n in range(20)]
        + [(100 + n, "good", ACCEPT if n else REJECT, created) for n in range(20)],
        columns=["ls_annotation_id", "labeler_id", "verdict", "answer_created_at"],
    )
    votes = pd.DataFrame(columns=["item_id", "labeler_id", "label", "created_at"])
    gold = pd.Series(dtype=object)
    paused = auto_pauses(votes, gold, ["spam", "good"], {}, verdicts=verdicts, acceptance_threshold=0.8)
    assert [p.labeler_id for p in paused] == ["spam"]
    assert "acceptance rate 2/20" in paused[0].reason
    resumed = {"spam": [(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 6, tzinfo=dt.UTC))]}
    assert auto_pauses(votes, gold, ["spam"], resumed, verdicts=verdicts) == []
    assert auto_pauses(votes, gold, ["spam"], {}, verdicts=None) == []


def _fix_result(kind_name: str, answer: Any) -> list[dict[str, Any]]:
    kind = task_kind(kind_name)
    probs = _probs(kind, 1)
    about = probs if isinstance(probs, dict) else {}
    drawn = kind.answer_result(answer, ItemMedia(about.get("text"), about.get("image_width"), about.get("image_height")))
    assert drawn is not None
    return drawn


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_the_spot_check_config_adds_a_required_verdict_to_the_kinds_own_controls(kind_name: str) -> None:
    kind = task_kind(kind_name)
    crowd = ElementTree.fromstring(kind.label_config(CLASSES))
    config = ElementTree.fromstring(spot_check_config(kind.label_config(CLASSES)))
    shown = next(e for e in config.iter() if str(e.get("value", "")).startswith("$") and e.get("name") != "context")
    verdict = next(e for e in config.iter("Choices") if e.get("name") == VERDICT_NAME)
    assert verdict.get("required") == "true" and verdict.get("toName") == shown.get("name")
    assert [c.get("value") for c in verdict] == [ACCEPT, REJECT, FIX]
    names = {e.get("name") for e in config.iter() if e.get("toName")}
    assert names == {e.get("name") for e in crowd.iter() if e.get("toName")} | {VERDICT_NAME}


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_a_verdict_reads_back_for_every_kind_and_a_fix_in_the_kinds_own_form(kind_name: str) -> None:
    kind = task_kind(kind_name)
    given, fixed = _answer(kind, 0), _answer(kind, 1)
    shown = _fix_result(kind_name, given)  # the labeler's answer, pre-drawn
    verdict = [{"from_name": VERDICT_NAME, "to_name": "x", "type": "choices", "value": {"choices": [ACCEPT]}}]
    assert read_verdict(shown + verdict, kind).verdict == ACCEPT
    rejected = [{**verdict[0], "value": {"choices": [REJECT]}}]
    assert read_verdict(shown + rejected, kind) == read_verdict(rejected, kind)
    assert read_verdict(rejected, kind).verdict == REJECT
    fix = read_verdict(_fix_result(kind_name, fixed) + [{**verdict[0], "value": {"choices": [FIX]}}], kind)
    assert fix.verdict == FIX and _same(fix.answer, fixed), fix
    assert read_verdict(shown, kind).verdict is None  # no verdict: nothing is recorded
    assert read_verdict([{**verdict[0], "value": {"choices": ["maybe"]}}], kind).problem


def test_the_project_title_is_the_labeling_projects_cut_to_label_studios_50_characters() -> None:
    assert spot_check_title("digits") == "digits — spot-check"
    assert len(spot_check_title("x" * 60)) == 50 and spot_check_title("x" * 60).endswith(" — spot-check")


def test_the_task_shows_the_labelers_name_and_their_answer_pre_drawn() -> None:
    drawn = task_kind("single_label").answer_result("dog", ItemMedia())
    task = spot_check_task("i1", "/data/x.png", ls_annotation_id=42, labeler="hl_bob", drawn=drawn, why="draw 0.01")
    assert task["data"]["labeler"] == "hl_bob" and "hl_bob" in task["data"]["context"]
    assert task["data"]["ls_annotation_id"] == 42 and task["data"]["image"] == "/data/x.png"
    assert task["predictions"] == [{"model_version": LABELER_VERSION, "result": drawn}]


def test_samples_and_verdicts_are_stored_and_a_fix_becomes_an_expert_answer(store: LabelStore) -> None:
    picks = pick_sample(_answers(200), {"ann": (0.5, "base rate")}, seed=0, already=set())
    assert record_samples(store, picks, seed=0) == len(picks)
    assert sampled_ids(store) == set(picks["ls_annotation_id"])
    rows = {int(r["ls_annotation_id"]): r for r in samples(store)}
    first, second, third = sorted(rows)[:3]
    kind = task_kind("single_label")

    def annotation(n: int, choice: str, label: str = "cat") -> dict[str, Any]:
        verdict = {"from_name": VERDICT_NAME, "to_name": "image", "type": "choices", "value": {"choices": [choice]}}
        return {"id": n, "completed_by": 9, "result": [*kind.answer_result(label, ItemMedia()), verdict],
                "updated_at": "2026-01-06T10:00:00Z"}  # fmt: skip

    tasks = [
        {"id": 1, "data": {"ls_annotation_id": first}, "annotations": [annotation(501, ACCEPT)]},
        {"id": 2, "data": {"ls_annotation_id": second}, "annotations": [annotation(502, REJECT)]},
        {"id": 3, "data": {"ls_annotation_id": third}, "annotations": [annotation(503, FIX, "dog")]},
        {"id": 4, "data": {"ls_annotation_id": 1}, "annotations": [annotation(504, ACCEPT)]},
    ]
    read, problems = read_verdicts(tasks, 77, None, kind, rows)
    assert [r["verdict"] for r in read] == [ACCEPT, REJECT, FIX] and len(problems) == 1
    fresh = record_verdicts(store, read)
    assert len(fresh) == 3 and record_verdicts(store, read) == []  # a re-read adds nothing
    assert acceptance(store) == {"ann": (1, 3)}
    assert record_adjudications(store, fix_adjudications(fresh)) == 1
    assert adjudicated_labels(store).to_dict() == {rows[third]["item_id"]: "dog"}
    changed, _ = read_verdicts([{**tasks[1], "annotations": [annotation(502, ACCEPT)]}], 77, None, kind, rows)
    assert len(record_verdicts(store, changed)) == 1  # the reviewer changed their mind: a new row
    assert acceptance(store) == {"ann": (2, 3)} and len(verdict_frame(store)) == 4
    assert read_verdicts(tasks, 77, {"5": "someone else"}, kind, rows) == ([], [])  # not a configured reviewer
    own = {**annotation(505, ACCEPT), "completed_by": {"id": "ann"}}  # the labeler accepting their own answer
    assert read_verdicts([{**tasks[0], "annotations": [own]}], 77, None, kind, rows)[0] == []
