"""``labeling-assets labelstudio start|stop|status|bootstrap|add-user`` and ``labeling-assets simulate-crowd``."""

import argparse
import sys
from pathlib import Path

from labeling_assets import env
from labeling_assets.cli.common import demo_truth_csv, project_classes, truth_by_item
from labeling_assets.cli.runs import run_job
from labeling_assets.core.errors import ConfigurationError, SetupError, display_url, one_line
from labeling_assets.core.fields.spec import with_field_controls
from labeling_assets.core.tasks import task_kind
from labeling_assets.env import data_dir
from labeling_assets.local import labelstudio as server
from labeling_assets.local.labelstudio_accounts import add_user
from labeling_assets.local.labelstudio_database import DATABASE_URL_ENV, PASSWORD_ENV, remembered
from labeling_assets.local.labelstudio_files import default_paths, status
from labeling_assets.resources.labelstudio import (
    LabelStudioClient,
    LabelStudioError,
    LabelStudioRejected,
    LabelStudioResource,
)
from labeling_assets.resources.project import ProjectSettings


def _client(args: argparse.Namespace) -> LabelStudioClient:
    """--url, else what the resources use: $LABEL_STUDIO_URL + $LABEL_STUDIO_API_KEY, else the local server.

    The server must answer and accept the token (one request): otherwise a one-line setup error (main prints it).
    """
    resource = LabelStudioResource(url=getattr(args, "url", None))
    resource.check()
    return resource.get_client()


def _project_title(args: argparse.Namespace) -> str:
    return str(args.project or env.label_studio_project())


def cmd_start(args: argparse.Namespace) -> int:
    try:
        info = server.start(port=args.port, timeout_s=args.timeout, database=args.database)
    except SetupError:
        raise  # a setting to fix (the token file, the database, the served folder): main prints it, exit 2 or 3
    except (OSError, LabelStudioError) as exc:  # not installed, port taken, did not come up
        print(f"labelstudio start: {one_line(str(exc), 400)}", file=sys.stderr)
        return 1
    database = remembered(default_paths())
    print(
        f"Label Studio running at {info.url} (pid {info.pid}) on "
        f"{database.display if database else 'SQLite'}; log: {default_paths().log_file}"
    )
    print(f"API token stored in {info.token_file} (mode 0600). Runs and sensors find both by themselves;")
    print(f"other tools: export LABEL_STUDIO_URL={info.url} LABEL_STUDIO_API_KEY=$(cat {info.token_file})")
    if not args.no_bootstrap:
        return cmd_bootstrap(args)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    print("stopped" if server.stop() else "no local Label Studio was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    info = status()
    if info is None:
        print(f"no local Label Studio under {default_paths().root}")
        return 1
    token = info.token_file.read_text().strip() if info.token_file.is_file() else ""
    client = LabelStudioClient(info.url, token or "-")  # /health needs no token; the SDK refuses an empty one
    healthy = info.running and client.health()
    state = "healthy" if healthy else "not answering"
    if healthy:
        try:
            client.whoami()
            state += ", token accepted"
        except LabelStudioRejected:
            state += f", token refused (401): {info.token_file} does not hold the token its database keeps"
            healthy = False
        except LabelStudioError as exc:
            state += f", API not answering ({one_line(str(exc), 120)})"
    print(f"{info.url}: {'running' if info.running else 'stopped'}, {state}")
    print(f"token file: {info.token_file}")
    return 0 if healthy else 1


def cmd_bootstrap(args: argparse.Namespace) -> int:
    """Create (idempotently) the project from the class list and task type; the admin and token exist since start."""
    client = _client(args)
    title = _project_title(args)
    settings = ProjectSettings()  # $LABELING_ASSETS_TASK_TYPE picks the kind of task, and so the label config
    classes = project_classes()
    project_id = client.ensure_project(
        title=title,
        classes=classes,
        overlap=args.overlap,
        label_config=with_field_controls(
            task_kind(settings.task_type).label_config(classes, settings.allow_empty_set), settings.answer_fields()
        ),
    )
    print(
        f"project {title!r}: {client.url}/projects/{project_id}/data (id {project_id}, overlap {args.overlap})"
    )
    # $LABELING_ASSETS_WEBHOOK_URL set: Label Studio posts annotation events to the receiver (idempotent).
    print(LabelStudioResource(url=getattr(args, "url", None)).ensure_webhooks([project_id]))
    return 0


def cmd_add_user(args: argparse.Namespace) -> int:
    """A person's account (sign-up through the rotated invite link); its password is printed once, never stored."""
    client = _client(args)
    try:
        account = add_user(client, args.email, args.role)
    except LabelStudioError as exc:
        print(f"labelstudio add-user: {exc}", file=sys.stderr)
        return 1
    public = (args.public_url or env.variable("LABEL_STUDIO_PUBLIC_URL") or client.url).rstrip("/")
    print(f"created {account.email} (user id {account.user_id}, {account.role}); log in at {public}/user/login/")
    print(f"one-time password (shown once, stored nowhere; ask them to change it at {public}/user/account/):")
    print(account.password)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Materialize labeling_tasks (queue_job) on the local Dagster instance."""
    config = {
        "max_new_tasks": args.max_new_tasks,
        "gold_rate": args.gold_rate,
        "overlap": args.overlap,
        "strategy": args.strategy,
    }
    return run_job("queue_job", run_config={"ops": {"labeling_tasks": {"config": config}}})


def cmd_collect(args: argparse.Namespace) -> int:
    """Run collect_job once (what annotation_sensor launches when Label Studio changed)."""
    return run_job("collect_job")


def cmd_simulate_crowd(args: argparse.Namespace) -> int:
    from labeling_assets.core.labelstudio.crowd import LabelerSpec, default_crowd
    from labeling_assets.local.crowd import simulate_crowd

    client = _client(args)
    title = _project_title(args)
    project_id = next((int(p["id"]) for p in client.list_projects() if p.get("title") == title), None)
    if project_id is None:
        raise ConfigurationError(
            f"no project {title!r} in Label Studio at {display_url(client.url)}: run `labeling-assets labelstudio bootstrap` and queue tasks first"
        )
    if args.preset:
        crowd = [
            LabelerSpec(name=f"{args.prefix}_{i:02d}_{p}", preset=p) for i, p in enumerate(args.preset)
        ]
    else:
        crowd = default_crowd(args.annotators, prefix=args.prefix)
    truth_csv = Path(args.truth) if args.truth else demo_truth_csv()
    if not truth_csv.is_file():
        raise ConfigurationError(f"no ground truth at {truth_csv.resolve()}: pass --truth CSV (columns filename,label)")
    truth = truth_by_item(truth_csv)
    result = simulate_crowd(
        client,
        project_id,
        crowd,
        truth=truth,
        classes=project_classes(),
        overlap=args.overlap,
        seed=args.seed,
        progress=lambda done, total: print(f"  {done}/{total} annotations submitted", file=sys.stderr),
    )
    print(f"submitted {len(result.annotations)} annotations to project {project_id}:")
    for spec in crowd:
        print(
            f"  {spec.name} ({spec.preset}, user id {result.user_ids[spec.name]}): {result.per_labeler()[spec.name]}"
        )
    if result.skipped_items:
        print(f"  {result.skipped_items} items of the ground truth have no task yet (queue them first)")
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "labelstudio",
        help="run a local Label Studio (start/stop/status) and create the project (bootstrap)",
        description="A local Label Studio bound to 127.0.0.1 with its data, log and API token under "
        f"{data_dir() / 'labelstudio'}. For an external server set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY "
        "and use only `bootstrap`.",
    )
    ls_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = ls_sub.add_parser("start", help="start (or reuse) the local server, wait for /health, then bootstrap")
    s.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default: $LABEL_STUDIO_PORT, the last one, 8080, or a free one)",
    )
    s.add_argument(
        "--database",
        default=None,
        metavar="postgresql://USER@HOST:PORT/NAME",
        help=f"run Label Studio on this PostgreSQL database instead of SQLite (password: ${PASSWORD_ENV}, never "
        f"on the command line; default: ${DATABASE_URL_ENV}, else the database of the last start, else SQLite)",
    )
    s.add_argument(
        "--timeout", type=float, default=server.START_TIMEOUT_S, help="seconds to wait for /health"
    )
    s.add_argument("--no-bootstrap", action="store_true", help="do not create the project")
    s.add_argument(
        "--project", default=None, help="project title (default: $LABEL_STUDIO_PROJECT or labeling-assets)"
    )
    s.add_argument("--overlap", type=int, default=3, help="labelers per task for a new project (default 3)")
    s.add_argument("--url", default=None, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_start)
    s = ls_sub.add_parser("stop", help="stop the local server")
    s.set_defaults(func=cmd_stop)
    s = ls_sub.add_parser("status", help="is the local server running and healthy; where is its token")
    s.set_defaults(func=cmd_status)
    s = ls_sub.add_parser("bootstrap", help="create the project from the class list (idempotent)")
    s.add_argument("--url", default=None, help="external server URL (token from LABEL_STUDIO_API_KEY)")
    s.add_argument(
        "--project", default=None, help="project title (default: $LABEL_STUDIO_PROJECT or labeling-assets)"
    )
    s.add_argument(
        "--overlap", type=int, default=3, help="labelers per task (Label Studio maximum_annotations)"
    )
    s.set_defaults(func=cmd_bootstrap)
    s = ls_sub.add_parser(
        "add-user",
        help="create a person's account; prints a one-time password once (sign-up is by invite only)",
        description="Signs the person up through the organization's invite link with a random password, then "
        "rotates the invite token so no earlier link works. The password is printed once and stored nowhere. "
        "Label Studio Community has no roles: the role is a label on the account (its last name); every member "
        "can see and change every project.",
    )
    s.add_argument("email", metavar="NAME", help="the person's email address (their Label Studio login)")
    s.add_argument("--role", choices=["annotator", "reviewer"], default="annotator", help="default annotator")
    s.add_argument("--url", default=None, help="external server URL (token from LABEL_STUDIO_API_KEY)")
    s.add_argument(
        "--public-url",
        default=None,
        help="the address people use, for the printed login link (default: $LABEL_STUDIO_PUBLIC_URL or --url)",
    )
    s.set_defaults(func=cmd_add_user)
    s = ls_sub.add_parser("push", help="queue the next items as tasks (materializes labeling_tasks)")
    s.add_argument(
        "--max-new-tasks", type=int, default=1000, help="items to queue in this run (default 1000)"
    )
    s.add_argument("--gold-rate", type=float, default=0.1, help="fraction of hidden gold items (default 0.1)")
    s.add_argument("--overlap", type=int, default=3, help="labelers per task (default 3)")
    s.add_argument(
        "--strategy",
        default="uncertainty",
        choices=["uncertainty", "margin", "entropy", "random"],
        help="queue order",
    )
    s.set_defaults(func=cmd_push)
    s = ls_sub.add_parser("collect", help="pull annotations into the store now (runs collect_job)")
    s.set_defaults(func=cmd_collect)

    c = sub.add_parser(
        "simulate-crowd",
        help="create simulated labelers in Label Studio and submit seeded, noisy annotations as them",
        description="Labelers with known confusion matrices (presets: expert 0.95, average 0.80, noisy 0.60, "
        "spammer uniform, biased toward one class) label the project's tasks from the ground truth, with lognormal "
        "lead times and the given overlap. Re-running tops up; no labeler labels a task twice.",
    )
    c.add_argument(
        "--annotators", type=int, default=5, help="crowd size when --preset is not given (default 5)"
    )
    c.add_argument(
        "--preset",
        action="append",
        choices=["expert", "average", "noisy", "spammer", "biased"],
        help="one labeler with this preset (repeat to build the crowd)",
    )
    c.add_argument("--overlap", type=int, default=3, help="labelers per task (default 3)")
    c.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    c.add_argument("--prefix", default="sim", help="username prefix (default sim)")
    c.add_argument("--truth", default=None, help="CSV filename,label (default: the demo's labels.csv)")
    c.add_argument(
        "--project", default=None, help="project title (default: $LABEL_STUDIO_PROJECT or labeling-assets)"
    )
    c.add_argument("--url", default=None, help="external server URL (token from LABEL_STUDIO_API_KEY)")
    c.set_defaults(func=cmd_simulate_crowd)
