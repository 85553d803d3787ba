"""A real Label Studio serving a real data folder, and a real headless Chromium to use it as a person does.

The browser and its driver are Debian's ``chromium`` and ``chromium-driver`` (scripts/test installs both);
Selenium is given their paths and kept offline, so nothing is downloaded at run time. A missing browser
or Label Studio is a failure that names the fix, never a skip: CI has both.
"""

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

from labeling_assets.local import labelstudio as server
from labeling_assets.local.labelstudio_accounts import add_user
from tests.labelstudio_server import LabelStudioServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@dataclass(frozen=True)
class Labeler:
    """A person with an account (``labeling-assets labelstudio add-user``) who logs in through Label Studio's form."""

    email: str
    password: str = field(repr=False)  # pytest may print the fixture: never the password
    user_id: int

    def session(self, url: str) -> requests.Session:
        """A logged-in HTTP session (the login form, CSRF token included)."""
        http = requests.Session()
        http.get(f"{url}/user/login/", timeout=30).raise_for_status()
        resp = http.post(
            f"{url}/user/login/",
            data={
                "email": self.email,
                "password": self.password,
                "csrfmiddlewaretoken": http.cookies["csrftoken"],
            },
            headers={"Referer": f"{url}/user/login/"},
            timeout=30,
        )
        assert resp.ok and "sessionid" in http.cookies, (
            f"{self.email} could not log in: HTTP {resp.status_code}"
        )
        return http


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    if not server.is_installed():
        pytest.fail(
            f"Label Studio is not installed at {server.ls_venv()}: run scripts/install_label_studio.sh"
        )
    root = tmp_path_factory.mktemp("browser-labelstudio")
    # It serves the raw store of files_root, the project data folder of the test (its document root: files_root/served).
    handle = LabelStudioServer(server.ServerPaths(root / "labelstudio"), server.free_port(), root / "data")
    handle.files_root.mkdir()
    server.start_fresh(handle.paths, port=handle.port, data_folder=handle.files_root)
    try:
        yield handle
    finally:
        server.stop(handle.paths)


def sign_up(ls: LabelStudioServer, email: str) -> Labeler:
    """An account made as a team makes one: sign-up is by invite only, so the admin runs ``add-user`` (the
    invite-link sign-up with a one-time password) and hands the password over."""
    account = add_user(ls.client(), email, "annotator")
    return Labeler(email=account.email, password=account.password, user_id=account.user_id)


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: `apt-get install chromium chromium-driver` (scripts/test does it)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")  # never share a profile with another Chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver or a browser
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go: $LABELING_ASSETS_TEST_ARTIFACTS, else tests/artifacts/ (git-ignored)."""
    folder = Path(os.environ.get("LABELING_ASSETS_TEST_ARTIFACTS") or Path(__file__).parents[1] / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
