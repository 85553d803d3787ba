"""retrain_sensor: trains when the current dataset version holds enough new labels since the champion's."""

import dagster as dg

from labeling_assets import env, lineage
from labeling_assets.core import automation
from labeling_assets.core.store.dataset_versions import load_manifest
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.jobs import train_job
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import runs

RETRAIN_POLL_SECONDS = 120
TRAIN_SPLIT = "train"


def training_labels(store: LabelStore, version: str) -> dict[str, str] | None:
    """item -> label of the training split of a stored dataset version (None when the store lacks it)."""
    try:
        manifest = load_manifest(store, version)
    except ValueError:
        return None
    train = manifest[manifest["split"] == TRAIN_SPLIT]
    return {str(item): str(label) for item, label in zip(train["item_id"], train["label"], strict=True)}


@dg.sensor(
    job=train_job,
    minimum_interval_seconds=RETRAIN_POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs train_job when the current dataset version has "
    f"${automation.RETRAIN_MIN_NEW_VAR} (default {automation.Thresholds().retrain_min_new_items}) more "
    "consensus-labeled training items than the champion's, or a share of them changed label "
    f"(${automation.RETRAIN_CHANGED_SHARE_VAR}, default {automation.Thresholds().retrain_changed_share:.0%}); "
    "never on a version whose blocking checks failed; one training at a time.",
)
def retrain_sensor(
    context: dg.SensorEvaluationContext, label_store: LabelStoreResource, mlflow: MLflowResource
) -> dg.SensorResult | dg.SkipReason:
    """The cheap reads first (the instance: dataset version, failed checks, runs in flight), then MLflow and
    the two stored manifests. The run key is the dataset version (and attempt): never two trainings of it."""
    thresholds = automation.thresholds_from(env.variable)
    version = lineage.current_dataset_version(context.instance)
    blocked = automation.retrain_blocked(
        version,
        failed_checks=lineage.failed_blocking_dataset_checks(context.instance) if version else [],
        train_in_flight=runs.in_flight(context.instance, train_job.name),
    )
    if blocked is not None or version is None:
        return dg.SkipReason(blocked.reason if blocked else "no dataset version")
    pending = lineage.checks_pending(context.instance)
    if pending:
        return dg.SkipReason(
            f"run {pending} made dataset version {version} and has not finished: its blocking checks come first"
        )
    try:
        champion = mlflow.champion()
        trained_by = next(
            (m.label for m in mlflow.registered_versions() if m.tags.get("dataset_version") == version), None
        )
    except Exception as exc:  # an unreachable tracking server: the next tick tries again
        return dg.SkipReason(f"MLflow unavailable: {str(exc).splitlines()[0][:300]}")
    store = label_store.get_store()
    current = training_labels(store, version) or {}
    base_version = champion.tags.get("dataset_version") if champion else None
    base = training_labels(store, base_version) if base_version else None
    decision = automation.retrain_decision(
        version,
        trained_by=trained_by,
        champion=champion.label if champion else None,
        delta=automation.training_delta(current, base),
        thresholds=thresholds,
        past=runs.past_runs(context.instance, train_job.name, version),
    )
    if not decision.launch:
        return dg.SkipReason(decision.reason)
    return dg.SensorResult(run_requests=[runs.run_request(decision, state=version)], cursor=version)
