"""``labeling-assets dataset publish V --dvc REPO``: a version's export in a git + DVC repository, pushed and tagged.

Real git and the real ``dvc`` (scripts/install_dvc.sh's venv, or ``$LABELING_ASSETS_DVC``), no mocks: the round trip
publishes from a small SQLite store into a new repository with a local-folder DVC remote, clones it afresh, checks out
the tag, ``dvc pull``s and compares every byte with the export. Each error is one line on stderr, exit 2, and leaves
the repository as it was (same commit, clean tree, no tag, no ``.dvc`` folder it did not have).
"""

import datetime as dt
import hashlib
import io
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from labeling_assets.core.dataset import dvc
from labeling_assets.core.dataset.splits import manifest_to_json, manifest_version
from labeling_assets.core.store import history
from labeling_assets.core.store.dataset_versions import record_dataset_version
from labeling_assets.core.store.schema import LabelStore, items_table
from tests.forked_cli import ForkedCli

# Every case starts git and dvc (a fresh Python that imports DVC: about a second a call).
pytestmark = pytest.mark.slow

CLASSES = ("cat", "dog")
TAG = "gold-1"


def _dvc() -> str:
    try:
        return dvc.find_dvc(os.environ.get(dvc.DVC_ENV), Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"))
    except dvc.PublishError as exc:
        pytest.fail(str(exc))


def _run(*args: str, cwd: Path) -> str:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1",  # DVC's site cache stays in the test's folder
                               "DVC_SITE_CACHE_DIR": str(cwd.parent / "dvc-site-cache")})  # fmt: skip
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def published(tmp_path: Path, forked_cli: ForkedCli) -> "Publisher":
    return Publisher(tmp_path, forked_cli)


class Publisher:
    """A SQLite store holding one dataset version (6 real PNG items, tagged ``gold-1``) and the command's settings."""

    def __init__(self, tmp: Path, forks: ForkedCli):
        self.tmp, self.forks, self.data = tmp, forks, tmp / "data"
        raw = self.data / "raw"
        raw.mkdir(parents=True)
        self.store = LabelStore(f"sqlite:///{tmp / 'store.db'}")
        self.store.ensure_schema()
        now, ids = dt.datetime.now(dt.UTC), []
        for k in range(6):
            buffer = io.BytesIO()
            Image.new("L", (8, 8), color=30 * k).save(buffer, format="PNG")
            data = buffer.getvalue()
            item = hashlib.sha256(data).hexdigest()
            (raw / f"{item}.png").write_bytes(data)
            with self.store.begin() as conn:
                conn.execute(items_table.insert().values(item_id=item, uri=str(raw / f"{item}.png"),
                                                         source_path=f"/src/{k}.png", n_bytes=len(data),
                                                         ingested_at=now, status="active"))  # fmt: skip
            ids.append(item)
        self.ids = ids
        self.version = self.add_version([CLASSES[k % 2] for k in range(6)], new=True)
        history.tag_version(self.store, self.version, TAG, None)

    def add_version(self, labels: list[str], *, new: bool = False) -> str:
        """A dataset version of the six items with these labels (frozen splits: 4 train, 1 val, 1 test)."""
        manifest = pd.DataFrame({"item_id": self.ids, "label": labels,
                                 "split": ["train", "train", "train", "train", "val", "test"]})  # fmt: skip
        version = manifest_version(manifest)
        record_dataset_version(self.store, manifest.assign(is_new=new), version, class_weights={},
                               manifest_json=manifest_to_json(manifest, previous_version=None, extra={}),
                               card=f"# A small dataset: {labels.count('cat')} cats\n")  # fmt: skip
        return version

    def cli(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_", "LABELING_ASSETS_", "MLFLOW_"))}
        env.update(LABELING_ASSETS_HOME=str(self.data), DAGSTER_HOME=str(self.tmp), LABEL_STORE_URL=self.store.url,
                   LABELING_ASSETS_CLASSES=",".join(CLASSES), LABELING_ASSETS_DVC=_dvc())  # fmt: skip
        env.update(settings)
        return self.forks.run(["dataset", "publish", *args], env=env, cwd=self.tmp, timeout=300)

    def git_repo(self, name: str) -> Path:
        """A git repository with one commit (a README)."""
        repo = self.tmp / name
        repo.mkdir()
        _run("git", "init", "-q", cwd=repo)
        (repo / "README.md").write_text("ours\n")
        _run("git", "add", "README.md", cwd=repo)
        _run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start", cwd=repo)
        return repo


def state(repo: Path) -> tuple[str, str, str, list[str]]:
    """What must not change when a publish fails: HEAD, the status, the tags, the top-level entries."""
    return (_run("git", "rev-parse", "HEAD", cwd=repo), _run("git", "status", "--porcelain", "--ignored", cwd=repo),
            _run("git", "tag", cwd=repo), sorted(p.name for p in repo.iterdir()))  # fmt: skip


def assert_one_line(proc: subprocess.CompletedProcess[str], *names: str, secret: str | None = None) -> None:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2, lines
    assert len(lines) == 1 and lines[0].startswith("labeling-assets: "), lines
    for name in names:
        assert name in lines[0], (name, lines[0])
    if secret:
        assert secret not in proc.stdout + proc.stderr


def test_dvc_pull_at_the_tag_in_a_fresh_clone_gives_back_the_export_byte_for_byte(published: Publisher) -> None:
    repo = published.tmp / "datasets-repo"
    # Relative paths mean the folder the command is typed in (its cwd: tmp), also for the remote DVC records.
    proc = published.cli(TAG, "--dvc", "datasets-repo", "--remote-url", "dvc-remote")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = published.version
    assert f"published dataset version {version}" in proc.stdout
    export = published.data / "exports" / version
    expected = _files(export)
    assert {"dataset.jsonl", "dataset.csv", "dataset.parquet", "README.md"} <= set(expected)
    assert any(name.startswith("imagefolder/") and name.endswith(".png") for name in expected)
    assert _run("git", "status", "--porcelain", cwd=repo) == ""
    assert set(_run("git", "tag", cwd=repo).split()) == {version, TAG}

    # Both tags name the commit.
    assert _run("git", "rev-list", "-n", "1", version, cwd=repo) == _run("git", "rev-list", "-n", "1", TAG, cwd=repo)

    again = published.cli(version, "--dvc", str(repo))
    assert again.returncode == 0 and "already published" in again.stdout, again.stdout + again.stderr
    # A later version joins the same repository, pushed to the remote it now names.
    later = published.add_version(["cat"] * 6)
    proc = published.cli(later, "--dvc", str(repo), "--remote", "storage")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(_run("git", "tag", cwd=repo).split()) == {version, TAG, later}

    clone = published.tmp / "clone"
    _run("git", "clone", "-q", str(repo), str(clone), cwd=published.tmp)
    _run("git", "checkout", "-q", TAG, cwd=clone)
    assert sorted(p.name for p in (clone / "datasets").iterdir()) == [".gitignore", f"{version}.dvc"]  # no files in git
    _run(_dvc(), "pull", "-q", cwd=clone)
    assert _files(clone / "datasets" / version) == expected
    _run("git", "checkout", "-q", later, cwd=clone)
    _run(_dvc(), "pull", "-q", cwd=clone)
    assert _files(clone / "datasets" / later) == _files(published.data / "exports" / later) != expected
    assert _files(clone / "datasets" / version) == expected  # the older version stays in the tree
    assert (published.data / "cache" / "dvc").is_dir()  # DVC's site cache in the data folder, not /var/tmp/dvc


def test_an_unknown_version_is_one_line_and_creates_nothing(published: Publisher) -> None:
    repo = published.tmp / "never"
    assert_one_line(published.cli("nosuchversion", "--dvc", str(repo), "--remote-url", "/tmp/x"), "nosuchversion")
    assert not repo.exists()


def test_a_folder_that_is_not_a_git_repository_is_refused_untouched(published: Publisher) -> None:
    folder = published.tmp / "photos"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    proc = published.cli(TAG, "--dvc", str(folder), "--remote-url", str(published.tmp / "remote"))
    assert_one_line(proc, str(folder), "not a git repository")
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]


def test_a_dirty_repository_is_refused_as_it_was(published: Publisher) -> None:
    repo = published.git_repo("dirty")
    (repo / "README.md").write_text("changed\n")
    before = state(repo)
    assert_one_line(published.cli(TAG, "--dvc", str(repo), "--remote-url", str(published.tmp / "r")), "uncommitted")
    assert state(repo) == before


def test_a_failed_push_leaves_no_commit_no_tag_and_no_dvc_folder(published: Publisher) -> None:
    repo = published.git_repo("repo")
    blocker = published.tmp / "a-file"
    blocker.write_text("a remote cannot live under a file\n")
    before = state(repo)
    proc = published.cli(TAG, "--dvc", str(repo), "--remote-url", str(blocker / "remote"))
    assert_one_line(proc, "dvc push", "Not a directory")  # dvc's own reason
    assert state(repo) == before


def test_a_remote_url_with_a_password_is_refused_and_never_printed(published: Publisher) -> None:
    repo = published.git_repo("repo")
    before = state(repo)
    proc = published.cli(TAG, "--dvc", str(repo), "--remote-url", "https://ann:s3cret-pw@dvc.example.org/store")
    assert_one_line(proc, "https://ann:***@dvc.example.org/store", secret="s3cret-pw")
    assert state(repo) == before


def test_a_missing_dvc_says_how_to_install_it(published: Publisher, tmp_path: Path) -> None:
    proc = published.cli(TAG, "--dvc", str(tmp_path / "r"), LABELING_ASSETS_DVC=str(tmp_path / "no-dvc"))
    assert_one_line(proc, "scripts/install_dvc.sh")
    assert not (tmp_path / "r").exists()
