"""annotation_sensor without a server: the cause of a skip is reported (the real loop is in tests/integration)."""

import dagster as dg
import pytest

from labeling_assets.local.labelstudio import free_port
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.sensors import annotation_sensor


@pytest.mark.slow
def test_sensor_skips_with_the_cause_when_label_studio_is_unreachable() -> None:
    resource = LabelStudioResource(url=f"http://127.0.0.1:{free_port()}", api_key="unused", timeout_s=2)
    with dg.DagsterInstance.ephemeral() as instance:
        result = annotation_sensor(
            dg.build_sensor_context(instance=instance, cursor="5|5|x", resources={"label_studio": resource})
        )
    assert isinstance(result, dg.SkipReason)
    assert "unreachable" in (result.skip_message or "") and resource.url in (result.skip_message or "")


def test_sensor_targets_the_collect_job_every_30_seconds() -> None:
    assert annotation_sensor.job_name == "collect_job"
    assert annotation_sensor.minimum_interval_seconds == 30
