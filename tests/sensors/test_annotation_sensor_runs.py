"""annotation_sensor and the collect runs it launched: no pile of waiting runs, and a failed collect of the
last change is launched again (the crowd may have stopped: no later change would bring its labels in).

A real Label Studio (the session's server) and an ephemeral Dagster instance holding planted runs.
"""

import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from labeling_assets.sensors import annotation_sensor
from labeling_assets.sensors.runs import STATE_TAG
from tests.labelstudio_server import LabelStudioServer


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def project(label_studio: LabelStudioServer) -> tuple[str, int]:
    title = f"collect-runs-{uuid.uuid4().hex[:8]}"
    return title, label_studio.client().ensure_project(title=title, classes=["cat", "dog"], overlap=1)


def tick(
    instance: dg.DagsterInstance, label_studio: LabelStudioServer, title: str, cursor: str | None = None
) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"label_studio": label_studio.resource(title)}
    )
    return annotation_sensor(context)


def plant_collect_run(instance: dg.DagsterInstance, state: str, status: dg.DagsterRunStatus) -> str:
    from definitions import defs

    run = instance.create_run_for_job(
        job_def=defs.resolve_job_def("collect_job"), tags={STATE_TAG: state}, status=status
    )
    return run.run_id


pytestmark = pytest.mark.labelstudio


def test_a_change_launches_one_collect_tagged_with_the_change(
    instance: dg.DagsterInstance, label_studio: LabelStudioServer, project: tuple[str, int]
) -> None:
    title, project_id = project
    result = tick(instance, label_studio, title)
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests or []
    assert request.run_key == f"annotations-{project_id}-{result.cursor}"
    assert request.tags[STATE_TAG] == result.cursor


def test_no_second_collect_is_launched_while_one_waits_to_start_and_the_change_is_kept(
    instance: dg.DagsterInstance, label_studio: LabelStudioServer, project: tuple[str, int]
) -> None:
    title, _ = project
    waiting = plant_collect_run(instance, "an older change", dg.DagsterRunStatus.NOT_STARTED)
    result = tick(instance, label_studio, title, cursor="an older change")
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == f"collect run {waiting} has not started yet: it will sync this change"
    # Once that run executes, the change (not yet in the cursor) launches a collect of its own.
    instance.report_run_canceled(instance.get_run_by_id(waiting))  # type: ignore[arg-type]
    assert isinstance(tick(instance, label_studio, title, cursor="an older change"), dg.SensorResult)


def test_a_failed_collect_of_the_last_change_is_launched_again_up_to_three_times(
    instance: dg.DagsterInstance, label_studio: LabelStudioServer, project: tuple[str, int]
) -> None:
    title, project_id = project
    first = tick(instance, label_studio, title)
    assert isinstance(first, dg.SensorResult) and first.cursor
    marker = first.cursor
    idle = tick(instance, label_studio, title, cursor=marker)
    assert isinstance(idle, dg.SkipReason) and "no annotation change" in (idle.skip_message or "")

    plant_collect_run(instance, marker, dg.DagsterRunStatus.FAILURE)
    retry = tick(instance, label_studio, title, cursor=marker)
    assert isinstance(retry, dg.SensorResult)
    [request] = retry.run_requests or []
    assert request.run_key == f"annotations-{project_id}-{marker}-attempt-2"
    assert request.tags["labeling-assets/trigger"] == "retry 2 of the failed collect"

    plant_collect_run(instance, marker, dg.DagsterRunStatus.FAILURE)
    plant_collect_run(instance, marker, dg.DagsterRunStatus.FAILURE)
    given_up = tick(instance, label_studio, title, cursor=marker)
    assert isinstance(given_up, dg.SkipReason) and "no annotation change" in (given_up.skip_message or "")
