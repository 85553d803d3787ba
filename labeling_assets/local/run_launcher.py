"""The local Dagster instance's run launcher: Dagster's default one, plus a health check for run monitoring.

Dagster's ``DefaultRunLauncher`` cannot tell run monitoring whether a run's process is alive, so a run whose
process died (kill -9, out of memory, an interrupted ``labeling-assets`` command) stayed STARTED forever and
kept its pool slots (``labelstudio_sync``, ``gpu``): every later collect or training run waited behind it.
Every run on the local instance, launched by ``dagster dev`` or executed in-process by the CLI, records its
process id on its RUN_START event; this launcher reports the run worker dead when that process no longer
runs on this machine, is a zombie, or the id now belongs to a process started after the run. The daemon's run
monitoring (``run_monitoring`` in dagster.yaml) then marks the run failed and frees its slots.

Only for an instance whose runs all execute on this machine (the local SQLite instance); the docker stack
uses the Docker run launcher's own container check.
"""

import os
from typing import Any, Self

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._serdes import ConfigurableClassData

from labeling_assets.local.labelstudio_files import pid_alive

# A process that started this long after the run's RUN_START event cannot be its worker (the id was reused).
_START_SLACK_S = 2.0


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers run monitoring can check (by process id, on this machine)."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any) -> Self:
        return cls(inst_data=inst_data)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid, started_at = run_worker_process(self._instance, run.run_id)
        if pid is None:  # no RUN_START with a process id: nothing to judge by
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        if process_is_running(pid, started_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, msg=f"the run's process {pid} is gone (killed or crashed) without ending the run"
        )


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every STARTED run of this machine whose process is gone, and free the pool slots of ended
    runs; returns the run ids marked failed.

    What the daemon's run monitoring does, for a CLI run started where no daemon runs: a killed earlier run
    would otherwise hold its pool slot and the new run would wait for it forever. Only on an instance with
    this launcher (all runs local); elsewhere nothing is touched.
    """
    launcher = instance.run_launcher
    if not isinstance(launcher, LocalRunLauncher):
        return []
    reaped: list[str] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        health = launcher.check_run_worker_health(run)
        if health.status == WorkerStatus.FAILED:
            instance.report_run_failed(run, f"Marked failed: {health.msg}.")
            reaped.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            ended = instance.get_run_by_id(run_id)
            if ended is None or ended.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return reaped


def run_worker_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int | None, float]:
    """The process id that started the run (its RUN_START event) and when; (None, 0.0) when unknown."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    if not records or records[0].event_log_entry.dagster_event is None:
        return None, 0.0
    entry = records[0].event_log_entry
    return entry.dagster_event.pid if entry.dagster_event else None, float(entry.timestamp)


def process_is_running(pid: int, started_by: float) -> bool:
    """Whether process ``pid`` runs on this machine, is not a zombie, and started before ``started_by`` (epoch s).

    Linux reads /proc (state and start time, so a reused id is not mistaken for the run); elsewhere only
    existence is checked.
    """
    if not os.path.isdir("/proc/self"):  # no procfs (macOS): existence is all we can tell
        return pid_alive(pid)
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return False
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    if fields[0] in ("Z", "X"):  # a zombie or dead process is not running the run
        return False
    start_ticks = int(fields[19])  # field 22 of /proc/<pid>/stat: start time in clock ticks after boot
    started_at = _boot_time() + start_ticks / os.sysconf("SC_CLK_TCK")
    return started_at <= started_by + _START_SLACK_S


def _boot_time() -> float:
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")
