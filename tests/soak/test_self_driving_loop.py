"""Soak: the loop runs itself under a real dagster-daemon, through Label Studio and daemon faults.

Nothing in this test launches a run. It drops demo digits into an image source, starts a real Label Studio
and a real ``dagster-daemon`` (the project's dagster.yaml and definitions; only the sensors tick every 5 s
instead of 30-120 s, and the loop's thresholds are small: batches of 20 items, a retrain every 12 new training
items, 40 + 20 images), and plays the crowd: simulated
labelers answer each wave of tasks through Label Studio's API as it appears. Once there is a champion model,
20 new images are dropped into the source, Label Studio is stopped for 30 s and restarted, and when the crowd
labels the new wave the daemon is killed with SIGKILL (with its code server and the runs it launched) and
restarted. One of the new images is planted as issue 26's near-duplicate chain (its hash within 4 bits of a frozen
train item's and of a frozen test item's): it must be held out, and no collect run may fail for it. Then, once the loop is quiet, every promise of issue 13 is checked against Label Studio, the label
store, MLflow and the Dagster instance, and the figures are printed.
"""

import contextlib
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets import lineage
from labeling_assets.core.automation import QUEUE_BATCH_VAR, QUEUE_LOW_WATER_VAR, RETRAIN_MIN_NEW_VAR
from labeling_assets.core.store.dataset_versions import load_manifest
from labeling_assets.core.store.held_out import held_out as held
from labeling_assets.core.store.schema import (
    annotations_table,
    items_table,
    latest_consensus_query,
    prelabels_table,
    source_files_table,
    tasks_table,
)
from labeling_assets.local.crowd_waves import wait_until
from tests.soak.harness import Fault, RunRow, SelfDrivingLoop
from tests.soak.planted_chain import hashed, item_ids_of, plant_chain

FIRST_IMAGES = 40
LATER_IMAGES = 20
SENSOR_INTERVAL_S = 5
THRESHOLDS = {QUEUE_LOW_WATER_VAR: "10", QUEUE_BATCH_VAR: "20", RETRAIN_MIN_NEW_VAR: "12"}
LABEL_STUDIO_DOWN_S = 30
DAEMON_DOWN_S = 5  # from the SIGKILL to the restart
PHASE_TIMEOUT_S = 420  # per phase; about 1-2 minutes each on a quiet 2-core machine
QUIET_S = 15  # no run in flight for this long (three sensor ticks) and nothing left to do: the loop is done
FAULT_MARGIN_S = 90  # a run failing this long after a fault ended is still that fault's (monitoring, timeouts)

pytestmark = [pytest.mark.soak, pytest.mark.labelstudio, pytest.mark.slow, pytest.mark.timeout(1500)]


def test_the_loop_runs_itself_through_label_studio_and_daemon_faults(make_loop: type[SelfDrivingLoop]) -> None:
    started = time.monotonic()
    loop = make_loop(sensor_interval_s=SENSOR_INTERVAL_S, environment=THRESHOLDS)
    with loop.phase("set-up: images, Label Studio, the daemon"):
        loop.add_images(FIRST_IMAGES)
        loop.start_label_studio()
        loop.start_daemon()
        crowd = loop.start_crowd()

    with loop.phase("to the first champion"):
        wait_until("a champion model, trained and promoted by the loop alone", loop.champion, PHASE_TIMEOUT_S, 2)
    dropped_at = time.time()
    new_files = loop.add_images(LATER_IMAGES)  # mid-way: a person drops more images into the source
    with loop.phase("Label Studio down, the new images ingested"):
        loop.label_studio_down(LABEL_STUDIO_DOWN_S)  # meanwhile they are ingested and prelabeled; the queue waits
        # Issue 26's jam, planted before the new items can have votes: one of them bridges a frozen train item and
        # a frozen test item. It must be held out, not fail the near-duplicate check of every later collect run.
        wait_until("the new images ingested", lambda: hashed(loop.store, item_ids_of(loop.store, new_files)), PHASE_TIMEOUT_S, 1)
    chain = plant_chain(loop.store, item_ids_of(loop.store, new_files)[0])

    labeled_before = crowd.log.annotations
    with loop.phase("the crowd labels the new wave, the daemon killed and back"):
        wait_until("the crowd labels the new wave", lambda: crowd.log.annotations > labeled_before, PHASE_TIMEOUT_S, 1)
        with contextlib.suppress(TimeoutError):  # kill the daemon while it runs something, if it does within 20 s
            wait_until("a run executing", lambda: any(r.status == "STARTED" for r in loop.runs()), 20, 0.5)
        killed = loop.kill_daemon()
        time.sleep(DAEMON_DOWN_S)
        loop.start_daemon()
        killed.ended = time.time()

    with loop.phase("until the loop is done and quiet"):
        wait_until("the loop has done everything and is quiet", lambda: quiet(loop, QUIET_S), PHASE_TIMEOUT_S, 2)
    crowd.stop()
    seconds = time.monotonic() - started
    figures = loop.figures()
    print(f"\nsoak: {seconds:.0f} s in all; faults: " + "; ".join(describe_fault(f) for f in loop.faults))
    print("\n".join(f"soak: {line}" for line in figures.lines() + loop.timing_lines()))
    print(f"soak: crowd {crowd.log}")

    runs = loop.runs()
    assert [r for r in runs if r.started_by == "by hand"] == []  # every run: a sensor or a schedule
    # Every file of the source ingested, and every item queued in Label Studio.
    assert figures.source_files == figures.items_ingested == FIRST_IMAGES + LATER_IMAGES
    assert figures.items_unqueued == 0
    # Every annotation Label Studio holds is in the store exactly once (by ls_annotation_id and version).
    assert figures.ls_annotations == figures.stored_annotations > 0
    assert (figures.lost, figures.duplicated) == (0, 0)
    assert_consensus_and_splits_current(loop, held_out={chain["bridge"]})
    assert figures.retrains >= 1 and figures.champion
    assert_prelabels_by_the_champion(loop, new_files, dropped_at)
    assert_failures_only_from_faults_and_recovered(runs, loop.faults)


def quiet(loop: SelfDrivingLoop, seconds: float) -> bool:
    """Nothing in flight for ``seconds``, every item queued and every task labeled, and the store has every
    annotation Label Studio holds."""
    try:
        return _quiet(loop, seconds)
    except sa.exc.OperationalError:  # SQLite busy with a run's write: look again
        return False


def _quiet(loop: SelfDrivingLoop, seconds: float) -> bool:
    runs = loop.runs()
    if any(r.status in ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING") for r in runs):
        return False
    last_end = max((r.ended or r.created for r in runs), default=0.0)
    if time.time() - last_end < seconds or loop.unqueued_items() != 0:
        return False
    if loop.open_tasks() != 0:
        return False
    figures = loop.figures()
    return figures.lost == 0 and figures.ls_annotations == figures.stored_annotations


def assert_consensus_and_splits_current(loop: SelfDrivingLoop, held_out: set[str]) -> None:
    labelers: dict[str, set[str]] = {}
    for row in loop.store.fetch(
        sa.select(annotations_table.c.item_id, annotations_table.c.labeler_id).where(annotations_table.c.deleted.is_(False))
    ):
        labelers.setdefault(row["item_id"], set()).add(row["labeler_id"])
    votes = {item: len(who) for item, who in labelers.items()}
    consensus = {row["item_id"]: row for row in loop.store.fetch(latest_consensus_query())}
    due = {item for item, n in votes.items() if n >= 2}
    assert set(consensus) == due  # every item with two votes or more has a consensus, no other
    stale = {item: (row["n_annotators"], votes[item]) for item, row in consensus.items() if row["n_annotators"] != votes[item]}
    assert stale == {}  # and it counts every vote
    with loop.instance() as instance:
        version = lineage.current_dataset_version(instance)
        assert lineage.failed_blocking_dataset_checks(instance) == []
    assert version is not None
    manifest = load_manifest(loop.store, version)
    assert set(held(loop.store)) == held_out  # the planted bridge, held out with its reason
    # The current dataset version holds every labeled item but the held-out one.
    assert set(manifest["item_id"]) == set(consensus) - held_out
    labels = {row["item_id"]: str(row["label"]) for row in consensus.values() if row["item_id"] not in held_out}
    assert {i: str(label) for i, label in zip(manifest["item_id"], manifest["label"], strict=True)} == labels


def assert_prelabels_by_the_champion(loop: SelfDrivingLoop, new_files: list[str], dropped_at: float) -> None:
    """The images dropped in after the first champion: prelabeled by the champion of that moment (the prelabel
    run says so in its metadata), and their tasks reached Label Studio with its prediction."""
    rows = loop.store.fetch(
        sa.select(source_files_table.c.path, source_files_table.c.item_id).where(source_files_table.c.path.in_(new_files))
    )
    new_items = {row["item_id"] for row in rows}
    assert len(new_items) == len(new_files)
    prelabel_runs = [r for r in loop.runs() if r.job == "prelabel_job" and r.created > dropped_at and r.status == "SUCCESS"]
    assert prelabel_runs, "no prelabel run after the new images"
    with loop.instance() as instance:
        metadata = [runs_metadata(instance, r.run_id) for r in prelabel_runs]
    assert all(m["is_champion"] is True for m in metadata), metadata
    models = {m["model_version"] for m in metadata}
    assert all(model.startswith(loop.mlflow.registered_model_name) for model in models)
    prelabeled = {
        row["item_id"]
        for row in loop.store.fetch(sa.select(prelabels_table.c.item_id).where(prelabels_table.c.model_version.in_(models)))
    }
    active = {row["item_id"] for row in loop.store.fetch(sa.select(items_table.c.item_id).where(items_table.c.status == "active"))}
    assert new_items <= prelabeled and active <= prelabeled
    task_models = {
        row["item_id"]: row["model_version"]
        for row in loop.store.fetch(sa.select(tasks_table.c.item_id, tasks_table.c.model_version).where(tasks_table.c.item_id.in_(new_items)))
    }
    assert set(task_models) == new_items and set(task_models.values()) <= models  # queued with its prediction


def runs_metadata(instance: dg.DagsterInstance, run_id: str) -> dict[str, object]:
    from labeling_assets.sensors.runs import materialization_metadata

    return materialization_metadata(instance, run_id, "prelabels")


def assert_failures_only_from_faults_and_recovered(runs: list[RunRow], faults: list[Fault]) -> None:
    """A run failed only during a fault (or while the loop recovered from it), and a later run of its job
    succeeded: it was retried or superseded."""
    unexplained = [
        r
        for r in runs
        if r.status == "FAILURE"
        and not any(f.started - 5 <= (r.ended or r.created) <= f.ended + FAULT_MARGIN_S for f in faults)
    ]
    assert unexplained == [], [f"{r.job} {r.run_id}: {r.failure}" for r in unexplained]
    unrecovered = [
        r
        for r in runs
        if r.status == "FAILURE" and not any(o.job == r.job and o.created > r.created and o.status == "SUCCESS" for o in runs)
    ]
    assert unrecovered == [], [f"{r.job} {r.run_id}: {r.failure}" for r in unrecovered]
    assert all(r.status in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)


def describe_fault(fault: Fault) -> str:
    return f"{fault.name}, back after {fault.ended - fault.started:.0f} s"


def test_runs_execute_their_steps_in_the_run_process() -> None:
    """One process per run, not per step: what keeps a collect run at seconds on two cores."""
    from labeling_assets.definitions import defs

    assert defs.executor == dg.in_process_executor
