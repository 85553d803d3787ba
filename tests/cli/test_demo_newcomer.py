"""A newcomer's first hour with ``scripts/demo`` (issue 26, deliver 5): bad input refused in one line, a way to
start over, and ``--serve`` on a used data folder claiming only what the daemon did."""

from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.cli import demo
from labeling_assets.cli.main import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--items", "0"], "labeling-assets demo: --items 0: queue at least 1 item"),
        (["--task", "speech", "--items", "0"], "labeling-assets demo: --items 0: queue at least 1 item"),
        (["--task", "speech", "--serve"], "labeling-assets demo --task speech: --serve is not available for speech"),
        (["--task", "speech-edits", "--sweep"], "labeling-assets demo --task speech-edits: --sweep is not available for speech"),
    ],
)
def test_options_a_demo_cannot_run_are_refused_in_one_line_before_anything_starts(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path))
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [message]
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_fresh_empties_a_used_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "ab.png").write_bytes(b"png")
    (data / "labels.db").write_bytes(b"db")
    assert demo.start_over(data) is None
    assert data.is_dir() and list(data.iterdir()) == []


def test_fresh_refuses_a_folder_the_project_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("mine")
    refused = demo.start_over(tmp_path)
    assert refused is not None and "does not look like a labeling-assets data folder" in refused
    assert (tmp_path / "thesis.tex").read_text() == "mine"


def test_a_failed_step_and_the_end_of_the_demo_say_how_to_go_on() -> None:
    assert demo.RECOVER == "scripts/demo --fresh"
    assert "source scripts/setup.sh" in demo.NEW_SHELL_HINT and "dagster" in demo.NEW_SHELL_HINT


@pytest.mark.slow
def test_serve_on_a_used_data_folder_lists_only_the_runs_and_the_champion_made_after_it_started(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 26: --serve said every run was the daemon's and "the loop trained it by itself" for runs and a
    champion made by hand in an earlier demo."""

    @dg.asset
    def by_hand() -> None:
        return None

    with dg.instance_for_test() as instance:
        dg.materialize([by_hand], instance=instance)  # an earlier demo's run
        seen = demo.earlier_runs()
        assert len(seen) == 1
        demo._print_run_changes(seen, started=0.0)
        assert "run " not in capsys.readouterr().out
        dg.materialize([by_hand], instance=instance)  # a run made while serving is listed (and says who made it)
        demo._print_run_changes(seen, started=0.0)
        assert "by hand" in capsys.readouterr().out
    assert demo.new_champion("digits/3", "digits/3") is None  # already the champion when --serve started
    assert demo.new_champion("digits/3", "digits/4") == "digits/4" and demo.new_champion(None, "digits/1") == "digits/1"
