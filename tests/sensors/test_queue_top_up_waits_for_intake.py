"""queue_top_up_sensor leaves the new items of an ingest to the intake chain (prelabels first, then the queue),
so they reach Label Studio with the champion's prediction and in uncertainty order; only for a while, so a
stopped intake sensor does not stall the queue.

A real ingest run (three PNGs, a SQLite store) on an ephemeral instance; Label Studio is not needed: the
sensor decides before it asks Label Studio anything.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from labeling_assets.local.labelstudio import free_port
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import queue as queue_sensor
from labeling_assets.sensors import queue_top_up_sensor


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabelStoreResource:
    source = tmp_path / "source"
    source.mkdir()
    for k in range(3):
        Image.new("L", (8, 8), color=40 * k).save(source / f"img{k}.png")
    url = f"sqlite:///{tmp_path / 'labels.db'}"
    monkeypatch.setenv("LABELING_ASSETS_IMAGE_SOURCE", str(source))
    monkeypatch.setenv("LABEL_STORE_URL", url)
    return LabelStoreResource(url=url)


def tick(instance: dg.DagsterInstance, store: LabelStoreResource) -> str:
    unreachable = LabelStudioResource(url=f"http://127.0.0.1:{free_port()}", api_key="unused", timeout_s=2)
    result = queue_top_up_sensor(
        dg.build_sensor_context(instance=instance, resources={"label_studio": unreachable, "label_store": store})
    )
    assert isinstance(result, dg.SkipReason), result
    return result.skip_message or ""


def run(instance: dg.DagsterInstance, job: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    from definitions import defs

    return instance.create_run_for_job(job_def=defs.resolve_job_def(job), status=status)


@pytest.mark.parametrize("job", ["ingest_job", "prelabel_job"])
def test_no_top_up_while_an_ingest_or_prelabel_run_is_in_flight(
    job: str, instance: dg.DagsterInstance, store: LabelStoreResource
) -> None:
    flying = run(instance, job, dg.DagsterRunStatus.STARTED)
    assert tick(instance, store) == (
        f"{job} run {flying.run_id} is in flight: the intake chain queues new items after their prelabels"
    )


def test_the_new_items_of_a_finished_ingest_wait_for_their_prelabel_run(
    instance: dg.DagsterInstance, store: LabelStoreResource
) -> None:
    from definitions import defs

    ingest = defs.resolve_job_def("ingest_job").execute_in_process(instance=instance)
    assert ingest.success
    assert tick(instance, store) == (
        f"ingest run {ingest.run_id} found new items: intake_sensor prelabels them first"
    )
    run(instance, "prelabel_job", dg.DagsterRunStatus.SUCCESS)  # what intake_sensor launches
    assert "Label Studio unavailable" in tick(instance, store)  # the top-up goes on to look at the queue


def test_after_the_grace_period_the_top_up_queues_them_anyway(
    instance: dg.DagsterInstance, store: LabelStoreResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    from definitions import defs

    assert defs.resolve_job_def("ingest_job").execute_in_process(instance=instance).success
    monkeypatch.setattr(queue_sensor, "INTAKE_GRACE_SECONDS", 0)  # intake_sensor stopped: nothing follows
    assert "Label Studio unavailable" in tick(instance, store)
