"""Send each alert once per channel: what went out is stored (``alerts_sent``), a failure is retried next tick."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from labeling_assets.core.alerts.delivery import Alert, Channels, deliver
from labeling_assets.core.store.alerts import record_sent, sent_keys
from labeling_assets.core.store.schema import LabelStore

Log = Callable[[str], None]
MAX_PER_TICK = 20  # a flood (a first run on an old store) is spread over ticks instead of one burst


@dataclass
class Outcome:
    sent: list[str] = field(default_factory=list)  # "<channel>:<key>"
    failed: list[str] = field(default_factory=list)  # one line each, secrets masked
    already: int = 0  # alerts skipped because they were sent before


def send_new(store: LabelStore, channels: Channels, alerts: Sequence[Alert], *, log: Log,
             limit: int = MAX_PER_TICK) -> Outcome:  # fmt: skip
    """Deliver the ``alerts`` not sent yet on each configured channel, recording each success.

    A failure is logged in one line and not recorded, so the next tick tries again; it never raises (an alert
    about a failed run must not fail anything itself). Per channel, a failure stops that channel for this tick:
    a receiver that is down is not hammered with every pending alert."""
    outcome = Outcome()
    for channel in channels.names:
        done = sent_keys(store, channel)
        pending = [a for a in dict((a.key, a) for a in alerts).values() if a.key not in done]
        outcome.already += len(alerts) - len(pending)
        for alert in pending[:limit]:
            error = deliver(channels, channel, alert)
            if error is not None:
                log(error)
                outcome.failed.append(error)
                break
            record_sent(store, alert.key, channel, alert.line())
            outcome.sent.append(f"{channel}:{alert.key}")
    return outcome
