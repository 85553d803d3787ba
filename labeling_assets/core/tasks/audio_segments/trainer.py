"""The ``audio_segments`` kind's trainer: ``TRAINER``, the kind's ``trainer`` attribute (a ``KindTrainer``). It fits
the frame classifier of :mod:`.frame_model` on a dataset version's consensus regions, keeps the epoch of the best
val segment F1, saves a torch-only checkpoint and predicts per audio file.

Rows: ``uri`` (the item's audio, read by :func:`.features.read_item_audio`) and ``label`` (the stored answer: a
list of ``{"start", "end", "label"}`` in seconds). Each epoch draws one crop of ``crop_s`` seconds at a random
offset from every training utterance (shorter ones whole, padded frames left out of the loss). A prediction is
:func:`model_output`: the decoded regions with scores, the item's duration, each code's mean probability and the
mean normalised frame entropy (what the queue orders by); None for a file that does not decode.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from labeling_assets.core.speech.regions import HOP, Region, n_frames, pooled_segment_score
from labeling_assets.core.tasks.audio_segments.features import DECODE_ERRORS, N_MELS, log_mel, read_item_audio
from labeling_assets.core.tasks.audio_segments.frame_model import (
    build_model,
    decode,
    frame_entropy,
    frame_targets,
)
from labeling_assets.core.tasks.kind import EpochReport, FittedModel, TrainerSettingsError

FORMAT = "labeling-assets/audio-segments-frame-classifier/v1"
NONE_CODE = "none"  # the name of code 0 (no region) in outputs
DEFAULT_SETTINGS: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 8,
    "lr": 0.003,
    "hidden": 64,
    "dropout": 0.1,
    "crop_s": 4.0,  # seconds of an utterance per training example
    "smooth_frames": 9,  # decoding: probabilities averaged over this many 10 ms frames
    "min_region_s": 0.1,  # decoding: a shorter run is given to its neighbour
    "device": "auto",  # auto: CUDA when present, else CPU
    "seed": 0,
    "patience": 0,  # epochs without a better val score before stopping (0: run every epoch)
}


def regions_of(answer: Any) -> list[Region] | None:
    """A stored answer (a list of ``{start, end, label}``, or its JSON text) as regions sorted by start; None
    when it is not one (a region whose end is not after its start is not one either)."""
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError:
            return None
    if not isinstance(answer, list):
        return None
    out = []
    for r in answer:
        if not isinstance(r, Mapping) or not {"start", "end", "label"} <= set(r):
            return None
        try:
            start, end = float(r["start"]), float(r["end"])
        except (TypeError, ValueError):
            return None
        if not (math.isfinite(start) and math.isfinite(end) and end > start):
            return None
        out.append(Region(start, end, str(r["label"])))
    return sorted(out, key=lambda r: (r.start, r.end))


def _settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
    if unknown:
        raise TrainerSettingsError(f"the frame classifier has no setting {', '.join(unknown)}; "
                                   f"it has {', '.join(DEFAULT_SETTINGS)}")  # fmt: skip
    chosen = {**DEFAULT_SETTINGS, **overrides}
    if min(int(chosen["epochs"]), int(chosen["batch_size"]), int(chosen["hidden"]), int(chosen["smooth_frames"])) < 1:
        raise TrainerSettingsError(f"epochs, batch_size, hidden and smooth_frames must be at least 1, got "
                                   f"{[chosen[k] for k in ('epochs', 'batch_size', 'hidden', 'smooth_frames')]}")  # fmt: skip
    if float(chosen["crop_s"]) <= 0 or float(chosen["lr"]) <= 0 or not 0 <= float(chosen["dropout"]) < 1:
        raise TrainerSettingsError(f"crop_s and lr must be positive and dropout in [0, 1), got {chosen['crop_s']}, "
                                   f"{chosen['lr']}, {chosen['dropout']}")  # fmt: skip
    return chosen


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def item_features(uri: str) -> tuple[npt.NDArray[np.float32], float]:
    """(log-mel features, duration in s) of an item's audio; raises one of ``DECODE_ERRORS`` when it does not decode."""
    samples, rate = read_item_audio(uri)
    return log_mel(samples, rate), samples.size / rate


def training_examples(
    rows: pd.DataFrame, classes: Sequence[str], log: Callable[[str], None]
) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], list[Region]]]:
    """(features, frame targets, regions) per row; a file that does not decode or an answer that is no region list
    is left out, and said."""
    out = []
    for uri, answer in zip(rows["uri"].astype(str), rows["label"], strict=True):
        regions = regions_of(answer)
        if regions is None:
            log(f"{uri}: its answer is not a list of regions: left out")
            continue
        try:
            features, _ = item_features(uri)
        except DECODE_ERRORS as exc:
            log(f"{uri}: does not decode ({exc}): left out")
            continue
        out.append((features, frame_targets(regions, classes, features.shape[0]), regions))
    return out


def _batches(examples: Sequence[tuple[Any, Any, Any]], crop: int, batch_size: int,
             rng: np.random.Generator) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:  # fmt: skip
    """One crop per example at a random offset, shuffled, as padded batches (padding's target -100: no loss)."""
    crops = []
    for n in rng.permutation(len(examples)):
        features, targets, _ = examples[int(n)]
        first = int(rng.integers(0, max(features.shape[0] - crop, 0) + 1))
        crops.append((features[first : first + crop], targets[first : first + crop]))
    out = []
    for start in range(0, len(crops), batch_size):
        chunk = crops[start : start + batch_size]
        width = max(f.shape[0] for f, _ in chunk)
        x = np.zeros((len(chunk), width, chunk[0][0].shape[1]), dtype=np.float32)
        y = np.full((len(chunk), width), -100, dtype=np.int64)
        for k, (f, t) in enumerate(chunk):
            x[k, : f.shape[0]], y[k, : t.shape[0]] = f, t
        out.append((x, y))
    return out


def frame_probs(model: Any, features: npt.NDArray[np.float32], device: str) -> npt.NDArray[np.float32]:
    """(frames, 1 + classes) probabilities of ``model`` (in eval mode) for one item's features."""
    import torch

    if features.shape[0] == 0:
        return np.zeros((0, model.out.out_channels), dtype=np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(features).unsqueeze(0).to(device))[0]
    return torch.softmax(logits.float(), dim=-1).cpu().numpy().astype(np.float32)


def model_output(probs: npt.NDArray[np.float32], duration: float, classes: Sequence[str],
                 settings: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """What the kind calls ``probs`` for one item: ``{"duration", "regions": [{start, end, label, score}],
    "mean_probs": {code: p} (``none`` and every class), "mean_entropy"}``."""
    codes = [NONE_CODE, *map(str, classes)]
    mean = probs.mean(axis=0) if probs.shape[0] else np.zeros(len(codes))
    return {
        "duration": round(float(duration), 4),
        "regions": decode(probs, classes, smooth_frames=int(settings["smooth_frames"]),
                          min_region_s=float(settings["min_region_s"])),  # fmt: skip
        "mean_probs": {c: round(float(p), 6) for c, p in zip(codes, mean, strict=True)},
        "mean_entropy": round(float(frame_entropy(probs).mean()) if probs.shape[0] else 0.0, 6),
    }


def frame_accuracy_pooled(outputs: Sequence[Any], answers: Sequence[Any], classes: Sequence[str]) -> float:
    """The share of all frames (pooled over items; an output of None left out) whose code agrees with the answer's."""
    right = total = 0
    for output, answer in zip(outputs, answers, strict=True):
        truth = regions_of(answer)
        if output is None or truth is None:
            continue
        frames = n_frames(float(output["duration"]))
        found = [Region(float(r["start"]), float(r["end"]), str(r["label"])) for r in output["regions"]]
        a, b = frame_targets(found, classes, frames), frame_targets(truth, classes, frames)
        right, total = right + int((a == b).sum()), total + frames
    return right / total if total else float("nan")


def segment_f1(outputs: Sequence[Any], answers: Sequence[Any]) -> float:
    """Pooled segment F1 (``regions.pooled_segment_score``) of outputs against answers (None output: no region)."""
    found = [[Region(float(r["start"]), float(r["end"]), str(r["label"])) for r in (o or {}).get("regions") or []]
             for o in outputs]  # fmt: skip
    return pooled_segment_score(found, [regions_of(a) or [] for a in answers]).f1


class FrameClassifierTrainer:
    """Fits :mod:`.frame_model`'s classifier (module docstring)."""

    model_name = "frame_classifier"

    def default_settings(self) -> dict[str, Any]:
        return dict(DEFAULT_SETTINGS)

    def fit(
        self, train: pd.DataFrame, val: pd.DataFrame, classes: Sequence[str], settings: Mapping[str, Any], *,
        log: Callable[[str], None] | None = None, on_epoch: Callable[[EpochReport], None] | None = None,
    ) -> FittedModel:
        """Adam over crops of the training utterances; after each epoch the val segment F1 and frame accuracy
        (when val has decodable rows); the weights of the best (segment F1, then frame accuracy) are kept (the last
        epoch's without val). Metrics: ``best_epoch``, ``best_val_segment_f1``, ``best_val_frame_accuracy``..."""
        import torch

        say = log or (lambda _: None)
        chosen = _settings(settings)
        device = _device(str(chosen["device"]))
        classes = [str(c) for c in classes]
        examples = training_examples(train, classes, say)
        if not examples:
            raise ValueError("no training audio could be read: nothing to train the frame classifier on")
        checks = training_examples(val, classes, say)
        torch.manual_seed(int(chosen["seed"]))
        rng = np.random.default_rng(int(chosen["seed"]))
        model = build_model(N_MELS, len(classes), int(chosen["hidden"]), float(chosen["dropout"])).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=float(chosen["lr"]))
        fitted = FittedModel(model, classes, chosen, device=device)
        crop = max(int(round(float(chosen["crop_s"]) / HOP)), 1)
        best: tuple[tuple[float, float], int, dict[str, Any]] | None = None
        since_best = 0
        for epoch in range(1, int(chosen["epochs"]) + 1):
            model.train()
            losses = []
            for x, y in _batches(examples, crop, int(chosen["batch_size"]), rng):
                logits = model(torch.from_numpy(x).to(device))
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                         torch.from_numpy(y).to(device).reshape(-1))  # fmt: skip
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                losses.append(float(loss.detach()))
            model.eval()
            metrics = {"train_loss": float(np.mean(losses))}
            if checks:
                outputs = [model_output(frame_probs(model, f, device), t.size * HOP, classes, chosen)
                           for f, t, _ in checks]  # fmt: skip
                answers = [[{"start": r.start, "end": r.end, "label": r.label} for r in rs] for _, _, rs in checks]
                metrics["val_segment_f1"] = segment_f1(outputs, answers)
                metrics["val_frame_accuracy"] = frame_accuracy_pooled(outputs, answers, classes)
            report = EpochReport(epoch, metrics)
            fitted.history.append(report)
            if on_epoch is not None:
                on_epoch(report)
            score = (metrics["val_segment_f1"], metrics["val_frame_accuracy"]) if checks else (float(epoch), 0.0)
            if best is None or score > best[0]:
                best = (score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
                since_best = 0
            else:
                since_best += 1
                if int(chosen["patience"]) and since_best >= int(chosen["patience"]):
                    say(f"no better val score for {since_best} epochs: stopped after epoch {epoch}")
                    break
        assert best is not None
        model.load_state_dict(best[2])
        model.eval()
        fitted.metrics = {"best_epoch": float(best[1]), "epochs_run": float(len(fitted.history)),
                          "n_train": float(len(examples)), "n_val": float(len(checks)),
                          **{f"best_{k}": v for k, v in fitted.history[best[1] - 1].metrics.items() if k != "train_loss"}}  # fmt: skip
        say(f"{self.model_name}: {len(examples)} train utterances, best epoch {best[1]}: {fitted.metrics}")
        return fitted

    def save(self, fitted: FittedModel, path: Path) -> None:
        """A torch-only checkpoint: the state dict and plain values (loads with ``weights_only=True``)."""
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({
            "format": FORMAT, "classes": list(fitted.classes), "settings": dict(fitted.settings),
            "metrics": dict(fitted.metrics), "history": [{"epoch": r.epoch, **r.metrics} for r in fitted.history],
            "state_dict": {k: v.detach().cpu() for k, v in fitted.model.state_dict().items()},
        }, path)  # fmt: skip

    def load(self, path: Path, device: str = "cpu") -> FittedModel:
        """The model a checkpoint of :meth:`save` holds, in eval mode on ``device`` (``auto``: CUDA when present)."""
        import torch

        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ValueError(f"{path} is not a frame classifier checkpoint ({FORMAT})")
        settings = _settings(saved["settings"])
        model = build_model(N_MELS, len(saved["classes"]), int(settings["hidden"]), float(settings["dropout"]))
        model.load_state_dict(saved["state_dict"])
        where = _device(device)
        model.to(where).eval()
        history = [EpochReport(int(h.pop("epoch")), h) for h in (dict(r) for r in saved["history"])]
        return FittedModel(model, list(saved["classes"]), settings, dict(saved["metrics"]), history, where)

    def predict(
        self, fitted: FittedModel, uris: Sequence[str], *, batch_size: int = 16
    ) -> tuple[list[Any], list[int]]:
        """Per uri :func:`model_output` (each file runs whole, so ``batch_size`` is not read), None where the file
        does not decode; and the indices of those."""
        device = _device(fitted.device)
        fitted.model.eval()
        outputs: list[Any] = [None] * len(uris)
        failed: list[int] = []
        for n, uri in enumerate(uris):
            try:
                features, duration = item_features(str(uri))
            except DECODE_ERRORS:
                failed.append(n)
                continue
            outputs[n] = model_output(frame_probs(fitted.model, features, device), duration, fitted.classes,
                                      fitted.settings)  # fmt: skip
        return outputs, failed


TRAINER = FrameClassifierTrainer()
