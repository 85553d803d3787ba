"""The multi-label demo keeps its own Dagster instance, also when scripts/setup.sh set DAGSTER_HOME."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeling_assets.cli.demo_multilabel import use_multi_label_environment
from labeling_assets.constants import REPO_ROOT
from labeling_assets.local.instance_storage import in_data_folder


@pytest.fixture
def fresh_environment(tmp_path: Path) -> Iterator[Path]:
    # The demo sets variables that were unset before (monkeypatch.delenv of an absent one restores nothing):
    # the whole environment comes back afterwards, or a leaked task type turns every later test multi-label.
    saved = dict(os.environ)
    os.environ["LABELING_ASSETS_HOME"] = str(tmp_path)
    for name in ("LABELING_ASSETS_TASK_TYPE", "LABELING_ASSETS_IMAGE_SOURCE", "DAGSTER_HOME"):
        os.environ.pop(name, None)
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("dagster_home", [None, str(REPO_ROOT)])
@pytest.mark.slow
def test_the_multi_label_demo_never_shares_the_single_label_demos_instance(
    fresh_environment: Path, monkeypatch: pytest.MonkeyPatch, dagster_home: str | None
) -> None:
    if dagster_home is not None:  # what scripts/setup.sh exports
        monkeypatch.setenv("DAGSTER_HOME", dagster_home)
    use_multi_label_environment()
    home = Path(os.environ["DAGSTER_HOME"])
    assert home == fresh_environment / "multi-label" / "dagster_home"
    # Its storage lives in the multi-label data folder, not in the repository's data/dagster: dagster.yaml's
    # relative base_dirs are resolved against the data folder the demo switched to.
    assert "base_dir: dagster/storage" in (home / "dagster.yaml").read_text()
    stored = in_data_folder({"base_dir": "dagster/storage"})["base_dir"]
    assert stored == str(fresh_environment / "multi-label" / "dagster" / "storage")


@pytest.mark.slow
def test_an_instance_the_user_chose_is_kept(fresh_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = fresh_environment / "my_instance"
    monkeypatch.setenv("DAGSTER_HOME", str(mine))
    use_multi_label_environment()
    assert os.environ["DAGSTER_HOME"] == str(mine)
