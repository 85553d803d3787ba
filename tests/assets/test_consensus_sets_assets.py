"""consensus_labels and its checks in a multi-label project, materialized on a real label store (SQLite and
PostgreSQL) with a seeded simulated crowd that answers label sets (core/labelstudio/crowd.plan_set_crowd)."""

import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.assets.consensus import ConsensusConfig, consensus_labels
from labeling_assets.assets.label_issues import label_issues
from labeling_assets.assets.labeler_stats import labeler_leaderboard, labeler_stats
from labeling_assets.assets.qa_report import qa_report
from labeling_assets.checks.consensus import build_consensus_checks
from labeling_assets.checks.labeler_stats import labeler_stats_checks
from labeling_assets.core.consensus.multilabel_quality import per_class_f1
from labeling_assets.core.ingest.demo_data import render_digit_grids
from labeling_assets.core.label_sets import NONE_OF_THESE
from labeling_assets.core.labelstudio.crowd import SetLabelerSpec, plan_set_crowd
from labeling_assets.core.labelstudio.review import VOTES_KEY
from labeling_assets.core.store.human_loop import record_adjudications
from labeling_assets.core.store.queries import load_quality_inputs
from labeling_assets.core.store.review_queue import review_payloads
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    items_table,
    labelers_table,
    latest_consensus_query,
    review_requests_table,
    utcnow,
)
from labeling_assets.core.store.schema import (
    labeler_stats_table as stats_table,
)
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

CLASSES = ["effusion", "mass", "nodule", "pneumonia", "fibrosis"]
PREVALENCE = (0.35, 0.2, 0.12, 0.06, 0.03)
START = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)


def _seed_items(store: LabelStore, n: int, *, gold_every: int = 5, seed: int = 0) -> dict[str, list[str]]:
    """Active items with a known true set (every ``gold_every``-th one also hidden gold); item_id -> true set."""
    rng = np.random.default_rng(seed)
    truth: dict[str, list[str]] = {}
    rows = []
    for index in range(n):
        item_id = hashlib.sha256(f"scan-{index}".encode()).hexdigest()
        present = sorted(c for c, p in zip(CLASSES, PREVALENCE, strict=True) if rng.random() < p)
        truth[item_id] = present
        rows.append(
            {
                "item_id": item_id,
                "uri": f"/nowhere/scan-{index}.png",
                "source_path": f"scan-{index}.png",
                "width": 32,
                "height": 32,
                "n_bytes": 100,
                "ingested_at": utcnow(),
                "status": "active",
                "gold_label": present if index % gold_every == 0 else None,
            }  # fmt: skip
        )
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    return truth


def _insert(store: LabelStore, votes: Sequence[tuple[str, str, Any]], *, first_id: int = 1) -> None:
    """(item_id, labeler_id, label as stored) as annotation rows; the label is stored exactly as given."""
    rows = []
    for n, (item_id, labeler_id, label) in enumerate(votes):
        stamp = START + dt.timedelta(minutes=n)
        rows.append(
            {
                "ls_annotation_id": first_id + n,
                "version": 1,
                "item_id": item_id,
                "labeler_id": labeler_id,
                "label": label,
                "lead_time_s": 8.0,
                "created_at": stamp,
                "updated_at": stamp,
                "synced_at": utcnow(),
                "deleted": False,
                "content_hash": f"h{first_id + n}",
            }  # fmt: skip
        )
    with store.begin() as conn:
        conn.execute(annotations_table.insert(), rows)


def _seed_crowd(store: LabelStore, truth: dict[str, list[str]], crowd: Sequence[SetLabelerSpec]) -> None:
    plan = plan_set_crowd(truth, crowd, CLASSES, overlap=3, seed=0)
    _insert(store, [(str(a.item_id), a.labeler, list(a.labels)) for a in plan.annotations])


def _run(
    store: LabelStore, tmp_path: Path, config: ConsensusConfig | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [consensus_labels, *build_consensus_checks()],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "project": ProjectSettings(data_dir=str(tmp_path), classes=CLASSES, task_type="multi_label"),
        },
        instance=dg.DagsterInstance.ephemeral(),
        run_config=dg.RunConfig({"consensus_labels": config or ConsensusConfig()}),
        raise_on_error=False,
    )


CLEAN_CROWD = [SetLabelerSpec("expert", "expert"), SetLabelerSpec("average_1"), SetLabelerSpec("average_2")]


@pytest.mark.slow
def test_multi_label_consensus_stores_sorted_sets_and_per_class_marginals_and_its_checks_pass(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 150)
    _seed_crowd(store, truth, CLEAN_CROWD)
    ids = sorted(truth)
    # Bad input is skipped and counted, never guessed at; the annotation rows stay stored.
    _insert(
        store,
        [
            (ids[0], "odd", "mass"),
            (ids[1], "odd", ["mass", "cow"]),
            (ids[2], "odd", ["None of these", "mass"]),
        ],
        first_id=50_000,
    )

    result = _run(store, tmp_path)
    assert result.success
    rows = {r["item_id"]: r for r in store.fetch(latest_consensus_query())}
    assert set(rows) == set(truth)
    for row in rows.values():
        probs, label = row["probabilities"], row["label"]
        assert isinstance(label, list) and label == sorted(label) and set(label) <= set(CLASSES)
        assert set(probs) == set(CLASSES) and all(0.0 <= p <= 1.0 for p in probs.values())
        assert label == sorted(c for c, p in probs.items() if p > 0.5)  # the set at the default thresholds
        assert row["confidence"] == pytest.approx(np.prod([max(p, 1 - p) for p in probs.values()]), abs=1e-5)
        assert row["method"] == "dawid_skene_shared"
    gold = {
        r["item_id"]: r["gold_label"]
        for r in store.fetch(sa.select(items_table).where(items_table.c.gold_label.is_not(None)))
    }
    assert all(rows[i]["label"] == g and rows[i]["confidence"] == pytest.approx(1.0) for i, g in gold.items())
    scores = per_class_f1({i: r["label"] for i, r in rows.items()}, truth, CLASSES).set_index("class")
    assert scores.loc["micro", "f1"] > 0.9

    meta = result.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["task_type"].value == "multi_label" and meta["method"].value == "dawid_skene_shared"
    skipped = meta["skipped_votes"].value
    assert (skipped["not_a_set"], skipped["class_not_in_project"], skipped["none_with_classes"]) == (1, 1, 1)
    assert set(meta["fleiss_kappa_per_class"].value) == set(CLASSES)
    assert 0.3 < meta["krippendorff_alpha_masi"].value < 0.9  # measured 0.49: false alarms split empty sets
    assert (
        "| effusion |" in meta["per_class"].value
        and "data:image/png;base64," in meta["class_distribution_plot"].value
    )
    assert sum(meta["class_distribution"].value.values()) == sum(len(r["label"]) for r in rows.values())
    with store.begin() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(annotations_table)).scalar_one()
    assert stored == len(truth) * 3 + 3
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert all(e.passed for e in checks.values()), {k: e.metadata for k, e in checks.items() if not e.passed}
    assert checks["consensus_fleiss_kappa_above_threshold"].metadata["items"].value == len(truth)


@pytest.mark.slow
def test_rerunning_multi_label_consensus_writes_nothing_new_and_unsure_sets_go_back_for_more_labelers(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 60, gold_every=1000)  # no gold: nothing is clamped to certainty
    crowd = [
        SetLabelerSpec("expert", "expert"),
        SetLabelerSpec("lazy", "lazy"),
        SetLabelerSpec("spammer", "spammer"),
    ]
    _seed_crowd(store, truth, crowd)

    first = _run(store, tmp_path, ConsensusConfig(method="majority", low_confidence_threshold=0.9))
    assert first.success
    meta = first.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["new_versions_written"].value == 60
    low = meta["low_confidence_items"].value
    assert 0 < low < 60
    requests = store.fetch(
        sa.select(review_requests_table).where(review_requests_table.c.resolved_at.is_(None))
    )
    assert len(requests) == low and all(
        "confidence" in r["reason"] and r["source"] == "consensus" for r in requests
    )

    again = _run(store, tmp_path, ConsensusConfig(method="majority", low_confidence_threshold=0.9))
    assert (
        again.asset_materializations_for_node("consensus_labels")[0].metadata["new_versions_written"].value
        == 0
    )


def test_a_single_label_method_in_a_multi_label_project_fails_and_names_the_set_methods(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 20)
    _seed_crowd(store, truth, CLEAN_CROWD)
    result = _run(store, tmp_path, ConsensusConfig(method="crowdlab"))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "single-label only" in str(failure.step_failure_data.error) and "dawid_skene_shared" in str(
        failure.step_failure_data.error
    )


@pytest.mark.slow
def test_per_class_thresholds_from_the_run_config_decide_the_stored_sets(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 40, gold_every=1000)
    _seed_crowd(store, truth, CLEAN_CROWD)
    assert _run(
        store, tmp_path, ConsensusConfig(method="majority", class_thresholds={"effusion": 0.99})
    ).success
    rows = store.fetch(latest_consensus_query())
    assert rows and all("effusion" not in r["label"] or r["probabilities"]["effusion"] > 0.99 for r in rows)
    assert any(r["probabilities"]["effusion"] > 0.5 and "effusion" not in r["label"] for r in rows)


# --- labeler_stats, its checks and the leaderboard on label sets ----------------------------------------------


@pytest.mark.slow
def test_labeler_stats_on_sets_judge_findings_so_the_lazy_labeler_and_the_spammer_fail_and_the_average_one_passes(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 300, gold_every=2)
    crowd = [
        SetLabelerSpec("expert", "expert"),
        SetLabelerSpec("average", "average"),
        SetLabelerSpec("lazy", "lazy"),
        SetLabelerSpec("spammer", "spammer"),
    ]
    _seed_crowd(store, truth, crowd)
    instance = dg.DagsterInstance.ephemeral()
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "project": ProjectSettings(data_dir=str(tmp_path), classes=CLASSES, task_type="multi_label"),
    }
    assert dg.materialize([consensus_labels], resources=resources, instance=instance).success
    names = [c.name for c in crowd]
    instance.add_dynamic_partitions("labelers", names)
    span = {"dagster/asset_partition_range_start": names[0], "dagster/asset_partition_range_end": names[-1]}
    result = dg.materialize(
        [labeler_stats, *labeler_stats_checks], resources=resources, instance=instance, tags=span
    )
    assert result.success
    meta = result.asset_materializations_for_node("labeler_stats")[0].metadata
    exact = meta["exact_set_gold_accuracy"].value
    assert exact["expert"] > exact["average"] > exact["spammer"] and exact["expert"] > exact["lazy"]
    assert "| lazy | effusion |" in meta["gold_per_class"].value
    # Findings, not whole sets: the average labeler (misses 15%) is kept, the lazy one (misses half) is not.
    assert sorted(meta["auto_paused"].value) == ["lazy", "spammer"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert sorted(checks["labeler_gold_accuracy_at_least_0_8"].metadata["sure_to_be_bad"].value) == [
        "lazy",
        "spammer",
    ]
    # One labeler's check says which rate it judged: the lazy labeler fails on findings, not on "gold accuracy".
    lazy = dg.materialize(
        [labeler_stats, *labeler_stats_checks], resources=resources, instance=instance, partition_key="lazy"
    )
    reason = next(
        e.metadata["reason"].value
        for e in lazy.get_asset_check_evaluations()
        if e.check_name == "labeler_gold_accuracy_at_least_0_8"
    )
    assert reason.startswith("sensitivity on gold (findings ticked) ") and "entirely below 0.8" in reason

    rows = {
        r["labeler_id"]: r for r in store.fetch(sa.select(stats_table).where(stats_table.c.window == "all"))
    }
    assert sum(rows[n]["n_labels"] for n in names) == 900  # 300 items x 3 labelers: every set vote counted
    assert (
        rows["lazy"]["class_distribution"]["effusion"]
        < 0.7 * rows["expert"]["class_distribution"]["effusion"]
    )
    assert rows["expert"]["kappa_vs_consensus"] > 0.8 > rows["spammer"]["kappa_vs_consensus"]

    board = dg.materialize([labeler_leaderboard], resources=resources, instance=instance)
    table = board.asset_materializations_for_node("labeler_leaderboard")[0].metadata["leaderboard"].value
    assert table.index("| expert |") < table.index("| lazy |") and table.index("| expert |") < table.index(
        "| spammer |"
    )
    assert "avoids" in table.split("| lazy |")[1].split("\n")[0]  # the findings the lazy labeler skips
    # The interval beside exact-set accuracy is of another number (the gate's): both are named, with the gate's n.
    assert "| exact-set gold accuracy | gold gate (worse of sens./spec.), 95% CI |" in table
    lazy = table.split("| lazy |")[1].split("\n")[0]
    assert re.search(r"\| 0\.\d\d of \d+ \(0\.\d\d - [01]\.\d\d\) \|", lazy), lazy


@pytest.mark.slow
def test_label_issues_flag_consensus_sets_that_miss_the_digits_on_the_image(
    store: LabelStore, tmp_path: Path
) -> None:
    demo = render_digit_grids(tmp_path / "grids", n_images=200)
    files = pd.read_csv(demo.labels_csv)
    classes = list(demo.classes)
    rows, votes = [], []
    rng = np.random.default_rng(0)
    crowded = [n for n, v in enumerate(files["label"]) if len(json.loads(v)) >= 2]
    planted = {
        hashlib.sha256(f"grid-{n}".encode()).hexdigest() for n in rng.choice(crowded, 8, replace=False)
    }
    for n, (name, label) in enumerate(zip(files["filename"], files["label"], strict=True)):
        item_id = hashlib.sha256(f"grid-{n}".encode()).hexdigest()
        rows.append({"item_id": item_id, "uri": str(demo.folder / name), "source_path": name, "width": 64,
                     "height": 64, "n_bytes": 1, "ingested_at": utcnow(), "status": "active"})  # fmt: skip
        answer = (
            [] if item_id in planted else json.loads(label)
        )  # both labelers miss every digit of a planted grid
        votes += [(item_id, "ann", answer), (item_id, "bob", answer)]
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    _insert(store, votes)
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "project": ProjectSettings(data_dir=str(tmp_path), classes=classes, task_type="multi_label"),
    }
    result = dg.materialize(
        [consensus_labels, label_issues],
        resources=resources,
        run_config=dg.RunConfig({"consensus_labels": ConsensusConfig(method="majority")}),
    )
    assert result.success
    meta = result.asset_materializations_for_node("label_issues")[0].metadata
    assert meta["items"].value == 200 and "per class" in meta["probability_source"].value
    requests = store.fetch(
        sa.select(review_requests_table).where(review_requests_table.c.source == "label_issues")
    )
    flagged = {r["item_id"] for r in requests}
    assert len(flagged & planted) >= 6  # measured 7 of 8 (a linear pixel model on 2x2 grids: a weak baseline)
    # The expert reads the sets in words, not as Python lists.
    assert all("consensus none of these but" in r["reason"] for r in requests if r["item_id"] in planted)
    assert not any("[" in r["reason"] for r in requests)
    # The thumbnail table shows sets in words too: "None of these" for the empty consensus, no ['mass'] reprs.
    top = meta["top_issues"].value.split("data:image/png;base64,")
    assert "| None of these" in meta["top_issues"].value and not any(
        "['" in cell or "[]" in cell for cell in top
    )


@pytest.mark.slow
def test_the_qa_report_of_a_multi_label_project_scores_exact_sets_and_renders(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 60, gold_every=2)
    crowd = [
        SetLabelerSpec("expert", "expert"),
        SetLabelerSpec("average", "average"),
        SetLabelerSpec("spammer", "spammer"),
    ]
    _seed_crowd(store, truth, crowd)
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "project": ProjectSettings(data_dir=str(tmp_path), classes=CLASSES, task_type="multi_label"),
    }
    result = dg.materialize([consensus_labels, qa_report], resources=resources)
    assert result.success
    meta = result.asset_materializations_for_node("qa_report")[0].metadata
    assert {"gold_accuracy", "class_drift"} <= set(meta["charts"].value)
    page = Path(meta["report"].value).read_text()
    tables = pd.read_html(io.StringIO(page), match="exact-set accuracy")
    table = next(t for t in tables if "labeler_id" in t.columns).set_index("labeler_id")
    assert table.loc["expert", "exact-set accuracy"] > table.loc["spammer", "exact-set accuracy"]
    assert table.loc["expert", "gold_labels"] > 10  # set answers are compared with gold sets, not dropped
    # Beside exact sets, what the labeler gate judges: findings ticked and absent classes left unticked.
    expert, spammer = table.loc["expert"], table.loc["spammer"]
    assert expert["sensitivity"] > 0.8 and spammer["specificity"] < expert["specificity"]
    assert "<title>QA report: " in page and "Exact-set accuracy on hidden gold items" in page
    assert "product over classes of max(p, 1 - p)" in page  # what a set's consensus confidence is


@pytest.mark.slow
def test_the_consensus_labeler_table_of_a_multi_label_project_names_labelers_as_people_know_them(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 40)
    _seed_crowd(store, truth, CLEAN_CROWD)
    # What collect records for a Label Studio user: its id and the name people read.
    named = {"labeler_id": "expert", "partition_key": "dr_grey", "first_seen_at": START}
    with store.begin() as conn:
        conn.execute(labelers_table.insert(), [named])
    result = _run(store, tmp_path)
    assert result.success
    table = result.asset_materializations_for_node("consensus_labels")[0].metadata["labeler_quality"].value
    assert "| dr_grey |" in table and "| expert |" not in table and "| average_1 |" in table


def test_the_expert_review_task_of_a_multi_label_item_shows_every_labelers_set(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 10, gold_every=2)
    ids = sorted(truth)
    _insert(
        store, [(ids[0], "ann", ["mass", "effusion"]), (ids[0], "bob", []), (ids[1], "ann", truth[ids[1]])]
    )
    [task] = review_payloads(store, {ids[0]: "split vote"}, CLASSES, tmp_path, task_type="multi_label")
    shown = task["data"][VOTES_KEY]
    assert "effusion, mass" in shown and NONE_OF_THESE in shown and "bob" in shown
    assert review_payloads(store, {ids[0]: "split vote"}, CLASSES, tmp_path)[0]["data"][VOTES_KEY] != shown


@pytest.mark.slow
def test_an_experts_set_overrides_the_crowds_and_counts_as_truth_for_labeler_stats(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 40, gold_every=1000)
    ids = sorted(truth)
    _insert(store, [(i, who, ["mass"]) for i in ids for who in ("ann", "bob")])
    record_adjudications(
        store,
        [
            {
                "item_id": ids[0],
                "label": ["nodule", "effusion"],
                "reviewer_id": "9",
                "reviewer_name": "dr",
                "ls_project_id": 2,
                "ls_task_id": 1,
                "ls_annotation_id": 1,
                "answered_at": utcnow(),
            }
        ],  # fmt: skip
    )
    assert _run(store, tmp_path).success
    rows = {r["item_id"]: r for r in store.fetch(latest_consensus_query())}
    assert (rows[ids[0]]["label"], rows[ids[0]]["method"], rows[ids[0]]["confidence"]) == (
        ["effusion", "nodule"],
        "adjudicated",
        1.0,
    )
    assert rows[ids[0]]["agreement"] == 0.0 and rows[ids[1]]["label"] == ["mass"]
    inputs = load_quality_inputs(store, CLASSES, task_type="multi_label")
    assert inputs.gold[ids[0]] == ["effusion", "nodule"]  # the expert's set is truth for labeler statistics


@pytest.mark.slow
def test_removing_a_class_retracts_every_set_vote_that_names_it_and_no_consensus_keeps_it(
    store: LabelStore, tmp_path: Path
) -> None:
    truth = _seed_items(store, 40, gold_every=1000)
    ids = sorted(truth)
    _insert(store, [(i, who, ["effusion", "mass"] if n < 5 else ["effusion"]) for n, i in enumerate(ids)
                    for who in ("ann", "bob")])  # fmt: skip
    assert _run(store, tmp_path).success
    fewer = [c for c in CLASSES if c != "mass"]
    result = dg.materialize(
        [consensus_labels],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "project": ProjectSettings(data_dir=str(tmp_path), classes=fewer, task_type="multi_label"),
        },
    )
    assert result.success
    meta = result.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["votes_retracted_now"].value == {"class_removed": 10}  # 5 items x 2 labelers named "mass"
    assert meta["skipped_votes"].value["class_not_in_project"] == 10
    rows = store.fetch(latest_consensus_query())
    assert len(rows) == 35 and all("mass" not in r["label"] for r in rows)  # 5 items lost their live votes


def test_a_per_class_rate_without_gold_evidence_says_why_instead_of_a_bare_dash() -> None:
    from labeling_assets.core.tasks import task_kind

    votes = pd.DataFrame(
        [
            {"item_id": "a", "labeler_id": "7", "label": ["mass"]},
            {"item_id": "b", "labeler_id": "7", "label": []},
        ]
    )
    truth = pd.Series({"a": ["mass"], "b": ["mass"]}, dtype=object)
    table = task_kind("multi_label").gold_report(votes, truth, ["mass", "nodule"], {"7": "ann"})["gold_per_class"]
    mass = next(line for line in table.splitlines() if line.startswith("| ann | mass |"))
    nodule = next(line for line in table.splitlines() if line.startswith("| ann | nodule |"))
    assert "0.50 (" in mass and "n/a (all of their gold items have it)" in mass  # sensitivity 1 of 2
    assert "n/a (none of their gold items has it)" in nodule and "1.00 (" in nodule
