"""Loop latency: seconds from an annotation saved in Label Studio to the consensus row that counts it, under a
real ``dagster-daemon`` with the project's definitions and default sensor intervals; then the idle cost of
one tick of each sensor.

It sets up what the soak test does (tests/soak/harness.py): a throwaway Dagster instance from the project's
dagster.yaml, a real Label Studio, an image source of demo digits, and the simulated crowd, which labels a few
tasks at a time (``--items-per-wave`` every ``--wave-pause`` s) as a team at work would. The daemon does the
rest: ingest, prelabels, queue, collect, consensus. Latency is measured for every annotation that gives its
item a consensus or changes it (an item's 2nd vote and later): its Label Studio ``created_at`` to the
``computed_at`` of the item's first consensus version counting it (store timestamps, one clock).

Idle cost: once the loop is quiet, each sensor function is evaluated directly ``--idle-ticks`` times with the
resources the definitions hold, on that idle state (with the cursor its own first evaluation returned), and
the wall time per tick is reported. ``intake_sensor`` is a run-status sensor: its idle tick is the daemon's
query of the event log, our function runs only when a run succeeded, so it is not timed here.

Each invocation runs the loop twice from scratch under the same settings, one after the other: with the webhook
receiver running (Label Studio's webhooks + the poll), then with the receiver stopped (Label Studio posts to a
closed port; the poll alone). For each it breaks the latency into steps: the webhook's arrival, the sensor tick
that created the run which synced the annotation, that run's start (run queue, process start, code load), the
sync, the consensus row. The machine may be shared: the load average at the start and end of each loop is printed.

    python benchmarks/loop_latency.py                       # 60 images, default intervals, ~4-5 minutes a mode
    python benchmarks/loop_latency.py --images 120 --idle-ticks 50
    python benchmarks/loop_latency.py --modes "webhooks on" # one mode only
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from labeling_assets.local.crowd_waves import wait_until  # noqa: E402
from tests.soak.harness import (  # noqa: E402
    MIN_ANNOTATORS,
    RunRow,
    SelfDrivingLoop,
    _epoch,
    consensus_latencies,
    percentile,
)

WEBHOOKS, STOPPED = "webhooks on", "receiver stopped"
DIRECT_SENSORS = ("annotation_sensor", "touched_tasks_sensor", "raw_data_sensor", "queue_top_up_sensor", "retrain_sensor")


def quiet(loop: SelfDrivingLoop, images: int, settle_s: float) -> bool:
    """Every image queued and labeled, every annotation in the store, nothing in flight for ``settle_s``."""
    try:
        runs = loop.runs()
        if not runs or any(r.status in ("NOT_STARTED", "QUEUED", "STARTING", "STARTED") for r in runs):
            return False
        if time.time() - max(r.ended or r.created for r in runs) < settle_s or loop.unqueued_items() != 0:
            return False
        if loop.open_tasks() != 0 or loop.figures().items_ingested != images:
            return False
        figures = loop.figures()
        return figures.lost == 0 and figures.stored_annotations > 0
    except Exception:  # a store busy with a run's write, Label Studio restarting: look again
        return False


def idle_costs(loop: SelfDrivingLoop, ticks: int) -> dict[str, tuple[float, float, str]]:
    """Sensor -> (median ms, p95 ms, what the idle tick said) over ``ticks`` direct evaluations."""
    for key, value in loop.env().items():  # the resources read these when a tick runs, as in the daemon
        if key.startswith(("LABELING_ASSETS_", "LABEL_STUDIO_", "DAGSTER_HOME")):
            os.environ[key] = value
    from labeling_assets.definitions import build_resources, defs

    sensors = {s.name: s for s in defs.sensors or []}
    out: dict[str, tuple[float, float, str]] = {}
    with loop.instance() as instance:
        for name in DIRECT_SENSORS:
            sensor = sensors[name]
            cursor = _cursor(sensor, instance)
            seconds: list[float] = []
            said = ""
            for _ in range(ticks):
                context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=build_resources())
                started = time.perf_counter()
                result = sensor(context)
                seconds.append(time.perf_counter() - started)
                said = _said(result)
            out[name] = (statistics.median(seconds) * 1000, percentile(seconds, 95) * 1000, said)
    return out


def _cursor(sensor: Any, instance: dg.DagsterInstance) -> str | None:
    """The cursor an idle tick starts from: what the sensor's own evaluation of this state returns."""
    from labeling_assets.definitions import build_resources

    with dg.build_sensor_context(instance=instance, resources=build_resources()) as context:
        result = sensor(context)
    return result.cursor if isinstance(result, dg.SensorResult) else None


def _said(result: Any) -> str:
    if isinstance(result, dg.SkipReason):
        return f"skip: {result.skip_message}"
    if isinstance(result, dg.SensorResult):
        return f"{len(result.run_requests or [])} run requests"
    return str(result)


def _start_receiver(loop: SelfDrivingLoop, *, stopped: bool) -> Any:
    """The webhook receiver on the loop's store (a free port); the daemon's runs get its URL and secret, so the
    queue registers the project's webhook. ``stopped``: the receiver is stopped at once, so Label Studio posts
    every event to a closed port (a receiver that is down) and the poll alone brings the annotations in."""
    import secrets

    from labeling_assets.resources.labelstudio import WEBHOOK_SECRET_VAR, WEBHOOK_URL_VAR
    from labeling_assets.webhooks.serve import start_in_thread

    loop.store.ensure_schema()
    secret = secrets.token_hex(24)
    receiver = start_in_thread(loop.store, secret)
    loop.environment.update({WEBHOOK_URL_VAR: receiver.url, WEBHOOK_SECRET_VAR: secret})
    if stopped:
        receiver.stop()
        return None
    return receiver


@dataclass
class Measured:
    mode: str
    loop_s: float
    runs: list[RunRow]
    waves: int
    annotations: int
    latencies: list[float]
    steps: dict[str, list[float]]
    synced_by: dict[str, int]
    load: tuple[float, float]  # the 1-minute load average when the loop started and when it was quiet
    costs: dict[str, tuple[float, float, str]]


def measure(args: argparse.Namespace, mode: str) -> Measured:
    """One loop from scratch (its own folder, Label Studio, daemon) under ``mode``: "webhooks on" or "receiver
    stopped"; the same images, crowd and intervals either way."""
    root = Path(args.root or tempfile.mkdtemp(prefix="loop-latency-")) / mode.replace(" ", "-")
    loop = SelfDrivingLoop(root, sensor_interval_s=args.sensor_interval)
    receiver = _start_receiver(loop, stopped=mode == STOPPED)
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    print(f"[{mode}] {args.images} images, intervals {'default' if args.sensor_interval is None else args.sensor_interval}; "
          f"crowd {args.items_per_wave} tasks every {args.wave_pause:g} s; work folder {root}; load {load_at_start:.1f}",
          flush=True)  # fmt: skip
    try:
        loop.add_images(args.images)
        loop.start_label_studio()
        loop.start_daemon()
        crowd = loop.start_crowd(poll_s=args.wave_pause, items_per_wave=args.items_per_wave)
        wait_until("every image labeled and collected", lambda: quiet(loop, args.images, 35), args.timeout, 3)
        crowd.stop()
        load_at_end = os.getloadavg()[0]
        loop_s = time.monotonic() - started
        latencies = consensus_latencies(loop.store)
        runs = loop.runs()
        steps, synced_by = step_times(loop)
        costs = idle_costs(loop, args.idle_ticks) if args.idle_ticks else {}
    finally:
        loop.close()
        if receiver is not None:
            receiver.stop()
    return Measured(mode, loop_s, runs, crowd.log.waves, crowd.log.annotations, latencies, steps, synced_by,
                    (load_at_start, load_at_end), costs)  # fmt: skip


STEPS = (
    ("webhook received", "Label Studio's post reached the receiver (inbox row)"),
    ("run created", "the sensor tick that asked for the run that synced it"),
    ("run started", "run created -> its process began (run queue, process start, code load)"),
    ("synced", "run started -> the annotation row committed"),
    ("consensus", "synced -> the consensus row counting it"),
)


def step_times(loop: SelfDrivingLoop) -> tuple[dict[str, list[float]], dict[str, int]]:
    """For every annotation the latency counts: seconds from its save to each step, and from one step to the
    next where the step says so (see ``STEPS``); and how many of them each job synced. Store timestamps and the
    run records of the instance, one clock."""
    from labeling_assets.core.store.schema import annotations_table, consensus_table
    from labeling_assets.core.store.webhook_inbox_schema import webhook_inbox_table

    a, c, w = annotations_table, consensus_table, webhook_inbox_table
    saved = loop.store.fetch(
        sa.select(a.c.item_id, a.c.ls_task_id, a.c.created_at, a.c.synced_at).where(a.c.version == 1, a.c.deleted.is_(False))
    )
    received: dict[int, list[float]] = {}
    for row in loop.store.fetch(sa.select(w.c.ls_task_id, w.c.received_at)):
        if row["ls_task_id"] is not None:
            received.setdefault(int(row["ls_task_id"]), []).append(_epoch(row["received_at"]))
    versions: dict[str, list[tuple[float, int]]] = {}
    for row in loop.store.fetch(sa.select(c.c.item_id, c.c.computed_at, c.c.n_annotators).where(c.c.retracted.is_(False))):
        versions.setdefault(row["item_id"], []).append((_epoch(row["computed_at"]), int(row["n_annotators"])))
    with loop.instance() as instance:
        runs = [
            (r.dagster_run.job_name, r.create_timestamp.timestamp(), r.start_time, r.end_time)
            for r in instance.get_run_records()
            if r.dagster_run.job_name in ("collect_job", "webhook_collect_job") and r.start_time is not None
        ]
    by_item: dict[str, list[dict[str, Any]]] = {}
    for row in saved:
        if row["created_at"] is not None:
            by_item.setdefault(row["item_id"], []).append(row)
    steps: dict[str, list[float]] = {name: [] for name, _ in STEPS}
    synced_by: dict[str, int] = {}
    for item, rows in by_item.items():
        rows.sort(key=lambda r: _epoch(r["created_at"]))
        for k, row in enumerate(rows, start=1):
            at, synced = _epoch(row["created_at"]), _epoch(row["synced_at"])
            first = next((t for t, n in sorted(versions.get(item, [])) if t >= at and n >= k), None)
            if k < MIN_ANNOTATORS or first is None:
                continue
            posts = [t for t in received.get(int(row["ls_task_id"] or -1), []) if t >= at - 1]
            if posts:
                steps["webhook received"].append(min(posts) - at)
            run = max((r for r in runs if r[2] <= synced and (r[3] is None or synced <= r[3] + 1)), key=lambda r: r[2], default=None)
            if run is not None:
                synced_by[run[0]] = synced_by.get(run[0], 0) + 1
                steps["run created"].append(run[1] - at)
                steps["run started"].append(run[2] - run[1])
                steps["synced"].append(synced - run[2])
            steps["consensus"].append(first - synced)
    return steps, synced_by


def _quantiles(values: list[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 50):6.1f} s  p95 {percentile(values, 95):6.1f} s  (n {len(values)})"


def report(m: Measured, idle_ticks: int) -> None:
    jobs: dict[str, int] = {}
    for r in m.runs:
        jobs[r.job] = jobs.get(r.job, 0) + 1
    print(f"\n== {m.mode}: loop done in {m.loop_s:.0f} s, load average {m.load[0]:.1f} at the start, {m.load[1]:.1f} at the end; "
          f"{len(m.runs)} runs (all by sensors: {all(r.started_by.startswith('sensor') for r in m.runs)}; "
          + ", ".join(f"{k} {v}" for k, v in sorted(jobs.items()))
          + f"), {m.annotations} annotations in {m.waves} waves")  # fmt: skip
    lat = m.latencies
    print(f"latency annotation saved -> consensus row, {len(lat)} annotations: p50 {percentile(lat, 50):.1f} s, "
          f"p95 {percentile(lat, 95):.1f} s, max {max(lat) if lat else float('nan'):.1f} s")  # fmt: skip
    print("steps (from the save unless said): synced by " + ", ".join(f"{k} {v}" for k, v in sorted(m.synced_by.items())))
    for name, what in STEPS:
        print(f"  {name:<17} {_quantiles(m.steps.get(name, []))}   {what}")
    if m.costs:
        print(f"idle tick of each sensor, {idle_ticks} direct evaluations (median, p95):")
        for name, (median_ms, p95_ms, said) in m.costs.items():
            print(f"  {name:<20} {median_ms:8.1f} ms {p95_ms:8.1f} ms   {said[:100]}")



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60, help="demo digits in the image source (default 60)")
    parser.add_argument("--items-per-wave", type=int, default=4, help="tasks the crowd labels a wave (default 4)")
    parser.add_argument("--wave-pause", type=float, default=3.0, help="seconds between waves (default 3)")
    parser.add_argument("--idle-ticks", type=int, default=20, help="direct evaluations per sensor (default 20; 0: none)")
    parser.add_argument(
        "--sensor-interval", type=int, default=None, help="shorten every sensor's interval to this (default: theirs)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds (default 900)")
    parser.add_argument("--root", default=None, help="work folder (default: a new temporary one, kept)")
    parser.add_argument(
        "--modes", default=f"{WEBHOOKS},{STOPPED}", help=f"comma-separated, in this order (default both: "
        f"'{WEBHOOKS},{STOPPED}'): the receiver running, or registered in Label Studio but stopped (the poll alone)",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {WEBHOOKS, STOPPED}:
        parser.error(f"--modes takes {WEBHOOKS!r} and/or {STOPPED!r}")
    print(f"loop_latency: {os.cpu_count()} CPUs; the machine may be shared: the load average says how busy it was")
    results = [measure(args, mode) for mode in modes]
    for m in results:
        report(m, args.idle_ticks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
