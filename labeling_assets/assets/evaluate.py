"""Stage evaluate: the newest registered model measured on the frozen test split (its only reader), and the
champion rule applied.

The score is the kind's test score (macro-F1; COCO mAP@[.5:.95] for boxes, whose model is a detector trained by
the kind's own trainer). The champion (``models:/<name>@champion``) is re-scored on the SAME test items in the
same run, so the
comparison is like for like even after new items joined the test split. The newest model becomes the
champion when it is not worse than it within a tolerance (scored on gold test items when there are enough,
else on consensus labels; ``core.training.promotion``); otherwise it gets the alias ``challenger`` and the
check ``<score>_not_worse_than_previous_model`` (``macro_f1_...`` for the class kinds, ``test_map_...`` for boxes) says why.
The release gates (``core.training.gates``: CPU latency per image and size against a baseline, measured here and
stored with the version) can hold a model back too: it is then the challenger, and the reason names the gate.
"""

from typing import Any, cast, get_args

import dagster as dg
import pandas as pd
from pydantic import Field

from labeling_assets import lineage, stage
from labeling_assets.constants import GPU_POOL, GROUP_EVALUATE
from labeling_assets.core import images as img
from labeling_assets.core.consensus.review_routing import LABEL_ISSUES_SOURCE
from labeling_assets.core.labelstudio.handover import hand_over
from labeling_assets.core.labelstudio.queue import QueueOptions
from labeling_assets.core.labelstudio.tasks import PrelabelVisibility
from labeling_assets.core.store import datasets
from labeling_assets.core.store.reviews import open_request_items
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import TaskKind, TestSplitReport
from labeling_assets.core.training import gates, promotion
from labeling_assets.resources.labelstudio import LabelStudioError, LabelStudioResource
from labeling_assets.resources.metadata import as_metadata
from labeling_assets.resources.mlflow import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    LoadedModel,
    MLflowResource,
    RegisteredModel,
)
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class ModelEvaluationConfig(dg.Config):
    device: str = "auto"
    ece_bins: int = 15
    min_gold_test_items: int = Field(
        default=promotion.MIN_GOLD_TEST_ITEMS,
        description="Decide the champion on gold test items when at least this many, else on consensus labels.",
    )
    hand_over_open_tasks: bool = Field(
        default=True,
        description="On a promotion, pre-label the open tasks' items with the new champion and attach its "
        "predictions to them before the alias moves (core/labelstudio/handover.py).",
    )
    promotion_tolerance: float = Field(
        default=promotion.PROMOTION_TOLERANCE,
        description="A model at most this much below the champion (macro-F1; mAP for boxes) still becomes the champion.",
    )
    max_latency_ms_p95: float | None = Field(
        default=gates.DEFAULT_MAX_LATENCY_MS_P95,
        description="Release gate: a model whose CPU latency per image (batch 1, p95, latency_threads threads) is "
        "above this many ms is never promoted (null: off, the default; e.g. 500). Measured at every evaluation of "
        "an image classifier either way (docs/model.md).",
    )
    max_size_ratio_to_baseline: float | None = Field(
        default=gates.DEFAULT_MAX_SIZE_RATIO_TO_BASELINE,
        description="Release gate: a model whose saved state_dict is larger than this share of the baseline's "
        "(e.g. 0.5) is never promoted (null: off).",
    )
    size_baseline: str = Field(
        default=gates.CHAMPION_BASELINE,
        description="The size gate's baseline: 'champion' (the current champion; a first model is not judged) or "
        "a registered version number of this model name (e.g. '3').",
    )
    latency_runs: int = Field(default=gates.LATENCY_RUNS, description="Timed batch-1 calls per device (p50/p95).")
    latency_warmup: int = Field(default=gates.LATENCY_WARMUP, description="Untimed calls before them.")
    latency_threads: int = Field(default=gates.LATENCY_THREADS, description="torch CPU threads while timing the CPU.")
    gradcam_items: int = Field(
        default=16, ge=0, le=64,
        description="Test items explained with Grad-CAM (the most confident errors, label issues, correct items per "
        "class) in one grid image; 0: none (docs/model.md).",
    )


@stage.asset(GROUP_EVALUATE, deps=["trained_model"], kinds={"pytorch", "mlflow"}, pool=GPU_POOL)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: ModelEvaluationConfig,
    label_store: LabelStoreResource,
    project: ProjectSettings,
    mlflow: MLflowResource,
    label_studio: LabelStudioResource,
) -> dg.MaterializeResult[None]:
    """Test-split scores of the newest model, and whether it is the champion that pre-labels."""
    store = label_store.get_store()
    dataset = lineage.current_dataset(context.instance, store)
    # A leaky test split would decide the champion.
    refused = "no model is evaluated (nor promoted) on it"
    lineage.refuse_failed_dataset(context.instance, dataset.version, refused=refused, step="evaluate")
    test = dataset.split("test")
    if test.empty:
        raise dg.Failure(f"dataset {dataset.version} has no test items")
    kind = task_kind(project.task_type)
    registered, candidate = _newest_model(mlflow, kind)
    try:
        answers = kind.encode(test["label"].tolist(), candidate.classes)
    except datasets.UnknownLabels as exc:
        raise dg.Failure(str(exc)) from exc
    scoring = kind.test_scoring(
        store, test["item_id"].astype(str).tolist(), answers, candidate.classes, config.min_gold_test_items
    )
    paths = test["uri"].astype(str).tolist()
    context.log.info(
        f"Evaluating {registered.label} on {len(paths)} test items of dataset {dataset.version} "
        f"(champion decided on {scoring.n_items} {scoring.basis}-labeled items)"
    )
    probs, failed = _predict(candidate, paths, config)
    measured = _measure(candidate, config)
    gated = gates.check_gates(measured, _gate_settings(config), _size_baseline(mlflow, candidate, config))
    report = kind.test_report(
        answers,
        probs,
        failed,
        candidate.classes,
        candidate.thresholds,
        model=registered.label,
        ece_bins=config.ece_bins,
    )
    decision = _decide(context, mlflow, kind, candidate, probs, failed, paths, scoring, config, gated)
    # Before the alias moves: the open tasks show the new champion's predictions as it becomes the champion.
    handed = _hand_over(context, store, label_studio, project, kind, candidate, registered.label, config) \
        if decision.promote else {}  # fmt: skip
    _apply(mlflow, registered.version, decision)
    explained, grid = _gradcam(context, store, candidate, test, answers, probs, failed, config)
    _record_in_mlflow(mlflow, registered, report, decision, dataset.version, measured, gated, grid)
    context.log.info(f"{report.summary}. {decision.reason()}")
    metadata = {
        "model_version": dg.MetadataValue.text(registered.label),
        "dataset_version": dg.MetadataValue.text(dataset.version),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(registered.run_id)),
        **as_metadata(report.report),
        **_gate_metadata(measured, gated, config),
        **explained,
    }
    return dg.MaterializeResult(
        metadata={**metadata, **_decision_metadata(mlflow, decision, scoring, config, report.score_name), **handed}
    )


def _newest_model(mlflow: MLflowResource, kind: TaskKind) -> tuple[RegisteredModel, LoadedModel]:
    """The newest registered version, loaded; a clear failure when there is none or it is of another kind."""
    registered = mlflow.latest_version()
    if registered is None:
        raise dg.Failure(
            f"no registered version of {mlflow.registered_model_name}: materialize trained_model first"
        )
    candidate = mlflow.load_model(registered)
    if candidate.task_kind != kind.name:
        raise dg.Failure(
            f"{registered.label} is a {candidate.task_kind} model and the project is {kind.name}: train again"
        )
    return registered, candidate


def _record_in_mlflow(
    mlflow: MLflowResource,
    registered: RegisteredModel,
    report: TestSplitReport,
    decision: promotion.Decision,
    dataset: str,
    measured: gates.Measurements | None,
    gated: gates.GateResult,
    files: dict[str, bytes],
) -> None:
    """The test report, the gates' figures and ``files`` (the Grad-CAM grid) on the model's MLflow run; the report's
    tags, the figures, the gates' verdict and the decision on its model version."""
    figures = measured.figures() if measured is not None else {}
    mlflow.log_to_run(registered.run_id, metrics={**report.metrics, **figures}, params={"test_dataset_version": dataset},
                      files={**report.files, **files}, texts=report.texts)  # fmt: skip
    tags = {**report.tags, "test_dataset_version": dataset, "promotion": decision.alias,
            "promotion_reason": decision.reason(), "release_gates": gated.summary(),
            **{k: f"{v:g}" if k.startswith("latency_") else str(int(v)) for k, v in figures.items()}}  # fmt: skip
    mlflow.set_version_tags(registered.version, tags)


def _measure(loaded: LoadedModel, config: ModelEvaluationConfig) -> gates.Measurements | None:
    """Size and batch-1 latency of an image classifier (CPU; GPU too when CUDA is present, unless the evaluation
    runs on ``device: cpu``); None for a kind's own model (its trainer predicts, not measured here)."""
    if loaded.config is None:
        return None
    shape = (loaded.config.channels, loaded.config.image_size, loaded.config.image_size)
    gpu = False if config.device == "cpu" else None
    return gates.measure(loaded.model, shape, warmup=config.latency_warmup, runs=config.latency_runs, gpu=gpu,
                         threads=config.latency_threads)  # fmt: skip


def _gate_settings(config: ModelEvaluationConfig) -> gates.GateSettings:
    try:
        return gates.GateSettings(config.max_latency_ms_p95, config.max_size_ratio_to_baseline, config.size_baseline)
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc


def _size_baseline(mlflow: MLflowResource, candidate: LoadedModel, config: ModelEvaluationConfig) -> gates.Baseline | None:
    """The size gate's baseline: its recorded ``state_dict_bytes`` tag, else measured from its checkpoint. None when
    the gate is off, or the baseline is the champion and there is none (or it is the candidate itself)."""
    if config.max_size_ratio_to_baseline is None:
        return None
    settings = _gate_settings(config)
    if settings.size_baseline == gates.CHAMPION_BASELINE:
        reference = mlflow.champion()
        if reference is None or reference.version == candidate.registered.version:
            return None
    else:
        number = int(settings.size_baseline)
        reference = next((v for v in mlflow.registered_versions() if v.version == number), None)
        if reference is None:
            raise dg.Failure(f"size_baseline {number}: no version {number} of {mlflow.registered_model_name}")
    recorded = reference.tag_float("state_dict_bytes")
    if recorded is None:  # evaluated before the gates were measured
        loaded = mlflow.load_model(reference)
        if loaded.config is None:
            return None
        recorded = gates.model_size(loaded.model).state_dict_bytes
    return gates.Baseline(reference.label, int(recorded))


def _gate_metadata(
    measured: gates.Measurements | None, gated: gates.GateResult, config: ModelEvaluationConfig
) -> dict[str, Any]:
    """The figures the gates read (``latency_cpu_p95_ms``, ``state_dict_bytes``, ...), the budgets and the verdict."""
    metadata: dict[str, Any] = {
        "release_gates": dg.MetadataValue.text(gated.summary()),
        "max_latency_ms_p95": dg.MetadataValue.text(str(config.max_latency_ms_p95)),
        "max_size_ratio_to_baseline": dg.MetadataValue.text(str(config.max_size_ratio_to_baseline)),
    }
    for key, value in (measured.figures() if measured is not None else {}).items():
        metadata[key] = dg.MetadataValue.float(value) if key.startswith("latency_") else dg.MetadataValue.int(int(value))
    return metadata


def _gradcam(
    context: dg.AssetExecutionContext,
    store: LabelStore,
    candidate: LoadedModel,
    test: pd.DataFrame,
    answers: Any,
    probs: Any,
    failed: list[int],
    config: ModelEvaluationConfig,
) -> tuple[dict[str, dg.MetadataValue], dict[str, bytes]]:
    """Grad-CAM of a sample of test items as one grid (metadata ``gradcam``, MLflow ``evaluation/gradcam.png``), on
    the CPU; skipped with the reason logged for a model that is not an image classifier with conv layers."""
    if config.gradcam_items == 0:
        return {}, {}
    if candidate.config is None:  # a kind's own trainer: a detector, a text model
        return _gradcam_skipped(context, f"a {candidate.task_kind} model is not an image classifier")
    from labeling_assets.core.training.explain import explain_test_items  # torch: only in runs that evaluate
    from labeling_assets.core.training.gradcam import NotConvolutional

    issues = open_request_items(store, LABEL_ISSUES_SOURCE)
    try:
        explained = explain_test_items(
            candidate.model, image_size=candidate.config.image_size, channels=candidate.config.channels,
            classes=candidate.classes, item_ids=test["item_id"].astype(str).tolist(),
            paths=test["uri"].astype(str).tolist(), answers=answers, probs=probs, thresholds=candidate.thresholds,
            failed=failed, label_issues=issues, max_items=config.gradcam_items,
        )  # fmt: skip
    except NotConvolutional as exc:
        return _gradcam_skipped(context, str(exc))
    counts = {why: sum(p.why == why for p in explained.picks) for why in dict.fromkeys(p.why for p in explained.picks)}
    context.log.info(f"Grad-CAM of {len(explained.picks)} test items: {counts}")
    return {
        "gradcam": dg.MetadataValue.md(img.markdown_image(explained.png, "Grad-CAM: image, overlay") + "\n\n"
                                       "Per item: the image and where the model looked for the class named under it "
                                       "(red: most). Errors first, then label issues, then correct items per class."),
        "gradcam_items": dg.MetadataValue.json(counts),
    }, {"evaluation/gradcam.png": explained.png}


def _gradcam_skipped(context: dg.AssetExecutionContext, why: str) -> tuple[dict[str, dg.MetadataValue], dict[str, bytes]]:
    context.log.info(f"Grad-CAM skipped: {why}")
    return {"gradcam": dg.MetadataValue.text(f"skipped: {why}")}, {}


def _predict(loaded: LoadedModel, paths: list[str], config: ModelEvaluationConfig) -> tuple[Any, list[int]]:
    """The model's ``probs`` per test file (class probabilities, or a trainer kind's outputs) and the failures."""
    return loaded.predict(paths, device=config.device)


def _decide(
    context: dg.AssetExecutionContext,
    mlflow: MLflowResource,
    kind: TaskKind,
    candidate: LoadedModel,
    probs: Any,
    failed: list[int],
    paths: list[str],
    scoring: promotion.ScoringSet,
    config: ModelEvaluationConfig,
    gated: gates.GateResult,
) -> promotion.Decision:
    """The champion rule on the kind's test score at each model's own thresholds, with the champion re-scored on
    the same items (never a number from another split), and the release gates' failures."""

    def scored(loaded: LoadedModel, probs: Any, failed: list[int]) -> tuple[float, int]:
        return promotion.score(probs, scoring, failed, lambda p, t: kind.test_score(p, t, loaded.thresholds))

    score, n_items = scored(candidate, probs, failed)
    champion = mlflow.champion()
    champion_score: float | None = None
    comparable = True
    if champion is not None and champion.version == candidate.registered.version:
        champion_score = score
    elif champion is not None:
        loaded = mlflow.load_model(champion)
        comparable = (loaded.classes, loaded.task_kind) == (candidate.classes, candidate.task_kind)
        if comparable:
            champion_probs, champion_failed = _predict(loaded, paths, config)
            # Both on the items both could decode (the same files, so normally the same failures).
            both = sorted({*failed, *champion_failed})
            champion_score, n_items = scored(loaded, champion_probs, both)
            score = scored(candidate, probs, both)[0]
        else:
            context.log.warning(
                f"{champion.label} is a {loaded.task_kind} model of {loaded.classes}: not comparable, replaced"
            )
    return promotion.decide(
        candidate=candidate.registered.label,
        candidate_score=score,
        champion=champion.label if champion is not None else None,
        champion_score=champion_score,
        basis=scoring.basis,
        n_items=n_items,
        tolerance=config.promotion_tolerance,
        comparable=comparable,
        metric=kind.test_metric.label,
        gate_failures=gated.failures,
    )


def _hand_over(
    context: dg.AssetExecutionContext,
    store: LabelStore,
    label_studio: LabelStudioResource,
    project: ProjectSettings,
    kind: TaskKind,
    candidate: LoadedModel,
    model_version: str,
    config: ModelEvaluationConfig,
) -> dict[str, dg.MetadataValue]:
    """core/labelstudio/handover.py; with Label Studio unreachable the promotion goes on and the prelabel and queue
    runs that follow it attach the predictions."""
    if not config.hand_over_open_tasks:
        return {}
    # The visibility the queue last used (pre-labels hidden on gold stay hidden).
    shown = lineage.latest_metadata(context.instance, "labeling_tasks").get("prelabel_visibility")
    visibility = cast(PrelabelVisibility, shown if shown in get_args(PrelabelVisibility) else "all")
    options = QueueOptions(classes=list(project.classes), data_path=project.data_path, allow_empty=project.allow_empty_set,
                           allow_overlap=project.allow_overlapping_spans, prelabel_visibility=visibility)  # fmt: skip
    try:
        done = hand_over(store, label_studio.get_client(), kind, options, label_studio.labeling_project_ids(),
                         model_version=model_version, predict=lambda uris: _predict(candidate, uris, config),
                         thresholds=candidate.thresholds)  # fmt: skip
    except LabelStudioError as exc:
        context.log.warning(f"{model_version} not handed over to the open tasks now ({exc}): the prelabel and queue "
                            "runs after this promotion attach its predictions")  # fmt: skip
        return {"handed_over_open_tasks": dg.MetadataValue.text(f"no: {exc}"[:300])}
    context.log.info(f"{model_version} handed over: {done.prelabeled} open tasks' items pre-labeled, "
                     f"{done.attached} predictions attached to {done.open_tasks} open tasks")  # fmt: skip
    return {
        "handed_over_open_tasks": dg.MetadataValue.int(done.open_tasks),
        "handed_over_predictions": dg.MetadataValue.int(done.attached),
    }


def _apply(mlflow: MLflowResource, version: int, decision: promotion.Decision) -> None:
    """Move the aliases: the winner is ``champion``; a loser is ``challenger`` (one alias, one version)."""
    if decision.promote:
        mlflow.set_alias(CHAMPION_ALIAS, version)
        challenger = mlflow.version_by_alias(CHALLENGER_ALIAS)
        if challenger is not None and challenger.version <= version:
            mlflow.delete_alias(CHALLENGER_ALIAS)  # it lost to an older champion than this one
    else:
        mlflow.set_alias(CHALLENGER_ALIAS, version)


def _decision_metadata(
    mlflow: MLflowResource,
    decision: promotion.Decision,
    scoring: promotion.ScoringSet,
    config: ModelEvaluationConfig,
    score_name: str,
) -> dict[str, Any]:
    """What the champion check reads: both scores on the same items (``candidate_macro_f1``, or ``candidate_map``
    for boxes: the kind's test score), the basis, n, and the outcome."""
    score = score_name.removeprefix("test_")
    champion_now = decision.candidate if decision.promote else decision.champion
    metadata: dict[str, Any] = {
        "alias": dg.MetadataValue.text(decision.alias),
        "promoted": dg.MetadataValue.bool(decision.promote),
        "promotion_outcome": dg.MetadataValue.text(decision.outcome),
        "promotion_reason": dg.MetadataValue.text(decision.reason()),
        "champion_model_version": dg.MetadataValue.text(str(champion_now)),
        "champion_uri": dg.MetadataValue.text(mlflow.alias_uri(CHAMPION_ALIAS)),
        "previous_champion_version": dg.MetadataValue.text(decision.champion or "none"),
        "scoring_basis": dg.MetadataValue.text(decision.basis),
        "scoring_items": dg.MetadataValue.int(decision.n_items),
        "gold_test_items": dg.MetadataValue.int(scoring.n_gold),
        "min_gold_test_items": dg.MetadataValue.int(config.min_gold_test_items),
        "promotion_tolerance": dg.MetadataValue.float(decision.tolerance),
        "test_score_name": dg.MetadataValue.text(score_name),
        f"candidate_{score}": dg.MetadataValue.float(round(decision.candidate_score, 6)),
    }
    if decision.champion_score is not None:
        metadata[f"previous_champion_{score}"] = dg.MetadataValue.float(round(decision.champion_score, 6))
    return metadata
