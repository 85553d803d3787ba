"""Run a job of the definitions on the local Dagster instance, as ``dagster dev`` would, and print its outcome."""

import argparse
import sys

import dagster as dg

from labeling_assets.cli.common import use_local_instance


def run_job(job_name: str, **kwargs: object) -> int:
    """Execute a job of the definitions on the local Dagster instance; print its materializations (0 = success)."""
    use_local_instance()
    from labeling_assets.definitions import defs  # every asset module: loaded for a run, not for --help

    # Progress at INFO on the console; the step-by-step DEBUG events stay in the UI's run log.
    run_config = dict(kwargs.pop("run_config", None) or {})  # type: ignore[call-overload]
    run_config.setdefault("loggers", {"console": {"config": {"log_level": "INFO"}}})
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config, **kwargs  # type: ignore[arg-type]
        )
        return print_outcome(result)


def print_outcome(result: dg.ExecuteInProcessResult) -> int:
    """Print the run's materializations (without thumbnails or long tables) and checks; 0 = success."""
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        print(f"\n== {mat.asset_key.to_user_string()} (run {result.run_id[:8]})")
        for key, value in mat.metadata.items():
            text = getattr(value, "value", value)
            if isinstance(text, str) and ("data:image" in text or len(text) > 400):
                continue  # thumbnails and long tables are for the UI
            print(f"  {key}: {text}")
    for evaluation in result.get_asset_check_evaluations():
        # WARN checks flag something for a person to look at (a weak labeler); ERROR checks block.
        warn = evaluation.severity == dg.AssetCheckSeverity.WARN
        status = "passed" if evaluation.passed else ("warning" if warn else "FAILED")
        where = f" [{evaluation.partition}]" if getattr(evaluation, "partition", None) else ""
        print(f"  check {evaluation.check_name}{where}: {status}")
    if not result.success:
        print("Run failed: see the Dagster UI or the log above.", file=sys.stderr)
        return 1
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Materialize raw_images (and its checks) on the local Dagster instance and print what ingest did."""
    return run_job("ingest_job")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("ingest", help="ingest the image source (default: bundled demo digits) into the store")
    p.set_defaults(func=cmd_ingest)
