"""Secrets never reach compute logs, metadata or the quarantine (issue 28, finding 8).

- A password inside ``MLFLOW_TRACKING_URI`` (``http://user:PASSWORD@host``): MLflow's client writes
  "View run ... at: <tracking URI>/#/experiments/..." to stdout when a run ends, and Dagster keeps stdout as the
  step's compute log. Against a real MLflow server, a real Dagster instance with its compute log manager.
- ``follow_symlinks: always`` with a link named like an image to ``/proc/self/environ`` (a "regular" file of the
  kernel's pseudo filesystem, 0 bytes by ``stat``): refused as not a regular file, never read, so the
  process environment (the Label Studio key among it) is not copied into the quarantine.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from labeling_assets.core.ingest.scan import IngestOptions, ingest_source
from labeling_assets.core.ingest.source import NOT_A_REGULAR_FILE
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.resources.mlflow import MLflowResource
from tests.mlflow_server import MLflowServer, mlflow_server  # noqa: F401


@dg.asset
def tracked_run(mlflow: MLflowResource) -> dg.MaterializeResult:
    """What trained_model does with the resource: a run in the project's experiment, its link as metadata."""
    with mlflow.start_run(run_name="secret-check") as run:
        mlflow.module().log_metric("val_macro_f1", 0.5)
    return dg.MaterializeResult(metadata={"mlflow_run": dg.MetadataValue.url(mlflow.run_url(run.info.run_id))})


def every_byte_under(folder: Path) -> Iterator[tuple[Path, bytes]]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path, path.read_bytes()


def test_an_mlflow_password_in_the_tracking_uri_never_reaches_compute_logs_or_metadata(
    mlflow_server: MLflowServer, tmp_path: Path  # noqa: F811
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    uri = mlflow_server.url.replace("http://", f"http://pipeline:{password}@")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        result = dg.materialize(
            [tracked_run],
            instance=instance,
            resources={"mlflow": MLflowResource(tracking_uri=uri, experiment_name=f"secret-{uuid.uuid4().hex[:6]}")},
        )
        assert result.success
        events = instance.all_logs(result.run_id)
    logs = list(every_byte_under(tmp_path / "dagster"))
    assert any(b"View run secret-check at: " in data for _, data in logs), "MLflow's line was not captured"
    assert [path for path, data in logs if password.encode() in data] == []
    assert password not in str(events)
    [materialization] = result.asset_materializations_for_node("tracked_run")
    link = str(materialization.metadata["mlflow_run"].value)
    assert link.startswith(mlflow_server.url.replace("http://", "http://pipeline:***@")), link


def test_a_link_to_the_process_environment_is_refused_not_copied_into_quarantine(
    sqlite_store: LabelStore, tmp_path: Path
) -> None:
    environment = Path("/proc/self/environ").read_bytes()
    assert b"PATH=" in environment
    source = tmp_path / "source"
    source.mkdir()
    (source / "environ.png").symlink_to("/proc/self/environ")
    (source / "cmdline.png").symlink_to("/proc/self/cmdline")

    report = ingest_source(
        sqlite_store,
        str(source),
        raw_dir=tmp_path / "raw",
        quarantine_dir=tmp_path / "quarantine",
        options=IngestOptions(follow_symlinks="always"),
    )

    outcomes = {o.rel_path: o.reason for o in report.outcomes}
    assert outcomes == {"environ.png": NOT_A_REGULAR_FILE, "cmdline.png": NOT_A_REGULAR_FILE}
    copied = [path for folder in ("raw", "quarantine") for path, data in every_byte_under(tmp_path / folder)]
    assert copied == [], "a kernel pseudo-file was read and copied"
