"""Do runs launched together share a pool slot of limit 1? Plain SQLite storage vs the project's instance.

    python benchmarks/pool_race.py                       # both storages, 4 runs at once, 8 launches each
    python benchmarks/pool_race.py --storage plain --launches 12
    python benchmarks/pool_race.py --fresh             # the runs create a brand-new instance together

Each launch makes a fresh Dagster instance from the project's dagster.yaml (``--storage plain`` swaps in
``storage: sqlite``, Dagster's own), creates its storage once, then starts ``--runs`` processes at the same
moment, each running a one-op job whose op holds the project's ``labelstudio_sync`` pool (limit 1) for
``--hold`` seconds and logs when it entered and left. A launch "overlaps" when any op entered before the
previous one left; with ``--fresh`` the runs also create the instance's storage together. Prints, per storage,
the launches that overlapped and those where a run failed. About 9 s per launch on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from labeling_assets.constants import SYNC_POOL  # noqa: E402

PROBE = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    import dagster as dg

    @dg.asset(pool="{pool}")
    def probe() -> None:
        with Path(os.environ["PROBE_LOG"]).open("a") as f:
            f.write(f"{{os.getpid()}} {{time.time()}}\\n")
        time.sleep(float(os.environ["PROBE_HOLD"]))
        with Path(os.environ["PROBE_LOG"]).open("a") as f:
            f.write(f"{{os.getpid()}} {{time.time()}}\\n")

    if __name__ == "__main__":
        job = dg.Definitions(assets=[probe], jobs=[dg.define_asset_job("j", selection="probe")]).resolve_job_def("j")
        with dg.DagsterInstance.get() as instance:
            raise SystemExit(0 if job.execute_in_process(instance=instance, raise_on_error=False).success else 1)
    """
).format(pool=SYNC_POOL)


def launch(storage: str, runs: int, hold_s: float, fresh: bool) -> tuple[int, int]:
    """One launch: (runs that failed, ops that entered before the previous one left)."""
    home = Path(tempfile.mkdtemp(prefix="pool-race-"))
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    if storage == "plain":
        config["storage"] = {"sqlite": {"base_dir": "data/dagster/storage"}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    (home / "probe.py").write_text(PROBE)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PROBE_LOG": str(home / "probe.log"), "PROBE_HOLD": str(hold_s)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if not fresh:  # create the storage first, as a running `dagster dev` would have
        create = [sys.executable, "-c", "import dagster as dg; dg.DagsterInstance.get().dispose()"]
        subprocess.run(create, cwd=home, env=env, check=True)
    procs = [
        subprocess.Popen([sys.executable, "probe.py"], cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(runs)
    ]
    failed = sum(1 for p in procs if p.wait(300))
    spans: dict[str, list[float]] = {}
    log = home / "probe.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        pid, at = line.split()
        spans.setdefault(pid, []).append(float(at))
    ordered = sorted(spans.values())
    return failed, sum(1 for before, after in zip(ordered, ordered[1:], strict=False) if after[0] < before[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=["plain", "project", "both"], default="both")
    parser.add_argument("--runs", type=int, default=4, help="runs started at the same moment per launch (default 4)")
    parser.add_argument("--launches", type=int, default=8, help="launches per storage (default 8)")
    parser.add_argument(
        "--fresh", action="store_true", help="start the runs on a brand-new instance (they create its storage together)"
    )
    parser.add_argument("--hold", type=float, default=0.5, help="seconds each op holds the slot (default 0.5)")
    args = parser.parse_args()
    storages = ["plain", "project"] if args.storage == "both" else [args.storage]
    for storage in storages:
        overlapped = broken = 0
        for i in range(args.launches):
            failed, n = launch(storage, args.runs, args.hold, args.fresh)
            overlapped += n > 0
            broken += failed > 0
            print(f"  {storage} launch {i + 1}/{args.launches}: {failed} run(s) failed, {n} op(s) entered while another held the slot", flush=True)
        print(f"{storage}: {overlapped} of {args.launches} launches of {args.runs} runs overlapped, {broken} had a failed run")


if __name__ == "__main__":
    main()
