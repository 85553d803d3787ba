"""``labeling-assets sweep``: a training sweep on the current dataset version, start to end (docs/model.md, "Sweeps").

Four jobs on the local Dagster instance, in order: sweep_plan_job (the grid's cells as sweep_cells partitions),
sweep_cells_job once per cell, sweep_summary_job (the winner on validation, registered) and sweep_evaluation_job
(model_evaluation: the winner on the test split once, and the champion rule).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labeling_assets import env
from labeling_assets.cli.runs import run_job
from labeling_assets.constants import REPO_ROOT

DEMO_SWEEP = REPO_ROOT / "docs" / "sweep-demo.toml"


def run_sweep(settings: str | None, *, evaluate: bool = True) -> int:
    """Plan, train every cell, compare, evaluate the winner; 0 when every run succeeded (a failed cell is reported
    and the others go on: the summary compares the cells that trained)."""
    import dagster as dg

    from labeling_assets.partitions import sweep_cells

    run_config = {"ops": {"sweep_plan": {"config": {"settings_file": str(Path(settings).resolve())}}}} if settings else {}
    if run_job("sweep_plan_job", run_config=run_config) != 0:
        return 1
    with dg.DagsterInstance.get() as instance:
        keys = sweep_cells.get_partition_keys(dynamic_partitions_store=instance)
    failed = []
    for n, key in enumerate(keys, start=1):
        print(f"\n[cell {n}/{len(keys)}] {key}", flush=True)
        if run_job("sweep_cells_job", partition_key=key) != 0:
            failed.append(key)
    if len(failed) == len(keys):
        print("labeling-assets sweep: every cell failed; nothing to compare", file=sys.stderr)
        return 1
    if run_job("sweep_summary_job") != 0:
        return 1
    if evaluate and run_job("sweep_evaluation_job") != 0:
        return 1
    if failed:
        print(f"labeling-assets sweep: {len(failed)} cells failed ({', '.join(failed)}); the winner is from the rest",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = args.settings or env.sweep_file()
    if settings is None:
        print("labeling-assets sweep: no grid: pass --settings FILE or set LABELING_ASSETS_SWEEP "
              f"(an example: {DEMO_SWEEP.relative_to(REPO_ROOT)})", file=sys.stderr)  # fmt: skip
        return 2
    return run_sweep(settings, evaluate=not args.no_evaluation)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sweep",
        help="train a grid of configurations on the current dataset version, pick the winner on validation and "
        "score it on the test split",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--settings", metavar="FILE", help="the sweep's TOML grid (default $LABELING_ASSETS_SWEEP)")
    p.add_argument(
        "--no-evaluation", action="store_true",
        help="stop after registering the winner (model_evaluation not run: no test score, no champion decision)",
    )  # fmt: skip
    p.set_defaults(func=_run)
