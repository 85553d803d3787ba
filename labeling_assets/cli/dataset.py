"""``labeling-assets dataset as-of|diff|tag|list|publish`` and one item's history (``cmd_item``, registered by cli/item.py)."""

import argparse
import json
import shutil
import sys
import uuid
from pathlib import Path

import dagster as dg

from labeling_assets import env
from labeling_assets.cli.common import label_store, project_classes, use_local_instance
from labeling_assets.core.dataset import dvc
from labeling_assets.core.dataset.build import manifest_bytes
from labeling_assets.core.dataset.diff import render_diff
from labeling_assets.core.dataset.export import export_rows
from labeling_assets.core.dataset.iterative_stratification import is_label_set_manifest, label_text
from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.fields.consensus import field_columns, with_field_columns
from labeling_assets.core.reporting.item_history import render_item_history
from labeling_assets.core.store import as_of, history
from labeling_assets.core.store.answer_fields import load_field_consensus
from labeling_assets.core.store.dataset_versions import dataset_card, load_manifest
from labeling_assets.core.store.queries import item_uris
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.tasks import task_kind
from labeling_assets.env import data_dir
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings


def _fail(message: str) -> int:
    print(f"labeling-assets: {message}", file=sys.stderr)
    return ConfigurationError.exit_code


def _store() -> LabelStore:
    """The label store, its schema in place (every command here reads it)."""
    store = label_store()
    store.ensure_schema()
    return store


def cmd_as_of(args: argparse.Namespace) -> int:
    """Write the manifest dataset_splits would have built at TIME, from the store's logs."""
    try:
        when = as_of.parse_time(args.time)
        store = _store()
        rebuilt = as_of.rebuild_dataset_as_of(store, when, classes=project_classes())
    except ValueError as exc:
        return _fail(str(exc))
    built = rebuilt.built
    out = Path(args.out) if args.out else data_dir() / "datasets" / "as-of" / when.strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_bytes(manifest_bytes(built.manifest_json))
    rows = built.assignment.frame[["item_id", "label", "split"]]
    if is_label_set_manifest(rows):  # multi-label: a label set as JSON text in its CSV cell
        rows = rows.assign(label=rows["label"].map(label_text))
    elif rows["label"].map(lambda v: isinstance(v, dict)).any():  # boxes: the stored answer as JSON text
        rows = rows.assign(label=rows["label"].map(lambda v: json.dumps(v, sort_keys=True)))
    rows.to_csv(out / "manifest.csv", index=False)
    same = " (the version stored as current then)" if built.version == rebuilt.version_then else ""
    print(f"dataset as of {when.isoformat()}: version {built.version}{same}, {len(built.assignment.frame)} items")
    print(f"  version current then: {rebuilt.version_then or 'none'}; class list: {', '.join(rebuilt.classes)}")
    print(f"  wrote {out / 'manifest.json'} and manifest.csv")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """What changed from version V1 to V2 (ids, unique prefixes or tags)."""
    store = _store()
    try:
        old, new = history.resolve_version(store, args.old), history.resolve_version(store, args.new)
    except history.UnknownVersion as exc:
        return _fail(str(exc))
    diff = history.diff_versions(store, old, new)
    print(json.dumps(diff.as_json(), default=str, indent=1) if args.json else render_diff(diff), end="")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    """Name a dataset version; the tag lands in the store, the Dagster instance and the MLflow runs on it."""
    store = _store()
    try:
        version = history.resolve_version(store, args.version)
        new = history.tag_version(store, version, args.name, args.note)
    except (history.UnknownVersion, ValueError) as exc:
        return _fail(str(exc))
    tags = history.tags_of(store, version)
    use_local_instance()
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            dg.AssetObservation(
                asset_key="dataset_splits",
                metadata={"dataset_version": version, "dataset_tags": dg.MetadataValue.json(tags),
                          "tagged": args.name},
            )
        )
    runs = [m["mlflow_run_id"] for m in history.models_trained_on(store, version) if m["mlflow_run_id"]]
    if runs:
        client = MLflowResource().client()
        for run_id in runs:
            client.set_tag(run_id, "dataset_tags", ",".join(tags))
    state = "tagged" if new else "already tagged"
    print(f"dataset version {version} {state} {args.name!r} (tags: {', '.join(tags)}; {len(runs)} MLflow runs)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _store()
    for row in as_of.versions_by_time(store):
        tags = history.tags_of(store, row["dataset_version"])
        print(f"{row['dataset_version']}  {row['created_at']:%Y-%m-%d %H:%M:%S}  {row['n_items']:>7} items"
              + (f"  tags {', '.join(tags)}" if tags else ""))
    return 0


def version_export(store: LabelStore, version: str) -> tuple[Path, bool]:
    """The export dataset_export wrote for ``version`` (``<data>/exports/<version>``), written now the same way (every
    format the project's kind exports, the extra answer fields' columns, the card as README.md) when it is not
    there; (its folder, whether it was written now)."""
    out = data_dir() / "exports" / version
    if out.is_dir() and any(out.iterdir()):
        return out, False
    project = ProjectSettings()
    kind = task_kind(project.task_type)
    rows = export_rows(load_manifest(store, version), item_uris(store))
    rows = with_field_columns(rows, field_columns(load_field_consensus(store, version), project.answer_fields()))
    # Written beside and renamed into place: a failure halfway never leaves a partial export to publish.
    tmp = out.with_name(f".{version}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        kind.export(rows, tmp, list(kind.export_formats), list(project.classes))
        card = dataset_card(store, version)
        if card:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)  # an empty folder
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, True


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish a version's export into a git + DVC repository: ``dvc push``ed, committed, tagged."""
    store = _store()
    try:
        version = history.resolve_version(store, args.version)
        program = dvc.find_dvc(env.variable(dvc.DVC_ENV), env.cache_home())
        export, written = version_export(store, version)
        remote_url = args.remote_url
        if remote_url and "://" not in remote_url and not Path(remote_url).is_absolute():
            remote_url = str(Path(remote_url).resolve())  # a folder where the command was typed, not in REPO
        done = dvc.publish(export, Path(args.dvc).expanduser().resolve(), version=version,
                           tags=history.tags_of(store, version), dvc=program, remote=args.remote,
                           remote_url=remote_url, site_cache_dir=data_dir() / "cache" / "dvc")  # fmt: skip
    except (history.UnknownVersion, dvc.PublishError, ValueError) as exc:
        return _fail(dvc.mask(str(exc)))
    if written:
        print(f"wrote the export of {version} to {export}")
    if done.already:
        print(f"dataset version {version} was already published in {args.dvc} (commit {done.commit[:12]}); "
              f"tags: {', '.join(done.tags)}")  # fmt: skip
    else:
        print(f"published dataset version {version} to {args.dvc}/{done.path} (commit {done.commit[:12]}, "
              f"tags: {', '.join(done.tags)}; pushed to the DVC remote {done.remote!r})")  # fmt: skip
    if done.skipped_tags:
        print(f"  not git tag names, left out: {', '.join(done.skipped_tags)}")
    print(f"  get it: git clone <repo> && git checkout {version} && dvc pull {done.path}.dvc")
    return 0


def cmd_item(args: argparse.Namespace) -> int:
    """Everything the store knows about one item."""
    store = _store()
    try:
        found = history.item_history(store, args.item_id)
    except LookupError as exc:
        return _fail(str(exc))
    print(json.dumps(found, default=str, indent=1) if args.json else render_item_history(found), end="")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("dataset", help="dataset lineage: rebuild as of a time, diff two versions, tag, list, publish")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("as-of", help="write the manifest dataset_splits would have built at TIME")
    a.add_argument("time", help="ISO 8601 time, e.g. 2026-11-20T12:00Z")
    a.add_argument("--out", help="folder for manifest.json and manifest.csv (default <data>/datasets/as-of/TIME)")
    a.set_defaults(func=cmd_as_of)
    d = actions.add_parser("diff", help="items added, removed, relabeled (with the votes), moved; class deltas")
    d.add_argument("old", metavar="V1", help="dataset version (id, unique prefix or tag)")
    d.add_argument("new", metavar="V2", help="dataset version (id, unique prefix or tag)")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=cmd_diff)
    t = actions.add_parser("tag", help="name a dataset version (shows in Dagster metadata and MLflow)")
    t.add_argument("version", metavar="V", help="dataset version (id or unique prefix)")
    t.add_argument("name", metavar="NAME")
    t.add_argument("--note", help="why (stored with the tag)")
    t.set_defaults(func=cmd_tag)
    actions.add_parser("list", help="every dataset version with its tags").set_defaults(func=cmd_list)
    u = actions.add_parser("publish", help="put a version's export in a git + DVC repository, dvc push, commit, tag")
    u.add_argument("version", metavar="V", help="dataset version (id, unique prefix or tag)")
    u.add_argument("--dvc", required=True, metavar="REPO",
                   help="the git repository (a new or empty folder is initialised); the export goes to datasets/V")
    u.add_argument("--remote", metavar="NAME", help="the DVC remote to push to (default: the repository's default)")
    u.add_argument("--remote-url", metavar="URL",
                   help="add a DVC remote (named --remote, else 'storage') at URL or folder, as the default")
    u.set_defaults(func=cmd_publish)
