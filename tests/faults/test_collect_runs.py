"""Collect runs under a real Dagster instance built from the project's dagster.yaml: the annotations step holds
the ``labelstudio_sync`` pool, so two runs never sync at once (on SQLite too, where Dagster's own claim lets two
runs claiming at the same moment share the one slot: labeling_assets/local/instance_storage.py), and a run whose
process is killed is marked failed by run monitoring (the daemon) and gives its pool slot back.

The probe job is a one-op job in the same pool (the sync itself is exercised in test_sync_faults.py); only the
monitoring poll interval is shortened so the test does not wait 30 s per check.
"""

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from labeling_assets.assets.collect import annotations
from labeling_assets.constants import SYNC_POOL
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.local.instance_storage import POOL_LOCK_FILE, PoolSafeSqliteEventLogStorage
from labeling_assets.local.processes import stop_group
from labeling_assets.local.run_launcher import (
    LocalRunLauncher,
    process_is_running,
    reap_dead_runs,
    run_worker_process,
)
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors.runs import RETRY_IF_KILLED
from tests.labelstudio_server import LabelStudioServer

# Each run is a fresh Python (a run worker or the probe script); two tests also start a dagster-daemon.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

PROBE_DEFS = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    import dagster as dg

    @dg.asset(pool="{pool}")
    def sync_probe() -> None:
        log = Path(os.environ["PROBE_LOG"])
        with log.open("a") as f:
            f.write(f"start {{os.getpid()}} {{time.time()}}\\n")
        time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
        with log.open("a") as f:
            f.write(f"end {{os.getpid()}} {{time.time()}}\\n")

    @dg.asset
    def retry_probe() -> None:
        # The first attempt writes its process id and hangs (to be killed); a re-execution finds the file and ends.
        marker = Path(os.environ["PROBE_LOG"]).with_name("retry_probe.pid")
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(600)

    probe_job = dg.define_asset_job("probe_job", selection="sync_probe")
    retry_job = dg.define_asset_job("retry_job", selection="retry_probe")
    defs = dg.Definitions(assets=[sync_probe, retry_probe], jobs=[probe_job, retry_job])

    if __name__ == "__main__":
        with dg.DagsterInstance.get() as instance:
            result = defs.resolve_job_def("probe_job").execute_in_process(instance=instance, raise_on_error=False)
        raise SystemExit(0 if result.success else 1)
    """
).format(pool=SYNC_POOL)


def wait_for(what: str, condition: Callable[[], object], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s:.0f}s: {what}")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding the project's dagster.yaml (monitoring polls every second instead of 30)."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = 1
    for section in (config["storage"]["custom"], config["local_artifact_storage"], config["compute_logs"]):
        section["config"]["base_dir"] = str(tmp_path / "data" / section["config"]["base_dir"])  # this test's own
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "probe_defs.py").write_text(PROBE_DEFS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("PROBE_LOG", str(tmp_path / "probe.log"))
    return tmp_path


@pytest.fixture
def instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as inst:
        yield inst


def start_probe(home: Path, sleep_s: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(home / "probe_defs.py")],
        cwd=home,
        env={**os.environ, "PROBE_SLEEP": str(sleep_s)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def running_daemon(home: Path) -> Iterator[None]:
    """A dagster-daemon (run monitoring, run retries) over the probe definitions, stopped on leaving."""
    daemon = subprocess.Popen(
        ["dagster-daemon", "run", "-f", str(home / "probe_defs.py")],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        stop_group(daemon)


def probe_intervals(home: Path) -> dict[int, list[float]]:
    spans: dict[int, list[float]] = {}
    log = home / "probe.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        _, pid, at = line.split()
        spans.setdefault(int(pid), []).append(float(at))
    return spans


def test_the_annotations_step_holds_the_sync_pool_and_the_instances_give_every_pool_a_limit_of_one() -> None:
    assert annotations.op.pool == SYNC_POOL
    for path in (REPO / "dagster.yaml", REPO / "docker" / "dagster.yaml"):
        config = yaml.safe_load(path.read_text())
        assert config["concurrency"]["pools"]["default_limit"] == 1, path
        assert config["run_monitoring"]["enabled"] is True, path
        assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0, path


def test_the_local_instance_claims_pool_slots_under_a_file_lock(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.event_log_storage, PoolSafeSqliteEventLogStorage)


def test_four_runs_in_the_sync_pool_launched_together_never_overlap(home: Path, instance: dg.DagsterInstance) -> None:
    # Four at once: with plain SQLite storage about one launch in four let two of them share the slot.
    runs = [start_probe(home, sleep_s=1.0) for _ in range(4)]
    for proc in runs:
        assert proc.wait(180) == 0
    spans = sorted(probe_intervals(home).values())
    assert len(spans) == 4 and all(len(s) == 2 for s in spans)
    for (_, earlier_end), (later_start, _) in zip(spans, spans[1:], strict=False):
        assert later_start >= earlier_end  # each run's step waited for the one before it to give the slot back


def test_four_runs_started_together_on_a_brand_new_instance_all_succeed(home: Path) -> None:
    # They create the instance's SQLite storage together; plain `storage: sqlite` failed most such launches
    # (CREATE TABLE races, two rows in alembic_version: benchmarks/pool_race.py --fresh).
    runs = [start_probe(home, sleep_s=0.2) for _ in range(4)]
    assert [proc.wait(180) for proc in runs] == [0, 0, 0, 0]
    assert len(probe_intervals(home)) == 4


def test_a_run_waits_for_the_pool_lock_another_process_holds(home: Path, instance: dg.DagsterInstance) -> None:
    lock_path = Path(instance.event_log_storage._base_dir) / POOL_LOCK_FILE  # type: ignore[attr-defined]
    with lock_path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a run in the middle of its claim would
        proc = start_probe(home, sleep_s=0.0)
        wait_for("the run has started", lambda: [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.STARTED])
        time.sleep(3.0)
        assert not probe_intervals(home), "the step claimed its slot while another process held the pool lock"
        fcntl.flock(held, fcntl.LOCK_UN)
    assert proc.wait(120) == 0
    assert len(probe_intervals(home)) == 1


@pytest.mark.daemon
def test_a_killed_run_is_marked_failed_by_run_monitoring_and_frees_its_pool_slot(
    home: Path, instance: dg.DagsterInstance
) -> None:
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    with running_daemon(home):
        victim = start_probe(home, sleep_s=600)
        wait_for("the run's step holds the pool", lambda: probe_intervals(home))
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        wait_for(
            "run monitoring marks the killed run failed",
            lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE,  # type: ignore[union-attr]
        )
        # free_slots_after_run_end_seconds later the slot is back: the next run in the pool completes.
        assert start_probe(home, sleep_s=0).wait(120) == 0


def test_the_instances_re_execute_only_tagged_runs_whose_process_died() -> None:
    for path in (REPO / "dagster.yaml", REPO / "docker" / "dagster.yaml"):
        assert yaml.safe_load(path.read_text())["run_retries"] == {
            "enabled": True,
            "max_retries": 0,  # a CLI run interrupted by hand is never re-executed
            "retry_on_asset_or_op_failure": False,  # a failed step is the sensors' call, not a blind re-run
        }, path


@pytest.mark.daemon
def test_a_killed_run_tagged_for_retry_is_re_executed_by_the_daemon(home: Path, instance: dg.DagsterInstance) -> None:
    # What happens to the intake chain's runs (sensors.runs.RETRY_IF_KILLED) when their process dies.
    with running_daemon(home):
        tags = json.dumps(RETRY_IF_KILLED)
        launch = ["dagster", "job", "launch", "-f", str(home / "probe_defs.py"), "-j", "retry_job", "--tags", tags]
        subprocess.run(launch, cwd=home, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        marker = home / "retry_probe.pid"
        wait_for("the first attempt's step runs", marker.exists)
        [run] = instance.get_runs()
        worker, _ = run_worker_process(instance, run.run_id)
        assert worker is not None
        for pid in (worker, int(marker.read_text())):  # the run's process and its step's
            os.kill(pid, signal.SIGKILL)
        wait_for(
            "the daemon re-executes the killed run and the re-execution succeeds",
            lambda: any(
                r.parent_run_id == run.run_id and r.status == dg.DagsterRunStatus.SUCCESS for r in instance.get_runs()
            ),
            timeout_s=180,
        )
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]


def test_without_a_daemon_a_new_cli_run_reaps_a_killed_run_first(home: Path, instance: dg.DagsterInstance) -> None:
    victim = start_probe(home, sleep_s=600)
    wait_for("the run's step holds the pool", lambda: probe_intervals(home))
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    [run] = instance.get_runs()
    assert reap_dead_runs(instance) == [run.run_id]
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
    assert instance.event_log_storage.get_concurrency_run_ids() == set()
    assert reap_dead_runs(instance) == []  # idempotent


def test_a_live_process_is_running_and_a_reused_or_gone_one_is_not() -> None:
    assert process_is_running(os.getpid(), time.time())
    assert not process_is_running(os.getpid(), 0.0)  # "started" long before this process: not the same one
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not process_is_running(gone.pid, time.time())


def test_a_collect_of_a_project_that_does_not_exist_fails_at_once_without_retries(
    label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    """No retry creates the project: the three retries 15 s apart only delayed the one clear line."""
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    store.migrate()
    try:
        result = dg.materialize(
            [annotations],
            resources={"label_store": LabelStoreResource(url=store.url),
                       "label_studio": label_studio.resource(f"never-created-{tmp_path.name}")},  # fmt: skip
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    finally:
        store.dispose()
    assert not result.success
    assert "does not exist: materialize labeling_tasks first" in str(result.failure_data_for_node("annotations").error)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
