"""Accounts on the real local Label Studio (the session's ``label_studio`` server, started as users start it).

What Label Studio Community 1.23.2 allows, asserted here so an upgrade that changes it fails loudly: the sign-up
form refuses anyone without the organization's invite token (the local server sets
DISABLE_SIGNUP_WITHOUT_LINK); ``POST /api/users/`` makes users that can never log in, and no API sets a password;
``labeling-assets labelstudio add-user`` makes an account that logs in with the password it printed once, which
no file holds, and retires the invite token it used.
"""

import os
import secrets
import uuid
from pathlib import Path

import pytest
import requests

from labeling_assets.cli.main import main
from labeling_assets.local import labelstudio as server
from labeling_assets.local.labelstudio_accounts import invite_token
from tests.labelstudio_server import LabelStudioServer


def _form(url: str, page: str, email: str, password: str, token: str | None = None) -> int:
    """POST one of Label Studio's forms as a browser does; 302 = accepted (signed up / logged in)."""
    http = requests.Session()
    http.get(f"{url}/user/{page}/", timeout=30).raise_for_status()
    resp = http.post(
        f"{url}/user/{page}/",
        params={"token": token} if token else None,
        data={"email": email, "password": password, "csrfmiddlewaretoken": http.cookies["csrftoken"]},
        headers={"Referer": f"{url}/user/{page}/"},
        timeout=30,
        allow_redirects=False,
    )
    return resp.status_code


def _emails(ls: LabelStudioServer) -> set[str]:
    return {str(u["email"]) for u in ls.client().list_users()}


def _email() -> str:
    return f"person-{uuid.uuid4().hex[:8]}@example.org"


def test_the_local_server_refuses_sign_up_without_the_invite_link(label_studio: LabelStudioServer) -> None:
    email, password = _email(), secrets.token_urlsafe(16)
    assert _form(label_studio.url, "signup", email, password) == 403
    assert _form(label_studio.url, "signup", email, password, token="not-the-invite-token") == 403
    assert email not in _emails(label_studio)


def test_the_api_makes_users_that_can_never_log_in(label_studio: LabelStudioServer) -> None:
    client, email, password = label_studio.client(), _email(), secrets.token_urlsafe(16)
    user = client.request("POST", "/api/users/", json={"username": email, "email": email, "password": password})
    try:
        assert _form(label_studio.url, "login", email, password) == 200  # the form again: refused
        client.request("PATCH", f"/api/users/{user['id']}/", json={"password": password})  # accepted, ignored
        assert _form(label_studio.url, "login", email, password) == 200
    finally:
        client.request("DELETE", f"/api/users/{user['id']}/")


def test_add_user_prints_a_password_once_that_logs_in_and_is_stored_nowhere(
    label_studio: LabelStudioServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    email = _email()
    used_token = invite_token(label_studio.client())

    assert main(["labelstudio", "add-user", email, "--role", "reviewer"]) == 0
    out = capsys.readouterr().out
    password = out.strip().splitlines()[-1]
    assert f"created {email}" in out and "reviewer" in out and len(password) >= 20

    assert _form(label_studio.url, "login", email, password) == 302
    user = next(u for u in label_studio.client().list_users() if u["email"] == email)
    assert user["last_name"] == "reviewer"
    # The invite token it used no longer signs anyone up.
    assert _form(label_studio.url, "signup", _email(), secrets.token_urlsafe(16), token=used_token) == 403
    # In no file of the server's data folder (its database, log, token and password files).
    for path in (p for p in label_studio.files_root.rglob("*") if p.is_file()):
        assert password.encode() not in path.read_bytes(), path
    # The same person twice: a usage error, nothing changed.
    assert main(["labelstudio", "add-user", email]) == 2
    assert "already has an account" in capsys.readouterr().err


def test_the_local_server_keeps_its_secrets_off_every_command_line(label_studio: LabelStudioServer) -> None:
    """``ps`` shows every local user the command lines of the server's processes: no token, no password."""
    pid = server.status(label_studio.paths).pid
    assert pid is not None
    secrets_ = [label_studio.token.encode(), label_studio.paths.password_file.read_bytes().strip()]
    group = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.getpgid(int(proc.name)) == pid:
                group.append((proc / "cmdline").read_bytes())
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
    assert group  # the server and its workers
    assert not [cmd for cmd in group for secret in secrets_ if secret in cmd]
