"""The ``labeling-assets`` command.

Subcommands are registered by their modules (``register(subparsers)``) so each stage owns its CLI.
"""

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from labeling_assets.constants import REPO_ROOT, data_dir

Handler = Callable[[argparse.Namespace], int]


def _instance_env() -> None:
    """Runs launched from the CLI land in the same instance as ``dagster dev`` (repo dagster.yaml)."""
    os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT))
    os.chdir(REPO_ROOT)  # dagster.yaml uses paths relative to the repository root
    from labeling_assets.local.labelstudio import export_local_env

    export_local_env()  # jobs that talk to Label Studio find the local server's URL and token


def run_job(job_name: str, **kwargs: object) -> int:
    """Execute a job of the definitions on the local Dagster instance; print its materializations."""
    _instance_env()
    import dagster as dg

    from labeling_assets.definitions import defs

    # Progress at INFO on the console; the step-by-step DEBUG events stay in the UI's run log.
    run_config = dict(kwargs.pop("run_config", None) or {})  # type: ignore[call-overload]
    run_config.setdefault("loggers", {"console": {"config": {"log_level": "INFO"}}})
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config, **kwargs  # type: ignore[arg-type]
        )
        return _print_materializations(result)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Materialize raw_images (and its checks) on the local Dagster instance and print what ingest did."""
    return run_job("ingest_job")


def _print_materializations(result: "object") -> int:
    import dagster as dg

    assert isinstance(result, dg.ExecuteInProcessResult)
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


def cmd_store(args: argparse.Namespace) -> int:
    """Create or migrate the label store and print its schema version."""
    from labeling_assets.core.store.schema import SCHEMA_VERSION, LabelStore
    from labeling_assets.env import label_store_url

    store = LabelStore(label_store_url())
    applied = store.migrate() if args.action == "migrate" else []
    print(f"label store {store!r}: schema version {store.schema_version()} (code expects {SCHEMA_VERSION})")
    if applied:
        print(f"applied migrations: {applied}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labeling-assets",
        description="Run the labeling pipeline: ingest, Label Studio, consensus, labeler quality, splits, training.",
        epilog=f"Data folder: {data_dir()} (set LABELING_ASSETS_HOME to move it). "
        "The Dagster UI: `dagster dev` in the repository root.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="ingest the image source (default: bundled demo digits) into the store")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("store", help="create/migrate the label store or show its schema version")
    p.add_argument("action", choices=["migrate", "status"], help="migrate: apply pending migrations")
    p.set_defaults(func=cmd_store)

    for register in _registrars():
        register(sub)
    return parser


def _registrars() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    """Subcommands owned by the stage modules."""
    from labeling_assets.cli import demo
    from labeling_assets.cli import labelstudio as cli_labelstudio

    return [demo.register, cli_labelstudio.register]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
