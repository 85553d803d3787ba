"""consensus_labels, labeler_stats, labeler_leaderboard, label_issues and their checks, materialized on a real
label store (SQLite and PostgreSQL) filled with a seeded simulated crowd (core/crowd.py) on the demo digits."""

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.assets.consensus import ConsensusConfig, consensus_labels
from labeling_assets.assets.label_issues import label_issues
from labeling_assets.assets.labeler_stats import labeler_leaderboard, labeler_stats
from labeling_assets.checks.consensus import build_consensus_checks
from labeling_assets.checks.labeler_stats import labeler_stats_checks
from labeling_assets.core.ingest.demo_data import render_digits
from labeling_assets.core.labelstudio.crowd import LabelerSpec, plan_crowd
from labeling_assets.core.store.human_loop import pause_history
from labeling_assets.core.store.queries import consensus_frame
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    items_table,
    latest_consensus_query,
    review_requests_table,
    utcnow,
)
from labeling_assets.core.store.schema import labeler_stats_table as stats_table
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

CLASSES = [str(d) for d in range(10)]
START = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
CROWD = [
    LabelerSpec("expert", "expert"),
    LabelerSpec("average_1", "average"),
    LabelerSpec("average_2", "average"),
    LabelerSpec("spammer", "spammer", median_lead_time_s=1.0),  # clicks through: also far too fast
    LabelerSpec("biased", "biased", biased_toward="0"),
]


def _seed_items(store: LabelStore, folder: Path, n: int, *, gold_every: int = 5) -> dict[str, str]:
    """Demo digits as active items (every ``gold_every``-th one a hidden gold item); item_id -> true class."""
    demo = render_digits(folder, limit=n)
    truth_by_file = dict(line.split(",") for line in demo.labels_csv.read_text().split()[1:])
    truth: dict[str, str] = {}
    rows = []
    for index, (name, label) in enumerate(sorted(truth_by_file.items())):
        data = (folder / name).read_bytes()
        item_id = hashlib.sha256(data).hexdigest()
        if item_id in truth:  # identical scans are one item
            continue
        truth[item_id] = label
        rows.append(
            {
                "item_id": item_id,
                "uri": str(folder / name),
                "source_path": name,
                "width": 32,
                "height": 32,
                "n_bytes": len(data),
                "ingested_at": utcnow(),
                "status": "active",
                "gold_label": label if index % gold_every == 0 else None,
            }
        )
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    return truth


def _insert_votes(
    store: LabelStore, votes: Sequence[tuple[str, str, Any, float]], *, first_id: int = 1, start: dt.datetime = START
) -> None:
    """(item_id, labeler_id, label, lead_time_s) as Label Studio annotations (labels as LS's one-element lists)."""
    rows = []
    for n, (item_id, labeler_id, label, lead_time) in enumerate(votes):
        stamp = start + dt.timedelta(hours=n // 50, minutes=n % 50)
        rows.append(
            {
                "ls_annotation_id": first_id + n,
                "version": 1,
                "item_id": item_id,
                "labeler_id": labeler_id,
                "label": [label] if isinstance(label, str) else label,
                "lead_time_s": lead_time,
                "created_at": stamp,
                "updated_at": stamp,
                "synced_at": utcnow(),
                "deleted": False,
                "content_hash": f"h{first_id + n}",
            }
        )
    with store.begin() as conn:
        conn.execute(annotations_table.insert(), rows)


def _seed_crowd(
    store: LabelStore,
    truth: dict[str, str],
    *,
    overlap: int = 3,
    seed: int = 0,
    crowd: Sequence[LabelerSpec] = CROWD,
) -> None:
    plan = plan_crowd(truth, crowd, CLASSES, overlap=overlap, seed=seed)
    _insert_votes(store, [(a.item_id, a.labeler, a.label, a.lead_time_s) for a in plan.annotations])


def _resources(store: LabelStore, tmp_path: Path) -> dict[str, Any]:
    return {
        "label_store": LabelStoreResource(url=store.url),
        "project": ProjectSettings(data_dir=str(tmp_path)),
    }


def _run(
    assets: list[Any], store: LabelStore, tmp_path: Path, instance: dg.DagsterInstance, **kwargs: Any
) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, resources=_resources(store, tmp_path), instance=instance, **kwargs)


def _consensus(config: ConsensusConfig | None = None) -> dict[str, Any]:
    return {"run_config": dg.RunConfig({"consensus_labels": config or ConsensusConfig()})}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _accuracy(store: LabelStore, truth: dict[str, str]) -> float:
    frame = consensus_frame(store)
    return float((frame["label"] == frame["item_id"].map(truth)).mean())


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def demo_folder(tmp_path: Path) -> Path:
    return tmp_path / "digits"


# --- consensus_labels -------------------------------------------------------------------------------


@pytest.mark.slow
def test_consensus_labels_versions_one_row_per_eligible_item_and_its_checks_pass(
    store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    truth = _seed_items(store, demo_folder, 120)
    _seed_crowd(store, truth, crowd=CROWD[:3])  # a clean crowd: expert and two average labelers
    ids = sorted(truth)
    lonely, quarantined = ids[0], ids[1]
    # One item with a single annotator (waits), one quarantined item (never gets consensus).
    extra = "e" * 64
    with store.begin() as conn:
        conn.execute(items_table.update().where(items_table.c.item_id == quarantined).values(status="quarantined"))
        row = conn.execute(sa.select(items_table).where(items_table.c.item_id == lonely)).mappings().one()
        conn.execute(items_table.insert().values({**row, "item_id": extra, "source_path": "lonely.png"}))
    _insert_votes(store, [(extra, "expert", "3", 5.0)], first_id=10_000)
    # Bad input is skipped and counted, never guessed at: two classes at once, a class not in the project.
    _insert_votes(store, [(ids[2], "odd", ["3", "5"], 5.0), (ids[3], "odd", "cow", 5.0)], first_id=20_000)

    result = _run([consensus_labels, *build_consensus_checks()], store, tmp_path, instance, **_consensus())
    assert result.success
    frame = consensus_frame(store)
    assert extra not in set(frame["item_id"]) and quarantined not in set(frame["item_id"])
    assert len(frame) == len(truth) - 1 and (frame["version"] == 1).all()
    assert set(frame["label"]) <= set(CLASSES)
    assert _accuracy(store, truth) > 0.85
    # The Dawid-Skene posterior is stored per item (training's soft targets); its argmax is the label.
    for row in store.fetch(latest_consensus_query()):
        probs = row["probabilities"]
        assert set(probs) == set(CLASSES) and sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert max(probs, key=probs.get) == row["label"]
        assert probs[row["label"]] == pytest.approx(row["confidence"], abs=1e-5)

    meta = result.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["method"].value == "dawid_skene"
    assert meta["coverage"].value == pytest.approx(1.0)
    assert meta["items_waiting_for_annotators"].value == 1
    assert meta["skipped_votes"].value == {
        "not_a_single_class": 1,
        "class_not_in_project": 1,
        "on_quarantined_items": 3,
        "on_superseded_items": 0,
        "on_unknown_items": 0,
    }
    gold = {
        r["item_id"] for r in store.fetch(sa.select(items_table.c.item_id).where(items_table.c.gold_label.is_not(None)))
    }
    assert gold and gold - {quarantined} <= set(frame["item_id"])  # gold items get consensus like any other
    assert 0.55 < meta["fleiss_kappa"].value < 0.9
    assert sum(meta["class_distribution"].value.values()) == len(frame)
    assert "data:image/png;base64," in meta["confidence_histogram"].value
    checks = _checks(result)
    assert set(checks) == {
        "consensus_coverage",
        "consensus_fleiss_kappa_above_threshold",
        "no_consensus_for_quarantined_items",
        "consensus_labels_in_class_list",
    }
    assert all(e.passed for e in checks.values())


@pytest.mark.slow
def test_rerunning_consensus_on_unchanged_annotations_writes_no_new_version_and_an_edit_does(
    store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    truth = _seed_items(store, demo_folder, 40)
    item = sorted(truth)[0]
    wrong = str((int(truth[item]) + 1) % 10)
    _insert_votes(store, [(i, f"u{j}", truth[i], 5.0) for i in truth for j in range(2)])
    config = _consensus(ConsensusConfig(method="majority"))
    _run([consensus_labels], store, tmp_path, instance, **config)
    # Rows written before schema migration 3 have no probabilities: a re-run fills them in place.
    with store.begin() as conn:
        conn.execute(consensus_table.update().values(probabilities=None))
    again = _run([consensus_labels], store, tmp_path, instance, **config)
    assert (
        again.asset_materializations_for_node("consensus_labels")[0].metadata["new_versions_written"].value
        == 0
    )
    rows = store.fetch(latest_consensus_query())
    assert len(rows) == len(truth) and all(r["version"] == 1 for r in rows)
    assert all(r["probabilities"] == {c: (1.0 if c == r["label"] else 0.0) for c in CLASSES} for r in rows)

    # u0 and u1 both change their answer on one item: a new annotation version each (append-only).
    with store.begin() as conn:
        for labeler, ls_id in (("u0", 1), ("u1", 2)):
            conn.execute(
                annotations_table.insert().values(
                    ls_annotation_id=ls_id,
                    version=2,
                    item_id=item,
                    labeler_id=labeler,
                    label=[wrong],
                    lead_time_s=5.0,
                    created_at=START,
                    updated_at=START + dt.timedelta(days=1),
                    synced_at=utcnow(),
                    supersedes=None,
                    deleted=False,
                    content_hash=f"edit{ls_id}",
                )
            )
    _run([consensus_labels], store, tmp_path, instance, **config)
    latest = consensus_frame(store).set_index("item_id")
    assert latest.loc[item, "label"] == wrong and latest.loc[item, "version"] == 2
    assert (latest.drop(index=item)["version"] == 1).all()


@pytest.mark.slow
def test_dawid_skene_beats_majority_on_a_crowd_with_a_spammer_and_a_biased_labeler(
    sqlite_store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    truth = _seed_items(sqlite_store, demo_folder, 400)
    _seed_crowd(sqlite_store, truth, seed=3)
    _run(
        [consensus_labels], sqlite_store, tmp_path, instance, **_consensus(ConsensusConfig(method="majority"))
    )
    majority = _accuracy(sqlite_store, truth)
    _run(
        [consensus_labels],
        sqlite_store,
        tmp_path,
        instance,
        **_consensus(ConsensusConfig(method="dawid_skene")),
    )
    dawid_skene = _accuracy(sqlite_store, truth)
    assert dawid_skene > majority + 0.02, (dawid_skene, majority)


@pytest.mark.slow
def test_low_confidence_items_are_sent_back_once_and_experts_get_the_saturated_ones(
    store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    truth = _seed_items(store, demo_folder, 12)
    ids = sorted(truth)
    split, saturated = ids[0], ids[1]
    votes = [(i, f"u{j}", truth[i], 5.0) for i in ids[2:] for j in range(3)]
    votes += [(split, "u0", "1", 5.0), (split, "u1", "2", 5.0)]  # 50/50: more annotators
    votes += [(saturated, f"u{j}", str(j % 2), 5.0) for j in range(4)]  # still split at the cap: expert
    _insert_votes(store, votes)
    config = _consensus(ConsensusConfig(method="majority", low_confidence_threshold=0.6, max_annotators=4))
    first = _run([consensus_labels], store, tmp_path, instance, **config)
    _run([consensus_labels], store, tmp_path, instance, **config)
    requests = store.fetch(sa.select(review_requests_table).order_by(review_requests_table.c.item_id))
    assert {(r["item_id"], r["action"]) for r in requests} == {
        (split, "more_annotators"),
        (saturated, "expert_review"),
    }
    assert all(r["source"] == "consensus" and "confidence 0.50" in r["reason"] for r in requests)
    meta = first.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["review_requests_new"].value == {"more_annotators": 1, "expert_review": 1}

    # A third annotator settles the split item: its request is resolved, the other stays open.
    _insert_votes(store, [(split, "u2", "1", 5.0)], first_id=1000)
    _run([consensus_labels], store, tmp_path, instance, **config)
    open_items = {
        r["item_id"]
        for r in store.fetch(sa.select(review_requests_table).where(review_requests_table.c.resolved_at.is_(None)))
    }
    assert open_items == {saturated}


@pytest.mark.slow
def test_consensus_checks_fail_on_planted_violations(
    sqlite_store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    store = sqlite_store
    truth = _seed_items(store, demo_folder, 60)
    ids = sorted(truth)
    # Two spammers only: agreement at chance level.
    spammers = [LabelerSpec("s1", "spammer"), LabelerSpec("s2", "spammer")]
    plan = plan_crowd({i: truth[i] for i in ids[:50]}, spammers, CLASSES, overlap=2, seed=1)
    _insert_votes(store, [(a.item_id, a.labeler, a.label, 5.0) for a in plan.annotations])
    checks = build_consensus_checks(min_fleiss_kappa=0.4)
    result = _run([consensus_labels, *checks], store, tmp_path, instance, **_consensus())
    evaluations = _checks(result)
    assert not evaluations["consensus_fleiss_kappa_above_threshold"].passed
    assert evaluations["consensus_fleiss_kappa_above_threshold"].severity == dg.AssetCheckSeverity.WARN
    assert evaluations["consensus_coverage"].passed

    # After the run: new overlapping annotations arrive and an item with consensus is quarantined.
    _insert_votes(store, [(i, f"late{j}", truth[i], 5.0) for i in ids[50:] for j in range(2)], first_id=5000)
    with store.begin() as conn:
        conn.execute(items_table.update().where(items_table.c.item_id == ids[0]).values(status="quarantined"))
    only_checks = _run(
        [consensus_labels, *checks],
        store,
        tmp_path,
        instance,
        selection=dg.AssetSelection.checks(*checks),
        raise_on_error=False,  # the blocking quarantine check fails the run: that is what it is for
    )
    evaluations = _checks(only_checks)
    assert not evaluations["consensus_coverage"].passed
    assert evaluations["consensus_coverage"].metadata["items_without_consensus"].value == 10
    assert not evaluations["no_consensus_for_quarantined_items"].passed
    assert evaluations["no_consensus_for_quarantined_items"].metadata["examples"].value == [ids[0]]

    # The next materialization heals both: the new items get labels and the quarantined one loses its row.
    healed = _checks(_run([consensus_labels, *checks], store, tmp_path, instance, **_consensus()))
    assert healed["consensus_coverage"].passed and healed["no_consensus_for_quarantined_items"].passed


# --- labeler_stats and the leaderboard -----------------------------------------------------------------


@pytest.mark.slow
def test_labeler_stats_give_the_spammer_the_lowest_gold_accuracy_and_flag_it(
    store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    truth = _seed_items(store, demo_folder, 250, gold_every=4)
    _seed_crowd(store, truth, seed=5)
    _run([consensus_labels], store, tmp_path, instance, **_consensus())
    names = [a.name for a in CROWD]
    instance.add_dynamic_partitions("labelers", names)
    gold_accuracy: dict[str, float] = {}
    flags: dict[str, dict[str, bool]] = {}
    for name in names:
        result = _run([labeler_stats, *labeler_stats_checks], store, tmp_path, instance, partition_key=name)
        meta = result.asset_materializations_for_node("labeler_stats")[0].metadata
        gold_accuracy[name] = meta["gold_accuracy"].value
        assert meta["n_gold"].value > 5
        flags[name] = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert min(gold_accuracy, key=gold_accuracy.__getitem__) == "spammer"
    assert gold_accuracy["expert"] > 0.85
    assert flags["spammer"] == {"labeler_gold_accuracy_at_least_0_8": False, "labeler_not_too_fast": False}
    assert flags["expert"] == {"labeler_gold_accuracy_at_least_0_8": True, "labeler_not_too_fast": True}
    assert not flags["biased"]["labeler_gold_accuracy_at_least_0_8"]

    rows = store.fetch(
        sa.select(stats_table).where(stats_table.c.labeler_id == "biased", stats_table.c.window == "all")
    )
    assert len(rows) == 1 and rows[0]["n_labels"] > 100
    assert rows[0]["class_distribution"]["0"] > rows[0]["class_distribution"]["5"] * 2  # biased toward "0"

    board = _run([labeler_leaderboard], store, tmp_path, instance).asset_materializations_for_node(
        "labeler_leaderboard"
    )[0]
    table = board.metadata["leaderboard"].value
    assert table.index("| spammer |") > table.index("| expert |")
    assert board.metadata["too_fast"].value == ["spammer"]
    assert "overuses 0" in table.split("| biased |")[1].split("\n")[0]


@pytest.mark.slow
def test_one_run_over_every_labeler_partition_writes_each_labelers_stats_and_checks_them_together(
    store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    """The daily schedule's run: a partition range over all labelers, the votes read once (single-run backfill)."""
    truth = _seed_items(store, demo_folder, 120, gold_every=4)
    _seed_crowd(store, truth, seed=5)
    _run([consensus_labels], store, tmp_path, instance, **_consensus())
    names = [a.name for a in CROWD]
    instance.add_dynamic_partitions("labelers", names)
    span = {"dagster/asset_partition_range_start": names[0], "dagster/asset_partition_range_end": names[-1]}
    result = _run([labeler_stats, *labeler_stats_checks], store, tmp_path, instance, tags=span)
    materialized = result.asset_materializations_for_node("labeler_stats")
    assert sorted(m.partition for m in materialized) == sorted(names)  # every labeler's partition, one run
    assert materialized[0].metadata["labelers_in_run"].value == len(names)
    all_window = store.fetch(sa.select(stats_table).where(stats_table.c.window == "all"))
    assert sorted(r["labeler_id"] for r in all_window) == sorted(names)
    checks = _checks(result)
    assert "spammer" in checks["labeler_gold_accuracy_at_least_0_8"].metadata["failing_labelers"].value
    assert "expert" not in checks["labeler_not_too_fast"].metadata["failing_labelers"].value

    # The spammer's gold gate is sure to fail: paused automatically in the store (actor "gate"), once only.
    assert "spammer" in materialized[0].metadata["auto_paused"].value
    assert "expert" not in materialized[0].metadata["auto_paused"].value
    _run([labeler_stats], store, tmp_path, instance, tags=span)
    spam_pauses = [r for r in pause_history(store) if r["labeler_id"] == "spammer"]
    assert [(r["action"], r["actor"]) for r in spam_pauses] == [("pause", "gate")]
    assert "gold accuracy" in spam_pauses[0]["reason"] and "access kept" in spam_pauses[0]["label_studio_effect"]
    # Their next votes (created after the pause) no longer count: consensus is what it was.
    before = consensus_frame(store).set_index("item_id")["label"].to_dict()
    voted = {r["item_id"] for r in store.fetch(sa.select(annotations_table.c.item_id)
                                               .where(annotations_table.c.labeler_id == "spammer"))}  # fmt: skip
    fresh = [i for i in truth if i not in voted][:10]
    rows = [(i, "spammer", "0" if truth[i] != "0" else "1", 1.0) for i in fresh]
    _insert_votes(store, rows, first_id=100_000, start=utcnow() + dt.timedelta(minutes=1))
    after = _run([consensus_labels], store, tmp_path, instance, **_consensus())
    meta = after.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["votes_of_paused_labelers_excluded"].value == len(fresh) == 10
    assert consensus_frame(store).set_index("item_id")["label"].to_dict() == before


@pytest.mark.slow
def test_the_projects_gold_gate_threshold_is_what_the_check_the_leaderboard_and_the_pause_judge_by(
    store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    """One setting for the three: at the class kind's 0.8 the spammer fails, is marked and paused; at 0 nobody is."""
    truth = _seed_items(store, demo_folder, 120, gold_every=4)
    _seed_crowd(store, truth, seed=5)
    _run([consensus_labels], store, tmp_path, instance, **_consensus())
    names = [a.name for a in CROWD]
    instance.add_dynamic_partitions("labelers", names)
    span = {"dagster/asset_partition_range_start": names[0], "dagster/asset_partition_range_end": names[-1]}
    board = _run([labeler_leaderboard], store, tmp_path, instance).asset_materializations_for_node(
        "labeler_leaderboard")[0].metadata  # fmt: skip
    assert board["gold_threshold"].value == 0.8 and "spammer" in board["surely_below_gold_threshold"].value

    lenient = {**_resources(store, tmp_path), "project": ProjectSettings(data_dir=str(tmp_path), gold_gate_threshold=0.0)}
    result = dg.materialize([labeler_stats, *labeler_stats_checks], resources=lenient, instance=instance, tags=span)
    gate = _checks(result)["labeler_gold_accuracy_at_least_0_8"]
    assert gate.passed and gate.metadata["failing_labelers"].value == []
    assert result.asset_materializations_for_node("labeler_stats")[0].metadata["auto_paused"].value == []
    board = dg.materialize([labeler_leaderboard], resources=lenient, instance=instance).asset_materializations_for_node(
        "labeler_leaderboard")[0].metadata  # fmt: skip
    assert board["gold_threshold"].value == 0.0 and board["surely_below_gold_threshold"].value == []


# --- label_issues --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_label_issues_queue_planted_wrong_consensus_labels_for_review(
    store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    truth = _seed_items(store, demo_folder, 300)
    ids = sorted(truth)
    planted = set(ids[::25])  # 12 items whose annotators all agree on a wrong class
    votes = []
    for i in ids:
        label = str((int(truth[i]) + 3) % 10) if i in planted else truth[i]
        votes += [(i, f"u{j}", label, 5.0) for j in range(2)]
    _insert_votes(store, votes)
    _run([consensus_labels], store, tmp_path, instance, **_consensus(ConsensusConfig(method="majority")))
    result = _run([label_issues], store, tmp_path, instance)
    meta = result.asset_materializations_for_node("label_issues")[0].metadata
    requests = store.fetch(sa.select(review_requests_table).where(review_requests_table.c.source == "label_issues"))
    flagged = {r["item_id"] for r in requests}
    # Flagging at random would hit about one planted item; the baseline finds half or more of them
    # (7-10 of 12 across seeds) among a handful of false alarms (a 300-image baseline errs too).
    assert len(flagged & planted) >= 6
    assert len(flagged - planted) <= 12
    assert meta["issues"].value == len(flagged)
    assert meta["top_issues"].value.count("data:image/png;base64,") == min(12, len(flagged))
    # Re-running adds no duplicate requests.
    _run([label_issues], store, tmp_path, instance)
    assert len(
        store.fetch(sa.select(review_requests_table).where(review_requests_table.c.source == "label_issues"))
    ) == len(requests)


@pytest.mark.slow
def test_crowdlab_consensus_uses_the_cross_validated_pixel_baseline(
    sqlite_store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    truth = _seed_items(sqlite_store, demo_folder, 200)
    _seed_crowd(sqlite_store, truth, overlap=2, seed=2)
    _run(
        [consensus_labels], sqlite_store, tmp_path, instance, **_consensus(ConsensusConfig(method="majority"))
    )
    majority = _accuracy(sqlite_store, truth)
    result = _run(
        [consensus_labels], sqlite_store, tmp_path, instance, **_consensus(ConsensusConfig(method="crowdlab"))
    )
    assert (
        result.asset_materializations_for_node("consensus_labels")[0].metadata["method"].value == "crowdlab"
    )
    assert _accuracy(sqlite_store, truth) > majority


def test_consensus_with_no_annotations_reports_zero_items(
    sqlite_store: LabelStore, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    result = _run([consensus_labels], sqlite_store, tmp_path, instance, **_consensus())
    meta = result.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["consensus_items"].value == 0 and meta["votes"].value == 0
    assert consensus_frame(sqlite_store).empty


@pytest.mark.slow
def test_min_annotators_one_labels_single_annotator_items_and_reports_no_kappa(
    sqlite_store: LabelStore, tmp_path: Path, demo_folder: Path, instance: dg.DagsterInstance
) -> None:
    truth = _seed_items(sqlite_store, demo_folder, 10)
    _insert_votes(sqlite_store, [(i, "solo", truth[i], 5.0) for i in truth])
    config = _consensus(ConsensusConfig(min_annotators=1))
    result = _run([consensus_labels, *build_consensus_checks()], sqlite_store, tmp_path, instance, **config)
    meta = result.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["method"].value == "majority"  # auto: one labeler, nothing to learn reliability from
    assert meta["consensus_items"].value == 10 and meta["fleiss_kappa"].value is None
    assert _accuracy(sqlite_store, truth) == 1.0
    checks = _checks(result)
    assert checks["consensus_coverage"].passed
    assert checks["consensus_fleiss_kappa_above_threshold"].passed  # unknown agreement is not low agreement
    assert "agreement unknown" in checks["consensus_fleiss_kappa_above_threshold"].metadata["note"].value
