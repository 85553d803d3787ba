"""``labeling-assets demo --task speech``: the demo's loop on code-switched speech (issue 35), two projects in turn.

``--task speech-segments`` (``audio_segments``): espeak-ng utterances that switch between Vietnamese and English,
with gaps of noise (``core.speech.synth``); Label Studio shows the waveform with the labels ``vi``, ``en`` and
``noise``; the crowd marks regions with its habits (two good labelers, one who marks late and wide, one who misses
half the language switches, a spammer: ``local.speech_crowd``); consensus fuses boundaries (``core.speech``'s
labeler-aware consensus), the frame-majority baseline is scored on the same answers; the model is the frame
classifier on log-mel features.

``--task speech-edits`` (``text_edits``): per utterance its machine transcript (shown with the audio) and its
machine English translation (shown with the source sentence), made by perturbing the truth
(``core.speech.crowd.machine_output``, with the fixed confusions a real ASR or MT system repeats:
``demo_source.SYSTEMATIC``); the crowd corrects them (three careful correctors, a lazy one who submits
the machine output unchanged, a spammer); consensus is the labeler-aware ROVER, plain ROVER is scored on the same
answers; the model is the correction model, scored by WER before and after.

``--task speech`` runs the two, each in a process of its own (the definitions read a project's settings once per
process), one after the other. Each keeps to its own data folder, ``<data>/speech-segments`` and
``<data>/speech-edits``; what the pipeline reads is ``demo/source/`` there (``core.speech.demo_source``: WAV files,
the sidecar JSONL, a hidden gold file); the truth is kept apart in ``demo/truth.jsonl``, read only by the crowd and
the summary. Nothing is downloaded: espeak-ng (Debian's package, which scripts/demo installs) speaks the phrases.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from labeling_assets import env
from labeling_assets.cli.demo_multilabel import use_own_instance
from labeling_assets.cli.demo_steps import (
    StepFailed,
    collect_through_sensor,
    done,
    latest_metadata,
    quality,
    run,
    step,
)
from labeling_assets.core.speech.demo_source import (
    SYSTEMATIC,
    TRANSCRIPT,
    TRANSLATION,
    DemoUtterance,
    make_demo,
    read_truth,
    write_edit_source,
    write_segment_source,
    write_truth,
)
from labeling_assets.core.speech.regions import Region
from labeling_assets.env import data_dir

PARTS = {"speech-segments": "audio_segments", "speech-edits": "text_edits"}
TASKS = ("speech", *PARTS)
LABELS = ("vi", "en", "noise")
UTTERANCES = 60  # recordings synthesised; the segments project has one item each, the edits project two
DEFAULT_EPOCHS = 15  # the frame classifier's, at most


@dataclass(frozen=True)
class SpeechDemo:
    part: str  # speech-segments | speech-edits
    source: Path  # what the pipeline reads
    truth: Path  # what only the crowd and the summary read

    @property
    def segments(self) -> bool:
        return self.part == "speech-segments"


def use_speech_environment(part: str, seed: int = 0) -> SpeechDemo:
    """Point this process (and the runs it starts) at one speech project: task type, classes, data folder, Dagster
    instance and source; write its audio, sidecar, gold and truth (the same bytes each time). Idempotent. Raises
    ``synth.SynthesisError`` (one line) where espeak-ng is missing."""
    if env.variable("LABELING_ASSETS_TASK_TYPE") != PARTS[part]:
        env.set_variable("LABELING_ASSETS_TASK_TYPE", PARTS[part])
        env.set_variable("LABELING_ASSETS_HOME", str(data_dir() / part))
    env.set_variable("LABELING_ASSETS_CLASSES", ",".join(LABELS))
    home = data_dir()
    use_own_instance(home)
    demo = SpeechDemo(part, home / "demo" / "source", home / "demo" / "truth.jsonl")
    utterances, wavs = make_demo(UTTERANCES, seed=seed, cache_dir=home / "cache" / "espeak", systematic=SYSTEMATIC)
    (write_segment_source if demo.segments else write_edit_source)(demo.source, utterances, wavs)
    write_truth(demo.truth, utterances)
    env.set_default("LABELING_ASSETS_IMAGE_SOURCE", str(demo.source))
    return demo


def refusal(args: argparse.Namespace) -> str | None:
    """Why these options cannot run a speech demo (one line), or None: the self-driving loop's crowd, the sweep and
    the answer fields are the image demos'."""
    for flag in ("serve", "sweep", "severity", "self_confidence"):
        if getattr(args, flag, False):
            return f"labeling-assets demo --task {args.task}: --{flag.replace('_', '-')} is not available for speech"
    return None


def run_both(args: argparse.Namespace) -> int:
    """``--task speech``: each project's demo in a child process, segments first; stops at the first that fails."""
    started = time.perf_counter()
    forwarded = ["--annotators", str(args.annotators), "--overlap", str(args.overlap), "--gold-rate",
                 str(args.gold_rate), "--seed", str(args.seed)]  # fmt: skip
    forwarded += ["--items", str(args.items)] if args.items is not None else []
    forwarded += ["--epochs", str(args.epochs)] if args.epochs is not None else []
    forwarded += ["--fresh"] if args.fresh else []
    for part in PARTS:
        print(f"\n######## labeling-assets demo --task {part}", flush=True)
        code = subprocess.run([sys.executable, "-m", "labeling_assets.cli.main", "demo", "--task", part, *forwarded],
                              check=False).returncode  # fmt: skip
        if code != 0:
            return code
    print(f"\nspeech demo: both projects took {time.perf_counter() - started:.0f}s")
    return 0


def run_part(args: argparse.Namespace, start_over: Callable[[Path], str | None]) -> int:
    """One speech project's loop (module docstring) and its summary."""
    from labeling_assets.cli.common import label_store, use_local_instance
    from labeling_assets.core.speech.synth import SynthesisError
    from labeling_assets.core.tasks import task_kind
    from labeling_assets.local import labelstudio as ls_server
    from labeling_assets.resources.labelstudio import LabelStudioResource
    from labeling_assets.resources.project import ProjectSettings
    from labeling_assets.resources.store import LabelStoreResource

    try:
        demo = use_speech_environment(args.task, args.seed)
        if args.fresh and (refused := start_over(data_dir())) is not None:
            print(f"labeling-assets demo --fresh: {refused}", file=sys.stderr)
            return 2
        if args.fresh:  # the emptied folder held the audio and the instance: made again (same bytes)
            demo = use_speech_environment(args.task, args.seed)
    except SynthesisError as exc:
        print(f"labeling-assets demo --task {args.task}: {exc}", file=sys.stderr)
        return 2
    use_local_instance()
    LabelStoreResource().check()
    started = time.perf_counter()
    what = "language regions in audio" if demo.segments else "machine transcripts and translations to correct"
    print(f"labeling-assets demo (speech: {what}): data folder {data_dir()}")
    items = args.items
    try:
        t = step(1, "start Label Studio (local, 127.0.0.1) and create the project")
        info = ls_server.start()
        label_studio = LabelStudioResource()
        settings = ProjectSettings()
        label_config = task_kind(settings.task_type).label_config(list(settings.classes), settings.allow_empty_set)
        project_id = label_studio.ensure_project(classes=settings.classes, overlap=args.overlap, label_config=label_config)
        print(f"    Label Studio {info.url}, project {project_id}; token in {info.token_file}")
        done(t)

        t = step(2, "ingest the synthesised audio" + ("" if demo.segments else " and the sidecar of machine output"))
        run("ingest_job")
        done(t)

        t = step(3, "pre-label (registered model if any, else " + ("none" if demo.segments else "the machine output") + ")")
        run("prelabel_job")
        done(t)

        n = items if items is not None else UTTERANCES * (1 if demo.segments else 2)
        t = step(4, f"queue up to {n} tasks: overlap {args.overlap}, hidden gold at {args.gold_rate:.0%}")
        queue_config = {"max_new_tasks": n, "gold_rate": args.gold_rate, "overlap": args.overlap}
        run("queue_job", run_config={"ops": {"labeling_tasks": {"config": queue_config}}})
        done(t)

        t = step(5, f"simulated crowd of {args.annotators} labelers answers the queued tasks in Label Studio")
        simulate_crowd(label_studio.get_client(), project_id, demo, label_store(), args)
        done(t)

        t = step(6, "collect: the annotation sensor ticks, its run request runs collect_job (+ consensus, splits, "
                 "exports)")  # fmt: skip
        collect_through_sensor()
        done(t)

        t = step(7, "labeler stats for every labeler partition (gold, pauses), leaderboard, label issues, QA report")
        quality()
        done(t)

        model = "frame classifier on log-mel features" if demo.segments else "correction model"
        t = step(8, f"train ({model}) and evaluate on the frozen test split")
        settings_of = {"epochs": args.epochs or DEFAULT_EPOCHS} if demo.segments else {}
        run("train_job", run_config={"ops": {"trained_model": {"config": {"trainer_settings": settings_of}}}})
        done(t)

        t = step(9, "pre-label again, now with the trained model")
        run("prelabel_job")
        done(t)
    except StepFailed as exc:
        print(f"\ndemo stopped: {exc}", file=sys.stderr)
        print(f"To start over with a clean data folder: scripts/demo --task {args.task} --fresh (removes "
              f"{data_dir()} and its Label Studio, store, runs and models).", file=sys.stderr)  # fmt: skip
        return 1
    print(f"\n== summary ({args.task})")
    print("\n".join(store_summary(demo)))
    print(f"  demo took {time.perf_counter() - started:.0f}s")
    stop = f"LABELING_ASSETS_HOME={data_dir()} labeling-assets labelstudio stop"
    print(f"\nSee it all in the UI: `DAGSTER_HOME={env.variable('DAGSTER_HOME')} dagster dev` in the repository root.")
    print(f"Label Studio is still running at {info.url} (stop it: `{stop}`).")
    return 0


# --- the crowd --------------------------------------------------------------------------------------------------


def item_ids_by_path(store: Any) -> dict[str, str]:
    """Source path (``utt_0000.wav``, ``edits.jsonl#utt_0000_transcript``) -> item id, from the ingest manifest."""
    from labeling_assets.core.store.schema import source_files_table as t

    rows = store.fetch(sa.select(t.c.path, t.c.item_id).where(t.c.item_id.isnot(None)))
    return {str(r["path"]): str(r["item_id"]) for r in rows}


def segment_truth(utterances: Sequence[DemoUtterance], by_path: Mapping[str, str]) -> dict[str, DemoUtterance]:
    """item_id -> its utterance, for the segments project's items."""
    return {by_path[u.file]: u for u in utterances if u.file in by_path}


def edit_truth(utterances: Sequence[DemoUtterance], by_path: Mapping[str, str]) -> dict[str, tuple[DemoUtterance, str]]:
    """item_id -> (its utterance, transcript | translation), for the edits project's items."""
    from labeling_assets.core.speech.demo_source import SIDECAR

    out = {}
    for u in utterances:
        for which in (TRANSCRIPT, TRANSLATION):
            item = by_path.get(f"{SIDECAR}#{u.edit_id(which)}")
            if item is not None:
                out[item] = (u, which)
    return out


def simulate_crowd(client: Any, project_id: int, demo: SpeechDemo, store: Any, args: argparse.Namespace) -> None:
    """The speech crowd answers the queued tasks through Label Studio's API; prints each labeler's share."""
    from labeling_assets.local.speech_crowd import (
        EditTruth,
        SegmentTruth,
        segment_crowd,
        simulate_speech_crowd,
        text_crowd,
    )

    last = [time.perf_counter()]

    def progress(n: int, total: int) -> None:
        if time.perf_counter() - last[0] > 5 or n == total:
            print(f"    {n}/{total} annotations submitted", flush=True)
            last[0] = time.perf_counter()

    utterances, by_path = read_truth(demo.truth), item_ids_by_path(store)
    truth: dict[str, SegmentTruth | EditTruth]
    if demo.segments:
        crowd: Sequence[Any] = segment_crowd(args.annotators, prefix="sim", seed=args.seed)
        truth = {item: SegmentTruth(u.regions, u.duration) for item, u in segment_truth(utterances, by_path).items()}
    else:
        crowd = text_crowd(args.annotators, prefix="sim", seed=args.seed)
        truth = {item: EditTruth(u.truth_text(w), u.machine_text(w)) for item, (u, w) in edit_truth(utterances, by_path).items()}
    result = simulate_speech_crowd(client, project_id, PARTS[demo.part], crowd, truth=truth, labels=LABELS,
                                   overlap=args.overlap, seed=args.seed, progress=progress)  # fmt: skip
    per = result.per_labeler()
    for member in crowd:
        print(f"    {member.name:<20} {per[member.name]:>5} annotations")


# --- the summary ------------------------------------------------------------------------------------------------


def as_regions(label: Any) -> list[Region] | None:
    """A stored segments answer (a list, or its JSON) as regions; None for what is not one."""
    if isinstance(label, str):
        try:
            label = json.loads(label)
        except ValueError:
            return None
    if not isinstance(label, list):
        return None
    try:
        return [Region(float(r["start"]), float(r["end"]), str(r["label"])) for r in label]
    except (KeyError, TypeError, ValueError):
        return None


def segment_summary(
    truth: Mapping[str, DemoUtterance], annotations: pd.DataFrame, consensus: Mapping[str, Any],
    names: Mapping[str, str], paused: Mapping[str, str], evaluation: Mapping[str, Any], gold: set[str],
) -> list[str]:  # fmt: skip
    """Consensus against the truth beside frame majority on the same answers (hidden gold left out: its consensus
    is the gold), each labeler against the truth, and the model's test scores."""
    from labeling_assets.core.speech.regions import frame_accuracy, pooled_segment_score
    from labeling_assets.core.speech.segment_consensus import frame_majority

    answers: dict[str, dict[str, list[Region]]] = {}
    for r in annotations.to_dict("records"):
        if str(r["item_id"]) in truth and (regions := as_regions(r["label"])) is not None:
            answers.setdefault(str(r["item_id"]), {})[str(r["labeler_id"])] = regions
    items = sorted(i for i in consensus if i in truth and i in answers and i not in gold)
    lines = []
    if items:
        ours = [as_regions(consensus[i]) or [] for i in items]
        base = frame_majority([answers[i] for i in items], [truth[i].duration for i in items], LABELS)
        true = [list(truth[i].regions) for i in items]
        for name, found in (("consensus (ours)", ours), ("frame majority", base)):
            score = pooled_segment_score(found, true)
            accuracy = sum(frame_accuracy(f, t, LABELS, truth[i].duration)
                           for f, t, i in zip(found, true, items, strict=True)) / len(items)  # fmt: skip
            lines.append(f"  {name + ':':<26} boundary error {_num(score.boundary_error)} s, segment F1 "
                         f"{_num(score.f1)}, frame accuracy {_num(accuracy)} ({len(items)} recordings vs the truth)")  # fmt: skip
    else:
        lines.append("  consensus:                 none yet")
    lines.append("  labelers against the truth (segment F1, boundary error in s)")
    for labeler in sorted({lab for a in answers.values() for lab in a}, key=lambda k: names.get(k, k)):
        mine = [(answers[i][labeler], list(truth[i].regions)) for i in answers if labeler in answers[i]]
        score = pooled_segment_score([m for m, _ in mine], [t for _, t in mine])
        state = f"  PAUSED: {paused[labeler]}" if labeler in paused else ""
        lines.append(f"    {names.get(labeler, labeler):<20} {len(mine):>4} recordings  F1 {_num(score.f1)}  "
                     f"boundary {_num(score.boundary_error)}{state}")  # fmt: skip
    lines.append(f"  model on the test split:   {_metrics(evaluation, ('frame', 'segment', 'boundary'))}")
    return lines


def edit_summary(
    truth: Mapping[str, tuple[DemoUtterance, str]], annotations: pd.DataFrame, consensus: Mapping[str, Any],
    names: Mapping[str, str], paused: Mapping[str, str], evaluation: Mapping[str, Any], gold: set[str],
) -> list[str]:  # fmt: skip
    """WER against the truth of the machine output, of consensus and of plain ROVER on the same answers, per
    transcript and translation (hidden gold left out); each labeler's WER and unchanged rate; the model's WER."""
    from labeling_assets.core.speech.text_consensus import rover
    from labeling_assets.core.speech.text_metrics import wer

    answers: dict[str, dict[str, list[str]]] = {}
    for r in annotations.to_dict("records"):
        if str(r["item_id"]) in truth and isinstance(r["label"], str):
            answers.setdefault(str(r["item_id"]), {})[str(r["labeler_id"])] = r["label"].split()
    lines = [f"  WER against the truth (hidden gold left out):   {'transcripts':>12} {'translations':>13}"]
    rows: dict[str, list[str]] = {"machine output": [], "consensus (ours)": [], "ROVER, same answers": []}
    for which in (TRANSCRIPT, TRANSLATION):
        items = sorted(i for i, (_, w) in truth.items() if w == which and i in consensus and i in answers and i not in gold)
        refs = [truth[i][0].truth_text(which).split() for i in items]
        hyps = {"machine output": [truth[i][0].machine_text(which).split() for i in items],
                "consensus (ours)": [str(consensus[i]).split() for i in items],
                "ROVER, same answers": [rover(answers[i])[0] for i in items]}  # fmt: skip
        for name, found in hyps.items():
            rows[name].append(f"{_num(wer(refs, found)) if items else 'n/a'} ({len(items)})")
    lines += [f"    {name:<42} {a:>12} {b:>13}" for name, (a, b) in rows.items()]
    lines.append("  labelers: WER against the truth, answers equal to the machine output (unchanged)")
    for labeler in sorted({lab for a in answers.values() for lab in a}, key=lambda k: names.get(k, k)):
        mine = [i for i in answers if labeler in answers[i]]
        refs = [truth[i][0].truth_text(truth[i][1]).split() for i in mine]
        unchanged = sum(answers[i][labeler] == truth[i][0].machine_text(truth[i][1]).split() for i in mine)
        state = f"  PAUSED: {paused[labeler]}" if labeler in paused else ""
        lines.append(f"    {names.get(labeler, labeler):<20} {len(mine):>4} texts  WER {_num(wer(refs, [answers[i][labeler] for i in mine]))}"
                     f"  unchanged {unchanged / max(len(mine), 1):.0%}{state}")  # fmt: skip
    lines.append(f"  model on the test split:   {_metrics(evaluation, ('wer', 'cer'))}")
    return lines


def prefill_line(truth: Mapping[str, tuple[DemoUtterance, str]], prefill: Mapping[str, str], answered: set[str],
                 test: set[str]) -> str:  # fmt: skip
    """WER against the truth of what the text area is pre-filled with (``prefill``: item -> the newest pre-label's
    text) beside the machine output's: on the items no labeler has answered yet (what the next labelers see), else,
    where every item is answered, on the test split (items the model never trained on)."""
    from labeling_assets.core.speech.text_metrics import wer

    where, items = "unanswered items", sorted(i for i in truth if i in prefill and i not in answered)
    if not items:
        where, items = "test split's items", sorted(i for i in truth if i in prefill and i in test)
    if not items:
        return "  pre-fill after training: n/a (no unanswered or test item has a pre-label)"
    refs = [truth[i][0].truth_text(truth[i][1]).split() for i in items]
    machine = wer(refs, [truth[i][0].machine_text(truth[i][1]).split() for i in items])
    return (f"  pre-fill after training, WER against the truth on the {len(items)} {where}: "
            f"{_num(wer(refs, [prefill[i].split() for i in items]))} (the machine output's: {_num(machine)})")  # fmt: skip


def store_summary(demo: SpeechDemo) -> list[str]:
    """The summary of the store's current answers, consensus, pauses and the latest evaluation and pre-labels."""
    from labeling_assets.cli.common import label_store
    from labeling_assets.core.store.human_loop import pause_states
    from labeling_assets.core.store.queries import consensus_frame, current_annotations, gold_labels
    from labeling_assets.core.store.schema import labelers_table

    store = label_store()
    names = {str(r["labeler_id"]): str(r["username"] or r["display_name"] or r["labeler_id"])
             for r in store.fetch(labelers_table.select())}  # fmt: skip
    paused = {k: str(s.reason or "paused") for k, s in pause_states(store).items() if s.paused}
    annotations, frame = current_annotations(store), consensus_frame(store)
    consensus = dict(zip(frame["item_id"].astype(str), frame["label"], strict=True))
    gold = set(gold_labels(store).index.astype(str))
    utterances, by_path = read_truth(demo.truth), item_ids_by_path(store)
    evaluation = latest_metadata("model_evaluation")
    lines = [f"  annotations:               {len(annotations)} current, from {annotations['labeler_id'].nunique()} labelers"]
    if demo.segments:
        lines += segment_summary(segment_truth(utterances, by_path), annotations, consensus, names, paused, evaluation, gold)
    else:
        edits = edit_truth(utterances, by_path)
        lines += edit_summary(edits, annotations, consensus, names, paused, evaluation, gold)
        answered, test = set(annotations["item_id"].astype(str)), test_items(store)
        lines.append(prefill_line(edits, newest_prefill(store), answered, test))
    prelabels = latest_metadata("prelabels")
    shown = {k: v for k, v in prelabels.items() if isinstance(v, int | float | str) and len(str(v)) < 80}
    lines.append(f"  pre-labels (after training): {', '.join(f'{k} {v}' for k, v in list(shown.items())[:6]) or 'none'}")
    return lines


def newest_prefill(store: Any) -> dict[str, str]:
    """Each item's newest pre-label text (the text area's pre-fill: the champion's correction after training)."""
    import sqlalchemy as sa

    from labeling_assets.core.store.schema import prelabels_table as p

    newest = sa.select(p.c.item_id, sa.func.max(p.c.computed_at).label("at")).group_by(p.c.item_id).subquery()
    rows = store.fetch(sa.select(p.c.item_id, p.c.probs).join(newest, sa.and_(p.c.item_id == newest.c.item_id,
                                                                             p.c.computed_at == newest.c.at)))  # fmt: skip
    return {str(r["item_id"]): str(r["probs"]["text"]) for r in rows
            if isinstance(r["probs"], dict) and isinstance(r["probs"].get("text"), str)}  # fmt: skip


def test_items(store: Any) -> set[str]:
    import sqlalchemy as sa

    from labeling_assets.core.store.schema import splits_table

    return {str(r["item_id"]) for r in store.fetch(sa.select(splits_table.c.item_id).where(splits_table.c.split == "test"))}


def _metrics(evaluation: Mapping[str, Any], words: Sequence[str]) -> str:
    """The evaluation's numbers whose names hold one of ``words`` (its metric names are the kind's)."""
    found = [f"{k} {_num(v)}" for k, v in evaluation.items()
             if any(w in k.lower() for w in words) and _num(v) != "n/a"]  # fmt: skip
    return ", ".join(found[:8]) or "n/a (no evaluation)"


def _num(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if number != number else f"{number:.3f}"
