"""The self-driving loop on one machine, for the soak test and ``benchmarks/loop_latency.py``.

Real parts only: a throwaway Dagster instance built from the project's dagster.yaml (run queue, pools, run
monitoring, the project's LocalRunLauncher; storage paths made absolute), a real ``dagster-daemon`` loading
the project's definitions, a real Label Studio (a copy of the migrated template: seconds, not a minute), an
image source folder of demo digits, and the simulated crowd answering waves of tasks through Label Studio's
API (``labeling_assets.local.crowd_waves``). Nothing here launches a run: the sensors do.

The soak's code location may shorten the sensors' ``minimum_interval_seconds`` (fixed when a sensor is
defined): :func:`with_sensor_interval` copies each sensor of the project's definitions with another interval;
what the sensors decide and launch is the project's code, unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
import yaml

from labeling_assets.constants import DEMO_CLASSES
from labeling_assets.core.ingest.demo_data import GOLD_FILE, LABELS_FILE, render_digits
from labeling_assets.core.ingest.gold import load_label_csv
from labeling_assets.core.labelstudio.crowd import default_crowd
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    source_files_table,
    sqlite_url,
)
from labeling_assets.local import labelstudio as ls_server
from labeling_assets.local.crowd_waves import CrowdWaves
from labeling_assets.local.processes import stop_group
from labeling_assets.resources.labelstudio import LabelStudioClient
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.sensors.runs import materialization_metadata

REPO = Path(__file__).resolve().parents[2]
SENSOR_TAG = "dagster/sensor_name"
SCHEDULE_TAG = "dagster/schedule_name"
TRIGGER_TAG = "labeling-assets/trigger"
MIN_ANNOTATORS = 2  # consensus_labels' default min_annotators: the vote that first gives an item consensus

FAST_DEFS = '''"""The project's definitions, every sensor that launches runs ticking at least every {interval} s (soak code location)."""
import labeling_assets.definitions as project
from tests.soak.harness import with_sensor_interval

defs = with_sensor_interval(project.defs, {interval})
'''


def with_sensor_interval(defs: dg.Definitions, seconds: int) -> dg.Definitions:
    """``defs`` with the minimum interval of each sensor that launches runs lowered to ``seconds`` (a copy; the
    evaluation function, its jobs and default status are the project's own).

    The sensors that launch nothing (the alerts) keep their own intervals (60 s, 300 s): each tick is a call into
    the code server, about a second on a loaded 2-core machine (the daemon's log of a soak), taken from the loop's
    sensors and runs, and the loop proves nothing about them (tests/sensors does)."""
    sensors = []
    for sensor in defs.sensors or []:
        fast = copy.copy(sensor)
        if sensor.targets:
            fast._min_interval = min(seconds, sensor.minimum_interval_seconds or seconds)  # set only by __init__
        sensors.append(fast)
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        sensors=sensors,
        schedules=defs.schedules,
        resources=defs.resources,
        executor=defs.executor,
    )


@dataclass
class RunRow:
    run_id: str
    job: str
    status: str
    started_by: str  # "sensor <name>", "schedule <name>" or "by hand"
    trigger: str
    created: float
    ended: float | None
    failure: str = ""


@dataclass
class Fault:
    name: str
    started: float
    ended: float = 0.0


@dataclass
class Figures:
    """What a run of the loop shows: the numbers the soak test prints and asserts."""

    source_files: int = 0
    items_ingested: int = 0
    items_unqueued: int = 0
    ls_annotations: int = 0
    stored_annotations: int = 0
    lost: int = 0
    duplicated: int = 0
    retrains: int = 0
    champion: str = ""
    champion_prelabels: int = 0
    runs_by_trigger: dict[str, int] = field(default_factory=dict)
    failed_runs: list[RunRow] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    waves: int = 0

    def latency(self, q: float) -> float:  # noqa: D102
        return percentile(self.latencies_s, q)

    def lines(self) -> list[str]:
        lat = self.latencies_s
        return [
            f"source files {self.source_files}, items ingested {self.items_ingested}, unqueued {self.items_unqueued}",
            f"annotations: Label Studio {self.ls_annotations}, store {self.stored_annotations}, "
            f"lost {self.lost}, duplicated {self.duplicated} (crowd waves {self.waves})",
            f"retrains {self.retrains}; champion {self.champion or '-'}; prelabels by the champion "
            f"{self.champion_prelabels}",
            f"latency annotation -> consensus row: p50 {self.latency(50):.1f} s, p95 {self.latency(95):.1f} s, "
            f"max {max(lat) if lat else float('nan'):.1f} s over {len(lat)} annotations",
            "runs by trigger: " + ", ".join(f"{k} {v}" for k, v in sorted(self.runs_by_trigger.items())),
            f"failed runs {len(self.failed_runs)}: "
            + "; ".join(f"{r.job} {r.run_id[:8]} ({r.failure[:80]})" for r in self.failed_runs),
        ]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(max(int(q) - 1, 0), 98)]


class SelfDrivingLoop:
    """One throwaway setup under ``root``: ``data/`` (LABELING_ASSETS_HOME: label store, raw copies, MLflow,
    Label Studio), ``source/`` (the image source), ``dagster/`` (DAGSTER_HOME), ``digits/`` (rendered once)."""

    def __init__(
        self,
        root: Path,
        *,
        sensor_interval_s: int | None = None,
        environment: dict[str, str] | None = None,
        monitoring_poll_s: int = 2,
        run_start_timeout_s: int = 60,
        max_concurrent_runs: int = 3,
        project_title: str = "self-driving",
        crowd_size: int = 5,
    ) -> None:
        self.root = root
        self.data = root / "data"
        self.source = root / "source"
        self.home = root / "dagster"
        self.digits = root / "digits"
        self.project_title = project_title
        self.sensor_interval_s = sensor_interval_s
        self.environment = dict(environment or {})
        self.faults: list[Fault] = []
        self.phases: list[tuple[str, float]] = []  # (what, seconds): where a soak's minutes go
        self.crowd_labelers = default_crowd(crowd_size, prefix="crowd")
        self._daemon: subprocess.Popen[bytes] | None = None
        self._crowd: CrowdWaves | None = None
        self._ls: ls_server.ServerPaths = ls_server.ServerPaths(self.data / "labelstudio")
        self._ls_port = ls_server.free_port()
        self._added = 0
        for folder in (self.data, self.source, self.home):
            folder.mkdir(parents=True, exist_ok=True)
        self._write_instance(monitoring_poll_s, run_start_timeout_s, max_concurrent_runs)
        self.store = LabelStore(sqlite_url(str(self.data / "labels.db")))
        self.mlflow = MLflowResource(data_dir=str(self.data))

    # --- setup ------------------------------------------------------------------------------------
    def _write_instance(self, poll_s: int, start_timeout_s: int, max_runs: int) -> None:
        config = yaml.safe_load((REPO / "dagster.yaml").read_text())
        config["storage"]["custom"]["config"]["base_dir"] = str(self.home / "storage")
        config["local_artifact_storage"]["config"]["base_dir"] = str(self.home)
        config["compute_logs"]["config"]["base_dir"] = str(self.home / "logs")
        config["run_monitoring"].update(poll_interval_seconds=poll_s, start_timeout_seconds=start_timeout_s)
        config["concurrency"]["runs"] = {"max_concurrent_runs": max_runs}  # two cores: no pile of processes
        config["run_queue"] = {"dequeue_interval_seconds": 1}
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(config))
        if self.sensor_interval_s is not None:
            self.defs_file = self.home / "loop_defs.py"
            self.defs_file.write_text(FAST_DEFS.format(interval=self.sensor_interval_s))
        else:
            self.defs_file = REPO / "definitions.py"

    def env(self) -> dict[str, str]:
        """The daemon's environment: the data folder, the source, the instance; the local Label Studio is found
        through the data folder, as ``dagster dev`` finds it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "MLFLOW_"))}
        env.pop("LABEL_STORE_URL", None)
        env.update(
            DAGSTER_HOME=str(self.home),
            LABELING_ASSETS_HOME=str(self.data),
            LABELING_ASSETS_IMAGE_SOURCE=str(self.source),
            LABEL_STUDIO_PROJECT=self.project_title,
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        )
        env.update(self.environment)
        return env

    def add_images(self, n: int) -> list[str]:
        """Copy the next ``n`` demo digits into the source (gold.csv first, the PNGs after: the way a person
        drops a folder of images in); returns their file names."""
        end = self._added + n
        render_digits(self.digits, limit=end)
        truth = sorted(load_label_csv(self.digits / LABELS_FILE).items())[:end]
        names = {name for name, _ in truth}
        gold = [(name, label) for name, label in sorted(load_label_csv(self.digits / GOLD_FILE).items()) if name in names]
        tmp = self.source / f".{GOLD_FILE}.tmp"
        tmp.write_text("filename,label\n" + "".join(f"{name},{label}\n" for name, label in gold))
        tmp.replace(self.source / GOLD_FILE)
        new = [name for name, _ in truth[self._added : end]]
        for name in new:
            shutil.copy2(self.digits / name, self.source / f".{name}.tmp")
            (self.source / f".{name}.tmp").replace(self.source / name)
        self._added = end
        return new

    # --- Label Studio -----------------------------------------------------------------------------
    def start_label_studio(self) -> None:
        ls_server.start_fresh(self._ls, port=self._ls_port, data_folder=self.data)

    def restart_label_studio(self) -> None:
        ls_server.start(self._ls, port=self._ls_port, data_folder=self.data)

    def stop_label_studio(self) -> None:
        ls_server.stop(self._ls)

    def ls_client(self) -> LabelStudioClient:
        return LabelStudioClient(f"http://127.0.0.1:{self._ls_port}", ls_server.read_token(self._ls))

    def label_studio_down(self, seconds: float) -> Fault:
        fault = Fault("Label Studio stopped", time.time())
        self.faults.append(fault)
        self.stop_label_studio()
        time.sleep(seconds)
        self.restart_label_studio()
        fault.ended = time.time()
        return fault

    # --- the daemon -------------------------------------------------------------------------------
    def start_daemon(self) -> None:
        log = open(self.home / "daemon.log", "ab")  # noqa: SIM115 - the daemon holds it
        self._daemon = subprocess.Popen(
            [daemon_command(), "run", "-f", str(self.defs_file)],
            cwd=self.home,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code server and run workers it starts
        )
        log.close()

    def kill_daemon(self) -> Fault:
        """SIGKILL the daemon's whole process group: the daemon, its code server and the runs they launched
        (what an out-of-memory kill or a lost machine does)."""
        assert self._daemon is not None
        fault = Fault("dagster-daemon killed (SIGKILL)", time.time())
        self.faults.append(fault)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._daemon.pid, signal.SIGKILL)
        self._daemon.wait(30)
        self._daemon = None
        return fault

    def stop_daemon(self) -> None:
        if self._daemon is None:
            return
        stop_group(self._daemon, timeout_s=60)
        self._daemon = None

    # --- the crowd --------------------------------------------------------------------------------
    def truth(self) -> dict[str, str]:
        """item_id -> true digit, for the items ingested so far (through the ingest manifest)."""
        by_name = load_label_csv(self.digits / LABELS_FILE) if (self.digits / LABELS_FILE).is_file() else {}
        rows = self._fetch(
            sa.select(source_files_table.c.path, source_files_table.c.item_id).where(
                source_files_table.c.item_id.isnot(None)
            )
        )
        return {r["item_id"]: by_name[Path(r["path"]).name] for r in rows if Path(r["path"]).name in by_name}

    def start_crowd(self, poll_s: float = 2.0, items_per_wave: int | None = None) -> CrowdWaves:
        self._crowd = CrowdWaves(
            self.ls_client, self.project_title, self.crowd_labelers, truth=self.truth, classes=DEMO_CLASSES,
            poll_s=poll_s, items_per_wave=items_per_wave,
        ).start()  # fmt: skip
        return self._crowd

    @property
    def crowd(self) -> CrowdWaves | None:
        return self._crowd

    def close(self) -> None:
        if self._crowd is not None:
            self._crowd.stop()
        self.stop_daemon()
        self.stop_label_studio()
        self.store.dispose()

    # --- what happened ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def phase(self, what: str) -> Iterator[None]:
        """Time one phase of a soak (printed by :meth:`timing_lines`)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases.append((what, time.monotonic() - started))

    def timing_lines(self, top_steps: int = 12) -> list[str]:
        """Where the time went: each phase, each job's runs (launch wait: created -> started; run: started ->
        ended) and the steps that took longest over all runs."""
        lines = [f"phase {what}: {seconds:.0f} s" for what, seconds in self.phases]
        jobs: dict[str, list[tuple[float, float]]] = {}
        steps: dict[str, list[float]] = {}
        with self.instance() as instance:
            for record in instance.get_run_records():
                run = record.dagster_run
                if record.start_time is None or record.end_time is None:
                    continue
                created = record.create_timestamp.timestamp()
                jobs.setdefault(run.job_name, []).append((record.start_time - created, record.end_time - record.start_time))
                for stat in instance.get_run_step_stats(run.run_id):
                    if stat.start_time is not None and stat.end_time is not None:
                        steps.setdefault(stat.step_key, []).append(stat.end_time - stat.start_time)
        for job, spans in sorted(jobs.items(), key=lambda kv: -sum(r for _, r in kv[1])):
            waits, ran = [w for w, _ in spans], [r for _, r in spans]
            lines.append(f"job {job}: {len(spans)} runs, {sum(ran):.0f} s running (median {statistics.median(ran):.1f} s), "
                         f"launch wait median {statistics.median(waits):.1f} s")  # fmt: skip
        for key, spans in sorted(steps.items(), key=lambda kv: -sum(kv[1]))[:top_steps]:
            lines.append(f"step {key}: {len(spans)} x, {sum(spans):.0f} s (median {statistics.median(spans):.2f} s)")
        return lines

    @contextlib.contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            yield instance

    def _fetch(self, query: Any) -> list[dict[str, Any]]:
        if not (self.data / "labels.db").is_file():
            return []
        try:
            return self.store.fetch(query)
        except sa.exc.OperationalError as exc:  # not migrated yet: the first ingest creates the tables
            if "no such table" in str(exc):
                return []
            raise

    def runs(self) -> list[RunRow]:
        with self.instance() as instance:
            records = instance.get_run_records()
            rows = []
            for record in records:
                run = record.dagster_run
                tags = run.tags
                by = (
                    f"sensor {tags[SENSOR_TAG]}"
                    if SENSOR_TAG in tags
                    else f"schedule {tags[SCHEDULE_TAG]}"
                    if SCHEDULE_TAG in tags
                    else "by hand"
                )
                failure = ""
                if run.status == dg.DagsterRunStatus.FAILURE:
                    failure = _failure_message(instance, run.run_id)
                rows.append(
                    RunRow(
                        run.run_id, run.job_name, run.status.value, by, tags.get(TRIGGER_TAG, ""),
                        record.create_timestamp.timestamp(), record.end_time, failure,
                    )  # fmt: skip
                )
        return sorted(rows, key=lambda r: r.created)

    def in_flight(self) -> list[RunRow]:
        return [r for r in self.runs() if r.status in ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING")]

    def champion(self) -> str | None:
        try:
            model = self.mlflow.champion()
        except Exception:  # the MLflow store is created by the first training
            return None
        return model.label if model is not None else None

    def figures(self) -> Figures:
        fig = Figures()
        runs = self.runs()
        fig.source_files = len([p for p in self.source.iterdir() if p.suffix == ".png"])
        files = self._fetch(sa.select(source_files_table.c.path, source_files_table.c.item_id))
        fig.items_ingested = len({r["item_id"] for r in files if r["item_id"] and r["path"].endswith(".png")})
        fig.items_unqueued = self.unqueued_items()
        remote = self.ls_client().export_annotations(self.project_id() or 0) if self.project_id() else []
        stored = self._fetch(sa.select(annotations_table.c.ls_annotation_id, annotations_table.c.version))
        fig.ls_annotations, fig.stored_annotations = len(remote), len(stored)
        keys = [(r["ls_annotation_id"], r["version"]) for r in stored]
        fig.duplicated = len(keys) - len(set(keys))
        fig.lost = len({a.ls_annotation_id for a in remote} - {k for k, _ in keys})
        fig.retrains = sum(1 for r in runs if r.job == "train_job" and r.status == "SUCCESS")
        fig.champion = self.champion() or ""
        with self.instance() as instance:  # items prelabeled by the model that was the champion at the time
            for r in runs:
                if r.job == "prelabel_job" and r.status == "SUCCESS":
                    done = materialization_metadata(instance, r.run_id, "prelabels")
                    fig.champion_prelabels += int(done.get("items_prelabeled") or 0) if done.get("is_champion") else 0
        for r in runs:
            fig.runs_by_trigger[f"{r.job} <- {r.started_by}"] = fig.runs_by_trigger.get(f"{r.job} <- {r.started_by}", 0) + 1
        fig.failed_runs = [r for r in runs if r.status == "FAILURE"]
        fig.latencies_s = consensus_latencies(self.store) if fig.stored_annotations else []
        fig.waves = self._crowd.log.waves if self._crowd else 0
        return fig

    def project_id(self) -> int | None:
        try:
            projects = self.ls_client().list_projects()
        except Exception:
            return None
        return next((int(p["id"]) for p in projects if p.get("title") == self.project_title), None)

    def open_tasks(self) -> int | None:
        """Tasks with fewer labelers than their overlap, counted from the annotations themselves (Label
        Studio's own "finished" count can miss a task whose annotations were saved at the same moment);
        None before the project exists."""
        project_id = self.project_id()
        if project_id is None:
            return None
        client = self.ls_client()
        labelers: dict[int, set[str]] = {}
        for ann in client.export_annotations(project_id):
            if not ann.was_cancelled:
                labelers.setdefault(ann.ls_task_id, set()).add(ann.labeler_id)
        overlaps = client.task_overlaps(project_id)
        return sum(1 for task, overlap in overlaps.items() if len(labelers.get(task, ())) < overlap)

    def unqueued_items(self) -> int:
        from labeling_assets.core.store.queries import unqueued_item_count

        if not (self.data / "labels.db").is_file():
            return -1
        return unqueued_item_count(self.store, self.project_id())


def daemon_command() -> str:
    """The ``dagster-daemon`` of this interpreter's environment (the project venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dagster-daemon"
    return str(beside) if beside.is_file() else "dagster-daemon"


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    """Why a run failed: the first failed step's own exception (its class and message) when there is one, as a red soak
    must say what broke, else the run's failure message."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    for record in records:
        event = record.event_log_entry.dagster_event
        error = getattr(getattr(event, "event_specific_data", None), "error", None)
        while error is not None and error.cause is not None:  # Dagster wraps the step's own exception
            error = error.cause
        if event is not None and error is not None:
            return f"{event.step_key}: {error.message.strip().splitlines()[0]}"
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.message:
            return event.message.splitlines()[0]
    return "failed"


def _epoch(value: Any) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:  # SQLite keeps the UTC wall time without its zone
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


def consensus_latencies(store: LabelStore, min_annotators: int = MIN_ANNOTATORS) -> list[float]:
    """Seconds from an annotation saved in Label Studio (its ``created_at``) to the first consensus row of its
    item that counts it (computed after it, with at least as many labelers as the item had by then), for
    every annotation that gives its item consensus or changes it (the item's 2nd vote and later)."""
    votes: dict[str, list[float]] = {}
    for row in store.fetch(
        sa.select(annotations_table.c.item_id, annotations_table.c.created_at).where(
            annotations_table.c.version == 1, annotations_table.c.deleted.is_(False)
        )
    ):
        if row["created_at"] is not None:
            votes.setdefault(row["item_id"], []).append(_epoch(row["created_at"]))
    rows: dict[str, list[tuple[float, int]]] = {}
    for row in store.fetch(
        sa.select(consensus_table.c.item_id, consensus_table.c.computed_at, consensus_table.c.n_annotators).where(
            consensus_table.c.retracted.is_(False)
        )
    ):
        rows.setdefault(row["item_id"], []).append((_epoch(row["computed_at"]), int(row["n_annotators"])))
    out: list[float] = []
    for item, saved in votes.items():
        versions = sorted(rows.get(item, []))
        for k, at in enumerate(sorted(saved), start=1):
            if k < min_annotators:
                continue
            first = next((t for t, n in versions if t >= at and n >= k), None)
            if first is not None:
                out.append(first - at)
    return out
