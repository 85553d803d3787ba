"""What deserves an alert, read from the label store: drift alarms, automatic pauses, a stalled queue.

Each notice is an :class:`~labeling_assets.core.alerts.delivery.Alert` whose key names the event (so it is posted
once) and whose link is where a person acts: the labeler's statistics in the Dagster UI, or the Label Studio
project.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd

from labeling_assets.core.alerts.delivery import Alert
from labeling_assets.core.consensus.auto_pause import ACTOR as GATE_ACTOR
from labeling_assets.core.consensus.labeler_stats import iso_week
from labeling_assets.core.drift.alarms import Alarm, disagreement_alarms, labeler_alarms
from labeling_assets.core.store.alerts import pause_events, queue_motion
from labeling_assets.core.store.human_loop import labeler_keys
from labeling_assets.core.store.labelstudio_sync import newest_prelabels
from labeling_assets.core.store.queries import load_quality_inputs
from labeling_assets.core.store.schema import LabelStore, chunked


@dataclass(frozen=True)
class Links:
    """Base URLs of the UIs an alert links to (no credentials: links are posted to chat rooms)."""

    dagster_url: str = "http://localhost:3000"
    label_studio_url: str | None = None

    def run(self, run_id: str) -> str:
        return f"{self.dagster_url.rstrip('/')}/runs/{run_id}"

    def asset(self, key: str, partition: str | None = None) -> str:
        url = f"{self.dagster_url.rstrip('/')}/assets/{quote(key)}"
        return f"{url}?partition={quote(partition)}" if partition else url

    def project(self, project_id: int | None) -> str | None:
        if not self.label_studio_url or project_id is None:
            return None
        return f"{self.label_studio_url.rstrip('/')}/projects/{project_id}/data"


def drift_notices(store: LabelStore, classes: Sequence[str], links: Links, *, task_type: str = "single_label"
                  ) -> list[Alert]:  # fmt: skip
    """Every drift alarm the store's history holds (old ones too: the outbox sends each key once)."""
    inputs = load_quality_inputs(store, list(classes), task_type=task_type)
    names = labeler_keys(store)
    alarms: list[Alarm] = labeler_alarms(inputs.votes, inputs.gold, classes, names)
    alarms += _model_drift(store, inputs.votes, inputs.consensus, classes)
    # A labeler's alarm links to their statistics; a class's to the digest of items that split the labelers.
    return [
        Alert(f"drift:{a.key}", a.text,
              links.asset("labeler_stats", a.labeler) if a.labeler else links.asset("disagreement_digest"))
        for a in alarms
    ]  # fmt: skip


def _model_drift(store: LabelStore, votes: pd.DataFrame, consensus: pd.Series, classes: Sequence[str]) -> list[Alarm]:
    if votes.empty or consensus.empty or "created_at" not in votes:
        return []
    dated = votes[votes["created_at"].notna()]
    first = dated.groupby("item_id")["created_at"].min()
    labeled_week = pd.Series(iso_week(first).to_numpy(), index=first.index.astype(str))
    items = [str(i) for i in consensus.index if i in labeled_week.index]
    top: dict[str, str] = {}
    for part in chunked(items, 500):
        for item, (probs, _version) in newest_prelabels(store, list(part)).items():
            if probs:
                top[item] = max(probs, key=lambda c: probs[c])
    return disagreement_alarms(pd.Series(top, dtype=object), consensus, labeled_week, classes)


def pause_notices(store: LabelStore, links: Links) -> list[Alert]:
    """One alert per automatic pause (the gold or spot-check gate paused a labeler)."""
    names = labeler_keys(store)
    out = []
    for event in pause_events(store, GATE_ACTOR):
        name = names.get(str(event["labeler_id"]), str(event["labeler_id"]))
        text = (f"Paused automatically: {name} ({event['reason']}); their new answers count for nothing until "
                f"someone runs `labeling-assets labeler resume {name}` after reviewing them.")  # fmt: skip
        out.append(Alert(f"pause:{event['id']}", text, links.asset("labeler_stats", name)))
    return out


def stalled_queue_notice(store: LabelStore, links: Links, *, stall_after: dt.timedelta, now: dt.datetime
                         ) -> Alert | None:  # fmt: skip
    """An alert when open tasks have waited ``stall_after`` with no answer arriving and no task pushed."""
    motion = queue_motion(store)
    waited = motion.stalled_for(now)
    if waited is None or waited < stall_after or motion.last_motion_at is None:
        return None
    hours = waited.total_seconds() / 3600
    text = (f"Queue stalled: {motion.open_tasks} open tasks and no answer for {hours:.0f} h: check that labelers "
            "can reach Label Studio and that annotation_sensor is running.")  # fmt: skip
    return Alert(f"stalled:{motion.last_motion_at.isoformat()}", text, links.project(motion.ls_project_id))
