"""The ``labeling-assets`` command: the parser and the dispatch.

Each command module registers its own subcommands (``register(subparsers)``); they share helpers through
``cli.common`` and ``cli.runs`` only, never through this module, so the package has no import circle.

A configuration or connection error (``core.errors.SetupError``, whichever layer raised it) is printed as
one line on stderr and mapped to an exit code; ``--debug`` or ``LABELING_ASSETS_DEBUG=1`` shows the traceback.
"""

import argparse
import sys
from collections.abc import Callable, Sequence

from labeling_assets import env
from labeling_assets.cli import dataset, demo, labeler, labelstudio, runs, store
from labeling_assets.constants import data_dir
from labeling_assets.core.errors import ConfigurationError, ServiceUnavailable, SetupError, one_line

Handler = Callable[[argparse.Namespace], int]
COMMAND_MODULES = (runs, store, labelstudio, demo, dataset, labeler)
EXIT_CODES = (
    f"Exit codes: 0 success; 1 a run or step failed (its log says why); {ConfigurationError.exit_code} "
    "configuration: a setting, path, database or token is missing or wrong (also a usage error); "
    f"{ServiceUnavailable.exit_code} a service does not answer (PostgreSQL, Label Studio, MLflow). "
    "Such errors print one line naming what and where; --debug or LABELING_ASSETS_DEBUG=1 shows the traceback."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labeling-assets",
        description="Run the labeling pipeline: ingest, Label Studio, consensus, labeler quality, splits, training.",
        epilog=f"Data folder: {data_dir()} (set LABELING_ASSETS_HOME to move it). "
        f"The Dagster UI: `dagster dev` in the repository root. {EXIT_CODES}",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of a configuration or connection error (also LABELING_ASSETS_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """A subcommand registered without a description says its one-line help on ``--help`` (never an empty page)."""
    for action in parser._actions:  # argparse exposes subcommands only through its actions
        if isinstance(action, argparse._SubParsersAction):
            helps = {str(a.dest): str(a.help or "") for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    sub.description = helps[name][0].upper() + helps[name][1:] + "."
                _describe(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except SetupError as exc:
        if args.debug or env.debug():
            raise
        command = " ".join(part for part in (args.command, getattr(args, "action", None)) if part)
        print(f"labeling-assets {command}: {one_line(str(exc), 400)}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
