"""Alerts: where one-line notices go (a Slack-compatible webhook and/or e-mail) and the links they carry.

Off when unconfigured. Unset fields are read from the environment when a sensor tick uses the resource (never at
import, like the other resources): ``$LABELING_ASSETS_ALERT_WEBHOOK_URL``, ``$LABELING_ASSETS_SMTP_HOST`` ... A team
that binds them explicitly writes ``AlertsResource(webhook_url=dg.EnvVar("..."), smtp_password=dg.EnvVar("..."))``:
Dagster then shows the variable's name, never its value. No secret reaches a log line or metadata
(``core.alerts.delivery.mask_url``, ``scrub``).
"""

import dagster as dg
from pydantic import Field

from labeling_assets import env
from labeling_assets.core.alerts.delivery import Channels
from labeling_assets.core.alerts.notices import Links

WEBHOOK_VAR = "LABELING_ASSETS_ALERT_WEBHOOK_URL"
SMTP_VARS = {
    "smtp_host": "LABELING_ASSETS_SMTP_HOST",
    "smtp_port": "LABELING_ASSETS_SMTP_PORT",
    "smtp_user": "LABELING_ASSETS_SMTP_USER",
    "smtp_password": "LABELING_ASSETS_SMTP_PASSWORD",
    "smtp_from": "LABELING_ASSETS_SMTP_FROM",
    "smtp_to": "LABELING_ASSETS_SMTP_TO",
}
DAGSTER_URL_VAR = "LABELING_ASSETS_DAGSTER_URL"


class AlertsResource(dg.ConfigurableResource["AlertsResource"]):  # the resource is its own value
    """Where alerts go. Both channels unset: alerts are off and the alert sensors skip."""

    webhook_url: str | None = Field(
        default=None, description=f"Incoming-webhook URL (Slack-compatible JSON {{'text': ...}}); empty = ${WEBHOOK_VAR}. "
        "It holds a token: pass it only as dg.EnvVar.",
    )  # fmt: skip
    smtp_host: str | None = Field(default=None, description=f"SMTP server; empty = ${SMTP_VARS['smtp_host']}.")
    smtp_port: int | None = Field(default=None, description=f"SMTP port; empty = ${SMTP_VARS['smtp_port']}, else 587.")
    smtp_user: str | None = Field(default=None, description=f"SMTP login; empty = ${SMTP_VARS['smtp_user']} (none: no login).")
    smtp_password: str | None = Field(
        default=None, description=f"SMTP password; empty = ${SMTP_VARS['smtp_password']}. Pass it only as dg.EnvVar."
    )
    smtp_from: str | None = Field(default=None, description=f"Sender address; empty = ${SMTP_VARS['smtp_from']}.")
    smtp_to: list[str] = Field(
        default_factory=list, description=f"Recipients; empty = ${SMTP_VARS['smtp_to']} (comma-separated)."
    )
    smtp_starttls: bool = Field(default=True, description="Use STARTTLS when the server offers it.")
    dagster_url: str | None = Field(
        default=None, description=f"The Dagster UI's base URL for links; empty = ${DAGSTER_URL_VAR}, else http://localhost:3000."
    )
    stall_after_hours: float = Field(
        default=24.0, description="A queue with open tasks and no answer arriving for this long is reported stalled.",
    )  # fmt: skip
    timeout_s: float = Field(default=10.0, description="Per-delivery timeout (a slow receiver never holds a tick long).")

    def channels(self) -> Channels:
        """The destinations, resolved now (unset fields from the environment)."""
        port = self.smtp_port or int(env.variable(SMTP_VARS["smtp_port"]) or 587)
        to = self.smtp_to or [a.strip() for a in (env.variable(SMTP_VARS["smtp_to"]) or "").split(",") if a.strip()]
        return Channels(
            webhook_url=self.webhook_url or env.variable(WEBHOOK_VAR),
            smtp_host=self.smtp_host or env.variable(SMTP_VARS["smtp_host"]),
            smtp_port=port,
            smtp_user=self.smtp_user or env.variable(SMTP_VARS["smtp_user"]),
            smtp_password=self.smtp_password or env.variable(SMTP_VARS["smtp_password"]),
            smtp_from=self.smtp_from or env.variable(SMTP_VARS["smtp_from"]),
            smtp_to=to,
            smtp_starttls=self.smtp_starttls,
            timeout_s=self.timeout_s,
        )

    def links(self, label_studio_url: str | None = None) -> Links:
        return Links(self.dagster_url or env.variable(DAGSTER_URL_VAR) or "http://localhost:3000", label_studio_url)
