"""Delivering one alert: a Slack-compatible webhook (``{"text": ...}``) or an e-mail over SMTP.

Secrets (the webhook URL's path and query, which hold its token, and the SMTP password) never reach a log line or a
return value: errors are reported through :func:`mask_url` and :func:`scrub`.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import urlsplit

from labeling_assets.core.errors import one_line

HIDDEN = "***"
SUBJECT_LIMIT = 150


@dataclass(frozen=True)
class Alert:
    """What to tell people: ``text`` is one line saying what happened and what to do; ``link`` where to look."""

    key: str  # stable identity: the same key is posted once per channel
    text: str
    link: str | None = None

    def line(self) -> str:
        text = one_line(self.text, 1000)
        return f"{text} {self.link}" if self.link else text


@dataclass(frozen=True)
class Channels:
    """Where alerts go; a channel with no destination is off (both off: alerts are off)."""

    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    smtp_to: list[str] = field(default_factory=list)
    smtp_starttls: bool = True  # used when the server offers it
    timeout_s: float = 10.0

    @property
    def names(self) -> list[str]:
        return [n for n, on in (("webhook", bool(self.webhook_url)), ("email", self.email_on)) if on]

    @property
    def email_on(self) -> bool:
        return bool(self.smtp_host and self.smtp_to)

    def secrets(self) -> list[str]:
        """Every value that must never be printed."""
        values = [self.smtp_password or ""]
        if self.webhook_url:
            parts = urlsplit(self.webhook_url)
            values += [self.webhook_url, parts.path, parts.query, parts.password or ""]
        return [v for v in values if len(v) > 1 and v != "/"]


def mask_url(url: str) -> str:
    """Only scheme, host and port of ``url``: a webhook's token lives in its path or query, a password before @."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return HIDDEN
    return f"{parts.scheme}://{host}{port}/{HIDDEN}" if host else HIDDEN


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first, so a URL goes before its path)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def post_webhook(channels: Channels, alert: Alert) -> None:
    """POST ``{"text": line}`` as JSON; raises on a refused connection or a non-2xx answer."""
    assert channels.webhook_url
    request = urllib.request.Request(
        channels.webhook_url, data=json.dumps({"text": alert.line()}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=channels.timeout_s) as response:  # noqa: S310 (an http(s) URL the operator set)
        if not 200 <= response.status < 300:
            raise RuntimeError(f"HTTP {response.status}")


def send_email(channels: Channels, alert: Alert) -> None:
    """One message: the subject is the line (cut), the body the line and the link."""
    assert channels.smtp_host
    message = EmailMessage()
    message["Subject"] = one_line(alert.text, SUBJECT_LIMIT)
    message["From"] = channels.smtp_from or (channels.smtp_user or "labeling-assets")
    message["To"] = ", ".join(channels.smtp_to)
    message.set_content(alert.text + (f"\n\n{alert.link}\n" if alert.link else "\n"))
    with smtplib.SMTP(channels.smtp_host, channels.smtp_port, timeout=channels.timeout_s) as smtp:
        smtp.ehlo()
        if channels.smtp_starttls and smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
        if channels.smtp_user and channels.smtp_password:
            smtp.login(channels.smtp_user, channels.smtp_password)
        smtp.send_message(message)


def deliver(channels: Channels, channel: str, alert: Alert) -> str | None:
    """Send ``alert`` on ``channel``; None when it went out, else one line saying why not (secrets masked)."""
    try:
        if channel == "webhook":
            post_webhook(channels, alert)
        else:
            send_email(channels, alert)
    except (OSError, smtplib.SMTPException, urllib.error.URLError, RuntimeError, ValueError) as exc:
        where = mask_url(channels.webhook_url or "") if channel == "webhook" else f"{channels.smtp_host}:{channels.smtp_port}"
        return scrub(one_line(f"{channel} delivery to {where} failed: {type(exc).__name__}: {exc}"), channels.secrets())
    return None
