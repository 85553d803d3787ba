"""``labeling-assets store migrate|status|backup|restore``."""

import argparse

from labeling_assets.cli import backup
from labeling_assets.cli.common import label_store
from labeling_assets.core.store.migrations import SCHEMA_VERSION


def cmd_store(args: argparse.Namespace) -> int:
    """Create or migrate the label store and print its schema version (or back it up, or restore one)."""
    if args.action in backup.ACTIONS:
        return backup.run(args)
    store = label_store()
    applied = store.migrate() if args.action == "migrate" else []
    print(f"label store {store!r}: schema version {store.schema_version()} (code expects {SCHEMA_VERSION})")
    if applied:
        print(f"applied migrations: {applied}")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("store", help="create/migrate the label store, show its schema version, back it up or restore")
    p.add_argument(
        "action",
        choices=["migrate", "status", *backup.ACTIONS],
        help="migrate: apply pending migrations; backup: a compressed backup under <data>/backups; "
        "restore FILE --to URL: into an empty database, verified; backup --all / restore --all BUNDLE: the whole "
        "stack (docs/operations.md)",
    )
    backup.add_arguments(p)
    p.set_defaults(func=cmd_store)
