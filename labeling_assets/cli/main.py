"""The ``labeling-assets`` command: the parser and the dispatch.

Each command module registers its own subcommands (``register(subparsers)``); they share helpers through
``cli.common`` and ``cli.runs`` only, never through this module, so the package has no import circle.
"""

import argparse
import sys
from collections.abc import Callable, Sequence

from labeling_assets.cli import demo, labelstudio, runs, store
from labeling_assets.constants import data_dir

Handler = Callable[[argparse.Namespace], int]
COMMAND_MODULES = (runs, store, labelstudio, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labeling-assets",
        description="Run the labeling pipeline: ingest, Label Studio, consensus, labeler quality, splits, training.",
        epilog=f"Data folder: {data_dir()} (set LABELING_ASSETS_HOME to move it). "
        "The Dagster UI: `dagster dev` in the repository root.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
