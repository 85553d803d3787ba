"""Person accounts in Label Studio Community, made by the admin: what ``labeling-assets labelstudio add-user`` does.

What the Community API allows (1.23.2, asserted in tests/security/test_labelstudio_accounts.py):
``POST /api/users/`` makes a user that can never log in (no password field; a ``password`` in the body or in a
later ``PATCH`` is ignored), and no API sets another user's password. The one way to an account that logs in
is the sign-up form with the organization's invite token (``GET /api/invite``); with
``DISABLE_SIGNUP_WITHOUT_LINK`` any other sign-up is refused (403). So the admin signs the person up with a
random password, then rotates the invite token (``POST /api/invite/reset-token``): no link that could make
another account stays valid. The password is returned once, for the caller to hand over; it is never written.
Community has no roles: every member sees and may change every project. The role is a label on the account
(its last name) that people read in the members list; Label Studio grants nothing by it.
"""

import secrets
from dataclasses import dataclass, field
from typing import Literal

import requests

from labeling_assets.core.errors import ConfigurationError, display_url
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioError

Role = Literal["annotator", "reviewer"]
ROLES: tuple[Role, ...] = ("annotator", "reviewer")


@dataclass(frozen=True)
class NewAccount:
    email: str
    user_id: int
    role: Role
    password: str = field(repr=False)  # shown once by the caller, never logged or stored


def invite_token(client: LabelStudioClient) -> str:
    """The organization's current invite token (admin only)."""
    return client.invite_token()


def rotate_invite_token(client: LabelStudioClient) -> None:
    """A new invite token: every link handed out before stops working."""
    client.rotate_invite_token()


def add_user(client: LabelStudioClient, email: str, role: Role) -> NewAccount:
    """Create a person's account (sign-up with the invite token and a random password), then rotate the token.

    Raises ConfigurationError when the email is not an address or the account exists (nothing is changed),
    LabelStudioError when the server refuses.
    """
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain:
        raise ConfigurationError(f"{email!r} is not an email address: Label Studio accounts are emails")
    if role not in ROLES:
        raise ConfigurationError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if any(str(u.get("email", "")).lower() == email for u in client.list_users()):
        raise ConfigurationError(f"Label Studio at {display_url(client.url)} already has an account {email}")
    password = secrets.token_urlsafe(18)
    token = invite_token(client)
    try:
        user_id = _sign_up(client.url, email, password, token, timeout_s=client.timeout_s)
    finally:
        rotate_invite_token(client)  # even after a failure: the token was read, so retire it
    client.update_user(user_id, first_name=local, last_name=role)
    return NewAccount(email=email, user_id=user_id, role=role, password=password)


def _sign_up(url: str, email: str, password: str, token: str, *, timeout_s: float) -> int:
    """The sign-up form as a browser posts it (CSRF cookie first); the new account's user id."""
    http = requests.Session()
    try:
        http.get(f"{url}/user/signup/", timeout=timeout_s).raise_for_status()
        resp = http.post(
            f"{url}/user/signup/",
            params={"token": token},
            data={"email": email, "password": password, "csrfmiddlewaretoken": http.cookies.get("csrftoken", "")},
            headers={"Referer": f"{url}/user/signup/"},
            timeout=timeout_s,
            allow_redirects=False,
        )
        # 302 = signed up and logged in; 200 = the form again (its error is in the page); 403 = token refused.
        if resp.status_code != 302:
            raise LabelStudioError(
                f"Label Studio at {display_url(url)} refused the sign-up of {email} (HTTP {resp.status_code})"
            )
        whoami = http.get(f"{url}/api/current-user/whoami", timeout=timeout_s)
        whoami.raise_for_status()
        user_id = int(whoami.json()["id"])
        http.get(f"{url}/logout", timeout=timeout_s)
        return user_id
    except requests.RequestException as exc:  # its text holds the URL with the invite token: name the kind only
        raise LabelStudioError(
            f"Label Studio at {display_url(url)} did not complete the sign-up of {email} ({type(exc).__name__})"
        ) from None
    finally:
        http.close()
