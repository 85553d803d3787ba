"""Label Studio: a typed client for the calls the pipeline makes, and its ConfigurableResource.

Every call goes through the official label-studio-sdk 2.x (``LabelStudioClient.sdk``). The bulk paths
(importing thousands of tasks, exporting every annotation) are one SDK call each; benchmarks/labelstudio_client.py
times them against the same requests over raw HTTP (README: Label Studio client).
"""

import datetime as dt
import email.utils
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import dagster as dg
from pydantic import Field

from labeling_assets import env
from labeling_assets.core.errors import connection_reason, display_url, one_line
from labeling_assets.core.fields.spec import read_fields
from labeling_assets.core.labelstudio.blind import blind_title, check_blind_labelers
from labeling_assets.core.labelstudio.config import choice_result, choices_label_config
from labeling_assets.core.labelstudio.storage import (
    IMAGE_STORAGE_TITLE,
    MATCHES_NO_FILE,
    StorageFolderError,
    covering_storage,
    link_raw_store,
    server_folder,
)
from labeling_assets.core.labelstudio.webhooks import desired_webhook, plan_webhook
from labeling_assets.core.store.annotation_sync import RemoteAnnotation, RemoteTask
from labeling_assets.core.tasks.registry import kind_of_config
from labeling_assets.local import labelstudio_files
from labeling_assets.resources.errors import ConfigurationFailure, ServiceFailure

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from labeling_assets.core.tasks.kind import TaskKind

TASK_PAGE_SIZE = 1000
WEBHOOK_URL_VAR = "LABELING_ASSETS_WEBHOOK_URL"
WEBHOOK_SECRET_VAR = "LABELING_ASSETS_WEBHOOK_SECRET"
ID_PAGE_SIZE = 100_000  # task ids only: a few bytes each


def data_manager_query(filters: Sequence[dict[str, Any]], ordering: Sequence[str] = ("tasks:id",)) -> str:
    """The ``query`` parameter of ``/api/tasks/``: Label Studio's data-manager filters (all must hold) and order.

    The one place that spells the data-manager filter format (Label Studio 1.23.2: ``filter:tasks:<field>``,
    an operator such as ``greater``, and the field's type).
    """
    return json.dumps({"filters": {"conjunction": "and", "items": list(filters)}, "ordering": list(ordering)})


def updated_after(since: dt.datetime) -> dict[str, Any]:
    """Data-manager filter: the task's ``updated_at`` is strictly after ``since`` (UTC, microseconds)."""
    value = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": value}


def id_after(task_id: int) -> dict[str, Any]:
    """Data-manager filter: the task id is greater than ``task_id`` (keyset paging: no page shifts when tasks
    are deleted or change while a scan reads)."""
    return {"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": int(task_id)}


def id_before(task_id: int) -> dict[str, Any]:
    """Data-manager filter: the task id is less than ``task_id``."""
    return {"filter": "filter:tasks:id", "operator": "less", "type": "Number", "value": int(task_id)}


def id_ranges(ids: Sequence[int], *, max_gap: int = 16, max_span: int = 200) -> list[tuple[int, int]]:
    """Sorted distinct ``ids`` as (low, high) runs: a gap over ``max_gap`` or a span over ``max_span`` starts a new
    run, so a run's page holds few tasks that were not asked for."""
    out: list[tuple[int, int]] = []
    for task_id in sorted(set(ids)):
        if out and task_id - out[-1][1] <= max_gap and task_id - out[-1][0] < max_span:
            out[-1] = (out[-1][0], task_id)
        else:
            out.append((task_id, task_id))
    return out


def remote_annotations(task: dict[str, Any], kind: "TaskKind") -> list[RemoteAnnotation]:
    """The annotations of one task as Label Studio returns it (export or task list with ``fields=all``), each
    result read by ``kind`` (the project's config's: :meth:`LabelStudioClient.answer_kind`). A result that holds
    no label comes with its reason and the result as it was.
    """
    data = task.get("data") or {}
    item_id = data.get("item_id")
    # A kind whose answers are offsets into what the task shows (text spans) reads them against the task's data.
    read_in_task = getattr(kind, "read_answer_in_task", None)
    out: list[RemoteAnnotation] = []
    for ann in task.get("annotations") or []:
        by = ann.get("completed_by")
        user_id = by.get("id") if isinstance(by, dict) else by
        # Any shape of result reads (a malformed one as no label and why): one bad answer never stops a sync.
        result = ann.get("result")
        answer = read_in_task(result, data) if read_in_task is not None else kind.read_answer(result)
        lead_time = ann.get("lead_time")
        out.append(
            RemoteAnnotation(
                ls_annotation_id=int(ann["id"]),
                ls_task_id=int(task["id"]),
                item_id=str(item_id) if item_id else None,
                labeler_id=str(user_id),
                label=answer.label,
                lead_time_s=float(lead_time) if isinstance(lead_time, int | float) else None,
                created_at=ann.get("created_at"),
                updated_at=ann.get("updated_at"),
                was_cancelled=bool(ann.get("was_cancelled")),
                task_updated_at=task.get("updated_at"),
                problem=answer.problem,
                detail=answer.detail,
                result=result if answer.problem is not None else None,
                fields=read_fields(result) or None,  # extra answer fields, beside the kind's answer
            )
        )
    return out


class LabelStudioError(RuntimeError):
    """Label Studio answered with an error, or could not be reached (``unreachable`` is then True)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class LabelStudioUnreachable(LabelStudioError, ServiceFailure):
    """No answer from the server (refused, unknown host, timed out): a run fails with this one line (a
    ``dg.Failure``, retries allowed), the CLI exits 3."""

    def __init__(self, message: str) -> None:
        LabelStudioError.__init__(self, message, unreachable=True)
        ServiceFailure.__init__(self, message)


class LabelStudioRejected(LabelStudioError, ConfigurationFailure):
    """The server answers but refuses the settings (the API token, or a URL with no Label Studio API behind
    it): a run fails with this one line, the CLI exits 2."""

    def __init__(self, message: str) -> None:
        LabelStudioError.__init__(self, message)
        ConfigurationFailure.__init__(self, message)


class LabelStudioClient:
    """The Label Studio calls the pipeline makes, through the official label-studio-sdk 2.x (token auth).

    Every call is a typed SDK method, except a field the typed API lacks (``is_active``): that one uses
    ``request()``, the SDK's own HTTP client with the JSON as it comes (also for tests). SDK and transport errors become this module's one-line errors.
    """

    def __init__(self, url: str, token: str, *, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._token = token
        self.last_server_date: str | None = None  # the Date header of the last answer (the server's clock)
        # Imported here: loading the SDK's clients costs about a second, which definitions and the CLI never need.
        from label_studio_sdk import LabelStudio

        # No SDK retries: a retried POST (an import, an annotation) could land twice; runs retry as a whole.
        self.sdk = LabelStudio(  # type: ignore[no-untyped-call]
            base_url=self.url, api_key=token, timeout=timeout_s, max_retries=0
        )
        self.last_status: int | None = None  # the HTTP status of the last answer (request())

    def __repr__(self) -> str:  # never show the token
        return f"LabelStudioClient({self.url!r})"

    def clone(self) -> "LabelStudioClient":
        """The same server and credentials on a new HTTP connection pool (one per thread)."""
        return LabelStudioClient(self.url, self._token, timeout_s=self.timeout_s)

    # -- plumbing ------------------------------------------------------------------------------
    @contextmanager
    def _calling(self, what: str, *, missing_ok: bool = False) -> Iterator[None]:
        """Translate the SDK's and httpx's exceptions raised by the call ``what`` into this module's errors.

        ``missing_ok``: a 404 raises _Missing (the caller turns it into "not there").
        """
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except ApiError as exc:
            status = exc.status_code
            if status == 401:  # an unknown or revoked token; the token itself is never shown
                raise LabelStudioRejected(
                    f"Label Studio at {display_url(self.url)} rejected the API token (401): set LABEL_STUDIO_API_KEY"
                ) from exc
            if status == 404 and missing_ok:
                raise _Missing() from exc
            raise LabelStudioError(f"{what} -> HTTP {status}: {one_line(str(exc.body), 300)}") from exc
        except httpx.ConnectError as exc:
            raise LabelStudioUnreachable(
                f"Label Studio at {display_url(self.url)} is unreachable ({connection_reason(exc)}): "
                "start it (`labeling-assets labelstudio start`) or fix LABEL_STUDIO_URL"
            ) from exc
        except httpx.TimeoutException as exc:
            raise LabelStudioUnreachable(f"Label Studio at {display_url(self.url)} timed out on {what}") from exc
        except httpx.HTTPError as exc:  # e.g. the connection cut mid-body: never a partial answer
            raise LabelStudioUnreachable(
                f"Label Studio at {display_url(self.url)}: {what} failed mid-response "
                f"({type(exc).__name__}); nothing was used"
            ) from exc
        except ValueError as exc:  # a truncated or garbled body (JSON or model validation): not a partial snapshot
            raise LabelStudioError(
                f"{what}: Label Studio at {display_url(self.url)} answered with a body that is not "
                f"complete JSON ({type(exc).__name__})"
            ) from exc

    def request(self, method: str, path: str, *, ok: Sequence[int] = (200, 201, 204), **kwargs: Any) -> Any:
        """One call through the SDK's HTTP client (for endpoints its typed API lacks); the decoded JSON or None."""
        from label_studio_sdk.core.api_error import ApiError

        what = f"{method} {path}"
        with self._calling(what):
            resp = self.sdk._client_wrapper.httpx_client.request(
                path.lstrip("/"),
                method=method,
                params=kwargs.get("params"),
                json=kwargs.get("json"),
                request_options={"timeout_in_seconds": int(kwargs.get("timeout", self.timeout_s))},
            )
            self.last_server_date = resp.headers.get("Date")
            self.last_status = resp.status_code
            if resp.status_code == 401:
                raise ApiError(status_code=401, body=resp.text)
            if resp.status_code not in ok:
                raise ApiError(status_code=resp.status_code, body=resp.text)
            return resp.json() if resp.content else None

    def health(self) -> bool:
        import httpx

        try:
            resp = self.sdk._client_wrapper.httpx_client.request(
                "health", method="GET", request_options={"timeout_in_seconds": 5}
            )
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def whoami(self) -> dict[str, Any]:
        with self._calling("GET /api/current-user/whoami"):
            return _as_dict(self.sdk.users.whoami())

    # -- projects ------------------------------------------------------------------------------
    def list_projects(self) -> list[dict[str, Any]]:
        with self._calling("GET /api/projects/"):
            projects: Any = self.sdk.projects.list(page_size=100)  # the pager follows every page
            return [_as_dict(p) for p in projects]

    def ensure_project(
        self,
        *,
        title: str,
        classes: Sequence[str],
        overlap: int = 3,
        label_config: str | None = None,
    ) -> int:
        """The id of the project named ``title``, created when missing (same title = same project).

        ``maximum_annotations`` (overlap) is honored by the Community label stream when set through the API.
        ``label_config``: the config of a new project (the project's kind of task builds it; None: one choice among
        ``classes``); an existing project's config is brought in line by the queue service (``follow_sources``).
        """
        for project in self.list_projects():
            if project.get("title") == title:
                return int(project["id"])
        with self._calling("POST /api/projects/"):
            created = self.sdk.projects.create(
                title=title,
                label_config=label_config or choices_label_config(classes),
                maximum_annotations=int(overlap),
                sampling="Sequential sampling",  # queue order = our priority order
                show_skip_button=True,
            )
        return int(_id(created))

    def ensure_review_project(self, *, title: str, label_config: str) -> int:
        """The id of the expert review project ``title`` (one answer per task), created when missing.

        Args:
            title: ``<title> — review`` (core/labelstudio/review.py).
            label_config: the review layout (image, votes, model prediction, choices).
        """
        return self.ensure_project(title=title, classes=(), overlap=1, label_config=label_config)

    def show_predictions_of(self, project_id: int, model_version: str) -> None:
        """Pre-fill the labeling UI with this model version's predictions (Label Studio shows one version)."""
        with self._calling(f"PATCH /api/projects/{project_id}/"):
            self.sdk.projects.update(id=project_id, model_version=model_version, show_collab_predictions=True)

    def project_instructions(self, project_id: int) -> tuple[str, bool]:
        """The project's instructions (``expert_instruction``, HTML) and whether they are shown before labeling."""
        project = self.get_project(project_id)
        return str(project.get("expert_instruction") or ""), bool(project.get("show_instruction"))

    def set_project_instructions(self, project_id: int, instructions: str) -> dt.datetime:
        """Set the project's instructions (HTML), shown before labeling; returns Label Studio's clock at the change
        (its ``Date`` header, whole seconds: the clock of its annotations' ``updated_at``)."""
        with self._calling(f"PATCH /api/projects/{project_id}/"):
            answer = self.sdk.projects.with_raw_response.update(
                id=project_id, expert_instruction=instructions, show_instruction=True
            )
        date = answer.headers.get("date")
        return email.utils.parsedate_to_datetime(date).astimezone(dt.UTC) if date else dt.datetime.now(dt.UTC)

    def get_project(self, project_id: int) -> dict[str, Any]:
        with self._calling(f"GET /api/projects/{project_id}/"):
            answer = self.sdk.projects.with_raw_response.get(id=project_id)
        self.last_server_date = answer.headers.get("date")
        return _as_dict(answer.data)

    def ensure_local_files_storage(self, project_id: int, folder: str) -> int:
        """The id of a local-files storage of the project that serves ``folder`` (created when missing).

        Label Studio 1.23 serves ``/data/local-files/?d=...`` only for files under such a storage (404
        otherwise, even for the admin). The storage is never synced and its filter matches no file name,
        so it serves images and never creates tasks. ``folder`` is a path on the Label Studio server,
        strictly inside its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, and must exist there.
        """
        with self._calling("GET /api/storages/localfiles"):
            existing = [_as_dict(s) for s in self.sdk.import_storage.local.list(project=project_id)]
        found = covering_storage(existing, folder)
        if found is not None:
            return found
        with self._calling("POST /api/storages/localfiles"):
            created = self.sdk.import_storage.local.create(
                project=project_id,
                path=folder,
                title=IMAGE_STORAGE_TITLE,
                regex_filter=MATCHES_NO_FILE,
                use_blob_urls=True,
            )
        return int(_id(created))

    # -- tasks ---------------------------------------------------------------------------------
    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> int:
        """Import tasks (with predictions) in one call; returns how many Label Studio created."""
        if not tasks:
            return 0
        with self._calling(f"POST /api/projects/{project_id}/import"):
            body = self.sdk.projects.import_tasks(id=project_id, request=cast(Any, list(tasks)), commit_to_project=True)
        return int(body.task_count or 0)

    def import_predictions(self, project_id: int, predictions: Sequence[dict[str, Any]]) -> int:
        """Attach predictions (each with its ``task`` id and ``model_version``) to existing tasks in one call.
        Label Studio keeps a task's earlier predictions: each model version is one prediction (versioned)."""
        if not predictions:
            return 0
        with self._calling(f"POST /api/projects/{project_id}/import/predictions"):
            self.sdk.projects.import_predictions(id=project_id, request=cast(Any, list(predictions)))
        return len(predictions)

    def open_task_ids(self, project_id: int) -> set[int]:
        """Tasks Label Studio still hands out (``is_labeled`` false: short of the annotations they ask for)."""
        return {int(t["id"]) for t in self.iter_tasks(project_id) if not t.get("is_labeled")}

    def iter_tasks(self, project_id: int, *, fields: str = "task_only") -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            # Page by page: Community answers 404 past the last page, where the SDK's pager would fail.
            try:
                with self._calling("GET /api/tasks/", missing_ok=True):
                    pager: Any = self.sdk.tasks.list(
                        project=project_id, page=page, page_size=TASK_PAGE_SIZE, fields=cast(Any, fields)
                    )
                    tasks = [_as_dict(t) for t in pager.items or []]
            except _Missing:
                return
            yield from tasks
            if len(tasks) < TASK_PAGE_SIZE:
                return
            page += 1

    def task_ids_by_item(self, project_id: int) -> dict[str, int]:
        """item_id -> Label Studio task id, from the task data."""
        out: dict[str, int] = {}
        for task in self.iter_tasks(project_id):
            item_id = (task.get("data") or {}).get("item_id")
            if item_id:
                out.setdefault(str(item_id), int(task["id"]))
        return out

    def task_overlaps(self, project_id: int) -> dict[int, int]:
        """Label Studio task id -> the task's overlap (how many annotators it wants)."""
        return {int(t["id"]): int(t.get("overlap") or 1) for t in self.iter_tasks(project_id)}

    def _get_task(self, task_id: int) -> dict[str, Any] | None:
        try:
            with self._calling(f"GET /api/tasks/{task_id}/", missing_ok=True):
                return _as_dict(self.sdk.tasks.get(id=str(task_id)))
        except _Missing:
            return None

    def _update_task(self, task_id: int, **fields: Any) -> None:
        with self._calling(f"PATCH /api/tasks/{task_id}/"):
            self.sdk.tasks.update(id=str(task_id), **fields)

    def set_task_overlap(self, task_id: int, overlap: int) -> bool:
        """Set one task's overlap and put it back in the label stream when it now wants more annotators.

        Label Studio 1.23 does not recompute ``is_labeled`` when ``overlap`` is patched, and its label stream
        only serves tasks with ``is_labeled`` false: the flag is set here with Label Studio's own rule
        (distinct annotators of completed, non-cancelled annotations >= overlap).

        Args:
            task_id: Label Studio task id.
            overlap: annotators the task should get in total.

        Returns:
            The task's new ``is_labeled`` (False: the label stream hands it to a new annotator).
        """
        task = self._get_task(task_id)
        if task is None:
            raise LabelStudioError(f"GET /api/tasks/{task_id}/ -> HTTP 404: no such task")
        annotators: set[Any] = set()
        for ann in task.get("annotations") or []:
            if ann.get("was_cancelled") or ann.get("result") is None:
                continue
            by = ann.get("completed_by")
            annotators.add(by.get("id") if isinstance(by, dict) else by)
        is_labeled = len(annotators) >= overlap
        self._update_task(task_id, overlap=int(overlap), is_labeled=is_labeled)
        return is_labeled

    def task_progress(self, project_id: int) -> tuple[int, int]:
        """``(tasks, finished tasks)`` of the project in one request; a task is finished when Label Studio
        marks it labeled (it holds the annotations its overlap asks for), so the rest are still open."""
        project = self.get_project(project_id)
        return int(project.get("task_number") or 0), int(project.get("finished_task_number") or 0)

    def mark_task_superseded(self, task_id: int, *, new_item_id: str | None, reason: str) -> bool:
        """Take a superseded item's task out of the label stream and say why in its ``meta``.

        Marked, not deleted: the labelers' answers stay visible in Label Studio (the store keeps them, and
        they count for nothing current). ``is_labeled`` true keeps the label stream from serving it.

        Returns:
            False when Label Studio no longer has the task (nothing to mark).
        """
        task = self._get_task(task_id)
        if not task or "id" not in task:
            return False
        meta = dict(task.get("meta") or {})
        meta["labeling_assets"] = {"state": "superseded", "superseded_by": new_item_id, "reason": reason}
        self._update_task(task_id, meta=meta, is_labeled=True)
        return True

    def label_config(self, project_id: int) -> str:
        """The project's labeling config (XML)."""
        return str(self.get_project(project_id).get("label_config") or "")

    def set_label_config(self, project_id: int, config: str) -> None:
        """Replace the project's labeling config (existing annotations stay as they are)."""
        with self._calling(f"PATCH /api/projects/{project_id}/"):
            self.sdk.projects.update(id=project_id, label_config=config)

    def change_marker(self, project_id: int) -> str:
        """A cheap fingerprint that changes whenever an annotation is created, updated or deleted.

        Label Studio touches the task's ``updated_at`` on every annotation save and delete, so the newest
        task ``updated_at`` together with the annotation total is enough (two small requests).
        """
        project = self.get_project(project_id)
        try:
            with self._calling("GET /api/tasks/", missing_ok=True):
                pager: Any = self.sdk.tasks.list(
                    project=project_id,
                    page=1,
                    page_size=1,
                    fields="task_only",
                    query=json.dumps({"ordering": ["-tasks:updated_at"]}),
                )
                tasks = [_as_dict(t) for t in pager.items or []]
        except _Missing:
            tasks = []
        newest = tasks[0].get("updated_at") if tasks else None
        return f"{project.get('total_annotations_number')}|{project.get('task_number')}|{newest}"

    # -- users ---------------------------------------------------------------------------------
    def list_users(self) -> list[dict[str, Any]]:
        with self._calling("GET /api/users/"):
            return [_as_dict(u) for u in self.sdk.users.list()]

    def ensure_users(self, usernames: Sequence[str]) -> dict[str, int]:
        """username -> user id, creating the missing users (no password: they never log in)."""
        existing = {u["username"]: int(u["id"]) for u in self.list_users()}
        for name in usernames:
            if name not in existing:
                with self._calling("POST /api/users/"):
                    created = self.sdk.users.create(
                        username=name, email=f"{name}@crowd.labeling-assets.local", first_name=name
                    )
                existing[name] = int(_id(created))
        return {name: existing[name] for name in usernames}

    # -- pausing a labeler (what Label Studio Community's API allows, checked on 1.23.2 by tests) ----------
    def try_deactivate_user(self, user_id: int) -> bool:
        """Ask Label Studio to set ``is_active`` false; True only when the answer shows it took effect.

        Community 1.23 answers 200 but ignores the field (it is not in the user serializer): False there. The
        SDK's typed ``users.update`` has no ``is_active``, so this goes through its HTTP client.
        """
        body = self.request("PATCH", f"/api/users/{user_id}/", json={"is_active": False})
        return isinstance(body, dict) and body.get("is_active") is False

    def remove_from_organization(self, user_id: int) -> bool:
        """Remove the user from the admin's organization (Community's soft delete of the membership): they no
        longer see any project, their annotations stay. No API undoes it: a person re-invites them
        (:meth:`invite_url`). Returns False when they were not a member (already removed)."""
        org = int(self.whoami()["active_organization"])
        try:
            with self._calling(f"DELETE /api/organizations/{org}/memberships/{user_id}/", missing_ok=True):
                self.sdk.organizations.members.delete(id=org, user_pk=user_id)
        except _Missing:
            return False
        return True

    def task_overlap(self, task_id: int) -> int:
        """One task's overlap (annotators it wants) as Label Studio has it now."""
        task = self._get_task(task_id)
        if task is None:
            raise LabelStudioError(f"GET /api/tasks/{task_id}/ -> HTTP 404: no such task")
        return int(task.get("overlap") or 1)

    def invite_url(self) -> str:
        """The organization's signup link, the way back in for a removed member."""
        with self._calling("GET /api/invite"):
            link = self.sdk.organizations.invites.get_invite_link().invite_url
        return f"{self.url}{link}"

    def update_user(self, user_id: int, **fields: Any) -> None:
        """Change a user's profile fields (first_name, last_name, ...)."""
        with self._calling(f"PATCH /api/users/{user_id}/"):
            self.sdk.users.update(id=user_id, **fields)

    def invite_token(self) -> str:
        """The organization's current invite token (admin only)."""
        with self._calling("GET /api/invite"):
            return str(self.sdk.organizations.invites.get_invite_link().token or "")

    def rotate_invite_token(self) -> None:
        """A new invite token: every invite link handed out before stops working."""
        with self._calling("POST /api/invite/reset-token"):
            self.sdk.organizations.reset_token()

    # -- annotations ---------------------------------------------------------------------------
    def create_annotation(
        self, task_id: int, label: str | Sequence[str], *, completed_by: int, lead_time_s: float | None = None,
        extra: Sequence[dict[str, Any]] = (),
    ) -> int:
        """Annotate ``task_id`` as ``completed_by``: a class name, or a list of names (multi-label; ``[]`` picks
        "None of these"); ``extra``: more result regions (the extra answer fields: ``fields.spec.field_result``)."""
        optional = {"lead_time": round(float(lead_time_s), 3)} if lead_time_s is not None else {}
        with self._calling(f"POST /api/tasks/{task_id}/annotations/"):
            created = self.sdk.annotations.create(
                id=task_id, result=[*choice_result(label), *extra], completed_by=completed_by, **optional
            )
        return int(_id(created))

    def update_annotation(self, annotation_id: int, label: str | Sequence[str]) -> None:
        with self._calling(f"PATCH /api/annotations/{annotation_id}/"):
            self.sdk.annotations.update(id=annotation_id, result=choice_result(label))

    def delete_annotation(self, annotation_id: int) -> None:
        with self._calling(f"DELETE /api/annotations/{annotation_id}/"):
            self.sdk.annotations.delete(id=annotation_id)

    def answer_kind(self, project_id: int) -> "TaskKind":
        """The kind of task whose answers the project's config takes (``kind_of_config``): it reads them.

        Why the client reads this from Label Studio rather than being told the task type: the config is what
        the people answering saw (checkboxes or one choice), so the stored form always matches what an answer
        can mean, for any project the resource names (``project_id`` may point at one set up by hand); every
        reader of annotations (collect's full and incremental sync, the demo crowd, benchmarks) gets it without
        a new argument that one of them could forget, which would store bare names in a multi-label project.
        The queue keeps the config in line with ``ProjectSettings.task_type`` on every run, and collect runs
        after it. Cost: one small GET per sync.
        """
        return kind_of_config(self.label_config(project_id))

    def export_annotations(self, project_id: int) -> list[RemoteAnnotation]:
        """Every annotation of the project as it is now (one export call; tasks without any are skipped).

        Every label is read by the kind of the project's config (:meth:`answer_kind`).
        """
        # Read before the export: an answer is never newer than the config it was given in.
        kind = self.answer_kind(project_id)
        with self._calling(f"GET /api/projects/{project_id}/export"):
            body = b"".join(
                self.sdk.projects.exports.download_sync(
                    id=project_id, export_type="JSON", download_all_tasks=False
                )
            )
            tasks = json.loads(body) if body else None
        if tasks is not None and not isinstance(tasks, list):  # never sync a snapshot we cannot read whole
            raise LabelStudioError(f"export of project {project_id} is not a list of tasks: {str(tasks)[:200]}")
        return [ann for task in tasks or [] for ann in remote_annotations(task, kind)]

    def export_json(self, project_id: int) -> bytes:
        """Label Studio's own JSON export of the project, every task included (with or without annotations): the
        portable copy a whole-stack backup keeps (any Label Studio imports it)."""
        with self._calling(f"GET /api/projects/{project_id}/export"):
            return b"".join(
                self.sdk.projects.exports.download_sync(id=project_id, export_type="JSON", download_all_tasks=True)
            )

    # -- incremental sync ------------------------------------------------------------------------
    def clock_and_task_count(self, project_id: int) -> tuple[dt.datetime, int]:
        """Label Studio's clock now (the ``Date`` header; whole seconds, rounded down) and the project's task count,
        from one small request.

        The clock is compared with Label Studio's own ``updated_at``, so our clock's skew never matters.
        """
        project = self.get_project(project_id)
        if not self.last_server_date:
            raise LabelStudioError(f"Label Studio at {display_url(self.url)} sent no Date header")
        now = email.utils.parsedate_to_datetime(self.last_server_date).astimezone(dt.UTC)
        return now, int(project.get("task_number") or 0)

    def _task_page(self, project_id: int, *, page_size: int, fields: str, query: str, **extra: Any) -> list[dict[str, Any]]:
        """One page of the data manager's task list (the SDK's typed ``tasks.list``); [] when nothing matches (404).

        The same GET with the JSON as it comes was not measurably faster (benchmarks/labelstudio_client.py).
        """
        try:
            with self._calling("GET /api/tasks/", missing_ok=True):
                pager: Any = self.sdk.tasks.list(
                    project=project_id, page=1, page_size=page_size, fields=cast(Any, fields), query=query, **extra
                )
                return [_as_dict(t) for t in pager.items or []]
        except _Missing:
            return []

    def changed_tasks_since(
        self, project_id: int, since: dt.datetime | None, *, page_size: int = TASK_PAGE_SIZE
    ) -> Iterator[list[RemoteTask]]:
        """Pages of the tasks whose ``updated_at`` is after ``since`` (every task when None), each task with all
        of its current annotations, in task id order.

        Label Studio touches a task's ``updated_at`` when one of its annotations is created, edited or deleted
        (verified on 1.23.2), so these tasks hold every annotation change since ``since``. Paged by task id
        (keyset), never by page number: a task deleted or changed during the scan cannot shift a page.
        Every label is read by the kind of the project's config (:meth:`answer_kind`).
        """
        kind = self.answer_kind(project_id)
        after = 0
        while True:
            filters = [id_after(after)] + ([updated_after(since)] if since is not None else [])
            tasks = self._task_page(project_id, page_size=page_size, fields="all", query=data_manager_query(filters))
            if tasks:
                yield [
                    RemoteTask(
                        int(t["id"]),
                        t.get("updated_at"),
                        tuple(remote_annotations(t, kind)),
                        t.get("created_at"),
                    )
                    for t in tasks
                ]
                after = max(int(t["id"]) for t in tasks)
            if len(tasks) < page_size:
                return

    def task_ids(self, project_id: int) -> set[int]:
        """Every task id of the project (ids only: cheap even for 10^5 tasks); finds deleted tasks."""
        out: set[int] = set()
        after = 0
        while True:
            page = self._task_page(
                project_id,
                page_size=ID_PAGE_SIZE,
                fields="task_only",
                query=data_manager_query([id_after(after)]),
                include="id",
            )
            ids = [int(t["id"]) for t in page]
            out.update(ids)
            if len(ids) < ID_PAGE_SIZE:
                return out
            after = max(ids)

    def tasks_by_id(self, project_ids: Sequence[int], task_ids: Sequence[int]) -> tuple[dict[int, list[RemoteTask]], set[int]]:
        """The tasks ``task_ids`` as Label Studio holds them now, by project (only ``project_ids``: a task of
        another project is left out), each with all of its current annotations; and the ids none of these projects
        holds (deleted, or another project's: callers count a task gone only where the store holds it live).

        The ids the webhooks name come in runs (a crowd answers neighbouring tasks): each run of close ids is one
        page of the data manager's list (the poll's request, with an id range), not one request per task; with
        many projects (blind mode) and few tasks, one request per task is fewer.
        """
        wanted = {int(t) for t in task_ids}
        ranges = id_ranges(sorted(wanted))
        if len(project_ids) * len(ranges) > len(wanted):
            return self._tasks_one_by_one(project_ids, sorted(wanted))
        found: dict[int, list[RemoteTask]] = {}
        seen: set[int] = set()
        for project_id in project_ids:
            kind = self.answer_kind(project_id)
            for low, high in ranges:
                query = data_manager_query([id_after(low - 1), id_before(high + 1)])
                for task in self._task_page(project_id, page_size=high - low + 1, fields="all", query=query):
                    task_id = int(task["id"])
                    if task_id in seen or task_id not in wanted:
                        continue
                    seen.add(task_id)
                    found.setdefault(int(project_id), []).append(
                        RemoteTask(task_id, task.get("updated_at"), tuple(remote_annotations(task, kind)), task.get("created_at"))
                    )
        return found, wanted - seen

    def _tasks_one_by_one(self, project_ids: Sequence[int], task_ids: Sequence[int]) -> tuple[dict[int, list[RemoteTask]], set[int]]:
        kinds: dict[int, TaskKind] = {}
        found: dict[int, list[RemoteTask]] = {}
        gone: set[int] = set()
        for task_id in task_ids:
            task = self._get_task(int(task_id))
            if task is None:
                gone.add(int(task_id))
                continue
            project_id = int(task.get("project") or 0)
            if project_id not in project_ids:
                continue
            kind = kinds.get(project_id) or kinds.setdefault(project_id, self.answer_kind(project_id))
            found.setdefault(project_id, []).append(
                RemoteTask(int(task["id"]), task.get("updated_at"), tuple(remote_annotations(task, kind)), task.get("created_at"))
            )
        return found, gone

    # -- webhooks -------------------------------------------------------------------------------
    def ensure_webhook(self, project_id: int, url: str, secret: str) -> str:
        """Register (idempotently) the project's webhook to ``url`` with the secret header; returns what was done.

        A rerun finds its webhook and changes nothing; a changed secret or action list updates it in place;
        duplicates to the same URL (a race between two setups) are deleted.
        """
        wanted = desired_webhook(project_id, url, secret)
        existing = self.request("GET", "/api/webhooks/", params={"project": project_id}) or []
        plan = plan_webhook([w for w in existing if isinstance(w, dict)], wanted)
        for extra in plan.delete_ids:
            self.request("DELETE", f"/api/webhooks/{extra}/")
        if plan.create:
            made = self.request("POST", "/api/webhooks/", json=wanted)
            return f"webhook {_id(made)} registered for project {project_id} -> {url}"
        if plan.update_id is not None:
            self.request("PATCH", f"/api/webhooks/{plan.update_id}/", json=wanted)
            return f"webhook {plan.update_id} of project {project_id} updated -> {url}"
        return f"webhook {plan.keep_id} of project {project_id} already registered -> {url}"

    def wait_healthy(self, timeout_s: float = 180.0) -> None:
        """Wait (bounded) until /health answers 200."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.health():
                return
            time.sleep(0.5)
        raise LabelStudioError(
            f"Label Studio at {self.url} not healthy after {timeout_s:.0f}s", unreachable=True
        )


class _Missing(Exception):
    """A 404 the caller expects (past the last page, a deleted task)."""


def _as_dict(model: Any) -> dict[str, Any]:
    """An SDK model as the plain JSON dict Label Studio sent (aliases, extra fields, ISO datetimes)."""
    if isinstance(model, dict):
        return model
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return data


def _id(model: Any) -> int:
    value = model.get("id") if isinstance(model, dict) else getattr(model, "id", None)
    if value is None:
        raise LabelStudioError(f"Label Studio answered without an id: {str(model)[:200]}")
    return int(value)


class LabelStudioNotConfigured(LabelStudioError, ConfigurationFailure):
    """No server to talk to yet: no URL and token in the config, the environment or the local server's files."""

    def __init__(self, message: str) -> None:
        LabelStudioError.__init__(self, message)
        ConfigurationFailure.__init__(self, message)


class LabelStudioResource(dg.ConfigurableResource["LabelStudioResource"]):  # the resource is its own value
    """A Label Studio server and the project the pipeline labels in.

    Unset fields are resolved each time a run or a sensor tick uses the resource, never at import
    (``labeling_assets.env``): ``$LABEL_STUDIO_URL`` and ``$LABEL_STUDIO_API_KEY``, else the local server
    that ``labeling-assets labelstudio start`` runs under the data folder; so definitions loaded before the
    server started reach it once it is up. The token is never part of the config the UI shows.
    """

    url: str | None = Field(
        default=None, description="Base URL of the Label Studio server; empty = $LABEL_STUDIO_URL or the local server."
    )
    api_key: str | None = Field(
        default=None,
        description="API token (legacy token); empty = $LABEL_STUDIO_API_KEY or the local server's token file. "
        "Pass a secret only as dg.EnvVar.",
    )
    project_title: str | None = Field(
        default=None, description="Project to use, created when missing; empty = $LABEL_STUDIO_PROJECT or labeling-assets."
    )
    project_id: int | None = Field(
        default=None, description="Use this project id instead of looking up the title."
    )
    timeout_s: float = Field(
        default=120.0, description="Per-request timeout (exports of big projects take time)."
    )
    blind_labelers: list[str] = Field(
        default_factory=list,
        description="Blind labeling: these Label Studio usernames each get their own project '<project_title> — "
        "<name>' holding only the tasks assigned to them (an item's overlap = how many of these projects receive "
        "it), merged in the store by item. Empty (the default): one shared project. README: 'Blind labeling'.",
    )
    local_files_document_root: str | None = Field(
        default=None,
        description="The server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, where it sees the data folder's raw/ "
        "(docker stack: /label-studio/files, the raw store mounted at raw/); unset: $LABEL_STUDIO_FILES_ROOT at "
        "run time, else <data>/served, the local server's root (it holds only the link raw -> ../raw).",
    )

    webhook_url: str | None = Field(
        default=None,
        description="Where Label Studio posts annotation events (the receiver: `labeling-assets webhooks serve`), "
        "as Label Studio reaches it; empty = $LABELING_ASSETS_WEBHOOK_URL; unset: no webhook, the poll alone.",
    )
    webhook_secret: str | None = Field(
        default=None,
        description="The shared secret the receiver checks; empty = $LABELING_ASSETS_WEBHOOK_SECRET. "
        "Pass it only as dg.EnvVar.",
    )

    @property
    def resolved_url(self) -> str:
        """The server this run talks to (config, else environment, else the local server)."""
        return (self.url or labelstudio_files.server_url()).rstrip("/")

    @property
    def resolved_project_title(self) -> str:
        return self.project_title or env.label_studio_project()

    def _token(self, url: str) -> str:
        if self.api_key:
            return self.api_key
        try:
            return labelstudio_files.server_token(url)
        except env.SettingMissing as exc:
            raise LabelStudioNotConfigured(str(exc)) from None

    def get_client(self) -> LabelStudioClient:
        """A client of the resolved server (raises LabelStudioNotConfigured when there is none yet)."""
        try:
            url = self.resolved_url
        except env.SettingMissing as exc:
            raise LabelStudioNotConfigured(str(exc)) from None
        return LabelStudioClient(url, self._token(url), timeout_s=self.timeout_s)

    def check(self) -> str:
        """Reach the server and have it accept the token now (the CLI's check before a run); returns its URL.

        Raises:
            LabelStudioNotConfigured: no URL or token. LabelStudioUnreachable: nothing answers at the URL.
            LabelStudioRejected: the token is refused, or the URL answers but is not a Label Studio API.
        """
        client = self.get_client()
        try:
            client.whoami()
        except (LabelStudioRejected, LabelStudioUnreachable):
            raise
        except LabelStudioError as exc:
            raise LabelStudioRejected(
                f"no Label Studio API at {display_url(client.url)} ({one_line(str(exc), 120)}): fix LABEL_STUDIO_URL"
            ) from exc
        return display_url(client.url)

    def get_sdk(self) -> "LabelStudio":
        """The official SDK client (``label_studio_sdk.LabelStudio``) the wrapped calls use, for any other call."""
        return self.get_client().sdk

    def ensure_project(self, *, classes: Sequence[str], overlap: int = 3, label_config: str | None = None) -> int:
        """The project id: ``project_id`` when set, else the project titled ``project_title`` (created if missing,
        with ``label_config``: the project's kind of task builds it)."""
        if self.project_id is not None:
            return self.project_id
        return self.get_client().ensure_project(
            title=self.resolved_project_title, classes=classes, overlap=overlap, label_config=label_config
        )

    @property
    def blind(self) -> bool:
        """Blind mode: one project per labeler in ``blind_labelers`` instead of one shared project."""
        return bool(self.blind_labelers)

    def _blind_titles(self) -> dict[str, str]:
        try:
            names = check_blind_labelers(self.blind_labelers)
        except ValueError as exc:
            raise LabelStudioNotConfigured(str(exc)) from None
        return {name: blind_title(self.resolved_project_title, name) for name in names}

    def ensure_blind_projects(self, *, classes: Sequence[str], label_config: str | None = None) -> dict[str, int]:
        """Blind mode: labeler name -> the id of their own project (overlap 1), created when missing."""
        client = self.get_client()
        return {
            name: client.ensure_project(title=title, classes=classes, overlap=1, label_config=label_config)
            for name, title in self._blind_titles().items()
        }

    def labeling_project_ids(self) -> list[int]:
        """The projects labelers answer in, without creating any: the shared one, or (blind mode) every labeler's
        project that exists. Empty when none exists yet."""
        if not self.blind:
            found = self.find_project_id()
            return [found] if found is not None else []
        by_title = {p.get("title"): int(p["id"]) for p in self.get_client().list_projects()}
        return sorted(by_title[t] for t in self._blind_titles().values() if t in by_title)

    def project_id_titled(self, title: str) -> int | None:
        """The id of the project named ``title`` (the review project, say) without creating it; None when missing."""
        return next((int(p["id"]) for p in self.get_client().list_projects() if p.get("title") == title), None)

    def find_project_id(self) -> int | None:
        """The project id without creating anything (None when the project does not exist yet)."""
        if self.project_id is not None:
            return self.project_id
        title = self.resolved_project_title
        for project in self.get_client().list_projects():
            if project.get("title") == title:
                return int(project["id"])
        return None

    @property
    def resolved_webhook_url(self) -> str | None:
        """Where Label Studio posts events (config, else $LABELING_ASSETS_WEBHOOK_URL); None: no webhook, the poll alone."""
        return self.webhook_url or env.variable(WEBHOOK_URL_VAR)

    def ensure_webhooks(self, project_ids: Sequence[int]) -> str:
        """Register the webhook of each project when a receiver URL is set; one line saying what was done.

        A failure is a warning, not an error: the poll still brings every annotation in, only later.
        """
        url = self.resolved_webhook_url
        if not url:
            return f"no webhook (${WEBHOOK_URL_VAR} unset): annotations arrive by polling"
        secret = self.webhook_secret or env.variable(WEBHOOK_SECRET_VAR)
        if not secret:
            outcome = f"webhook NOT registered: ${WEBHOOK_SECRET_VAR} is unset (the receiver would refuse every event)"
            dg.get_dagster_logger().warning(outcome)
            return outcome
        try:
            client = self.get_client()
            return "; ".join(client.ensure_webhook(int(p), url, secret) for p in project_ids)
        except LabelStudioError as exc:
            outcome = f"webhook NOT registered (annotations arrive by polling): {one_line(str(exc), 300)}"
            dg.get_dagster_logger().warning(outcome)
            return outcome

    def serve_images(self, project_id: int, images_dir: Path, data_root: Path) -> str:
        """Register (idempotently; a deleted one is re-created) the storage that lets Label Studio serve the
        images of ``images_dir`` to people; returns a one-line outcome for metadata.

        A failure is logged as a warning, not raised: tasks are still worth pushing (the API never needs the
        image), but a person would see a broken image until the next run repairs it.
        """
        try:
            images_dir.mkdir(parents=True, exist_ok=True)  # Label Studio refuses a folder that does not exist
            # Unset: $LABEL_STUDIO_FILES_ROOT at run time (the docker stack sets it), else the local server's
            # root, <data>/served, made here too (an external server may serve the same folder).
            root = self.local_files_document_root or env.variable("LABEL_STUDIO_FILES_ROOT")
            if root is None:
                link_raw_store(data_root)
            folder = server_folder(images_dir, data_root, root)
            storage_id = self.get_client().ensure_local_files_storage(project_id, folder)
        except (LabelStudioError, StorageFolderError, OSError) as exc:
            outcome = f"images NOT served to labelers: {exc}"[:500]
            dg.get_dagster_logger().warning(outcome)
            return outcome
        return f"images served from {folder} (local-files storage {storage_id})"
