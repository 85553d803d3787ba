"""The box kind's trainer (``KindTrainer``): the Faster R-CNN of :mod:`.detector` fitted on a dataset version's
consensus boxes, kept at its best validation mAP, saved as a torch-only checkpoint and run on image files.

Images are decoded as the labelers saw them (``core.images.decode``) at their own size, as RGB in [0, 1]; the
detector resizes them itself and answers in the image's pixels, the unit the store keeps boxes in. How much an image
counts is the ``box_weighting`` setting (``BOX_WEIGHTINGS``), from the per-box confidence a consensus answer keeps
(:func:`.votes.box_confidences`: an answer stored without it reads as 1.0) or the item's consensus confidence (NaN or
absent: 1); ``benchmarks/boxes_detector.py --weighting`` measures them on the demo crowd, and the default is the one
that measured best there. Weights come from random initialisation or from a local checkpoint
(``weights_path``: a ``state_dict`` file or a checkpoint this trainer saved), never from the network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.tasks.boxes.votes import answer_boxes, box_confidences
from labeling_assets.core.tasks.kind import EpochReport, FittedModel, TrainerSettingsError

CHECKPOINT_FORMAT = "labeling-assets/boxes-detector/v1"
# How an image counts in training (torchvision gives no per-box loss, so a box's confidence acts through its image):
# none: evenly; image: the step's loss scaled by its images' consensus confidence (the chance every decision on the
# item is right); mean_box: scaled by the mean confidence of each image's consensus boxes (an image without boxes:
# its consensus confidence); sample_mean_box: images drawn in proportion to that mean, the loss unscaled; drop: the
# boxes under min_box_confidence left out of the image's targets, images even.
BOX_WEIGHTINGS = ("none", "image", "mean_box", "sample_mean_box", "drop")
DEFAULT_SETTINGS: dict[str, Any] = {
    "backbone": "tiny",  # "mobilenet_v3_320" for real photographs (much slower on a CPU)
    "image_size": 160,  # the side the detector resizes images to
    "epochs": 12,
    "steps_per_epoch": None,  # None: one pass over the training images per epoch
    "batch_size": 4,
    "lr": 0.01,
    "device": "auto",  # auto: CUDA when present, else CPU
    "seed": 0,
    "weights_path": None,  # a local state_dict or checkpoint to start from (never downloaded)
    "patience": 0,  # epochs without a better val mAP before stopping (0: run every epoch)
    "min_score": 0.05,  # boxes scored lower are not kept in predictions (torchvision's own cut)
    # BOX_WEIGHTINGS; mean_box measured best on the demo crowd (docs/boxes.md, "Training weight of the crowd's boxes")
    "box_weighting": "mean_box",
    "min_box_confidence": 0.9,  # box_weighting drop: a consensus box less sure than this is no target
}


def _settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
    if unknown:
        raise TrainerSettingsError(f"the box trainer has no setting {', '.join(unknown)}; "
                                   f"it has {', '.join(DEFAULT_SETTINGS)}")  # fmt: skip
    settings = {**DEFAULT_SETTINGS, **overrides}
    from labeling_assets.core.tasks.boxes.detector import BACKBONES

    if int(settings["epochs"]) < 1 or int(settings["batch_size"]) < 1:
        raise TrainerSettingsError(f"epochs and batch_size must be at least 1, got {settings['epochs']} and "
                                   f"{settings['batch_size']}")  # fmt: skip
    if settings["box_weighting"] not in BOX_WEIGHTINGS:
        raise TrainerSettingsError(f"unknown box_weighting {settings['box_weighting']!r}; expected one of "
                                   f"{', '.join(BOX_WEIGHTINGS)}")  # fmt: skip
    if settings["backbone"] not in BACKBONES:
        raise TrainerSettingsError(f"unknown detector backbone {settings['backbone']!r}; expected one of "
                                   f"{', '.join(BACKBONES)}")  # fmt: skip
    return settings


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def read_image(uri: str) -> Any:
    """An image file as a float RGB tensor (3 x H x W, [0, 1]) at its own size; ``ValueError`` naming the file."""
    import torch

    from labeling_assets.core.images import decode

    try:
        picture = decode(uri)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot decode image {uri}: {exc}") from exc
    array = np.array(picture.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


def image_weight(answer: Any, item_confidence: float, weighting: str) -> float:
    """How much one image counts under ``weighting`` (``BOX_WEIGHTINGS``; ``drop`` weighs images evenly)."""
    if weighting == "image":
        return item_confidence
    if weighting in ("mean_box", "sample_mean_box"):
        confidences = box_confidences(answer)
        return float(np.mean(confidences)) if confidences else item_confidence
    return 1.0


def training_examples(
    rows: pd.DataFrame, classes: Sequence[str], log: Callable[[str], None], *, weighting: str = "none",
    min_box_confidence: float = 0.0,
) -> list[Any]:  # fmt: skip
    """The rows as :class:`.detector.ImageBoxes` weighed by ``weighting`` (an undecodable image or an answer that
    is not one of the project's box answers is left out, and said); with ``drop``, the boxes under
    ``min_box_confidence`` are no targets."""
    from labeling_assets.core.tasks.boxes.detector import ImageBoxes

    index = {str(c): n for n, c in enumerate(classes)}
    confidence = rows["confidence"] if "confidence" in rows else pd.Series(1.0, index=rows.index)
    out = []
    for uri, answer, item_confidence in zip(rows["uri"].astype(str), rows["label"], confidence, strict=True):
        boxes, why = answer_boxes(answer, classes)
        if why is not None:
            log(f"{uri}: its answer is not a box answer of the project ({why}): left out")
            continue
        try:
            image = read_image(uri)
        except ValueError as exc:
            log(f"{exc}: left out")
            continue
        if weighting == "drop":
            boxes = [b for b, c in zip(boxes, box_confidences(answer), strict=True) if c >= min_box_confidence]
        corners = np.array([b[1:] for b in boxes], dtype=np.float64).reshape(-1, 4)
        labels = np.array([index[b[0]] for b in boxes], dtype=np.int64)
        sure = float(item_confidence) if item_confidence is not None and np.isfinite(float(item_confidence)) else 1.0
        out.append(ImageBoxes(image, corners, labels, image_weight(answer, sure, weighting)))
    return out


def _outputs(found: Sequence[tuple[Any, Any, Any]], sizes: Sequence[tuple[int, int]], classes: Sequence[str],
             min_score: float) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for (boxes, labels, scores), (width, height) in zip(found, sizes, strict=True):
        keep = scores >= min_score
        out.append({
            "boxes": [{"label": str(classes[int(k)]), "x0": float(b[0]), "y0": float(b[1]), "x1": float(b[2]),
                       "y1": float(b[3]), "score": float(s)}
                      for b, k, s in zip(boxes[keep], labels[keep], scores[keep], strict=True)],
            "image_width": int(width), "image_height": int(height),
        })  # fmt: skip
    return out


def val_map(model: Any, examples: Sequence[Any], classes: Sequence[str], device: str) -> float:
    """COCO mAP@[.5:.95] of ``model`` on ``examples`` (their boxes the truth)."""
    from labeling_assets.core.tasks.boxes.detector import detect
    from labeling_assets.core.tasks.boxes.metrics import coco_map

    items = [f"v{n}" for n in range(len(examples))]
    truth, found = [], []
    for start in range(0, len(examples), 16):
        chunk = examples[start : start + 16]
        for item, example, (boxes, labels, scores) in zip(
            items[start:], chunk, detect(model, [e.image for e in chunk], device=device), strict=False
        ):
            truth += [(item, str(classes[int(k)]), *map(float, b)) for b, k in zip(example.boxes, example.labels,
                                                                                   strict=True)]  # fmt: skip
            found += [(item, str(classes[int(k)]), *map(float, b), float(s))
                      for b, k, s in zip(boxes, labels, scores, strict=True)]  # fmt: skip
    columns = ["item_id", "label", "x0", "y0", "x1", "y1"]
    return coco_map(pd.DataFrame(truth, columns=columns), pd.DataFrame(found, columns=[*columns, "score"]),
                    items, [str(c) for c in classes]).map  # fmt: skip


class BoxTrainer:
    """:class:`~labeling_assets.core.tasks.kind.KindTrainer` of the box kind (module docstring)."""

    model_name = "faster_rcnn"

    def default_settings(self) -> dict[str, Any]:
        return dict(DEFAULT_SETTINGS)

    def fit(
        self, train: pd.DataFrame, val: pd.DataFrame, classes: Sequence[str], settings: Mapping[str, Any], *,
        log: Callable[[str], None] | None = None, on_epoch: Callable[[EpochReport], None] | None = None,
    ) -> FittedModel:
        """SGD epochs over ``train``; after each, the val mAP (when ``val`` has decodable rows); the model of the
        best val mAP is kept (the last one without val). Metrics: ``best_val_map``, ``best_epoch``, ``epochs_run``."""
        import torch

        from labeling_assets.core.tasks.boxes.detector import build_detector, train_detector

        say = log or (lambda _: None)
        chosen = _settings(settings)
        device = _device(str(chosen["device"]))
        classes = [str(c) for c in classes]
        weighting = str(chosen["box_weighting"])
        examples = training_examples(train, classes, say, weighting=weighting,
                                     min_box_confidence=float(chosen["min_box_confidence"]))  # fmt: skip
        if not examples:
            raise ValueError("no training image could be read: nothing to train a detector on")
        checks = training_examples(val, classes, say)  # scored on every consensus box
        torch.manual_seed(int(chosen["seed"]))
        model = build_detector(len(classes), backbone=str(chosen["backbone"]), image_size=int(chosen["image_size"]))
        if chosen["weights_path"]:
            model.load_state_dict(_state_dict(Path(str(chosen["weights_path"]))))
        steps = int(chosen["steps_per_epoch"] or math.ceil(len(examples) / int(chosen["batch_size"])))
        best: tuple[float, int, dict[str, Any]] | None = None
        history: list[EpochReport] = []
        since_best = 0
        for epoch in range(1, int(chosen["epochs"]) + 1):
            started = time.perf_counter()
            losses = train_detector(model, examples, steps=steps, batch_size=int(chosen["batch_size"]),
                                    lr=float(chosen["lr"]), device=device,
                                    seed=int(chosen["seed"]) * 100_003 + epoch,
                                    sample_by_weight=weighting == "sample_mean_box")  # fmt: skip
            seconds = time.perf_counter() - started
            metrics = {"train_loss": float(np.mean(losses)),
                       "train_images_per_s": steps * min(int(chosen["batch_size"]), len(examples)) / seconds}  # fmt: skip
            if checks:
                metrics["val_map"] = val_map(model, checks, classes, device)
            report = EpochReport(epoch, metrics)
            history.append(report)
            if on_epoch is not None:
                on_epoch(report)
            score = metrics.get("val_map", float(epoch))  # without val: the last epoch is the best
            if best is None or score > best[0]:
                best = (score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
                since_best = 0
            else:
                since_best += 1
                if chosen["patience"] and since_best >= int(chosen["patience"]):
                    say(f"no better val mAP for {since_best} epochs: stopped after epoch {epoch}")
                    break
        assert best is not None
        model.load_state_dict(best[2])
        model.eval()
        summary = {"best_epoch": float(best[1]), "epochs_run": float(len(history)),
                   "n_train": float(len(examples)), "n_val": float(len(checks))}  # fmt: skip
        if checks:
            summary["best_val_map"] = best[0]
        return FittedModel(model, classes, chosen, summary, history, device)

    def save(self, fitted: FittedModel, path: Path) -> None:
        """A torch-only checkpoint: the state dict and plain values (loads with ``weights_only=True``)."""
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({
            "format": CHECKPOINT_FORMAT, "classes": list(fitted.classes), "settings": dict(fitted.settings),
            "metrics": dict(fitted.metrics),
            "history": [{"epoch": r.epoch, **r.metrics} for r in fitted.history],
            "state_dict": {k: v.detach().cpu() for k, v in fitted.model.state_dict().items()},
        }, path)  # fmt: skip

    def load(self, path: Path, device: str = "cpu") -> FittedModel:
        """The model a checkpoint of :meth:`save` holds, in eval mode on ``device`` (``auto``: CUDA when present)."""
        import torch

        from labeling_assets.core.tasks.boxes.detector import build_detector

        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a box detector checkpoint ({CHECKPOINT_FORMAT})")
        settings = _settings(saved["settings"])
        model = build_detector(len(saved["classes"]), backbone=str(settings["backbone"]),
                               image_size=int(settings["image_size"]))  # fmt: skip
        model.load_state_dict(saved["state_dict"])
        where = _device(device)
        model.to(where).eval()
        history = [EpochReport(int(h.pop("epoch")), h) for h in (dict(r) for r in saved["history"])]
        return FittedModel(model, list(saved["classes"]), settings, dict(saved["metrics"]), history, where)

    def predict(
        self, fitted: FittedModel, uris: Sequence[str], *, batch_size: int = 16
    ) -> tuple[list[Any], list[int]]:
        """Per uri the detector's output (``{"boxes": [{label, x0, y0, x1, y1, score}], "image_width",
        "image_height"}``, boxes scored at least the ``min_score`` setting), None where the file could not be
        decoded; and the indices of those. On ``fitted.device`` (``auto``: CUDA when present)."""
        from labeling_assets.core.tasks.boxes.detector import detect

        device = _device(fitted.device)
        outputs: list[Any] = [None] * len(uris)
        failed: list[int] = []
        for start in range(0, len(uris), batch_size):
            images, where = [], []
            for n in range(start, min(start + batch_size, len(uris))):
                try:
                    images.append(read_image(str(uris[n])))
                    where.append(n)
                except ValueError:
                    failed.append(n)
            if not images:
                continue
            found = detect(fitted.model, images, device=device)
            sizes = [(int(i.shape[-1]), int(i.shape[-2])) for i in images]
            for n, output in zip(where, _outputs(found, sizes, fitted.classes, float(fitted.settings["min_score"])),
                                 strict=True):  # fmt: skip
                outputs[n] = output
        return outputs, failed


def _state_dict(path: Path) -> dict[str, Any]:
    """Starting weights from a local file: a bare state dict, or a checkpoint of :meth:`BoxTrainer.save`."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(saved, dict) and saved.get("format") == CHECKPOINT_FORMAT:
        return dict(saved["state_dict"])
    if not isinstance(saved, dict):
        raise ValueError(f"{path} holds no state dict")
    return dict(saved)


TRAINER = BoxTrainer()
