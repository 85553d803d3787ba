"""The command line: train from a tensor cache folder, print one JSON line per epoch, save a checkpoint.

    python -m labeling_assets.core.training --cache data/tensors/<dataset_version>-32px-1c --out model.pt

Needs only torch, torchvision and numpy, so it runs on a bare GPU machine. Every default comes from
:data:`~labeling_assets.core.training.config.DEFAULTS`, the same as the asset's run config.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from labeling_assets.core.training.cache import load_cache_split, read_cache_meta
from labeling_assets.core.training.checkpoint import save_checkpoint
from labeling_assets.core.training.config import (
    DEFAULTS,
    AugmentConfig,
    Backbone,
    CompileMode,
    LossKind,
    SamplerKind,
    TrainConfig,
)
from labeling_assets.core.training.loop import fit


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; its defaults are :data:`DEFAULTS`'."""
    parser = argparse.ArgumentParser(
        prog="python -m labeling_assets.core.training",
        description="Train an image classifier from a tensor cache written by the training_tensors asset "
        "(needs only torch, torchvision and numpy).",
    )
    parser.add_argument("--cache", required=True, help="folder with meta.json and train/val .npy files")
    parser.add_argument("--out", default="model.pt", help="checkpoint to write (default: model.pt)")
    parser.add_argument("--backbone", default=DEFAULTS.backbone, choices=get_args(Backbone))
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr)
    parser.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay)
    parser.add_argument("--patience", type=int, default=DEFAULTS.patience)
    parser.add_argument("--loss", default=DEFAULTS.loss, choices=get_args(LossKind))
    parser.add_argument("--sampler", default=DEFAULTS.sampler, choices=get_args(SamplerKind))
    parser.add_argument(
        "--no-class-weighted-loss",
        dest="class_weighted_loss",
        action="store_false",
        default=DEFAULTS.class_weighted_loss,
        help="plain loss instead of weights total / (n_classes * count)",
    )
    parser.add_argument("--device", default=DEFAULTS.device, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--compile", default=DEFAULTS.compile, choices=get_args(CompileMode))
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
    return parser


def config_from_args(args: argparse.Namespace, meta: dict[str, object]) -> TrainConfig:
    """The run's settings: the parsed options, with classes and image shape from the cache."""
    classes = meta["classes"]
    assert isinstance(classes, list)
    return TrainConfig(
        num_classes=len(classes),
        backbone=args.backbone,
        image_size=int(str(meta["image_size"])),
        channels=int(str(meta["channels"])),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        patience=args.patience,
        loss=args.loss,
        sampler=args.sampler,
        class_weighted_loss=args.class_weighted_loss,
        device=args.device,
        compile=args.compile,
        weights_path=args.weights_path,
        seed=args.seed,
        augment=AugmentConfig(hflip=args.hflip),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Train from a cache folder, print one JSON line per epoch, save a checkpoint."""
    args = build_parser().parse_args(argv)
    meta = read_cache_meta(args.cache)
    if meta is None:
        raise SystemExit(f"{args.cache}: no complete tensor cache (meta.json missing)")
    train = load_cache_split(args.cache, "train")
    val = load_cache_split(args.cache, "val") if (Path(args.cache) / "val.images.npy").is_file() else None
    config = config_from_args(args, meta)
    result = fit(
        train.images,
        train.labels,
        val.images if val else None,
        val.labels if val else None,
        config,
        on_epoch=lambda s: print(json.dumps({"epoch": s.epoch, **s.metrics()}), flush=True),
        log=lambda msg: print(msg, flush=True),
    )
    save_checkpoint(args.out, result, config, meta["classes"])
    print(
        json.dumps(
            {"best_epoch": result.best_epoch, "best_val_macro_f1": result.best_val_macro_f1, "out": args.out}
        )
    )
    return 0
