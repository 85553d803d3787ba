"""``labeling-assets store backup|restore``: the same backups the nightly store_backup_job makes, by hand.

Without ``--all``: the label store alone (a file and its sidecar). With ``--all``: the whole stack in one bundle
(``local/stack_backup.py``), and ``restore --all BUNDLE`` brings it back onto an empty machine.
"""

import argparse
import sys
from pathlib import Path

from labeling_assets import env
from labeling_assets.cli.common import label_store
from labeling_assets.core import automation
from labeling_assets.core.store import backup
from labeling_assets.env import data_dir
from labeling_assets.local import stack_backup

ACTIONS = ("backup", "restore")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``store backup`` and ``store restore`` on the ``store`` parser."""
    parser.add_argument(
        "file", nargs="?", help="restore: the backup file (*.sqlite.gz or *.pgdump), or with --all the bundle folder"
    )
    # An optional value, not a flag: argparse cannot give a positional that follows a flag (`restore --all BUNDLE`)
    # to the optional positional FILE, which the action word before the flag has already been matched with.
    parser.add_argument(
        "--all", nargs="?", const=True, default=False, dest="whole_stack", metavar="BUNDLE",
        help="the whole stack: label store, Label Studio (database, media, a JSON export), MLflow, Dagster storage "
        "and raw copies, in one bundle with a manifest; restore --all BUNDLE brings one back",
    )  # fmt: skip
    parser.add_argument("--no-raw", action="store_true", help="backup --all: leave the raw copies out of the bundle")
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
    if isinstance(args.whole_stack, str):
        print("labeling-assets store backup --all: takes no value (the bundle goes under --folder)", file=sys.stderr)
        return 2
    if args.whole_stack:
        bundle = stack_backup.backup_stack(folder, keep=keep, raw=not args.no_raw)
        for part in bundle.manifest.parts:
            print(f"  {part.name}: " + (f"{part.bytes:,} bytes, {_counts(part.counts)}" if part.status == "ok"
                                        else f"skipped ({part.reason})"))  # fmt: skip
        print(f"backed up the stack to {bundle.bundle} ({bundle.size:,} bytes, {bundle.seconds:.1f}s); kept the "
              f"newest {keep}, removed {len(bundle.removed)}")  # fmt: skip
        return 0
    store = label_store()
    made = backup.backup_store(store, folder, keep=keep)
    print(f"backed up {store!r} to {made.path} ({made.size:,} bytes, {made.seconds:.1f}s): "
          f"{made.summary.tables.get('annotations', 0):,} annotations; kept the newest {keep}, "
          f"removed {len(made.removed)}")  # fmt: skip
    return 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name.rsplit(':', 1)[-1]} {n:,}" for name, n in counts.items())


def _restore(args: argparse.Namespace) -> int:
    if args.whole_stack:
        bundle = args.file or (args.whole_stack if isinstance(args.whole_stack, str) else None)
        if not bundle:
            print("labeling-assets store restore --all: needs the BUNDLE folder", file=sys.stderr)
            return 2
        manifest = stack_backup.restore_stack(Path(bundle))
        done = [p.name for p in manifest.parts if p.status == "ok" and not p.name.startswith("labelstudio_export")]
        print(f"restored {bundle} (taken {manifest.created_at}): {', '.join(done)}; each part's hash and counts "
              "checked against the manifest; start Label Studio and Dagster again")  # fmt: skip
        return 0
    if not args.file or not args.to:
        print("labeling-assets store restore: needs the backup FILE and --to URL", file=sys.stderr)
        return 2
    summary = backup.restore_store(Path(args.file), args.to)
    rows = sum(summary.tables.values())
    print(f"restored {args.file}: {len(summary.tables)} tables, {rows:,} rows, annotation log verified "
          "against the backup's summary")  # fmt: skip
    return 0
