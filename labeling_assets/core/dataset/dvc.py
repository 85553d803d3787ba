"""Publish a dataset version's export into a git + DVC repository: one ``.dvc`` file per version, pushed, tagged.

Pure logic (no Dagster); git and dvc run as subprocesses with explicit arguments (no shell). The repository gets
``datasets/<version>/`` (the export's files, kept out of git by DVC) and ``datasets/<version>.dvc`` (their hashes,
committed), and the commit is tagged with the version and its tags, so ``git checkout <tag> && dvc pull`` in a
fresh clone gives back the export byte for byte. A ``.dvc`` file per version rather than a ``dvc.yaml`` stage: a
stage's command would rebuild the export from the label store, which whoever clones the repository does not have;
the files themselves are the artifact, and each version's stays pinned by its own file and tag.

Nothing is left half done: the repository must be clean before, and any failure
(the copy, ``dvc add``, ``dvc push``, the commit, the tags) puts it back as it was (a folder this created is removed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DVC_VERSION = "3.67.1"  # scripts/install_dvc.sh installs this one into its own venv
DVC_ENV = "LABELING_ASSETS_DVC"
DATASETS_DIR = "datasets"
DEFAULT_REMOTE = "storage"
INSTALL_HINT = "scripts/install_dvc.sh (its own venv; scripts/setup.sh runs it)"
_IDENTITY = ("-c", "user.name=labeling-assets", "-c", "user.email=labeling-assets@localhost")
# The password of a URL's user part (scheme://user:password@host): never printed.
_CREDENTIALS = re.compile(r"(://[^/:@\s]*):[^@/\s]*@")


class PublishError(Exception):
    """One line a person can act on; the repository is as it was."""


@dataclass(frozen=True)
class Published:
    """What a publish did: the version's folder in the repository, the commit, the tags, the remote."""

    version: str
    path: str
    commit: str
    tags: list[str]
    remote: str  # "" when already published (nothing pushed)
    already: bool = False  # the version's tag was there: nothing new committed or pushed
    skipped_tags: list[str] = field(default_factory=list)  # store tags git does not take as tag names


def mask(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` replaced by ``***``."""
    return _CREDENTIALS.sub(r"\1:***@", text)


def find_dvc(named: str | None, cache_home: Path) -> str:
    """The dvc program: ``named`` (``$LABELING_ASSETS_DVC``), else the venv scripts/install_dvc.sh makes under
    ``cache_home`` (``$XDG_CACHE_HOME`` or ``~/.cache``), else ``dvc`` on PATH.

    Raises:
        PublishError: none of them is there (naming how to install it).
    """
    if named:
        if shutil.which(named):
            return str(shutil.which(named))
        raise PublishError(f"${DVC_ENV}={named} is not an executable dvc; install DVC with {INSTALL_HINT}")
    venv = cache_home / "labeling-assets" / f"dvc-{DVC_VERSION}" / "bin" / "dvc"
    if os.access(venv, os.X_OK):
        return str(venv)
    found = shutil.which("dvc")
    if found:
        return found
    raise PublishError(f"dvc is not installed: run {INSTALL_HINT}, or set ${DVC_ENV} to a dvc program")


def _first_error(output: str) -> str:
    """The line of a git or dvc error output that says what went wrong (masked)."""
    # dvc's -q hides its ERROR line too, so dvc runs without it; its closing support notice is no cause.
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("Having any troubles")]
    chosen = next((line for line in lines if line.startswith(("ERROR", "fatal:", "error:"))), lines[-1] if lines else "")
    return mask(chosen)


class _Repo:
    """git and dvc in one repository folder."""

    def __init__(self, path: Path, dvc: str, site_cache_dir: Path | None = None):
        self.path, self.dvc = path, dvc
        # DVC would otherwise try to send usage analytics (and wait on the network) from every command.
        self.env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
        if site_cache_dir is not None:  # DVC's own index and locks (else /var/tmp/dvc): in the data folder
            self.env.setdefault("DVC_SITE_CACHE_DIR", str(site_cache_dir))

    def run(self, program: str, *args: str, what: str) -> str:
        done = subprocess.run([program, *args], cwd=self.path, env=self.env, capture_output=True, text=True,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            raise PublishError(f"{what} failed: {_first_error(done.stderr + done.stdout) or f'exit {done.returncode}'}")
        return done.stdout

    def git(self, *args: str, what: str = "") -> str:
        return self.run("git", *args, what=what or f"git {args[0]}")

    def ok(self, *args: str) -> bool:
        return subprocess.run(["git", *args], cwd=self.path, env=self.env, capture_output=True, check=False).returncode == 0

    def dvc_(self, *args: str, what: str = "") -> str:
        return self.run(self.dvc, *args, what=what or f"dvc {args[0]}")

    def identity(self) -> tuple[str, ...]:
        """git's -c options for a commit and a tag where no user is configured (a fresh machine, CI)."""
        return () if self.ok("config", "user.email") else _IDENTITY


def _tag_names(version: str, tags: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the git tags to write: the version, then the store tags git accepts; the store tags it refuses)."""
    good, bad = [version], list[str]()
    for tag in tags:
        valid = subprocess.run(["git", "check-ref-format", f"refs/tags/{tag}"], capture_output=True, check=False)
        (good if valid.returncode == 0 and tag not in good else bad).append(tag)
    return good, bad


def _prepare(repo: Path) -> tuple[bool, bool]:
    """Make ``repo`` a git repository if it is a new or empty folder: (created the folder, ran git init)."""
    if repo.exists() and not repo.is_dir():
        raise PublishError(f"{repo} is not a folder")
    created = not repo.exists()
    try:
        repo.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create {repo}: {exc.strerror or exc}") from None
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, capture_output=True, text=True, check=False)
    if top.returncode == 0 and Path(top.stdout.strip()).resolve() == repo.resolve():
        return created, False
    if any(repo.iterdir()):
        raise PublishError(f"{repo} is not a git repository (nor an empty folder): run `git init` there first")
    done = subprocess.run(["git", "init", "-q"], cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if created:
            shutil.rmtree(repo, ignore_errors=True)
        raise PublishError(f"git init in {repo} failed: {_first_error(done.stderr)}")
    return created, True


def _remote(repo: _Repo, remote: str | None, remote_url: str | None, *, fresh: bool) -> str:
    """The DVC remote to push to, added (as the default, committed in .dvc/config) when ``remote_url`` is given.
    ``fresh``: DVC was initialised just now, so it has no remote (each dvc call costs a Python start)."""
    # `dvc config --list` (every level merged), not `dvc remote list`, which wraps a long URL to the terminal width.
    settings = "" if fresh else repo.dvc_("config", "--list")
    known = {m[1]: m[2] for m in re.finditer(r"^remote\.(.+)\.url=(.*)$", settings, re.MULTILINE)}
    if remote_url:
        name = remote or DEFAULT_REMOTE
        if name in known and known[name] != remote_url:
            raise PublishError(f"the DVC remote {name!r} already points at {mask(known[name])}: name another with --remote")
        if name not in known:
            repo.dvc_("remote", "add", "--default", name, remote_url, what=f"dvc remote add {name}")
        return name
    if remote:
        if remote not in known:
            listed = ", ".join(known) or "none"
            raise PublishError(f"the repository has no DVC remote {remote!r} (it has: {listed}); add one with --remote-url")
        return remote
    default = next((m[1] for m in re.finditer(r"^core\.remote=(.+)$", settings, re.MULTILINE)), "")
    if not default:
        raise PublishError("no DVC remote: name one with --remote NAME or add one with --remote-url URL")
    return default.strip()


def publish(
    export_dir: Path,
    repo_path: Path,
    *,
    version: str,
    tags: Sequence[str] = (),
    dvc: str,
    remote: str | None = None,
    remote_url: str | None = None,
    site_cache_dir: Path | None = None,
) -> Published:
    """Copy ``export_dir`` to ``<repo>/datasets/<version>``, ``dvc add`` and ``dvc push`` it, commit, tag.

    Raises:
        PublishError: one line; the repository is as it was (a folder this made is removed).
    """
    if not export_dir.is_dir():
        raise PublishError(f"no export of {version} at {export_dir}")
    if remote_url and urlsplit(remote_url).password:
        raise PublishError(f"the remote URL {mask(remote_url)} holds a password, which would be committed in "
                           ".dvc/config: give the URL without it and the password with `dvc remote modify --local`")  # fmt: skip
    names, skipped = _tag_names(version, tags)
    created, initialized = _prepare(repo_path)
    repo = _Repo(repo_path, dvc, site_cache_dir)
    relative = f"{DATASETS_DIR}/{version}"
    try:
        if repo.git("status", "--porcelain").strip():
            raise PublishError(f"{repo_path} has uncommitted changes: commit or stash them first")
        if repo.ok("rev-parse", "-q", "--verify", f"refs/tags/{version}"):
            return _already(repo, relative, version, names, skipped)
        taken = [n for n in names if repo.ok("rev-parse", "-q", "--verify", f"refs/tags/{n}")]
        if taken:
            raise PublishError(f"the tag {taken[0]!r} already exists in {repo_path} (at another commit)")
        target = repo_path / relative
        if target.exists():
            raise PublishError(f"{target} already exists: move it away first")
    except PublishError:
        if created or initialized:  # else nothing was touched yet (and a dirty tree is the user's work: keep it)
            _undo(repo, created=created, initialized=initialized, dvc_initialized=False, target=None)
        raise
    dvc_initialized = not (repo_path / ".dvc").is_dir()
    try:
        if dvc_initialized:
            repo.dvc_("init")
        name = _remote(repo, remote, remote_url, fresh=dvc_initialized)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(export_dir, target)  # hard-linked images become plain files; DVC caches them
        repo.dvc_("add", relative)
        repo.git("add", "-A")
        repo.dvc_("push", "-r", name, f"{relative}.dvc", what=f"dvc push to the remote {name!r}")
        message = f"dataset {version}" + (f" (tags: {', '.join(names[1:])})" if len(names) > 1 else "")
        repo.git(*repo.identity(), "commit", "-q", "-m", message)
    except BaseException as exc:  # Ctrl-C too: never a half-added version
        _undo(repo, created=created, initialized=initialized, dvc_initialized=dvc_initialized, target=target)
        if isinstance(exc, OSError):
            raise PublishError(f"writing {target} failed: {exc}") from None
        raise
    made: list[str] = []
    try:
        for tag in names:
            repo.git(*repo.identity(), "tag", "-a", tag, "-m", f"dataset version {version}")
            made.append(tag)
    except PublishError:  # checked above, so only a full disk or a concurrent tagger: take the commit back too
        for tag in made:
            repo.ok("tag", "-d", tag)
        repo.ok("reset", "-q", "--soft", "HEAD~1") if repo.ok("rev-parse", "-q", "--verify", "HEAD~1") else repo.ok(
            "update-ref", "-d", "HEAD")  # fmt: skip
        _undo(repo, created=created, initialized=initialized, dvc_initialized=dvc_initialized, target=target)
        raise
    return Published(version, relative, repo.git("rev-parse", "HEAD").strip(), names, name, skipped_tags=skipped)


def _already(repo: _Repo, relative: str, version: str, names: list[str], skipped: list[str]) -> Published:
    """The version's tag is there: add the store tags it lacks at that commit (a tag given since), push nothing."""
    commit = repo.git("rev-list", "-n", "1", f"refs/tags/{version}").strip()
    for tag in names[1:]:
        if not repo.ok("rev-parse", "-q", "--verify", f"refs/tags/{tag}"):
            repo.git(*repo.identity(), "tag", "-a", tag, "-m", f"dataset version {version}", commit)
    return Published(version, relative, commit, names, "", already=True, skipped_tags=skipped)


def _undo(repo: _Repo, *, created: bool, initialized: bool, dvc_initialized: bool, target: Path | None) -> None:
    """Put the repository back as it was before :func:`publish` (which found it clean)."""
    if created:
        shutil.rmtree(repo.path, ignore_errors=True)
        return
    if initialized:  # it was an empty folder
        for child in repo.path.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        return
    if repo.ok("rev-parse", "-q", "--verify", "HEAD"):
        repo.ok("reset", "-q", "--hard", "HEAD")
    else:  # no commit yet: unstage everything
        repo.ok("read-tree", "--empty")
    repo.ok("clean", "-fdq")  # the tree was clean: only what publish added is untracked
    if target is not None:
        shutil.rmtree(target, ignore_errors=True)  # kept out of git by DVC, so clean left it
    if dvc_initialized:
        shutil.rmtree(repo.path / ".dvc", ignore_errors=True)
