"""Where a local Label Studio keeps its state, and how to read it (no HTTP, no process control).

``labeling-assets labelstudio start`` (``local/labelstudio.py``) writes the port and pid to ``server.json``
and the API token to a 0600 file under ``<data_dir>/labelstudio``. The Label Studio resource reads them
when a run or a sensor tick starts, so definitions loaded before the server started find it afterwards.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from labeling_assets import env


class _File:
    """A file (or folder) of the server's folder, by name: read as ``paths.<attribute>``, a ``Path``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, paths: "ServerPaths", owner: type | None = None) -> Path:
        return paths.root / self.name


@dataclass(frozen=True)
class ServerPaths:
    """Files of one local server (one folder)."""

    root: Path

    ls_data = _File("data")
    pid_file = _File("server.pid")
    state_file = _File("server.json")
    log_file = _File("server.log")
    token_file = _File("api_token")
    password_file = _File("admin_password")


def default_paths() -> ServerPaths:
    """The local server of the current data folder (``$LABELING_ASSETS_HOME``, read now)."""
    return ServerPaths(env.data_dir() / "labelstudio")


@dataclass(frozen=True)
class ServerInfo:
    url: str
    port: int
    pid: int | None
    token_file: Path
    running: bool


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (exited, not yet reaped) does not. A server whose parent exited (started by a
    command that returned) is reaped by PID 1, which in a container may never do it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces or parentheses, the state follows the last ")".
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(pid, 0) is all there is
    return state not in ("Z", "X")


def read_state(paths: ServerPaths) -> dict[str, int]:
    """``server.json`` (pid and port), or empty when the server was never started here."""
    try:
        state = json.loads(paths.state_file.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in state.items()} if isinstance(state, dict) else {}


def status(paths: ServerPaths | None = None) -> ServerInfo | None:
    """The local server's state, or None if it was never started here."""
    paths = paths or default_paths()
    state = read_state(paths)
    if "port" not in state:
        return None
    pid = state.get("pid") or None
    port = state["port"]
    return ServerInfo(
        url=f"http://127.0.0.1:{port}",
        port=port,
        pid=pid,
        token_file=paths.token_file,
        running=pid is not None and pid_alive(pid),
    )


def read_token(paths: ServerPaths | None = None) -> str:
    """The local server's API token (from its 0600 file)."""
    paths = paths or default_paths()
    if not paths.token_file.is_file():
        raise FileNotFoundError(
            f"no Label Studio token at {paths.token_file}: run `labeling-assets labelstudio start`"
        )
    return paths.token_file.read_text().strip()


def local_connection(paths: ServerPaths | None = None) -> tuple[str, str] | None:
    """URL and token of the local server, or None when none was ever started under the data folder.

    A stopped server still answers with its URL (the port is kept across restarts): a caller then sees
    "unreachable at <url>", which names the fix better than "not configured".
    """
    paths = paths or default_paths()
    info = status(paths)
    if info is None or not paths.token_file.is_file():
        return None
    return info.url, read_token(paths)


def server_url() -> str:
    """``$LABEL_STUDIO_URL``, else (local) the local server's URL, else the port it starts on by default."""
    url = env.variable("LABEL_STUDIO_URL")
    if url:
        return url
    env.needed_in_prod("LABEL_STUDIO_URL")
    local = local_connection()
    return local[0] if local else env.DEFAULT_LABEL_STUDIO_URL


def server_token(url: str) -> str:
    """``$LABEL_STUDIO_API_KEY``, else (local) the local server's token, and only when ``url`` is that server:
    the local token is never sent to another server."""
    token = env.variable("LABEL_STUDIO_API_KEY")
    if token:
        return token
    env.needed_in_prod("LABEL_STUDIO_API_KEY")
    local = local_connection()
    if local is not None and local[0] == url:
        return local[1]
    raise env.SettingMissing(
        f"no Label Studio API token for {url}: set LABEL_STUDIO_API_KEY, or start a local server with "
        f"`labeling-assets labelstudio start` (none under {default_paths().root})"
    )
