"""Long run: the loop left running under a real ``dagster-daemon`` for 30 minutes (issue 26), and what it did.

The setup of the soak test (tests/soak/harness.py): a throwaway Dagster instance from the project's
dagster.yaml, a real Label Studio, an image source fed with the demo digits as a stream (``--first-images``,
then ``--stream-images`` more every ``--stream-every-s``), and the simulated crowd labeling a few tasks at a
time. Nothing here launches a run: the sensors do. Once the first dataset version has frozen items, a
**near-duplicate chain is planted**: a newly ingested item's perceptual hash is set within 4 bits of a frozen
train item's and of a frozen test item's, which are 8 bits apart (the jam of issue 26; the loop must hold the
new item out, not fail every collect run after it).

It reports:
- failed runs, and which fall in a planted fault's window (the chain is data, not a fault that fails runs:
  every failed run counts as not caused by a planted fault unless it names a planted item);
- champion promotions, the dataset version each was trained on and its blocking checks' verdicts;
- the share of open Label Studio tasks carrying a prediction of the current champion's version, sampled every
  ``--sample-s`` after the first champion (all samples, and those more than ``--grace-s`` after a promotion);
- p50/p95 seconds from an annotation saved in Label Studio to the consensus row that counts it.

    python benchmarks/long_run.py                      # 30 minutes + settling, figures printed and in --out
    python benchmarks/long_run.py --minutes 5          # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from labeling_assets import lineage  # noqa: E402
from labeling_assets.core.automation import QUEUE_BATCH_VAR, QUEUE_LOW_WATER_VAR, RETRAIN_MIN_NEW_VAR  # noqa: E402
from labeling_assets.core.store.held_out import held_out  # noqa: E402
from labeling_assets.core.store.schema import splits_table  # noqa: E402
from labeling_assets.local.crowd_waves import wait_until  # noqa: E402
from labeling_assets.sensors.runs import materialization_metadata  # noqa: E402
from tests.soak.harness import SelfDrivingLoop, consensus_latencies, percentile  # noqa: E402
from tests.soak.planted_chain import hashed, item_ids_of, plant_chain  # noqa: E402

ACTIVE = ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING")


@dataclass
class Sample:
    at: float  # seconds since the start
    champion: str
    since_promotion_s: float
    open_tasks: int
    with_current: int
    project_model_version: str


@dataclass
class Report:
    minutes: float = 0.0
    images: int = 0
    planted_chain: dict[str, Any] = field(default_factory=dict)
    runs: int = 0
    runs_by_job: dict[str, int] = field(default_factory=dict)
    failed_runs: list[dict[str, str]] = field(default_factory=list)
    failed_runs_not_planted: int = 0
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    promotions: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    share_current_all: float = float("nan")
    share_current_pooled: float = float("nan")
    in_flight_at_end: list[str] = field(default_factory=list)
    share_current_after_grace: float = float("nan")
    latency_p50_s: float = float("nan")
    latency_p95_s: float = float("nan")
    latencies: int = 0
    held_out: list[str] = field(default_factory=list)
    allocations: dict[str, int] = field(default_factory=dict)  # allocator decisions by action (random arm apart)
    crowd: str = ""


def sample(loop: SelfDrivingLoop, started: float, promoted_at: float) -> Sample | None:
    champion = loop.champion()
    project_id = loop.project_id()
    if not champion or project_id is None:
        return None
    client = loop.ls_client()
    tasks = [t for t in client.iter_tasks(project_id, fields="all") if not t.get("is_labeled")]
    current = sum(1 for t in tasks if any(p.get("model_version") == champion for p in t.get("predictions") or []))
    shown = str(client.get_project(project_id).get("model_version") or "")
    now = time.time()
    return Sample(round(now - started, 1), champion, round(now - promoted_at, 1), len(tasks), current, shown)


def promotions(loop: SelfDrivingLoop) -> list[dict[str, Any]]:
    out = []
    with loop.instance() as instance:
        for r in loop.runs():
            if r.job != "train_job" or r.status != "SUCCESS":
                continue
            evaluation = materialization_metadata(instance, r.run_id, "model_evaluation")
            if not evaluation.get("promoted"):
                continue
            trained = materialization_metadata(instance, r.run_id, "trained_model")
            version = str(trained.get("dataset_version") or evaluation.get("dataset_version") or "")
            verdicts = lineage.blocking_check_verdicts(instance, version) if version else {}
            out.append({
                "model_version": evaluation.get("model_version"), "run_id": r.run_id, "ended": r.ended,
                "trained_on": version, "evaluated_on": evaluation.get("dataset_version"),
                "blocking_checks": verdicts,
                "blocking_checks_pass": bool(verdicts) and all(v in ("passed", "warned") for v in verdicts.values()),
            })  # fmt: skip
    return out


def quiet(loop: SelfDrivingLoop, settle_s: float) -> bool:
    try:
        runs = loop.runs()
        if any(r.status in ACTIVE for r in runs):
            return False
        return time.time() - max((r.ended or r.created for r in runs), default=0.0) >= settle_s
    except Exception:  # a store busy with a run's write: look again
        return False


def every(period_s: float) -> Callable[[], bool]:
    last = [0.0]

    def due() -> bool:
        if time.monotonic() - last[0] >= period_s:
            last[0] = time.monotonic()
            return True
        return False

    return due


def run(args: argparse.Namespace) -> Report:
    root = Path(args.root or tempfile.mkdtemp(prefix="long_run_"))
    environment = {QUEUE_LOW_WATER_VAR: str(args.low_water), QUEUE_BATCH_VAR: str(args.batch),
                   RETRAIN_MIN_NEW_VAR: str(args.retrain_min_new)}  # fmt: skip
    # Run monitoring as the project's dagster.yaml has it (the soak's 60 s start timeout fails runs on a busy machine).
    loop = SelfDrivingLoop(root / "loop", sensor_interval_s=args.sensor_interval_s, environment=environment,
                           monitoring_poll_s=30, run_start_timeout_s=180)  # fmt: skip
    report = Report()
    print(f"long run: root {root}", flush=True)
    try:
        loop.add_images(args.first_images)
        report.images = args.first_images
        loop.start_label_studio()
        loop.start_daemon()
        crowd = loop.start_crowd(poll_s=args.crowd_poll_s, items_per_wave=args.items_per_wave)
        started = time.time()
        end = started + args.minutes * 60
        stream, sampling, status = every(args.stream_every_s), every(args.sample_s), every(60)
        stream()  # the first images are the first batch
        planted: dict[str, Any] = {}
        champion, promoted_at = None, 0.0
        while time.time() < end:
            if stream():
                names = loop.add_images(args.stream_images)
                report.images += len(names)
                if not planted and loop.store.fetch(sa.select(splits_table.c.item_id).limit(1)):
                    try:  # plant on this batch once it is ingested (before its items can reach a dataset)
                        wait_until("the new batch ingested",
                                   lambda n=names: hashed(loop.store, item_ids_of(loop.store, n)), 180, 1)  # fmt: skip
                        planted = plant_chain(loop.store, item_ids_of(loop.store, names)[0])
                        report.planted_chain = planted
                        print(f"long run: planted near-duplicate chain {planted}", flush=True)
                    except Exception as exc:  # not ingested in time, a busy store: the next batch
                        print(f"long run: {type(exc).__name__}: {exc}; planting on the next batch", flush=True)
            now_champion = loop.champion()
            if now_champion != champion:
                champion, promoted_at = now_champion, time.time()
            if champion and sampling():
                try:
                    got = sample(loop, started, promoted_at)
                except Exception as exc:  # Label Studio busy: the next sample
                    print(f"long run: sample skipped ({type(exc).__name__}: {exc})", flush=True)
                    got = None
                if got is not None:
                    report.samples.append(got)
            if status():
                try:
                    runs = loop.runs()
                except Exception:  # the instance busy with a write: the next status line
                    continue
                failed = sum(1 for r in runs if r.status == "FAILURE")
                last = report.samples[-1] if report.samples else None
                print(f"long run: {(time.time() - started) / 60:.1f} min, {len(runs)} runs ({failed} failed), champion "
                      f"{champion or '-'}, open tasks with its prediction "
                      f"{f'{last.with_current}/{last.open_tasks}' if last else '-'}, crowd {crowd.log.annotations}",
                      flush=True)  # fmt: skip
            time.sleep(1)
        report.minutes = round((time.time() - started) / 60, 1)
        crowd.stop()
        report.crowd = str(crowd.log)
        try:
            wait_until("the loop is quiet", lambda: quiet(loop, 20), args.settle_s, 3)
        except TimeoutError as exc:
            print(f"long run: {exc}", flush=True)
        try:
            summarize(loop, report, args)
        except Exception as exc:  # print what there is: a figure that failed is named
            print(f"long run: summary incomplete: {type(exc).__name__}: {exc}", flush=True)
    finally:
        loop.close()
    return report


def summarize(loop: SelfDrivingLoop, report: Report, args: argparse.Namespace) -> None:
    runs = loop.runs()
    report.runs = len(runs)
    for r in runs:
        report.runs_by_job[r.job] = report.runs_by_job.get(r.job, 0) + 1
    planted_ids = {v for k, v in report.planted_chain.items() if k != "planted_at"}
    for r in runs:
        if r.status == "FAILURE":
            caused = any(i[:12] in r.failure for i in planted_ids)
            report.failed_runs.append({"job": r.job, "run_id": r.run_id, "failure": r.failure,
                                       "caused_by_planted_fault": str(caused)})  # fmt: skip
    report.failed_runs_not_planted = sum(1 for f in report.failed_runs if f["caused_by_planted_fault"] == "False")
    report.failures_by_kind = {}
    for f in report.failed_runs:
        kind = "run start timeout" if "longer than" in f["failure"] and "to start" in f["failure"] else f["failure"][:60]
        report.failures_by_kind[kind] = report.failures_by_kind.get(kind, 0) + 1
    report.promotions = promotions(loop)
    shares = [s.with_current / s.open_tasks for s in report.samples if s.open_tasks]
    late = [s.with_current / s.open_tasks for s in report.samples if s.open_tasks and s.since_promotion_s > args.grace_s]
    report.share_current_all = round(sum(shares) / len(shares), 4) if shares else float("nan")
    # Pooled over every open task seen in a sample (a sample of 2 open tasks does not weigh as much as one of 30).
    seen = [s for s in report.samples if s.open_tasks]
    report.share_current_pooled = (
        round(sum(s.with_current for s in seen) / sum(s.open_tasks for s in seen), 4) if seen else float("nan")
    )
    report.in_flight_at_end = [f"{r.job} {r.run_id[:8]} {r.status}" for r in runs if r.status in ACTIVE]
    report.share_current_after_grace = round(sum(late) / len(late), 4) if late else float("nan")
    latencies = consensus_latencies(loop.store)
    report.latencies = len(latencies)
    report.latency_p50_s = round(percentile(latencies, 50), 1)
    report.latency_p95_s = round(percentile(latencies, 95), 1)
    report.held_out = sorted(held_out(loop.store))
    report.allocations = allocation_counts(loop.store)


def allocation_counts(store: Any) -> dict[str, int]:
    """The allocator's audited decisions by action, the random arm's apart (empty under the default rules)."""
    from labeling_assets.core.store.allocation_schema import allocation_decisions_table as t

    rows = store.fetch(sa.select(t.c.action, t.c.random_arm, sa.func.count().label("n")).group_by(t.c.action, t.c.random_arm))
    return {f"{r['action']}{' (random arm)' if r['random_arm'] else ''}": int(r["n"]) for r in rows}


def print_report(report: Report, args: argparse.Namespace) -> None:
    print(f"long run: {report.minutes} min of the demo stream ({report.images} images), {report.runs} runs "
          f"({', '.join(f'{j} {n}' for j, n in sorted(report.runs_by_job.items()))})")  # fmt: skip
    print(f"long run: failed runs {len(report.failed_runs)}, not caused by a planted fault "
          f"{report.failed_runs_not_planted}")  # fmt: skip
    print(f"  by kind: {report.failures_by_kind}")
    for f in report.failed_runs:
        print(f"  failed {f['job']} {f['run_id'][:8]}: {f['failure'][:200]}")
    chain = report.planted_chain
    print(f"long run: planted chain bridge {str(chain.get('bridge', '-'))[:12]} (train {str(chain.get('frozen_train', '-'))[:12]}, "
          f"test {str(chain.get('frozen_test', '-'))[:12]}); held out now: {[i[:12] for i in report.held_out]}")  # fmt: skip
    print(f"long run: {len(report.promotions)} champion promotions")
    for p in report.promotions:
        bad = {k: v for k, v in p["blocking_checks"].items() if v not in ("passed", "warned")}
        print(f"  {p['model_version']} trained on {p['trained_on']} (evaluated on {p['evaluated_on']}): blocking checks "
              f"{'all passed' if p['blocking_checks_pass'] else bad}")  # fmt: skip
    n, seen = len(report.samples), sum(s.open_tasks for s in report.samples)
    print(f"long run: open tasks with a prediction of the current champion: {report.share_current_pooled:.1%} of "
          f"{seen} open tasks seen in {n} samples after the first champion (mean of the samples' shares "
          f"{report.share_current_all:.1%}; {report.share_current_after_grace:.1%} more than {args.grace_s:.0f} s "
          "after a promotion)")  # fmt: skip
    print(f"long run: runs still in flight when it stopped (ended by the shutdown, not counted as failed): "
          f"{report.in_flight_at_end}")  # fmt: skip
    if report.allocations:
        print(f"long run: allocator decisions {report.allocations}")
    print(f"long run: annotation -> consensus p50 {report.latency_p50_s} s, p95 {report.latency_p95_s} s over "
          f"{report.latencies} annotations; crowd {report.crowd}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--first-images", type=int, default=60)
    parser.add_argument("--stream-images", type=int, default=20)
    parser.add_argument("--stream-every-s", type=float, default=150.0)
    parser.add_argument("--items-per-wave", type=int, default=3, help="tasks the crowd labels per wave")
    parser.add_argument("--crowd-poll-s", type=float, default=4.0)
    parser.add_argument("--sensor-interval-s", type=int, default=10)
    parser.add_argument("--low-water", type=int, default=15)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--retrain-min-new", type=int, default=25)
    parser.add_argument("--sample-s", type=float, default=20.0)
    parser.add_argument("--grace-s", type=float, default=180.0, help="samples this long after a promotion count apart")
    parser.add_argument("--settle-s", type=float, default=300.0)
    parser.add_argument("--root", default=None, help="working folder (default: a new temporary one)")
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("LABELING_ASSETS_LOG_LEVEL", "WARNING")
    report = run(args)
    print_report(report, args)
    if args.out:
        Path(args.out).write_text(json.dumps(asdict(report), indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
