"""Run a local Label Studio (Community) for the pipeline: start, stop, status, bootstrap.

Label Studio lives in its own venv (``scripts/install_label_studio.sh``; ``$LABEL_STUDIO_VENV``).
Its data, pid file, log, and the admin token live under ``<data_dir>/labelstudio`` (the layout and its
readers: ``local/labelstudio_files.py``), private to the user who started it: the folder is 0700 and every file
0600, Label Studio's own database included (it holds the admin token too; the server runs under umask 077).
The token and the admin password are generated once and never printed. Label Studio serves local files only
from ``<data_dir>/served``, which holds nothing but the link ``raw -> ../raw`` (core/labelstudio/storage.py).
"""

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from labeling_assets import env
from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.labelstudio.storage import link_raw_store
from labeling_assets.env import data_dir
from labeling_assets.local.labelstudio_database import database_settings, remembered
from labeling_assets.local.labelstudio_files import (
    ServerInfo,
    ServerPaths,
    default_paths,
    pid_alive,
    read_state,
    read_token,
    status,
)
from labeling_assets.local.processes import ignores_sigterm
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioError, LabelStudioRejected

LS_VERSION = "1.23.2"
ADMIN_EMAIL = "admin@labeling-assets.local"
DEFAULT_PORT = 8080
START_TIMEOUT_S = 240.0  # the first start runs Django migrations (about 60 s on a quiet machine)
# A database made by an earlier start already holds its token: a refusal that lasts this long is final.
TOKEN_GRACE_S = 10.0
SQLITE_DATABASE = "label_studio.sqlite3"


class TokenFileChanged(ConfigurationError):
    """The token file no longer holds the token Label Studio's database was created with."""


def _token_refused(paths: ServerPaths, url: str, after: str) -> TokenFileChanged:
    return TokenFileChanged(
        f"Label Studio at {url} refused the token in {paths.token_file} (401; LABEL_STUDIO_API_KEY for the "
        f"pipeline): its database keeps the token of its first start; put that one back in the file ({after})"
    )


def _has_database(paths: ServerPaths) -> bool:
    """Whether an earlier start made Label Studio's database (SQLite file, or a remembered PostgreSQL one)."""
    return (paths.ls_data / SQLITE_DATABASE).is_file() or remembered(paths) is not None


def ls_venv() -> Path:
    default = env.cache_home() / "labeling-assets" / f"label-studio-{LS_VERSION}"
    return Path(env.variable("LABEL_STUDIO_VENV") or default)


def ls_executable() -> Path:
    return ls_venv() / "bin" / "label-studio"


def is_installed() -> bool:
    return ls_executable().is_file()


def _secret_file(path: Path, nbytes: int) -> str:
    """Read a secret, creating it (0600) on first use."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _private_text(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner may read (0600, also when it existed with a wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def make_private(folder: Path) -> None:
    """``folder`` and everything in it owner-only (0700 folders, 0600 files; links are left alone): a server
    folder made before this rule, or copied from a template, stops being readable by other local users."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# Below Linux's ephemeral range (32768-60999 by default): a port from that range can be handed to an outgoing
# connection while the server is stopped for a restart, and the restart then finds it taken (a full test run
# failed that way twice: "port ... is taken", "not within 120s: Label Studio is back").
SERVER_PORTS = range(20000, 32768)


def free_port() -> int:
    """A port where nothing listens now, outside the range the system hands to outgoing connections."""
    for port in random.sample(SERVER_PORTS, 500):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {SERVER_PORTS.start}-{SERVER_PORTS.stop - 1}")


def _choose_port(paths: ServerPaths, port: int | None) -> int:
    if port:
        return port
    if env.variable("LABEL_STUDIO_PORT"):
        return int(env.variable("LABEL_STUDIO_PORT") or 0)
    previous = read_state(paths).get("port")
    for candidate in (previous, DEFAULT_PORT):
        if candidate and port_is_free(int(candidate)):
            return int(candidate)
    return free_port()


# Label Studio 1.23.2's default banned subnets (core/utils/io.py validate_ip) less loopback (127.0.0.0/8, ::1).
BANNED_SUBNETS_BUT_LOOPBACK = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24",
    "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
    "233.252.0.0/24", "240.0.0.0/4", "255.255.255.255/32", "::/128", "::ffff:0:0/96", "::ffff:0:0:0/96",
    "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001:0000::/32", "2001:20::/28", "2001:db8::/32", "2002::/16",
    "fc00::/7", "fe80::/10", "ff00::/8",
)


def start(
    paths: ServerPaths | None = None,
    *,
    port: int | None = None,
    timeout_s: float = START_TIMEOUT_S,
    data_folder: Path | None = None,
    database: str | None = None,
) -> ServerInfo:
    """Start the server (idempotent: a running one is returned as is) and wait for /health.

    Binds 127.0.0.1 only. The raw image store of ``data_folder`` (default: the data folder) is served to
    the labeling UI through Label Studio's local-files endpoint, and nothing else: its document root is
    ``<data_folder>/served``. ``database``: a ``postgresql://`` URL without password (see
    ``local/labelstudio_database.py``); default SQLite, or the database of the last start.
    """
    paths = paths or default_paths()
    current = status(paths)
    if current and current.running:
        running = LabelStudioClient(current.url, read_token(paths))
        running.wait_healthy(timeout_s)
        try:
            running.whoami()
        except LabelStudioRejected:
            raise _token_refused(paths, current.url, f"the server (pid {current.pid}) is still running") from None
        return current
    if not is_installed():
        raise FileNotFoundError(
            f"Label Studio is not installed at {ls_venv()}: run scripts/install_label_studio.sh "
            "(or set LABEL_STUDIO_VENV)"
        )
    paths.ls_data.mkdir(parents=True, exist_ok=True, mode=0o700)
    document_root = link_raw_store(data_folder or data_dir())
    token = _secret_file(paths.token_file, 20)
    password = _secret_file(paths.password_file, 16)
    chosen = _choose_port(paths, port)
    if not port_is_free(chosen):
        raise OSError(f"port {chosen} on 127.0.0.1 is taken: pass --port or set LABEL_STUDIO_PORT")
    environment = env.child_environment(drop=["DJANGO_SETTINGS_MODULE"])
    environment |= {
        "LABEL_STUDIO_BASE_DATA_DIR": str(paths.ls_data),
        # What it keeps besides (an install id, matplotlib's font cache) stays in its folder, not in ~/.config.
        "XDG_CONFIG_HOME": str(paths.root / "config"),
        "XDG_CACHE_HOME": str(paths.root / "cache"),
        "MPLCONFIGDIR": str(paths.root / "cache" / "matplotlib"),
        # Legacy tokens are what --user-token creates; without this flag they get 401.
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        # Sign-up only through the invite link (Community shows every project to every member), so an account
        # exists only when `labeling-assets labelstudio add-user` (or someone holding the link) made it.
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        # Only the raw image store is under it: any account may register a storage anywhere below the root.
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
        # Admin and token through the environment, not argv: the command line is visible to every local user.
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
        "LABEL_STUDIO_PASSWORD": password,
        "LABEL_STUDIO_USER_TOKEN": token,
        # Label Studio refuses to post webhooks to private and loopback addresses (SSRF protection, on by default in
        # 1.23). This server listens on loopback only and its webhooks go to our receiver on the same machine: allow
        # loopback and nothing else (every other default banned subnet stays banned).
        "USE_DEFAULT_BANNED_SUBNETS": "false",
        "USER_ADDITIONAL_BANNED_SUBNETS": ",".join(BANNED_SUBNETS_BUT_LOOPBACK),
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }
    made_before = _has_database(paths)  # read before database_settings remembers a new one
    environment.update(database_settings(paths, database))  # {} on SQLite
    cmd = [
        str(ls_executable()),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(chosen),
    ]
    make_private(paths.root)  # what an earlier start, a template copy or database_settings left readable
    log = os.fdopen(os.open(paths.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    with log:
        # umask 077: the database Label Studio creates (it holds the admin token) and its uploads stay 0600.
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=paths.root, start_new_session=True, umask=0o077
        )
    _private_text(paths.pid_file, str(proc.pid))
    _private_text(paths.state_file, json.dumps({"pid": proc.pid, "port": chosen}))
    info = ServerInfo(
        url=f"http://127.0.0.1:{chosen}", port=chosen, pid=proc.pid, token_file=paths.token_file, running=True
    )
    try:
        _wait_usable(proc, LabelStudioClient(info.url, token), paths, timeout_s, made_before=made_before)
    except BaseException:
        stop(paths)  # never a server left running that the caller was told had failed
        raise
    return info


def _wait_usable(
    proc: "subprocess.Popen[bytes]", client: LabelStudioClient, paths: ServerPaths, timeout_s: float, *, made_before: bool
) -> None:
    """Until /health answers and the token authenticates (bounded by ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not client.health():
        if proc.poll() is not None:
            raise LabelStudioError(f"Label Studio exited with code {proc.returncode}; see {paths.log_file}")
        if time.monotonic() > deadline:
            raise LabelStudioError(f"Label Studio did not answer /health within {timeout_s:.0f}s; see {paths.log_file}")
        time.sleep(0.5)
    # A first start's /health can answer before its admin token is usable; an older database holds the token
    # already, so a refusal past a short grace means the token file changed.
    refused_until = deadline if not made_before else min(deadline, time.monotonic() + TOKEN_GRACE_S)
    while True:
        try:
            client.whoami()
            return
        except LabelStudioRejected:
            if time.monotonic() > refused_until:
                raise _token_refused(paths, client.url, "the server was stopped") from None
        except LabelStudioError:
            if time.monotonic() > deadline:
                raise LabelStudioError(f"Label Studio is up but its API does not answer; see {paths.log_file}") from None
        time.sleep(0.5)


def stop(paths: ServerPaths | None = None, *, timeout_s: float = 20.0) -> bool:
    """Stop the server started here (its whole process group); True if one was running."""
    paths = paths or default_paths()
    info = status(paths)
    if info is None or not info.running or info.pid is None:
        return False
    pgid = info.pid  # started with start_new_session: the pid is the group id
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    # A server that inherited SIGTERM as ignored (dagster maps SIGTERM to SIGINT's handler in the process that starts
    # it, and a background job has SIGINT ignored) would only spend the grace: kill it at once. Django's dev server
    # has no graceful shutdown to wait for either way.
    if ignores_sigterm(info.pid) or not _gone(info.pid, timeout_s):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        _gone(info.pid, KILL_WAIT_S)
    # Gone means its sockets are closed, but a restart on the same port must not race the kernel: wait (bounded)
    # until the port binds, so "stopped" means "startable again" (a restart once found its own port taken).
    _wait_port_free(info.port, KILL_WAIT_S)
    # Keep the port in the state file so a restart reuses the same URL.
    _private_text(paths.state_file, json.dumps({"pid": 0, "port": info.port}))
    paths.pid_file.unlink(missing_ok=True)
    return True


# How long a SIGKILLed server (or its port) may take to go.
KILL_WAIT_S = 10.0


def _gone(pid: int, timeout_s: float) -> bool:
    """Wait until ``pid`` no longer runs (reaping it when it is our child); False if it still runs at the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        _reap(pid)
        if not pid_alive(pid):
            _reap(pid)  # it may have exited since the first look
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _wait_port_free(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (else it lingers as a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def template_root() -> Path:
    """A migrated, never-used server folder kept beside the Label Studio venv (same version, same lifetime)."""
    return ls_venv() / "migrated-template"


def start_fresh(paths: ServerPaths, *, port: int | None = None, data_folder: Path | None = None) -> ServerInfo:
    """Start a server in an empty folder from a copy of an already migrated one.

    The first start of a new data folder spends about a minute on Django migrations; tests and benchmarks
    that want a clean server each time copy a migrated template instead (made once, on first use).
    """
    template = template_root()
    if not (template / "ready").is_file():
        staging = Path(tempfile.mkdtemp(prefix="template-", dir=template.parent))
        staged = ServerPaths(staging)
        nothing_served = Path(tempfile.mkdtemp(prefix="template-data-"))
        try:
            start(staged, port=free_port(), data_folder=nothing_served)
        finally:
            stop(staged)
            shutil.rmtree(nothing_served, ignore_errors=True)
        for name in ("server.pid", "server.json", "server.log"):
            (staging / name).unlink(missing_ok=True)
        (staging / "ready").write_text(LS_VERSION)
        try:
            staging.rename(template)  # atomic: a concurrent maker either wins or leaves it to us
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    if not paths.ls_data.exists():
        shutil.copytree(template, paths.root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("ready"))
    return start(paths, port=port, data_folder=data_folder)
