"""scripts/demo --severity / --self-confidence (docs/answer_fields.md): refused in one line where the crowd that
plays the demo would not answer the extra fields."""

from pathlib import Path

import pytest

from labeling_assets.cli.main import main


@pytest.mark.parametrize("extra", [["--task", "boxes"], ["--serve"]])
def test_the_demo_refuses_severity_where_its_crowd_would_not_answer_it(
    extra: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path))
    assert main(["demo", "--severity", *extra]) == 2
    assert "--severity and --self-confidence are for the single-label demo" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
