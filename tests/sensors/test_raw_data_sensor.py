"""raw_data_sensor: new or changed files launch ingest once; an idle tick reads no file."""

import os
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from labeling_assets.core.automation import MAX_ATTEMPTS
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.sensors import raw_data_sensor
from labeling_assets.sensors.runs import STATE_TAG, TRIGGER_TAG
from tests.sensors.file_spy import opened_under


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "batch1").mkdir(parents=True)
    for k in range(3):
        Image.new("L", (8, 8), color=k * 40).save(folder / "batch1" / f"img_{k}.png")
    return folder


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def tick(
    instance: dg.DagsterInstance, folder: Path, cursor: str | None, project: ProjectSettings | None = None
) -> dg.SensorResult | dg.SkipReason:
    resources = {"image_source": ImageSourceResource(uri=str(folder)), "project": project or ProjectSettings()}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return raw_data_sensor(context)


def launched(result: dg.SensorResult | dg.SkipReason) -> tuple[dg.RunRequest, str]:
    assert isinstance(result, dg.SensorResult), result
    assert result.run_requests and len(result.run_requests) == 1
    assert result.cursor is not None
    return result.run_requests[0], result.cursor


def ingest_run(instance: dg.DagsterInstance, state: str, *, failed: bool) -> None:
    from definitions import defs

    run = instance.create_run_for_job(
        job_def=defs.resolve_job_def("ingest_job"),
        tags={STATE_TAG: state},
        status=None if failed else dg.DagsterRunStatus.SUCCESS,
    )
    if failed:
        instance.report_run_failed(run)


def test_the_first_tick_launches_ingest_with_the_listing_as_cursor_and_run_key(
    source: Path, instance: dg.DagsterInstance
) -> None:
    request, cursor = launched(tick(instance, source, None))
    assert cursor.startswith("3:")
    assert request.run_key == f"raw-data-{cursor}-attempt-1"
    assert request.tags[TRIGGER_TAG] == "image source changed (3 files)"
    assert request.tags[STATE_TAG] == cursor


def test_an_idle_tick_skips_and_opens_no_file(source: Path, instance: dg.DagsterInstance) -> None:
    _, cursor = launched(tick(instance, source, None))
    with opened_under(source.parent) as opened:
        result = tick(instance, source, cursor)
    assert isinstance(result, dg.SkipReason)
    assert (result.skip_message or "").startswith("no new or changed file in the image source (3 files)")
    assert opened == []


def test_the_file_spy_sees_a_file_being_read(source: Path) -> None:
    with opened_under(source) as opened:
        (source / "batch1" / "img_0.png").read_bytes()
    assert opened == [str(source / "batch1" / "img_0.png")]


def test_a_new_file_or_a_touched_one_launches_ingest_again(source: Path, instance: dg.DagsterInstance) -> None:
    _, first = launched(tick(instance, source, None))
    Image.new("L", (8, 8)).save(source / "batch1" / "img_new.png")
    request, second = launched(tick(instance, source, first))
    assert second.startswith("4:") and request.run_key == f"raw-data-{second}-attempt-1"
    stat = os.stat(source / "batch1" / "img_0.png")
    os.utime(source / "batch1" / "img_0.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    _, third = launched(tick(instance, source, second))
    assert third not in (first, second)


def test_a_missing_source_skips_naming_it(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    result = tick(instance, tmp_path / "nowhere", None)
    assert isinstance(result, dg.SkipReason)
    assert f"image source {tmp_path / 'nowhere'} does not exist" in (result.skip_message or "")


def test_a_change_waits_while_an_ingest_run_is_in_flight(source: Path, instance: dg.DagsterInstance) -> None:
    from definitions import defs

    queued = instance.create_run_for_job(job_def=defs.resolve_job_def("ingest_job"))  # not started yet
    result = tick(instance, source, None)
    assert isinstance(result, dg.SkipReason)
    assert f"ingest run {queued.run_id} is in flight" in (result.skip_message or "")


def test_a_failed_ingest_of_the_same_listing_is_retried_then_given_up(
    source: Path, instance: dg.DagsterInstance
) -> None:
    _, cursor = launched(tick(instance, source, None))
    ingest_run(instance, cursor, failed=True)
    request, _ = launched(tick(instance, source, cursor))
    assert request.run_key == f"raw-data-{cursor}-attempt-2"
    for _ in range(MAX_ATTEMPTS - 1):
        ingest_run(instance, cursor, failed=True)
    result = tick(instance, source, cursor)
    assert isinstance(result, dg.SkipReason) and f"failed {MAX_ATTEMPTS} times" in (result.skip_message or "")


def test_a_successful_retry_ends_the_retries(source: Path, instance: dg.DagsterInstance) -> None:
    _, cursor = launched(tick(instance, source, None))
    ingest_run(instance, cursor, failed=True)
    ingest_run(instance, cursor, failed=False)
    assert isinstance(tick(instance, source, cursor), dg.SkipReason)


def test_the_sensor_runs_by_itself_every_minute() -> None:
    assert raw_data_sensor.job_name == "ingest_job"
    assert raw_data_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert raw_data_sensor.minimum_interval_seconds == 60


def test_a_text_project_s_tick_sees_a_changed_text_file_and_an_image_project_s_does_not(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "rows.jsonl").write_text('{"id": 1, "text": "One."}\n', encoding="utf-8")
    texts = ProjectSettings(task_type="text_spans", classes=["PER"])
    _, cursor = launched(tick(instance, folder, None, texts))
    _, images_cursor = launched(tick(instance, folder, None))
    (folder / "rows.jsonl").write_text('{"id": 1, "text": "One, edited."}\n', encoding="utf-8")
    launched(tick(instance, folder, cursor, texts))
    assert isinstance(tick(instance, folder, images_cursor), dg.SkipReason)  # an image project lists no text file
