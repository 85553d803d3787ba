"""The command line: train from a tensor cache folder, print one JSON line per epoch, save a checkpoint.

    python -m labeling_assets.core.training --cache data/tensors/<dataset_version>-32px-1c --out model.pt
    torchrun --standalone --nproc-per-node 4 -m labeling_assets.core.training --cache ... --out model.pt

Under torchrun every process trains its shard under DistributedDataParallel (one GPU each, NCCL; gloo on
the CPU); rank 0 alone prints and writes the checkpoint.

Needs only torch, torchvision and numpy, so it runs on a bare GPU machine. Every default comes from
:data:`~labeling_assets.core.training.config.DEFAULTS`, the same as the asset's run config.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np

from labeling_assets.core.training.cache import load_cache_split, read_cache_meta
from labeling_assets.core.training.checkpoint import save_checkpoint
from labeling_assets.core.training.config import (
    DEFAULTS,
    Backbone,
    CompileMode,
    HeadKind,
    LossKind,
    MultiLabelLoss,
    PosWeightKind,
    SamplerKind,
    TrainConfig,
    config_for_cache,
)
from labeling_assets.core.training.distributed import from_environment, shutdown
from labeling_assets.core.training.loop import EpochStats, fit


def _choice(parser: argparse.ArgumentParser, name: str, kind: Any, help: str | None = None) -> None:
    """``--name``: one of the values of ``kind`` (a ``Literal``), by default the TrainConfig field of that name's."""
    parser.add_argument(f"--{name}", default=getattr(DEFAULTS, name.replace("-", "_")), choices=get_args(kind), help=help)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; its defaults are :data:`DEFAULTS`'."""
    parser = argparse.ArgumentParser(
        prog="python -m labeling_assets.core.training",
        description="Train an image classifier from a tensor cache written by the training_tensors asset "
        "(needs only torch, torchvision and numpy). Several GPUs: launch it with "
        "'torchrun --standalone --nproc-per-node N -m labeling_assets.core.training ...' "
        "(DistributedDataParallel; --batch-size is the global batch, split over the processes).",
    )
    parser.add_argument("--cache", required=True, help="folder with meta.json and train/val .npy files")
    parser.add_argument("--out", default="model.pt", help="checkpoint to write (default: model.pt)")
    _choice(parser, "backbone", Backbone)
    _choice(parser, "head", HeadKind, "attention: self-attention over the final feature map (efficientnet_b0 only)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr)
    parser.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay)
    parser.add_argument("--patience", type=int, default=DEFAULTS.patience)
    _choice(parser, "loss", LossKind)
    _choice(parser, "sampler", SamplerKind)
    _choice(parser, "multi-label-loss", MultiLabelLoss, "multi-label caches only (their meta.json says task_type multi_label)")
    _choice(parser, "pos-weight", PosWeightKind, "multi-label only")
    _choice(parser, "multi-label-sampler", SamplerKind, "multi-label only (weighted: each item drawn by its rarest label)")
    parser.add_argument(
        "--no-class-weighted-loss",
        dest="class_weighted_loss",
        action="store_false",
        default=DEFAULTS.class_weighted_loss,
        help="plain loss instead of weights total / (n_classes * count)",
    )
    parser.add_argument("--device", default=DEFAULTS.device, help="auto, cpu, cuda or cuda:N")
    _choice(parser, "compile", CompileMode)
    parser.add_argument(
        "--weights",
        dest="weights_path",
        default=DEFAULTS.weights_path,
        help="local state_dict (never downloaded)",
    )
    parser.add_argument(
        "--hflip",
        action="store_true",
        default=DEFAULTS.augment.hflip,
        help="enable horizontal flips (off: they change meaning)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument(
        "--config",
        dest="config_path",
        default=None,
        help="a JSON TrainConfig (as the trained_model asset writes it); replaces the options above",
    )
    parser.add_argument(
        "--targets",
        dest="targets_path",
        default=None,
        help=".npy class probabilities (train rows x classes) to train on instead of the hard labels",
    )
    return parser


def config_from_args(args: argparse.Namespace, meta: dict[str, object]) -> TrainConfig:
    """The run's settings: the parsed options, with classes, image shape and the kind of task from the cache."""
    assert isinstance(meta["classes"], list)
    return config_for_cache(meta, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Train from a cache folder, print one JSON line per epoch, save a checkpoint."""
    args = build_parser().parse_args(argv)
    meta = read_cache_meta(args.cache)
    if meta is None:
        raise SystemExit(f"{args.cache}: no complete tensor cache (meta.json missing)")
    train = load_cache_split(args.cache, "train")
    val = load_cache_split(args.cache, "val") if (Path(args.cache) / "val.images.npy").is_file() else None
    config = config_from_args(args, meta)
    if args.config_path:
        config = config_from_file(args.config_path, meta)
    targets = np.load(args.targets_path) if args.targets_path else None
    try:
        result = fit(
            train.images,
            train.labels,
            val.images if val else None,
            val.labels if val else None,
            config,
            on_epoch=lambda s: print(json.dumps(epoch_line(s)), flush=True),
            log=lambda msg: print(msg, flush=True),
            train_targets=targets,
        )
        if from_environment().is_main:
            save_checkpoint(args.out, result, config, meta["classes"])
            summary = {
                "best_epoch": result.best_epoch,
                "best_val_macro_f1": result.best_val_macro_f1,
                "world_size": result.world_size,
                "replica_spread": result.replica_spread,
                "out": args.out,
            }
            if result.thresholds is not None:  # multi-label
                summary.update(best_val_macro_auc=result.best_val_macro_auc, thresholds=result.thresholds)
            print(json.dumps(summary), flush=True)
    finally:
        shutdown()
    return 0


def epoch_line(stats: EpochStats) -> dict[str, float]:
    """One epoch as printed: the logged metrics plus what rebuilds the EpochStats (launch.epoch_from_line)."""
    return {
        "epoch": stats.epoch,
        **stats.metrics(),
        "train_images": stats.train_images,
        "val_seconds": stats.val_seconds,
    }


def config_from_file(path: str, meta: dict[str, object]) -> TrainConfig:
    """A JSON TrainConfig; its classes and image shape must be the cache's (a clear error otherwise)."""
    config = TrainConfig.from_dict(json.loads(Path(path).read_text()))
    classes = meta["classes"]
    assert isinstance(classes, list)
    wanted = (len(classes), int(str(meta["image_size"])), int(str(meta["channels"])))
    cached = str(meta.get("task_type", "single_label"))
    if config.task_kind != cached:
        raise SystemExit(f"{path}: the config trains a {config.task_kind} head but the cache holds {cached} labels")
    if (config.num_classes, config.image_size, config.channels) != wanted:
        raise SystemExit(
            f"{path}: the config wants {config.num_classes} classes at {config.channels} x {config.image_size} px "
            f"but the cache holds {wanted[0]} classes at {wanted[2]} x {wanted[1]} px"
        )
    return config
