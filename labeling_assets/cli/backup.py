"""``labeling-assets store backup|restore``: the same backup the nightly store_backup_job makes, by hand."""

import argparse
import sys
from pathlib import Path

from labeling_assets import env
from labeling_assets.cli.common import label_store
from labeling_assets.core import automation
from labeling_assets.core.store import backup
from labeling_assets.env import data_dir

ACTIONS = ("backup", "restore")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``store backup`` and ``store restore`` on the ``store`` parser."""
    parser.add_argument("file", nargs="?", help="restore: the backup file (*.sqlite.gz or *.pgdump)")
    parser.add_argument(
        "--to", metavar="URL", help="restore: SQLAlchemy URL of an empty database (a new SQLite file, or an "
        "existing empty PostgreSQL database)"
    )  # fmt: skip
    parser.add_argument(
        "--keep",
        type=int,
        help=f"backup: backups kept (default ${automation.BACKUP_KEEP_VAR} or {automation.Thresholds().backup_keep})",
    )
    parser.add_argument("--folder", type=Path, help="backup: where backups go (default <data>/backups)")


def run(args: argparse.Namespace) -> int:
    """``store backup`` or ``store restore``; a failure is one line on stderr and exit 1."""
    try:
        return _backup(args) if args.action == "backup" else _restore(args)
    except backup.BackupError as exc:
        print(f"labeling-assets store {args.action}: {exc}", file=sys.stderr)
        return 1


def _backup(args: argparse.Namespace) -> int:
    keep = args.keep or automation.thresholds_from(env.variable).backup_keep
    folder = args.folder or data_dir() / "backups"
    store = label_store()
    made = backup.backup_store(store, folder, keep=keep)
    print(f"backed up {store!r} to {made.path} ({made.size:,} bytes, {made.seconds:.1f}s): "
          f"{made.summary.tables.get('annotations', 0):,} annotations; kept the newest {keep}, "
          f"removed {len(made.removed)}")  # fmt: skip
    return 0


def _restore(args: argparse.Namespace) -> int:
    if not args.file or not args.to:
        print("labeling-assets store restore: needs the backup FILE and --to URL", file=sys.stderr)
        return 2
    summary = backup.restore_store(Path(args.file), args.to)
    rows = sum(summary.tables.values())
    print(f"restored {args.file}: {len(summary.tables)} tables, {rows:,} rows, annotation log verified "
          "against the backup's summary")  # fmt: skip
    return 0
