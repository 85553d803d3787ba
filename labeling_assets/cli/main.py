"""The ``labeling-assets`` command: the parser and the dispatch.

Each command module registers its own subcommands (``register(subparsers)``); they share helpers through
``cli.common`` and ``cli.runs`` only, never through this module, so the package has no import circle.

A configuration or connection error (``core.errors.SetupError``, whichever layer raised it) is printed as
one line on stderr and mapped to an exit code; any other exception is one line too (its message, the file an
``OSError`` names, its class), exit 1. ``--debug`` or ``LABELING_ASSETS_DEBUG=1`` shows the traceback.
"""

import argparse
import sys
from collections.abc import Callable, Sequence

from labeling_assets import env
from labeling_assets.cli import dataset, demo, item, labeler, labelstudio, runs, store, sweep, webhooks
from labeling_assets.core.errors import (
    ConfigurationError,
    ServiceUnavailable,
    SetupError,
    hide_url_passwords,
    one_line,
    unexpected_line,
)
from labeling_assets.env import data_dir

Handler = Callable[[argparse.Namespace], int]
COMMAND_MODULES = (runs, store, labelstudio, demo, dataset, item, labeler, webhooks, sweep)
EXIT_CODES = (
    f"Exit codes: 0 success; 1 a run or step failed (its log says why); {ConfigurationError.exit_code} "
    "configuration: a setting, path, database or token is missing or wrong (also a usage error); "
    f"{ServiceUnavailable.exit_code} a service does not answer (PostgreSQL, Label Studio, MLflow). "
    "Every error prints one line naming what and where; --debug or LABELING_ASSETS_DEBUG=1 shows the traceback."
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
    if args.debug:
        env.set_debug()  # runs executed by this command print their traces too
    command = " ".join(part for part in (args.command, getattr(args, "action", None)) if part)
    # The error boundary of every command: one line naming the cause, never a trace unless asked for.
    try:
        return handler(args)
    except SetupError as exc:
        if env.debug():
            raise
        print(f"labeling-assets {command}: {one_line(hide_url_passwords(str(exc)), 400)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"labeling-assets {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a cause no layer explained: still one line, with the way to the trace
        if env.debug():
            raise
        print(f"labeling-assets {command}: {unexpected_line(exc)}; --debug shows the trace", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
