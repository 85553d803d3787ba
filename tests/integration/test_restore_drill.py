"""The restore drill: a running local stack is backed up with ``store backup --all``, every data folder and
database is destroyed, ``store restore --all`` brings it back, and the loop goes on as if nothing happened.

One data folder holds the whole stack, as on a team member's machine: the SQLite label store, a real Label
Studio of its own (``start_server``: a copy of the migrated template, so seconds), MLflow's local store with a
registered champion, and the repository's dagster.yaml instance storage. A small loop runs first (queue, a
two-person crowd, collect, an annotation deleted in Label Studio and collected as a tombstone); after the
restore the annotation log and Label Studio's export are exactly as before, the champion alias resolves to the
same version with the same checkpoint bytes, Dagster still lists its runs, and the next collect adds only the
one annotation made after the restore: nothing lost, duplicated or revived.
"""

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets import env
from labeling_assets.assets import collect, queue
from labeling_assets.cli.main import main as cli
from labeling_assets.constants import REPO_ROOT
from labeling_assets.core.labelstudio.crowd import LabelerSpec
from labeling_assets.core.store.schema import LabelStore, annotations_table, items_table, utcnow
from labeling_assets.jobs import collect_job, queue_job
from labeling_assets.local.crowd import simulate_crowd
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer, start_server

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog"]
N_ITEMS = 4
CROWD = [LabelerSpec("drill_a", "expert"), LabelerSpec("drill_b", "average")]
TITLE = "restore-drill"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, LabelStudioServer]]:
    """A data folder that holds the whole local stack, and its own Label Studio (stopped at the end)."""
    data = tmp_path / "data"
    for name in ("LABEL_STORE_URL", "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_DATABASE_URL",
                 "MLFLOW_TRACKING_URI", "LABELING_ASSETS_DEPLOYMENT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(data))
    monkeypatch.setenv("LABEL_STUDIO_PROJECT", TITLE)
    monkeypatch.setenv("DAGSTER_HOME", str(REPO_ROOT))  # the repository's dagster.yaml: storage in <data>/dagster
    server = start_server(data)
    try:
        yield data, server
    finally:
        server.stop()


class Loop:
    """queue_job and collect_job on the stack's own store, Label Studio and Dagster instance."""

    def __init__(self, data: Path) -> None:
        self.store = LabelStore(env.label_store_url())
        self.instance = dg.DagsterInstance.from_config(str(REPO_ROOT))
        self.label_studio = LabelStudioResource(project_title=TITLE)
        self.defs = dg.Definitions(
            assets=[queue.labeling_tasks, collect.annotations],
            jobs=[queue_job, collect_job],
            resources={
                "label_store": LabelStoreResource(url=self.store.url),
                "label_studio": self.label_studio,
                "project": ProjectSettings(data_dir=str(data), classes=CLASSES),
            },
        )

    def run(self, job: str, **config: Any) -> dict[str, Any]:
        run_config = {"ops": {"labeling_tasks": {"config": config}}} if config else None
        result = self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, run_config=run_config)
        assert result.success
        [materialization, *_] = [e.materialization for e in result.get_asset_materialization_events()]
        return {k: v.value for k, v in materialization.metadata.items()}

    def log(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(annotations_table).order_by(annotations_table.c.id))]

    def export(self) -> list[tuple[int, list[tuple[int, str, Any]]]]:
        """Label Studio's own export: every task with its annotations (id, who, answer)."""
        client = self.label_studio.get_client()
        project = self.label_studio.find_project_id()
        assert project is not None
        tasks = json.loads(client.export_json(project))
        return sorted((t["id"], sorted((a["id"], str(a["completed_by"]), a["result"]) for a in t["annotations"]))
                      for t in tasks)  # fmt: skip

    def close(self) -> None:
        self.instance.dispose()
        self.store.dispose()


def _champion(data: Path) -> tuple[int, str]:
    """The version ``models:/...@champion`` resolves to, and the SHA-256 of its checkpoint, from a fresh client."""
    mlflow = MLflowResource(data_dir=str(data))
    champion = mlflow.champion()
    assert champion is not None
    return champion.version, hashlib.sha256(mlflow.download_checkpoint(champion).read_bytes()).hexdigest()


def _forget_mlflow_connections() -> None:
    """Close this process's pooled connections to MLflow's SQLite file, as the wipe's stopped processes did: an open
    connection would go on reading the deleted file, and the check of the restored registry would read the old."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for store in (TrackingStore, RegistryStore):
        for engine in store._engine_map.values():
            engine.dispose()


def _register_champion(data: Path) -> None:
    """A registered version with a checkpoint, promoted as champion (no training: the registry is what is backed up)."""
    mlflow = MLflowResource(data_dir=str(data))
    checkpoint = data.parent / "model.pt"
    checkpoint.write_bytes(hashlib.sha256(b"drill").digest() * 64)
    with mlflow.start_run(run_name="drill"):
        version = mlflow.register_checkpoint(checkpoint, {"dataset_version": "drill"})
    mlflow.set_alias("champion", version)


def test_a_wiped_machine_comes_back_from_the_bundle_and_the_loop_goes_on(
    stack: tuple[Path, LabelStudioServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, server = stack
    loop = Loop(data)
    loop.store.migrate()
    truth = {hashlib.sha256(f"drill-{i}".encode()).hexdigest(): CLASSES[i % 2] for i in range(N_ITEMS)}
    with loop.store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": item, "uri": str(data / "raw" / f"{item}.png"), "n_bytes": 1,
                                             "source_path": f"{item}.png", "ingested_at": utcnow(), "status": "active"}
                                            for item in truth])  # fmt: skip
    loop.run("queue_job", max_new_tasks=N_ITEMS, gold_rate=0.0, overlap=2)
    client = loop.label_studio.get_client()
    project = loop.label_studio.find_project_id()
    assert project is not None
    crowd = simulate_crowd(client, project, CROWD, truth=truth, classes=CLASSES, overlap=2, seed=3)
    assert loop.run("collect_job")["new"] == 2 * N_ITEMS
    deleted, task_of_deleted = crowd.annotations[0][0], crowd.annotations[0][1]
    client.delete_annotation(deleted)
    loop.run("collect_job")
    _register_champion(data)
    log, export, champion = loop.log(), loop.export(), _champion(data)
    runs = sorted(r.run_id for r in loop.instance.get_runs())
    assert [r["deleted"] for r in log if r["ls_annotation_id"] == deleted] == [False, True]

    bundle_folder = tmp_path / "backups"
    assert cli(["store", "backup", "--all", "--folder", str(bundle_folder)]) == 0
    [bundle] = bundle_folder.iterdir()
    assert "labelstudio_export/" in capsys.readouterr().out

    # The machine is wiped: servers stopped, every data folder and database gone.
    server.stop()
    loop.close()
    _forget_mlflow_connections()
    shutil.rmtree(data)
    assert cli(["store", "restore", "--all", str(bundle)]) == 0
    assert cli(["store", "restore", "--all", str(bundle)]) == 1  # a second restore finds a live stack: refused
    assert "refused, nothing restored" in capsys.readouterr().err
    server.start()

    loop = Loop(data)
    try:
        assert loop.log() == log
        assert loop.export() == export
        assert _champion(data) == champion
        assert sorted(r.run_id for r in loop.instance.get_runs()) == runs
        # The loop goes on: one new answer in the task that lost one, and nothing else changes.
        added = client.create_annotation(task_of_deleted, "cat", completed_by=crowd.user_ids["drill_a"])
        assert loop.run("collect_job")["new"] == 1
        after = loop.log()
        assert after[: len(log)] == log and [r["ls_annotation_id"] for r in after[len(log) :]] == [added]
        assert len({(r["ls_annotation_id"], r["version"]) for r in after}) == len(after)
        assert [r["deleted"] for r in after if r["ls_annotation_id"] == deleted] == [False, True]  # not revived
    finally:
        loop.close()
