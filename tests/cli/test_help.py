"""Every command and subcommand of ``labeling-assets`` answers ``--help``.

The argparse tree is walked, so a new command is covered the day it is registered.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labeling_assets.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the tree (``()`` is the top level), depth first."""
    paths = [prefix]
    for action in parser._actions:  # argparse exposes subcommands only through its actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.extend(command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = command_paths(build_parser())


def test_the_walk_finds_every_command_and_nested_subcommand() -> None:
    tops = {path[0] for path in COMMANDS if path}
    assert {"ingest", "store", "labelstudio", "simulate-crowd", "demo"} <= tops
    assert ("labelstudio", "start") in COMMANDS and ("labelstudio", "collect") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "labeling-assets")
def test_help_exits_0_and_its_usage_names_the_command(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out.splitlines()[0]
    assert usage.startswith(f"usage: {' '.join(('labeling-assets', *path))}")


@pytest.mark.parametrize("path", [p for p in COMMANDS if p], ids=lambda path: " ".join(path))
def test_help_says_what_the_command_does(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 26: `labeling-assets ingest --help` printed a usage line and `-h` only."""
    with pytest.raises(SystemExit):
        main([*path, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1] if "\n\n" in out else ""
    assert description.strip() and not description.lstrip().startswith(("options:", "positional arguments:")), out


def test_ingest_help_names_its_source_and_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    assert "LABELING_ASSETS_IMAGE_SOURCE" in out and "quarantined" in out


def test_an_unknown_command_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_the_installed_console_script_runs() -> None:
    script = shutil.which("labeling-assets", path=str(Path(sys.executable).parent))
    assert script, "labeling-assets is not installed next to this Python: pip install -e ."
    proc = subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: labeling-assets")
    assert "demo" in proc.stdout and "labelstudio" in proc.stdout
