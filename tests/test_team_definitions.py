"""The team deployment's code location binds each resource setting the docker stack feeds through ``dg.EnvVar``:
a run reads the variable when it starts, and an unset one fails the run by its name (issue 27: the UI shows which
variable feeds which resource)."""

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets import definitions, team_definitions
from labeling_assets.core.store.schema import LabelStore, items_table


def _ingest(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = team_definitions.defs.resolve_job_def("ingest_job")
    return job.execute_in_process(instance=instance, raise_on_error=False)


def test_a_team_run_reads_the_store_and_the_image_source_from_their_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "incoming"
    source.mkdir()
    for i, colour in enumerate(["#c33", "#3a3"]):
        Image.new("RGB", (16, 16), colour).save(source / f"{i}.png")
    store_url = f"sqlite:///{tmp_path / 'team-labels.db'}"
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("LABEL_STORE_URL", store_url)
    monkeypatch.setenv("LABELING_ASSETS_IMAGE_SOURCE", str(source))
    with dg.DagsterInstance.ephemeral() as instance:
        assert _ingest(instance).success
    store = LabelStore(store_url)
    try:
        paths = [str(r["source_path"]) for r in store.fetch(sa.select(items_table.c.source_path))]
        assert sorted(p.rsplit("/", 1)[-1] for p in paths) == ["0.png", "1.png"]
        assert all(p.startswith(source.as_uri()) for p in paths)  # from the folder the variable named
    finally:
        store.dispose()


def test_a_team_run_with_a_bound_variable_unset_fails_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("LABELING_ASSETS_IMAGE_SOURCE", str(tmp_path))
    monkeypatch.delenv("LABEL_STORE_URL", raising=False)
    with dg.DagsterInstance.ephemeral() as instance, pytest.raises(Exception, match="LABEL_STORE_URL"):
        _ingest(instance)


def test_the_team_location_has_the_same_definitions_as_the_local_one() -> None:
    def keys(defs: dg.Definitions) -> tuple[object, ...]:
        repo = defs.get_repository_def()
        return (sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()),
                sorted(j.name for j in repo.get_all_jobs()), sorted(s.name for s in repo.sensor_defs),
                sorted(repo.get_top_level_resources()))  # fmt: skip

    assert keys(team_definitions.defs) == keys(definitions.defs)
    bound = {key: set(fields) for key, fields in team_definitions.TEAM_BINDINGS.items()}
    assert bound.keys() <= set(definitions.defs.get_repository_def().get_top_level_resources())
