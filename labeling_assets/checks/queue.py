"""Checks on labeling_tasks: one property each."""

from typing import Any

import dagster as dg

from labeling_assets.core.labelstudio.tasks import payload_leaks
from labeling_assets.core.store.queries import gold_labels
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource


@dg.asset_check(asset="labeling_tasks", blocking=True)
def gold_never_in_task_data(
    label_store: LabelStoreResource, label_studio: LabelStudioResource
) -> dg.AssetCheckResult:
    """What Label Studio actually holds (task data, predictions, annotations of gold tasks) reveals no gold answer."""
    client = label_studio.get_client()
    # The shared project, or every labeler's own project (blind mode); none yet: nothing to check.
    remote = [t for pid in label_studio.labeling_project_ids() for t in client.iter_tasks(pid, fields="all")]
    gold = gold_labels(label_store.get_store()).to_dict()
    # Annotations on gold tasks are the crowd's answers, not leaks: check what was SENT (data, predictions).
    sent: list[dict[str, Any]] = [{"data": t.get("data") or {}, "predictions": t.get("predictions") or []} for t in remote]
    leaks = payload_leaks(sent, gold)
    gold_in_ls = sum(1 for t in sent if t["data"].get("item_id") in gold)
    return dg.AssetCheckResult(
        passed=not leaks,
        metadata={
            "tasks_checked": dg.MetadataValue.int(len(remote)),
            "gold_tasks": dg.MetadataValue.int(gold_in_ls),
            "leaks": dg.MetadataValue.json(leaks[:20]),
        },
    )
