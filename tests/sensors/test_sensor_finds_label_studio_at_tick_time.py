"""The annotation sensor looks up its Label Studio on every tick, never at import.

So ``dagster dev`` started before ``labeling-assets labelstudio start`` works once the server is up, without a
restart; and a deployment that names its server never falls back to the local one.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.sensors import annotation_sensor

LABEL_STUDIO_VARIABLES = ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_PROJECT", "LABELING_ASSETS_DEPLOYMENT")


@pytest.fixture
def empty_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data folder where no local Label Studio was ever started, and no server named in the environment."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(folder))
    for name in LABEL_STUDIO_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield folder


def tick(label_studio: LabelStudioResource) -> dg.SensorResult | dg.SkipReason:
    with dg.DagsterInstance.ephemeral() as instance:
        return annotation_sensor(dg.build_sensor_context(instance=instance, resources={"label_studio": label_studio}))


def loaded_label_studio() -> LabelStudioResource:
    """The resource exactly as the loaded definitions hold it (what the daemon evaluates the sensor with)."""
    from definitions import defs

    resource = (defs.resources or {})["label_studio"]
    assert isinstance(resource, LabelStudioResource)
    return resource


def test_without_any_server_the_sensor_skips_and_says_how_to_get_one(empty_data_folder: Path) -> None:
    result = tick(loaded_label_studio())
    assert isinstance(result, dg.SkipReason)
    message = result.skip_message or ""
    assert message.startswith("Label Studio not configured")
    assert "LABEL_STUDIO_API_KEY" in message and "labeling-assets labelstudio start" in message


def test_prod_without_a_server_url_skips_naming_the_variable(
    empty_data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELING_ASSETS_DEPLOYMENT", "prod")
    result = tick(loaded_label_studio())
    assert isinstance(result, dg.SkipReason)
    assert "LABEL_STUDIO_URL is not set" in (result.skip_message or "")


def test_the_local_token_is_never_sent_to_a_server_named_in_the_environment(
    empty_data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local server's files exist, but the environment points at another server without a token.
    local = empty_data_folder / "labelstudio"
    local.mkdir()
    (local / "server.json").write_text('{"pid": 0, "port": 18080}')
    (local / "api_token").write_text("local-secret")
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://labelstudio.example.org")
    result = tick(loaded_label_studio())
    assert isinstance(result, dg.SkipReason)
    assert "no Label Studio API token for http://labelstudio.example.org" in (result.skip_message or "")


@pytest.mark.labelstudio
def test_definitions_loaded_before_label_studio_reach_it_once_it_is_up(empty_data_folder: Path) -> None:
    from tests.labelstudio_server import start_server

    label_studio = loaded_label_studio()
    before = tick(label_studio)
    assert isinstance(before, dg.SkipReason) and "not configured" in (before.skip_message or "")

    # What `labeling-assets labelstudio start` does: a server under <data>/labelstudio, its token in a file there.
    server = start_server(empty_data_folder)
    try:
        project_id = server.client().ensure_project(title="labeling-assets", classes=["cat", "dog"], overlap=1)
        after = tick(label_studio)  # the same resource object: nothing was reloaded
        assert label_studio.resolved_url == server.url
        assert isinstance(after, dg.SensorResult), after
        assert [r.run_key.startswith(f"annotations-{project_id}-") for r in after.run_requests or []] == [True]
    finally:
        server.stop()
