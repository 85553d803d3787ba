"""A real Label Studio for the integration tests: started once per session, torn down at the end.

``label_studio`` (registered in tests/conftest.py, so one server serves every folder) starts the server through the project's own ``labeling_assets.local.labelstudio`` in a
fresh data folder on a free port. It skips only when Label Studio is not installed (CI installs it via
scripts/setup.sh -> scripts/install_label_studio.sh). Reuse it in any test: ``label_studio.client()``
is an admin client, ``label_studio.resource(title)`` a LabelStudioResource for a project title, and
``label_studio.stop()`` / ``label_studio.start()`` take the server down and bring it back (same URL).
``start_server(data_dir)`` starts another one where a data folder's own local server lives.
"""

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labeling_assets.local import labelstudio as server
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource


@dataclass
class LabelStudioServer:
    paths: server.ServerPaths
    port: int
    files_root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return server.read_token(self.paths)

    def client(self) -> LabelStudioClient:
        return LabelStudioClient(self.url, self.token)

    def resource(self, project_title: str) -> LabelStudioResource:
        return LabelStudioResource(url=self.url, api_key=self.token, project_title=project_title)

    def start(self) -> None:
        server.start(self.paths, port=self.port, local_files_root=self.files_root)

    def stop(self) -> None:
        server.stop(self.paths)


def start_server(data_dir: Path) -> LabelStudioServer:
    """A fresh server of the data folder ``data_dir`` (under ``<data_dir>/labelstudio``, where
    ``labeling-assets labelstudio start`` puts it) on a free port; skips when Label Studio is not installed."""
    if not server.is_installed():
        pytest.skip(
            f"Label Studio is not installed at {server.ls_venv()} (run scripts/install_label_studio.sh "
            "or set LABEL_STUDIO_VENV)"
        )
    handle = LabelStudioServer(
        paths=server.ServerPaths(data_dir / "labelstudio"), port=server.free_port(), files_root=data_dir
    )
    # A copy of a migrated template: a fresh server in seconds instead of a minute of migrations.
    server.start_fresh(handle.paths, port=handle.port, local_files_root=handle.files_root)
    return handle


@pytest.fixture(scope="session")
def label_studio() -> Iterator[LabelStudioServer]:
    handle = start_server(Path(tempfile.mkdtemp(prefix="labelstudio-test-")))
    try:
        yield handle
    finally:
        handle.stop()
