"""Training, registry aliases and pre-labels against a real MLflow tracking server over HTTP: ``mlflow
server`` on a PostgreSQL backend store with a served local artifact root (``tests/mlflow_server.py``), as the
docker stack runs it. The embedded default (a local SQLite store) is what ``test_champion.py`` uses."""

from pathlib import Path

import sqlalchemy as sa

from labeling_assets.core.store.schema import LabelStore
from labeling_assets.resources.mlflow import MLflowResource
from tests.conftest import PG_ADMIN_URL
from tests.integration.test_champion import make_loop
from tests.mlflow_server import MLflowServer


def test_training_aliases_and_prelabels_work_against_an_mlflow_server_on_postgresql(
    mlflow_server: MLflowServer,
    sqlite_store: LabelStore,
    data_dir: Path,
) -> None:
    mlflow = MLflowResource(tracking_uri=mlflow_server.url)
    loop, _, version = make_loop(sqlite_store, data_dir, mlflow)
    name = mlflow.registered_model_name
    assert mlflow.resolved_artifact_location is None  # the server decides where artifacts go

    first, _ = loop.train_and_evaluate(epochs=2)
    assert first["promoted"] and first["alias"] == "champion"
    assert first["mlflow_run"].startswith(f"{mlflow_server.url}/")
    mlflow.set_alias("challenger", 1)  # the one other registry write the loop makes (tested locally in full)
    assert [(v.version, sorted(v.aliases)) for v in mlflow.registered_versions()] == [(1, ["challenger", "champion"])]
    champion = mlflow.champion()
    assert champion is not None and champion.tags["dataset_version"] == version
    meta = loop.prelabel()
    assert meta["model_version"] == f"{name}/1" and meta["is_champion"] and meta["items_prelabeled"] == 300

    # What the server stored went to PostgreSQL and its artifact root, not to a local store of the client.
    backend = sa.create_engine(sa.make_url(PG_ADMIN_URL).set(database=mlflow_server.backend_database))
    with backend.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 1
        aliases = conn.execute(sa.text("SELECT alias, version FROM registered_model_aliases")).all()
    backend.dispose()
    assert sorted(aliases) == [("challenger", 1), ("champion", 1)]
    assert any(p.name == "model.pt" for p in mlflow_server.artifacts.rglob("*.pt"))
    assert not (data_dir / "mlflow").exists()
