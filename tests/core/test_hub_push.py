"""Pushing a text project's Hugging Face export to the Hub (issue 31): an option of dataset_export that is off by
default; when asked for, any failure is one clear error. No test reaches the real Hub: the failing push goes to a
local port nothing listens on (the Hub endpoint is datasets' own setting, HF_ENDPOINT)."""

import socket
from pathlib import Path

import pytest

from labeling_assets.assets.dataset import DatasetExportConfig
from labeling_assets.core.dataset.hub import HubPushError, push_dataset_dict


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    from datasets import Dataset, DatasetDict

    path = tmp_path / "hf_dataset"
    DatasetDict({"train": Dataset.from_dict({"id": ["a"], "text": ["Ada"]})}).save_to_disk(str(path))
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_push_to_hub_is_off_by_default_and_a_repo_it_makes_is_private() -> None:
    config = DatasetExportConfig()
    assert config.push_to_hub == "" and config.hub_private is True


def test_a_repo_id_that_is_not_owner_slash_name_is_refused_before_any_network_call(saved: Path) -> None:
    for bad in ("dataset", "a/b/c", "/name", "owner/", "owner/na me"):
        with pytest.raises(HubPushError, match="owner/name"):
            push_dataset_dict(saved, bad)


def test_a_folder_without_a_saved_datasetdict_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HubPushError, match="nothing to push"):
        push_dataset_dict(tmp_path / "missing", "owner/name")


def test_a_push_that_cannot_reach_the_hub_is_one_error_naming_the_repo(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(HubPushError, match="to the Hub dataset owner/name failed") as raised:
        push_dataset_dict(saved, "owner/name", token="hf_not_a_token")
    assert "\n" not in str(raised.value)
