"""Every failure of a command or of a run it executes is one line naming the cause (issue 28, finding 10).

The CLI's error boundary covers every exception, not only the setup errors the layers below name: an
exception nobody explained still prints one line (its message, the file an ``OSError`` names, its class) and
exits 1, and a run's step that failed that way is one line in the run's summary, not Dagster's stack trace.
``--debug`` (or ``LABELING_ASSETS_DEBUG=1``) brings the traces back. Each case runs the installed command
in a subprocess, as a person would, with the fault planted in a real data folder.
"""

from pathlib import Path

import pytest
from PIL import Image

from tests.cli.test_errors import _commands_fork_from_one_python, cli, said  # noqa: F401 (its autouse fixture)

pytestmark = pytest.mark.slow  # the installed command, in a fresh Python


def source_with_one_image(tmp_path: Path) -> Path:
    source = tmp_path / "photos"
    source.mkdir()
    Image.new("L", (8, 8), color=3).save(source / "a.png")
    return source


def test_a_step_that_fails_unexpectedly_is_one_line_naming_the_file_and_debug_shows_the_trace(tmp_path: Path) -> None:
    source = source_with_one_image(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "raw").write_text("a file where the raw image store should be")

    proc = cli(tmp_path, "ingest", LABELING_ASSETS_IMAGE_SOURCE=str(source))
    lines = [line for line in said(proc) if " - INFO - " not in line]
    assert proc.returncode == 1, "\n".join(said(proc))
    assert "Traceback" not in proc.stderr and "Stack Trace" not in proc.stderr, proc.stderr
    assert len(lines) == 2, "\n".join(lines)
    assert lines[0].startswith("raw_images failed: NotADirectoryError: [Errno 20] Not a directory:"), lines[0]
    assert str(data / "raw") in lines[0]
    assert lines[1].startswith("Run ") and lines[1].endswith("; --debug shows the traces here."), lines[1]

    debug = cli(tmp_path, "--debug", "ingest", LABELING_ASSETS_IMAGE_SOURCE=str(source))
    assert debug.returncode == 1 and "Stack Trace" in debug.stderr


def test_a_command_that_fails_unexpectedly_is_one_line_naming_the_file_and_debug_shows_the_trace(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")

    proc = cli(tmp_path, "store", "backup", "--folder", str(blocker))
    assert proc.returncode == 1
    assert said(proc) == [
        f"labeling-assets store backup: File exists: {blocker} (FileExistsError); --debug shows the trace"
    ]

    debug = cli(tmp_path, "--debug", "store", "backup", "--folder", str(blocker))
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
