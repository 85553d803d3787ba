"""Label Studio client: label-studio-sdk 2.x vs raw HTTP for the two bulk paths, on a real server.

    python benchmarks/labelstudio_client.py [--tasks 10000] [--rounds 3] [--url URL --token TOKEN]

Starts its own Label Studio (a copy of the migrated template, free port) unless --url is given. Each round:
- import: N tasks (one annotation each) into a new project in ONE call, once through the pipeline's
  client (``LabelStudioClient.import_tasks``: the SDK's ``projects.import_tasks``) and once as the same POST
  with ``requests`` (order alternates between rounds);
- read: the N annotations of one project two ways: the full export (the pipeline's ``export_annotations``:
  the SDK's ``projects.exports.download_sync``, vs the same GET with ``requests``), and the task pages the
  incremental sync reads (1000 tasks with their annotations a page, keyset by id): the SDK's typed
  ``tasks.list(fields="all")`` (what ``changed_tasks_since`` calls), the same GETs with ``requests``, and the
  same GETs through the SDK's own HTTP client with the JSON as it comes (``LabelStudioClient.request``: no
  per-task models), the alternative a raw bulk path would take.
Prints the median seconds of each; the pipeline keeps the SDK unless raw HTTP is measurably faster.
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import requests

from labeling_assets.core.labelstudio.config import choice_result
from labeling_assets.core.labelstudio.tasks import task_payload
from labeling_assets.local import labelstudio as server
from labeling_assets.resources.labelstudio import (
    TASK_PAGE_SIZE,
    LabelStudioClient,
    data_manager_query,
    id_after,
)

CLASSES = [str(d) for d in range(10)]


def payloads(n: int, round_no: int, admin_id: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        task = task_payload(f"r{round_no}-{i:06d}", f"/bench/{i}.png")
        task["annotations"] = [{"result": choice_result(CLASSES[i % 10]), "completed_by": admin_id, "lead_time": 1.5}]
        out.append(task)
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def sdk_import(client: LabelStudioClient, project: int, tasks: list[dict[str, Any]]) -> int:
    return client.import_tasks(project, tasks)


def raw_import(raw: requests.Session, url: str, project: int, tasks: list[dict[str, Any]]) -> int:
    resp = raw.post(
        f"{url}/api/projects/{project}/import", params={"commit_to_project": "true"}, json=tasks, timeout=600
    )
    resp.raise_for_status()
    return int(resp.json()["task_count"])


def raw_export(raw: requests.Session, url: str, project: int) -> int:
    resp = raw.get(
        f"{url}/api/projects/{project}/export",
        params={"exportType": "JSON", "download_all_tasks": "false"},
        timeout=600,
    )
    resp.raise_for_status()
    return sum(len(t.get("annotations") or []) for t in resp.json())


def sdk_export(client: LabelStudioClient, project: int) -> int:
    return len(client.export_annotations(project))


def untyped_pages(client: LabelStudioClient, project: int) -> int:
    count, after = 0, 0
    while True:
        params = {"project": project, "page": 1, "page_size": TASK_PAGE_SIZE, "fields": "all"}
        params["query"] = data_manager_query([id_after(after)])
        tasks = (client.request("GET", "/api/tasks/", params=params, ok=(200, 404)) or {}).get("tasks", [])
        count += sum(len(t.get("annotations") or []) for t in tasks)
        if len(tasks) < TASK_PAGE_SIZE:
            return count
        after = max(int(t["id"]) for t in tasks)


def typed_pages(client: LabelStudioClient, project: int) -> int:
    count, after = 0, 0
    while True:
        query = data_manager_query([id_after(after)])
        try:
            items = client.sdk.tasks.list(project=project, page=1, page_size=TASK_PAGE_SIZE, fields="all", query=query).items
        except Exception:  # 404: nothing matches
            return count
        count += sum(len(t.annotations or []) for t in items)
        if len(items) < TASK_PAGE_SIZE:
            return count
        after = max(int(t.id) for t in items)


def raw_pages(raw: requests.Session, url: str, project: int) -> int:
    count, after = 0, 0
    while True:
        resp = raw.get(
            f"{url}/api/tasks/",
            params={
                "project": project, "page": 1, "page_size": TASK_PAGE_SIZE, "fields": "all",
                "query": data_manager_query([id_after(after)]),
            },  # fmt: skip
            timeout=600,
        )
        tasks = resp.json().get("tasks", []) if resp.status_code == 200 else []
        count += sum(len(t.get("annotations") or []) for t in tasks)
        if len(tasks) < TASK_PAGE_SIZE:
            return count
        after = max(int(t["id"]) for t in tasks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks imported per call (one annotation each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=None, help="an existing server (default: start a fresh local one)")
    parser.add_argument("--token", default=None, help="its API token (with --url)")
    args = parser.parse_args()

    handle = None
    if args.url:
        url, token = args.url, args.token or ""
    else:
        if not server.is_installed():
            print(f"Label Studio is not installed at {server.ls_venv()}", file=sys.stderr)
            return 2
        handle = server.ServerPaths(Path(tempfile.mkdtemp(prefix="ls-client-bench-")) / "labelstudio")
        info = server.start_fresh(handle, port=server.free_port(), data_folder=handle.root.parent)
        url, token = info.url, server.read_token(handle)
    try:
        client = LabelStudioClient(url, token, timeout_s=600)
        raw = requests.Session()
        raw.headers["Authorization"] = f"Token {token}"
        admin_id = int(client.whoami()["id"])
        import_sdk, import_raw, read_sdk, read_raw = [], [], [], []
        pages_sdk, pages_raw, pages_untyped = [], [], []
        for round_no in range(args.rounds):
            projects = [
                client.ensure_project(title=f"client-bench-{time.time_ns()}-{k}", classes=CLASSES, overlap=1)
                for k in range(2)
            ]
            batches = [payloads(args.tasks, 2 * round_no + k, admin_id) for k in range(2)]

            runs = [
                ("sdk", partial(sdk_import, client, projects[0], batches[0]), import_sdk),
                ("raw", partial(raw_import, raw, url, projects[1], batches[1]), import_raw),
            ]
            for name, fn, sink in runs if round_no % 2 == 0 else runs[::-1]:  # alternate which goes first
                seconds, created = timed(fn)
                assert created == args.tasks, (name, created)
                sink.append(seconds)
            reads = [
                ("export sdk", partial(sdk_export, client, projects[0]), read_sdk),
                ("export raw", partial(raw_export, raw, url, projects[0]), read_raw),
                ("pages sdk", partial(typed_pages, client, projects[0]), pages_sdk),
                ("pages raw", partial(raw_pages, raw, url, projects[0]), pages_raw),
                ("pages untyped", partial(untyped_pages, client, projects[0]), pages_untyped),
            ]
            for name, fn, sink in reads if round_no % 2 == 0 else reads[::-1]:
                seconds, count = timed(fn)
                assert count == args.tasks, (name, count)
                sink.append(seconds)
            print(
                f"round {round_no + 1}: import sdk {import_sdk[-1]:.2f} s, raw {import_raw[-1]:.2f} s; "
                f"export sdk {read_sdk[-1]:.2f} s, raw {read_raw[-1]:.2f} s; "
                f"pages sdk {pages_sdk[-1]:.2f} s, raw {pages_raw[-1]:.2f} s, untyped {pages_untyped[-1]:.2f} s",
                flush=True,
            )
        med = statistics.median
        print(f"\n{args.tasks} tasks / annotations, median of {args.rounds} rounds (seconds):")
        print(f"{'path':<34} {'SDK':>8} {'raw HTTP':>9} {'SDK/raw':>8}")
        for label, sdk_s, raw_s in (
            ("import tasks (one call)", import_sdk, import_raw),
            ("read annotations (export)", read_sdk, read_raw),
            ("read annotations (task pages)", pages_sdk, pages_raw),
        ):
            print(f"{label:<34} {med(sdk_s):>8.2f} {med(raw_s):>9.2f} {med(sdk_s) / med(raw_s):>8.2f}")
        print(
            f"task pages through the SDK's HTTP client, untyped JSON: {med(pages_untyped):.2f} s "
            f"({med(pages_untyped) / med(pages_sdk):.2f} of the typed SDK, {med(pages_untyped) / med(pages_raw):.2f} of raw)"
        )
    finally:
        if handle is not None:
            server.stop(handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
