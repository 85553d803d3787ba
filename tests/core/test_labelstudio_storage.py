"""Which folder Label Studio must register so that it serves the task images (pure path rules)."""

from pathlib import Path

import pytest

from labeling_assets.core.labelstudio.storage import (
    StorageFolderError,
    covering_storage,
    covers,
    link_raw_store,
    server_folder,
)


def test_on_one_machine_the_server_sees_the_image_folder_through_the_served_root(tmp_path: Path) -> None:
    assert server_folder(tmp_path / "raw", tmp_path) == str(tmp_path / "served" / "raw")


def test_the_served_root_holds_only_a_link_to_the_raw_store(tmp_path: Path) -> None:
    root = link_raw_store(tmp_path)
    assert root == tmp_path / "served" and [p.name for p in root.iterdir()] == ["raw"]
    assert (root / "raw").is_symlink() and (root / "raw").resolve() == (tmp_path / "raw").resolve()
    assert link_raw_store(tmp_path) == root  # idempotent
    (root / "labels.db").write_bytes(b"")  # anything else there would be served to every account
    with pytest.raises(StorageFolderError, match=r"must hold only the link raw -> \.\./raw: move labels.db out"):
        link_raw_store(tmp_path)


def test_in_the_docker_stack_the_folder_moves_under_the_servers_document_root() -> None:
    folder = server_folder(Path("/opt/dagster/data/raw"), Path("/opt/dagster/data"), "/label-studio/files")
    assert folder == "/label-studio/files/raw"


def test_the_data_folder_itself_or_a_folder_outside_it_cannot_be_served(tmp_path: Path) -> None:
    with pytest.raises(StorageFolderError, match="subfolder"):
        server_folder(tmp_path, tmp_path)  # Label Studio refuses a storage equal to its document root
    with pytest.raises(StorageFolderError, match="not inside"):
        server_folder(tmp_path.parent / "elsewhere", tmp_path)


def test_a_storage_serves_its_folder_and_subfolders_but_not_a_sibling_that_shares_a_prefix() -> None:
    assert covers("/data/raw", "/data/raw") and covers("/data/raw/", "/data/raw/ab")
    assert not covers("/data/raw", "/data/raw-private") and not covers("/data/raw/ab", "/data/raw")
    storages = [{"id": 4, "path": "/data/other"}, {"id": 7, "path": "/data/raw"}, {"id": 9, "path": None}]
    assert covering_storage(storages, "/data/raw") == 7
    assert covering_storage(storages, "/data/quarantine") is None
