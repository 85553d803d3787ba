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

    python benchmarks/loop_latency.py                       # 60 images, default intervals, ~4-5 minutes
    python benchmarks/loop_latency.py --images 120 --idle-ticks 50
    python benchmarks/loop_latency.py --webhooks            # the receiver on: Label Studio's webhooks + the poll
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402

from labeling_assets.local.crowd_waves import wait_until  # noqa: E402
from tests.soak.harness import SelfDrivingLoop, consensus_latencies, percentile  # noqa: E402

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


def _start_receiver(loop: SelfDrivingLoop) -> Any:
    """The webhook receiver on the loop's store (a free port); the daemon's runs get its URL and secret, so the
    queue registers the project's webhook."""
    import secrets

    from labeling_assets.resources.labelstudio import WEBHOOK_SECRET_VAR, WEBHOOK_URL_VAR
    from labeling_assets.webhooks.serve import start_in_thread

    loop.store.ensure_schema()
    secret = secrets.token_hex(24)
    receiver = start_in_thread(loop.store, secret)
    loop.environment.update({WEBHOOK_URL_VAR: receiver.url, WEBHOOK_SECRET_VAR: secret})
    return receiver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60, help="demo digits in the image source (default 60)")
    parser.add_argument("--items-per-wave", type=int, default=4, help="tasks the crowd labels a wave (default 4)")
    parser.add_argument("--wave-pause", type=float, default=3.0, help="seconds between waves (default 3)")
    parser.add_argument("--idle-ticks", type=int, default=20, help="direct evaluations per sensor (default 20)")
    parser.add_argument(
        "--sensor-interval", type=int, default=None, help="shorten every sensor's interval to this (default: theirs)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds (default 900)")
    parser.add_argument("--root", default=None, help="work folder (default: a new temporary one, kept)")
    parser.add_argument(
        "--webhooks", action="store_true", help="run the webhook receiver (in this process) and register it: "
        "touched_tasks_sensor syncs the tasks Label Studio names; default: the poll alone",
    )
    args = parser.parse_args()

    root = Path(args.root or tempfile.mkdtemp(prefix="loop-latency-"))
    loop = SelfDrivingLoop(root, sensor_interval_s=args.sensor_interval)
    receiver = _start_receiver(loop) if args.webhooks else None
    started = time.monotonic()
    print(f"loop_latency: {args.images} images, intervals {'default' if args.sensor_interval is None else args.sensor_interval}; "
          f"crowd {args.items_per_wave} tasks every {args.wave_pause:g} s; webhooks {'on: ' + receiver.url if receiver else 'off'}; "
          f"work folder {root}", flush=True)  # fmt: skip
    try:
        loop.add_images(args.images)
        loop.start_label_studio()
        loop.start_daemon()
        crowd = loop.start_crowd(poll_s=args.wave_pause, items_per_wave=args.items_per_wave)
        wait_until("every image labeled and collected", lambda: quiet(loop, args.images, 35), args.timeout, 3)
        crowd.stop()
        loop_s = time.monotonic() - started
        latencies = consensus_latencies(loop.store)
        runs = loop.runs()
        costs = idle_costs(loop, args.idle_ticks)
    finally:
        loop.close()
        if receiver is not None:
            receiver.stop()
    collects = [r for r in runs if r.job == "collect_job"]
    print(f"\nloop done in {loop_s:.0f} s: {len(runs)} runs (all by sensors: "
          f"{all(r.started_by.startswith('sensor') for r in runs)}), {len(collects)} collect runs, "
          f"{crowd.log.annotations} annotations in {crowd.log.waves} waves")  # fmt: skip
    print(
        f"latency annotation saved -> consensus row, {len(latencies)} annotations: p50 {percentile(latencies, 50):.1f} s, "
        f"p95 {percentile(latencies, 95):.1f} s, max {max(latencies) if latencies else float('nan'):.1f} s"
    )
    print(f"\nidle tick of each sensor, {args.idle_ticks} direct evaluations (median, p95):")
    for name, (median_ms, p95_ms, said) in costs.items():
        print(f"  {name:<20} {median_ms:8.1f} ms {p95_ms:8.1f} ms   {said[:100]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
