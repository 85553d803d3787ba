"""A labeler cannot read the admin's token, the admin password, Label Studio's database or a backup of the store
through Label Studio's local-files endpoint (issue 28, finding 1).

The attack, on a real Label Studio started for a data folder the way ``labeling-assets labelstudio start`` starts
it: an account made as ``labelstudio add-user`` makes it logs in, creates a project (Community has no roles: any
member may), registers local-files storages on the folders that hold those files, and asks
``/data/local-files/?d=...`` for each file under every path a person could guess, ``..`` included. Label Studio
serves only what lies under its ``LOCAL_FILES_DOCUMENT_ROOT`` (it joins and normalises ``d`` lexically), so the
defence is what that root holds: only the raw image store. The task images still reach the labeler.
"""

import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from labeling_assets.core.store.backup import backup_store
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.local import labelstudio as server
from labeling_assets.local.labelstudio_accounts import add_user
from labeling_assets.local.labelstudio_files import default_paths, read_token
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource

# Each test starts a Label Studio of its own (tests/server_markers.py checks the marker).
pytestmark = pytest.mark.labelstudio


@dataclass
class Started:
    data: Path
    paths: server.ServerPaths
    url: str

    def admin(self) -> LabelStudioClient:
        return LabelStudioClient(self.url, read_token(self.paths))


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Started]:
    """A data folder with a label store and a backup of it, and its local Label Studio started with the
    defaults ``labelstudio start`` uses (the data folder from ``$LABELING_ASSETS_HOME``, nothing passed)."""
    if not server.is_installed():
        pytest.skip(f"Label Studio is not installed at {server.ls_venv()}")
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(data))
    store = LabelStore(f"sqlite:///{data / 'labels.db'}")
    store.migrate()
    backup_store(store, data / "backups", keep=2)
    store.dispose()
    (data / "raw" / "ab").mkdir(parents=True)
    (data / "raw" / "ab" / "ab12.png").write_bytes(b"\x89PNG a task image")
    paths = default_paths()
    info = server.start_fresh(paths, port=server.free_port())
    try:
        yield Started(data=data, paths=paths, url=info.url)
    finally:
        server.stop(paths)


def labeler_session(started: Started) -> requests.Session:
    """A labeler's browser session: the account ``labelstudio add-user`` makes, logged in with its password."""
    account = add_user(started.admin(), f"labeler-{uuid.uuid4().hex[:8]}@example.org", "annotator")
    http = requests.Session()
    http.get(f"{started.url}/user/login/", timeout=30).raise_for_status()
    login = http.post(
        f"{started.url}/user/login/",
        data={"email": account.email, "password": account.password, "csrfmiddlewaretoken": http.cookies["csrftoken"]},
        headers={"Referer": f"{started.url}/user/login/"},
        timeout=30,
        allow_redirects=False,
    )
    assert login.status_code == 302, "the labeler could not log in"
    return http


def api(http: requests.Session, url: str, method: str, path: str, **kwargs: object) -> requests.Response:
    """A call to the API as the logged-in labeler (session cookie and CSRF token, as the web UI sends them)."""
    headers = {"X-CSRFToken": http.cookies.get("csrftoken", ""), "Referer": f"{url}/"}
    return http.request(method, f"{url}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def guesses(data: Path, target: Path) -> list[str]:
    """Every ``d=`` a person could try for ``target``: relative to the data folder, with ``..`` climbing out of
    any folder Label Studio might serve, and the absolute path."""
    relative = target.relative_to(data).as_posix()
    return [relative, f"raw/../{relative}", f"../{relative}", f"raw/../../{relative}", f"../../{data.name}/{relative}", str(target)]


def test_a_labeler_cannot_read_the_token_password_database_or_backups_through_local_files(started: Started) -> None:
    data, paths = started.data, started.paths
    backup = next(p for p in (data / "backups").iterdir() if p.name.endswith(".gz"))
    secrets = {
        paths.token_file: paths.token_file.read_bytes().strip(),
        paths.password_file: paths.password_file.read_bytes().strip(),
        paths.ls_data / "label_studio.sqlite3": b"SQLite format 3",
        data / "labels.db": b"SQLite format 3",
        backup: backup.read_bytes()[:64],
    }
    for path in secrets:
        assert path.is_file(), path

    http = labeler_session(started)
    project = api(http, started.url, "POST", "/api/projects/", json={"title": f"mine-{uuid.uuid4().hex[:6]}"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    for folder in (paths.root, paths.ls_data, data / "backups", data, data / "raw" / ".." / "labelstudio"):
        api(http, started.url, "POST", "/api/storages/localfiles/",
            json={"project": project_id, "path": str(folder), "title": "mine", "use_blob_urls": True})  # fmt: skip

    answers = {}
    for target, secret in secrets.items():
        for guess in guesses(data, target):
            answer = http.get(f"{started.url}/data/local-files/", params={"d": guess}, timeout=30)
            answers[guess] = answer.status_code
            assert secret not in answer.content, f"{guess} served {target.name} to a labeler"
    # 404: no such file under the root, or no storage of the labeler's covers it. 500: Label Studio's answer when
    # ``d`` climbs out of its root (Django's SuspiciousFileOperation, unhandled); nothing is read either way.
    assert {guess: code for guess, code in answers.items() if code not in (400, 403, 404, 500)} == {}


def test_the_task_images_are_still_served_to_the_labeler(started: Started) -> None:
    resource = LabelStudioResource(url=started.url, api_key=read_token(started.paths), project_title="images")
    project_id = resource.get_client().ensure_project(title="images", classes=["a", "b"])
    outcome = resource.serve_images(project_id, started.data / "raw", started.data)
    assert "images served" in outcome, outcome
    http = labeler_session(started)
    answer = http.get(f"{started.url}/data/local-files/", params={"d": "raw/ab/ab12.png"}, timeout=30)
    assert answer.status_code == 200 and answer.content == b"\x89PNG a task image"


def test_label_studios_own_files_are_private_to_its_user(started: Started) -> None:
    """The token also sits in Label Studio's database: no other local user may read either."""
    paths = started.paths
    assert (paths.ls_data / "label_studio.sqlite3").is_file()
    for path in [paths.root, *paths.root.rglob("*")]:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    backups = started.data / "backups"
    for path in [backups, *backups.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
