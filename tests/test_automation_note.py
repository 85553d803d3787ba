"""Issue 26: the Dagster UI showed "Automation condition: eager" with the automation sensor off, unexplained.
Each asset with an automation condition carries, in its definition metadata (shown on its page), what the
condition does in this project and what materializes the asset instead."""

from definitions import defs


def test_every_asset_with_an_automation_condition_says_the_automation_sensor_is_off_and_what_runs_it() -> None:
    with_condition = [s for s in defs.resolve_all_asset_specs() if s.automation_condition is not None]
    assert {s.key.to_user_string() for s in with_condition} >= {"dataset_splits", "consensus_labels"}
    for spec in with_condition:
        note = str(spec.metadata.get("automation", ""))
        assert "automation sensor" in note and "off" in note and "collect_job" in note, spec.key
