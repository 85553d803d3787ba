"""``labeling-assets demo``: the whole loop on the bundled demo data, on one machine, with progress.

Label Studio (start + bootstrap) → ingest → prelabel → queue → simulated crowd → collect (through the
annotation sensor's own logic) → consensus → splits → labeler stats per labeler → leaderboard, label
issues, QA report → train → evaluate → summary. Every step is a Dagster run on the local instance, so the
UI (``dagster dev``) shows all of them afterwards.

``--serve`` shows the loop running itself instead: it starts Label Studio, ``dagster dev`` (the UI and the
daemon) and an MLflow UI, and then only plays the crowd (simulated labelers answer each wave of tasks through
Label Studio's API as it appears). The daemon's sensors do every other step: ingest, prelabels, queue,
collect, consensus, splits, training, the champion model. Each run is printed with the sensor or schedule
that started it and why; a summary follows once a champion model exists, and again on Ctrl-C. The loop's
thresholds are the environment's (README, "What runs by itself"); the step options below do not apply.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from labeling_assets import env
from labeling_assets.cli import demo_boxes, demo_speech, demo_text, sweep
from labeling_assets.cli.common import (
    demo_truth_csv,
    label_store,
    project_classes,
    simulate_demo_crowd,
    truth_by_item,
    use_local_instance,
)
from labeling_assets.cli.demo_multilabel import (
    per_label_summary,
    truth_sets_by_item,
    use_multi_label_environment,
)
from labeling_assets.cli.demo_multilabel import simulate_crowd as simulate_set_crowd
from labeling_assets.cli.demo_steps import StepFailed
from labeling_assets.cli.demo_steps import collect_through_sensor as _collect_through_sensor
from labeling_assets.cli.demo_steps import done as _done
from labeling_assets.cli.demo_steps import latest_metadata as _latest_metadata
from labeling_assets.cli.demo_steps import quality as _quality
from labeling_assets.cli.demo_steps import run as _run
from labeling_assets.cli.demo_steps import step as _step
from labeling_assets.constants import REPO_ROOT
from labeling_assets.core.fields.spec import with_field_controls
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.text_classes.demo import FortunesMissing
from labeling_assets.env import data_dir
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


def run_demo(args: argparse.Namespace) -> int:
    """Run the loop and print a summary; with --serve, keep the UIs running afterwards."""
    from labeling_assets.local import labelstudio as ls_server

    if args.items is not None and args.items < 1:
        print(f"labeling-assets demo: --items {args.items}: queue at least 1 item", file=sys.stderr)
        return 2
    if args.task in demo_speech.TASKS:  # speech: two projects, each in a process of its own (demo_speech)
        if (refused := demo_speech.refusal(args)) is not None:
            print(refused, file=sys.stderr)
            return 2
        return demo_speech.run_both(args) if args.task == "speech" else demo_speech.run_part(args, start_over)
    boxes = args.task == "boxes"
    text = args.task in demo_text.TASKS
    if args.items is None:
        args.items = demo_boxes.DEFAULT_ITEMS if boxes else demo_text.DEFAULT_ITEMS if text else 450
    if args.epochs is None:  # a detector trains on fewer, larger images, each epoch slower on a CPU
        args.epochs = demo_boxes.DEFAULT_EPOCHS if boxes else demo_text.DEFAULT_EPOCHS if text else 30
    if boxes and args.serve:
        print("labeling-assets demo --task boxes --serve: not available yet (the self-driving loop's crowd answers "
              "classes); run it without --serve", file=sys.stderr)  # fmt: skip
        return 2
    if text and args.serve:
        print(f"labeling-assets demo --task {args.task} --serve: not available (the self-driving loop's crowd answers "
              "image classes); run it without --serve", file=sys.stderr)  # fmt: skip
        return 2
    if args.sweep and (args.serve or args.task not in ("single-label", "multi-label")):
        print(f"labeling-assets demo --task {args.task}{' --serve' if args.serve else ''} --sweep: the sweep trains "
              "the image classifier (single-label, multi-label) after the demo's own training, without --serve",
              file=sys.stderr)  # fmt: skip
        return 2
    if (args.severity or args.self_confidence) and (args.task != "single-label" or args.serve):
        print(f"labeling-assets demo --task {args.task}{' --serve' if args.serve else ''}: --severity and "
              "--self-confidence are for the single-label demo without --serve (its crowd answers them; the "
              "self-driving loop's crowd does not)", file=sys.stderr)  # fmt: skip
        return 2
    use_answer_fields(severity=args.severity, self_confidence=args.self_confidence)
    multi = args.task == "multi-label"
    # Before the instance and resources are chosen: each demo but the single-label one has its own data folder.
    grids = use_multi_label_environment() if multi else None
    scenes = demo_boxes.use_boxes_environment() if boxes else None
    try:
        texts = demo_text.use_text_environment(args.task, args.seed) if text else None
    except FortunesMissing as exc:  # the package scripts/demo installs as root
        print(f"labeling-assets demo --task {args.task}: {exc}", file=sys.stderr)
        return 2
    if args.fresh and (refused := start_over(data_dir())) is not None:
        print(f"labeling-assets demo --fresh: {refused}", file=sys.stderr)
        return 2
    if args.fresh:  # the folder just emptied held those demos' images and instance: made again (same bytes)
        grids = use_multi_label_environment() if multi else None
        scenes = demo_boxes.use_boxes_environment() if boxes else None
        texts = demo_text.use_text_environment(args.task, args.seed) if text else None
    use_local_instance()
    LabelStoreResource().check()  # a wrong store URL fails now, in one line, not after Label Studio's start
    if args.serve:
        return _serve(args, grids)
    started = time.perf_counter()
    title = " (multi-label: 2x2 digit grids)" if multi else " (boxes: scenes of digit scans)" if boxes else ""
    if texts is not None:
        title = " (text classes: Debian's fortunes)" if args.task == "text-classes" else " (text spans: Faker sentences)"
    print(f"labeling-assets demo{title}: data folder {data_dir()}")
    try:
        # The resources find the server when each run starts (its port is known only once it is up: 8080
        # unless taken), so the order of the steps is the pipeline's, not a constraint of the imports.
        t = _step(1, "start Label Studio (local, 127.0.0.1) and create the project")
        info = ls_server.start()
        label_studio = LabelStudioResource()
        settings = ProjectSettings()  # the demo's environment picked the task type above
        classes = project_classes()
        label_config = with_field_controls(
            task_kind(settings.task_type).label_config(classes, settings.allow_empty_set), settings.answer_fields()
        )
        project_id = label_studio.ensure_project(classes=classes, overlap=args.overlap, label_config=label_config)
        print(f"    Label Studio {info.url}, project {project_id}; token in {info.token_file}")
        _done(t)

        images = "digit grids" if multi else "digit scenes" if boxes else "texts" if text else "digits"
        t = _step(2, f"ingest the bundled demo {images} into the content-addressed raw store")
        _run("ingest_job")
        _done(t)

        baseline = "none for boxes" if boxes else "none for text" if text else "a pixel baseline on current consensus"
        t = _step(3, f"pre-label (registered model if any, else {baseline})")
        _run("prelabel_job")
        _done(t)

        t = _step(
            4, f"queue up to {args.items} tasks: overlap {args.overlap}, hidden gold at {args.gold_rate:.0%}"
        )
        queue_config = {"max_new_tasks": args.items, "gold_rate": args.gold_rate, "overlap": args.overlap}
        _run("queue_job", run_config={"ops": {"labeling_tasks": {"config": queue_config}}})
        _done(t)

        t = _step(
            5, f"simulated crowd of {args.annotators} labelers labels the queued tasks in Label Studio"
        )
        if grids is not None:
            simulate_set_crowd(label_studio, project_id, grids, project_classes(), args)
        elif texts is not None:
            demo_text.simulate_crowd(label_studio, project_id, texts, args)
        elif scenes is not None:
            demo_boxes.simulate_crowd(label_studio, project_id, scenes, project_classes(), args)
        else:
            _simulate_crowd(label_studio, project_id, args)
        _done(t)

        t = _step(
            6, "collect: the annotation sensor ticks, its run request runs collect_job (+ consensus, splits)"
        )
        _collect_through_sensor()
        _done(t)

        t = _step(7, "labeler stats for every labeler partition, leaderboard, label issues, QA report")
        _quality()
        _done(t)

        model = f"{'tiny' if args.backbone == 'auto' else args.backbone} detector" if boxes else args.backbone
        if text:
            model = "TF-IDF + logistic regression" if args.task == "text-classes" else "spaCy NER from blank"
        epochs = "" if args.task == "text-classes" else f", up to {args.epochs} epochs"
        t = _step(8, f"train ({model}{epochs}) and evaluate on the frozen test split")
        train_config: dict[str, Any] = {"epochs": args.epochs, "backbone": args.backbone}
        if boxes:  # the detector's own trainer reads its settings (its backbone: tiny unless named)
            backbone = {} if args.backbone == "auto" else {"backbone": args.backbone}
            train_config = {"trainer_settings": {"epochs": args.epochs, **backbone}}
        if text:  # the text trainers' own settings (TF-IDF + LR has no epochs)
            train_config = {"trainer_settings": {"epochs": args.epochs} if args.task == "text-spans" else {}}
        _run("train_job", run_config={"ops": {"trained_model": {"config": train_config}}})
        _done(t)
        if args.sweep:
            t = _step(9, f"training sweep ({sweep.DEMO_SWEEP.relative_to(REPO_ROOT)}): every cell, the winner on "
                      "validation, then on the test split once")  # fmt: skip
            if sweep.run_sweep(str(sweep.DEMO_SWEEP)) != 0:
                raise StepFailed("the sweep failed")
            _done(t)
    except StepFailed as exc:
        print(f"\ndemo stopped: {exc}", file=sys.stderr)
        recover = RECOVER if args.task == "single-label" else RECOVER.replace(" --fresh", f" --task {args.task} --fresh")
        print(f"To start over with a clean data folder: {recover} (removes {data_dir()} and its Label Studio, "
              "store, runs and models).", file=sys.stderr)  # fmt: skip
        return 1

    _summary(time.perf_counter() - started, grids, scenes, texts)
    # The multi-label and box demos keep their own instance and data folder: the plain `dagster dev` and
    # `labelstudio stop` would open the single-label demo's instance and stop its server.
    ui, serve = "`dagster dev` in the repository root", "the loop running by itself: scripts/demo --serve"
    stop = "labeling-assets labelstudio stop"
    if grids is not None or scenes is not None or texts is not None:
        ui = f"`DAGSTER_HOME={env.variable('DAGSTER_HOME')} dagster dev` in the repository root"
        stop = f"LABELING_ASSETS_HOME={data_dir()} {stop}"
        serve = "the loop running by itself: scripts/demo --task multi-label --serve" if grids is not None else ""
    print(f"\nSee it all in the UI: {ui}{'; ' + serve if serve else ''}.")
    print(f"Label Studio is still running at {info.url} (stop it: `{stop}`).")
    print(NEW_SHELL_HINT)
    return 0


RECOVER = "scripts/demo --fresh"
# `dagster` and `labeling-assets` live in the project venv: scripts/demo put it on PATH for itself only.
NEW_SHELL_HINT = (
    "In a new shell, run `source scripts/setup.sh` in the repository first: it puts `dagster` and "
    "`labeling-assets` on PATH (the project venv) and points them at this data folder."
)
# What a data folder made by the project holds (one of them at least): --fresh removes only such a folder. "demo"
# and "dagster_home": a first --fresh of the multi-label or box demo finds only what it has just made there.
DATA_FOLDER_MARKERS = ("labels.db", "labelstudio", "dagster", "mlruns", "mlflow.db", "raw", "demo", "dagster_home")


def start_over(folder: Path) -> str | None:
    """Empty ``folder`` (the data folder) after stopping the Label Studio that serves from it; None when done,
    else why it was refused (a folder that does not look like one the project made is never emptied)."""
    import shutil

    from labeling_assets.local import labelstudio as ls_server
    from labeling_assets.local.labelstudio_files import ServerPaths

    if not folder.exists():
        return None
    children = list(folder.iterdir())
    if children and not any((folder / marker).exists() for marker in DATA_FOLDER_MARKERS):
        return f"{folder} does not look like a labeling-assets data folder (none of {', '.join(DATA_FOLDER_MARKERS)}): not removed"
    ls_server.stop(ServerPaths(folder / "labelstudio"))
    for child in children:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    print(f"labeling-assets demo --fresh: emptied {folder}", flush=True)
    return None


SEVERITY_FIELD = '[{"name": "severity", "kind": "choice", "options": ["low", "medium", "high"], "required": true}]'


def use_answer_fields(*, severity: bool, self_confidence: bool) -> None:
    """--severity and --self-confidence: the project's extra answer fields, through the environment every run reads
    (``ProjectSettings.extra_fields``, ``.ask_self_confidence``); the demo's crowd answers them."""
    if severity:
        env.set_variable("LABELING_ASSETS_EXTRA_FIELDS", SEVERITY_FIELD)
    if self_confidence:
        env.set_variable("LABELING_ASSETS_ASK_SELF_CONFIDENCE", "true")


def _simulate_crowd(label_studio: LabelStudioResource, project_id: int, args: argparse.Namespace) -> None:
    import functools

    from labeling_assets.core.labelstudio.crowd import default_crowd
    from labeling_assets.local.crowd import simulate_crowd

    crowd = default_crowd(args.annotators, prefix="sim")
    fields = ProjectSettings().answer_fields()  # --severity, --self-confidence: the crowd answers them too
    simulate = functools.partial(simulate_crowd, fields=fields) if fields else simulate_crowd
    simulate_demo_crowd(simulate, label_studio.get_client(), project_id, crowd,
                        truth=truth_by_item(demo_truth_csv()), classes=project_classes(), args=args)  # fmt: skip


def consensus_accuracy() -> tuple[int, float | None]:
    """Items with consensus and the share that matches the demo's ground truth."""
    import pandas as pd

    from labeling_assets.core.store.schema import latest_consensus_query

    store = label_store()
    truth = truth_by_item(demo_truth_csv(), store)
    rows = pd.DataFrame(store.fetch(latest_consensus_query()))
    if rows.empty:
        return 0, None
    known = rows[rows["item_id"].isin(truth)]
    correct = known["label"].astype(str) == known["item_id"].map(truth)
    return len(rows), float(correct.mean()) if len(known) else None


def field_summary() -> list[str]:
    """--severity: each extra field's consensus (as dataset_splits computes it, on every item with answers) against
    its truth by construction (``core/fields/crowd.field_truth``)."""
    from labeling_assets.core.fields.consensus import aggregate_fields
    from labeling_assets.core.fields.crowd import field_truth
    from labeling_assets.core.store.answer_fields import current_field_answers

    fields = [f for f in ProjectSettings().answer_fields() if f.kind != "rating"]
    if not fields:
        return []
    consensus = aggregate_fields(current_field_answers(label_store()), fields)
    lines = []
    for f in fields:
        part = consensus[consensus["field"] == f.name]
        right = sum(value == field_truth(item, f) for item, value in zip(part["item_id"], part["value"], strict=True))
        share = f"{right / len(part):.3f}" if len(part) else "n/a"
        lines.append(f"  {f.name + ' consensus:':<26} {len(part)} items; accuracy vs its truth {share}")
    return lines


def _summary(
    seconds: float, grids: Path | None = None, scenes: Path | None = None, texts: demo_text.TextDemo | None = None
) -> None:
    import sqlalchemy as sa

    from labeling_assets.core.store.schema import annotations_table, items_table

    store = label_store()
    n_items = store.count(items_table, items_table.c.status == "active")
    n_ann = store.count(annotations_table)
    n_labelers = len(store.fetch(sa.select(annotations_table.c.labeler_id).distinct()))
    evaluation = _latest_metadata("model_evaluation")
    if grids is not None:  # multi-label: a table per label instead of one accuracy
        print("\n== summary (multi-label)")
        print(f"  items (active):            {n_items}")
        print(f"  annotation versions:       {n_ann} from {n_labelers} labelers")
        print("\n".join(per_label_summary(grids, project_classes(), evaluation)))
        print(f"  demo took {seconds:.0f}s")
        return
    if texts is not None:  # text: consensus and labelers against the truth kept apart, the model's test score
        print(f"\n== summary ({texts.task})")
        print(f"  items (active):            {n_items}")
        print(f"  annotation versions:       {n_ann} from {n_labelers} labelers")
        print("\n".join(demo_text.store_summary(texts, evaluation)))
        print(f"  demo took {seconds:.0f}s")
        return
    if scenes is not None:  # boxes: mAP against the true boxes and each labeler's quality recovered
        print("\n== summary (boxes)")
        print(f"  items (active):            {n_items}")
        print(f"  annotation versions:       {n_ann} from {n_labelers} labelers")
        print("\n".join(demo_boxes.store_summary(scenes, project_classes(), _latest_metadata("consensus_labels"),
                                                 evaluation)))  # fmt: skip
        print(f"  demo took {seconds:.0f}s")
        return
    n_consensus, accuracy = consensus_accuracy()
    f1 = evaluation.get("macro_f1") or evaluation.get("test_macro_f1")
    print("\n== summary")
    print(f"  items (active):            {n_items}")
    print(f"  annotation versions:       {n_ann} from {n_labelers} labelers")
    acc = "n/a" if accuracy is None else f"{accuracy:.3f}"
    print(f"  consensus items:           {n_consensus}; accuracy vs ground truth {acc}")
    for line in field_summary():
        print(line)
    print(f"  model test macro-F1:       {f1 if f1 is None else f'{float(f1):.3f}'}")
    report = _latest_metadata("qa_report").get("report")
    if report:
        print(f"  QA report:                 {report}")
    print(f"  demo took {seconds:.0f}s")


def _serve(args: argparse.Namespace, grids: Path | None = None) -> int:
    """The self-driving loop: Label Studio, ``dagster dev`` (UI + daemon) and MLflow; the demo plays the crowd."""
    from labeling_assets.core.labelstudio.crowd import default_crowd, default_set_crowd
    from labeling_assets.local import labelstudio as ls_server
    from labeling_assets.local.crowd_waves import CrowdWaves
    from labeling_assets.local.processes import stop_group
    from labeling_assets.resources.mlflow import MLflowResource

    started = time.monotonic()
    print(f"labeling-assets demo --serve: data folder {data_dir()}")
    info = ls_server.start()
    label_studio = LabelStudioResource()
    mlflow = MLflowResource()
    mlflow.registered_versions()  # creates a new MLflow store now: `mlflow ui` and a sensor tick must not race to
    environment = env.child_environment()  # DAGSTER_HOME: the repository's instance unless set (use_local_instance)
    receiver = _start_receiver(environment)  # annotations in seconds; None: the poll alone
    # The children are in their own process groups (below): a closed terminal (SIGHUP) or `kill` (SIGTERM) reaches
    # only the demo, so it stops them as Ctrl-C does instead of leaving the loop running without the crowd.
    for ending in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(ending, _interrupt)
    # Started from a background job, this process has SIGINT ignored; children would inherit that, and dagster
    # maps SIGTERM to SIGINT's handler, so `dagster dev` would ignore the SIGTERM that stops it (then only SIGKILL,
    # 30 s later, ends it and its daemon mid-run). With Python's handler here, children start with the default.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    procs = [
        # Each in its own process group, stopped with its children below (stop_group): Ctrl-C reaches the demo only.
        subprocess.Popen(
            ["dagster", "dev", "-p", str(args.dagster_port)], cwd=REPO_ROOT, env=environment, start_new_session=True
        ),
        subprocess.Popen(
            ["mlflow", "ui", "--backend-store-uri", mlflow.resolved_tracking_uri, "--host", "127.0.0.1",
             "--port", str(args.mlflow_port)],
            cwd=REPO_ROOT, env=environment, start_new_session=True,
        ),  # fmt: skip
    ]
    print("\n== serving (Ctrl-C stops the crowd, the Dagster UI and MLflow; `labeling-assets labelstudio stop` stops Label Studio)")
    print(f"  Dagster UI:    http://127.0.0.1:{args.dagster_port}   (Automation: the sensors and schedules at work)")
    print(f"  Label Studio:  {info.url}")
    print(f"  MLflow:        http://127.0.0.1:{args.mlflow_port}")
    if receiver is not None:
        print(f"  Webhooks:      {receiver.url}   (Label Studio posts annotation events; the 30 s poll stays)")
    seen = earlier_runs()  # a used data folder: runs made before (by hand, by an earlier demo) are not the loop's
    initial = _champion(mlflow)
    if seen or initial:
        print(f"\n  {len(seen)} earlier runs in this data folder are not listed below"
              + (f"; champion model {initial} was already there" if initial else "")
              + f" (start over: {RECOVER} --serve)")  # fmt: skip
    print("\n== the loop runs itself: the demo only plays the crowd; every run below was started by the daemon")
    crowd = CrowdWaves(
        label_studio.get_client,
        label_studio.resolved_project_title,
        default_crowd(args.annotators, prefix="sim") if grids is None else default_set_crowd(args.annotators, prefix="sim"),
        truth=(lambda: truth_by_item(demo_truth_csv())) if grids is None else (lambda: truth_sets_by_item(grids)),
        classes=project_classes(),
        seed=args.seed,
        on_wave=lambda n: print(f"[{time.monotonic() - started:5.0f}s] crowd: a wave of {n} annotations", flush=True),
    ).start()
    champion: str | None = None
    try:
        while procs[0].poll() is None:  # as long as dagster dev runs (an MLflow UI that stopped is not the loop)
            _print_run_changes(seen, started)
            if champion is None and (champion := new_champion(initial, _champion(mlflow))) is not None:
                print(f"[{time.monotonic() - started:5.0f}s] champion model {champion}: the loop trained it by itself")
                if args.until_champion:
                    break
                _print_runs_summary()
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        crowd.stop(timeout_s=10)
        _print_runs_summary()
        for p in procs:
            stop_group(p)
        if receiver is not None:
            receiver.stop()
    if procs[0].returncode not in (None, 0, -15):
        print(f"dagster dev exited with code {procs[0].returncode}", file=sys.stderr)
        return 1
    return 0


def _start_receiver(environment: dict[str, str]) -> Any:
    """The webhook receiver in a thread of the demo, on a free port; its URL and secret go to ``dagster dev``'s
    environment, so the queue runs register the project's webhook. None (and a line) when it cannot start."""
    import secrets

    from labeling_assets.core.store.schema import LabelStore
    from labeling_assets.resources.labelstudio import WEBHOOK_SECRET_VAR, WEBHOOK_URL_VAR
    from labeling_assets.webhooks.serve import start_in_thread

    secret = env.variable(WEBHOOK_SECRET_VAR) or secrets.token_hex(24)
    try:
        store = LabelStore(env.label_store_url(), cache_dir=env.store_cache_dir())
        store.ensure_schema()
        receiver = start_in_thread(store, secret)
    except Exception as exc:  # the loop still runs on the poll
        print(f"  webhooks off (annotations arrive by the 30 s poll): {str(exc)[:200]}", file=sys.stderr)
        return None
    environment |= {WEBHOOK_URL_VAR: receiver.url, WEBHOOK_SECRET_VAR: secret}
    return receiver


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _champion(mlflow: Any) -> str | None:
    try:
        model = mlflow.champion()
    except Exception:  # no MLflow store yet: the first training creates it
        return None
    return model.label if model is not None else None


def new_champion(initial: str | None, now: str | None) -> str | None:
    """The champion the loop made while --serve ran: ``now`` unless it was already the champion at the start."""
    return now if now is not None and now != initial else None


def earlier_runs() -> dict[str, str]:
    """run id -> status of every run the instance holds now (not printed as the daemon's: made before)."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        return {r.dagster_run.run_id: r.dagster_run.status.value for r in instance.get_run_records()}


def _started_by(tags: Any) -> str:
    """Which sensor or schedule started a run (Dagster's own tags), or by hand."""
    if "dagster/sensor_name" in tags:
        return f"sensor {tags['dagster/sensor_name']}"
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    return "by hand"


def _print_run_changes(seen: dict[str, str], started: float) -> None:
    """Print each run the first time it is seen and whenever it ends."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(limit=50)
    for record in reversed(records):
        run = record.dagster_run
        status = run.status.value
        if run.run_id in seen and seen[run.run_id] in ("SUCCESS", "FAILURE", "CANCELED"):
            continue  # ended before (an earlier run of a used data folder, or printed already)
        if seen.get(run.run_id) == status or (run.run_id in seen and status not in ("SUCCESS", "FAILURE", "CANCELED")):
            continue
        first = run.run_id not in seen
        seen[run.run_id] = status
        why = run.tags.get("labeling-assets/trigger", "")
        where = f" <- {_started_by(run.tags)}{': ' + why if why else ''}" if first else ""
        print(f"[{time.monotonic() - started:5.0f}s] run {run.job_name:<14} {run.run_id[:8]} {status:<8}{where}", flush=True)


def _print_runs_summary() -> None:
    """Runs per job and per sensor or schedule that started them."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records()
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for record in records:
        run = record.dagster_run
        by_status = counts.setdefault((run.job_name, _started_by(run.tags)), {})
        by_status[run.status.value] = by_status.get(run.status.value, 0) + 1
    print("\n== runs, and which sensor or schedule started them")
    for (job, by), statuses in sorted(counts.items()):
        detail = ", ".join(f"{n} {status.lower()}" for status, n in sorted(statuses.items()))
        print(f"  {job:<18} {by:<32} {detail}")
    print()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole loop on the bundled demo data (digits; grids, scenes or texts with --task) and print a summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--items", type=int, default=None,
        help=f"items to queue for labeling (default 450; {demo_boxes.DEFAULT_ITEMS} of the {demo_boxes.SCENES} "
        f"scenes with --task boxes; {demo_text.DEFAULT_ITEMS} of the {demo_text.TEXTS} texts with the text tasks; with "
        f"the speech tasks all {demo_speech.UTTERANCES} recordings, or their {2 * demo_speech.UTTERANCES} texts to correct)",
    )
    p.add_argument(
        "--annotators", type=int, default=5, help="simulated labelers (default 5: a mix of presets)"
    )
    p.add_argument("--overlap", type=int, default=3, help="labelers per task (default 3)")
    p.add_argument("--gold-rate", type=float, default=0.1, help="share of hidden gold tasks (default 0.1)")
    p.add_argument(
        "--epochs", type=int, default=None,
        help=f"training epochs at most (default 30, early stopping; {demo_boxes.DEFAULT_EPOCHS} with --task boxes, "
        f"{demo_text.DEFAULT_EPOCHS} with --task text-spans; none with --task text-classes; {demo_speech.DEFAULT_EPOCHS} for "
        "the speech demo's frame classifier)",
    )
    p.add_argument(
        "--backbone",
        default="auto",
        help="auto | small_cnn | tiny_cnn | resnet18 | efficientnet_b0 | mobilenet_v3_small; with --task boxes: auto (tiny) | "
        "tiny | mobilenet_v3_320",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated crowd (default 0)")
    p.add_argument(
        "--task",
        choices=["single-label", "multi-label", "boxes", *demo_text.TASKS, *demo_speech.TASKS],
        default="single-label",
        help="single-label: the digits, one class each (default). multi-label: 2x2 grids of digits labelled with "
        "the digits present (none, one or several), checkboxes in Label Studio, a crowd that misses and invents "
        "findings, per-class consensus, iterative stratification, sigmoid training, per-label results; in its "
        "own data folder <data>/multi-label (with --serve too). boxes: scenes of 0-4 digit scans on a 160 px "
        "canvas, labelled with a box and a class per digit (RectangleLabels in Label Studio, a crowd that jitters, "
        "misses and invents boxes, box consensus, a small detector trained on CPU, mAP); in its own data folder "
        "<data>/boxes (not with --serve). text-classes: quotations of Debian's fortunes package, one category each "
        "(a crowd with per-labeler confusion, TF-IDF + logistic regression); text-spans: Faker sentences with PER, "
        "ORG and LOC entities (a crowd that misses entities, cuts boundaries, confuses types; span consensus; spaCy "
        "NER from blank); each in its own data folder <data>/text-classes or <data>/text-spans (not with --serve). "
        "speech: code-switched Vietnamese-English utterances spoken by espeak-ng, two projects in turn: "
        "speech-segments (language regions on the waveform, a crowd that jitters, marks late and misses switches, "
        "boundary consensus beside frame majority, a frame classifier on log-mel features) and speech-edits (machine "
        "transcripts and translations corrected by a crowd with a lazy labeler and a spammer, ROVER-style consensus, "
        "a correction model scored by WER); each in its own data folder <data>/speech-segments or <data>/speech-edits "
        "(not with --serve)",
    )
    p.add_argument(
        "--severity",
        action="store_true",
        help="single-label: a two-field project, class + severity (low / medium / high, each item's by construction): "
        "Label Studio asks both, the crowd answers both, the dataset's exports carry the severity's consensus",
    )
    p.add_argument(
        "--self-confidence",
        action="store_true",
        help="single-label: ask each labeler's own confidence (a 1-5 rating); the crowd's model is in "
        "docs/answer_fields.md",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="show the loop running itself: Label Studio, the Dagster UI with the daemon and MLflow; the demo "
        "only plays the crowd, the sensors do every other step (until Ctrl-C)",
    )
    p.add_argument(
        "--until-champion", action="store_true", help="with --serve: stop once the loop has made a champion model"
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start over: stop the data folder's Label Studio and empty the data folder (store, Label Studio, "
        "runs, models, exports) first",
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="after training: the demo's training sweep (docs/sweep-demo.toml: 2 backbones, plain and distilled from "
        "the champion), the winner picked on validation and scored on the test split (docs/model.md, \"Sweeps\")",
    )
    p.add_argument("--dagster-port", type=int, default=3000)
    p.add_argument("--mlflow-port", type=int, default=5000)
    p.set_defaults(func=run_demo)
