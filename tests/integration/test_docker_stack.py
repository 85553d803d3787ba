"""The team deployment in docker/: what can be checked without a Docker daemon.

The compose file is read by a real Docker Compose (``docker compose config``, Compose v2 from
scripts/install_compose.sh, which scripts/test runs) and must agree with its environment and the code (the
webhook receiver, the alert variables); docker/dagster.yaml must load as a real Dagster instance on PostgreSQL
(dagster-postgres against the server on 127.0.0.1:5432) that records a real materialization of the pipeline.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from labeling_assets.assets.ingest import raw_images
from labeling_assets.checks.ingest import active_items_have_readable_copy, content_hashes_unique
from labeling_assets.core.ingest.demo_data import render_digits
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _env_example() -> dict[str, str]:
    lines = (DOCKER / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_compose_file_defines_the_whole_stack_with_healthchecks() -> None:
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "labelstudio",
        "mlflow",
        "user-code",
        "dagster-webserver",
        "dagster-daemon",
        "proxy",  # profile "proxy", off by default (tests/security/test_compose_exposure.py)
        "raw-store-init",  # makes raw/ in the data volume, the only part Label Studio mounts
        "webhooks",  # the receiver of Label Studio's webhooks, in Label Studio's network namespace
    }
    for name, service in services.items():
        # The daemon has no port to probe (it depends on healthy services); the init exits once done.
        if name not in ("dagster-daemon", "raw-store-init"):
            assert "healthcheck" in service, name
    assert services["labelstudio"]["environment"]["DJANGO_DB"] == "default"  # Label Studio on PostgreSQL
    assert services["labelstudio"]["image"].endswith(":1.23.2")
    # Label Studio serves every file under its document root to any account: it sees only the raw store there.
    [mount] = [v for v in services["labelstudio"]["volumes"] if isinstance(v, dict)]
    root = services["labelstudio"]["environment"]["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"]
    assert (mount["source"], mount["target"], mount["volume"]["subpath"]) == ("labeling-assets-data", f"{root}/raw", "raw")
    assert not [v for v in services["labelstudio"]["volumes"] if isinstance(v, str) and "labeling-assets-data" in v]


def _docker_compose() -> list[str]:
    """Docker Compose v2: scripts/install_compose.sh's, else the docker CLI's plugin. Debian's docker-compose 1.29.2
    cannot read the file (no top-level ``name``, no volume ``subpath``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labeling-assets"
    installed = sorted(cache.glob("compose-*/bin/docker-compose-v2"))
    if installed:
        return [str(installed[-1])]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    pytest.fail("no Docker Compose v2 here: run scripts/install_compose.sh (scripts/test does)")


def _config(*profile: str) -> dict[str, Any]:
    done = subprocess.run(
        [*_docker_compose(), "-f", str(DOCKER / "docker-compose.yml"), "--env-file", str(DOCKER / ".env.example"),
         *profile, "config", "--format", "json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_docker_compose_config_reads_the_stack_as_the_code_expects_it() -> None:
    from labeling_assets.resources.alerts import DAGSTER_URL_VAR, SMTP_VARS, WEBHOOK_VAR
    from labeling_assets.resources.labelstudio import WEBHOOK_SECRET_VAR, WEBHOOK_URL_VAR

    plain, proxied = _config(), _config("--profile", "proxy")
    assert "proxy" not in plain["services"] and "proxy" in proxied["services"]
    services = plain["services"]
    receiver = services["webhooks"]
    assert receiver["network_mode"] == "service:labelstudio"  # Label Studio posts to its own loopback
    assert receiver["command"][:3] == ["labeling-assets", "webhooks", "serve"]
    port = receiver["command"][receiver["command"].index("--port") + 1]
    for name in ("user-code", "dagster-daemon"):
        env = services[name]["environment"]
        assert env[WEBHOOK_URL_VAR] == f"http://127.0.0.1:{port}/labelstudio", name
        assert env[WEBHOOK_SECRET_VAR] == receiver["environment"][WEBHOOK_SECRET_VAR] == "change-me"
        assert {WEBHOOK_VAR, DAGSTER_URL_VAR, *SMTP_VARS.values()} <= set(env), name
        assert env[WEBHOOK_VAR] == "" and env[SMTP_VARS["smtp_host"]] == ""  # alerts off until set
    # Label Studio's SSRF guard: loopback allowed, every other default banned subnet still banned.
    from labeling_assets.local.labelstudio import BANNED_SUBNETS_BUT_LOOPBACK

    ls_env = services["labelstudio"]["environment"]
    assert ls_env["USE_DEFAULT_BANNED_SUBNETS"] == "false"
    assert ls_env["USER_ADDITIONAL_BANNED_SUBNETS"].split(",") == list(BANNED_SUBNETS_BUT_LOOPBACK)
    assert {(p["host_ip"], str(p["target"])) for p in services["labelstudio"]["ports"]} == {
        ("127.0.0.1", "8080"), ("127.0.0.1", port)
    }  # fmt: skip


def test_every_variable_the_compose_file_uses_is_in_the_env_example() -> None:
    compose_text = (DOCKER / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", compose_text))  # ${VAR}, ${VAR:-default}, ${VAR:?message}
    assert used - set(_env_example()) == set()
    # docker/dagster.yaml reads the containers' environment: set by the compose file or from docker/.env.
    compose = yaml.safe_load(compose_text)
    given = set(compose["x-dagster-env"]) | set(_env_example())
    for var in re.findall(r"env: (\w+)", (DOCKER / "dagster.yaml").read_text()):
        assert var in given, var
    launched = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]["env_vars"]
    assert set(launched) <= set(compose["x-dagster-env"])  # every run gets what the daemon has


def test_postgres_init_creates_a_database_per_system() -> None:
    """Each under its role's name (psql variable ``name``); tests/security/test_postgres_roles.py runs the file."""
    sql = (DOCKER / "postgres-init.sql").read_text()
    assert set(re.findall(r"\\set name :prefix (\w+)", sql)) == {"dagster", "labels", "labelstudio", "mlflow"}
    assert sql.count('CREATE DATABASE :"name" OWNER :"name";') == 4


def test_no_secret_is_committed_in_the_docker_folder() -> None:
    assert not (DOCKER / ".env").exists()
    assert all(
        value in {"change-me", "''"} or "change-me" in value or "password" not in key.lower()
        for key, value in _env_example().items()
    )


@pytest.mark.postgres
def test_docker_dagster_yaml_is_a_working_postgres_instance_that_records_the_pipeline(
    pg_databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_url = sa.engine.make_url(pg_databases.new_url())
    for var, value in {
        "DAGSTER_PG_HOST": dagster_url.host,
        "DAGSTER_PG_PORT": str(dagster_url.port),
        "DAGSTER_PG_USER": dagster_url.username,
        "DAGSTER_PG_PASSWORD": dagster_url.password or "",
        "DAGSTER_PG_DB": dagster_url.database,
        "LABELING_ASSETS_IMAGE": "labeling-assets:test",
    }.items():
        monkeypatch.setenv(var, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Same file as the image uses; only the container paths are mapped into the test's temp folder.
    text = (DOCKER / "dagster.yaml").read_text().replace("/opt/dagster/data", str(tmp_path / "data"))
    (home / "dagster.yaml").write_text(text)

    store_url = pg_databases.new_url()
    demo = tmp_path / "digits"
    render_digits(demo, limit=40)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize(
            [raw_images, content_hashes_unique, active_items_have_readable_copy],
            instance=instance,
            resources={
                "label_store": LabelStoreResource(url=store_url),
                "image_source": ImageSourceResource(uri=str(demo), demo_dir=str(demo)),
                "project": ProjectSettings(data_dir=str(tmp_path / "data")),
            },
        )
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_images"))
        assert event is not None and event.run_id == result.run_id
        assert event.asset_materialization.metadata["files_new"].value == 40
    # The events are in PostgreSQL, not in a local file.
    engine = sa.create_engine(dagster_url)
    with engine.connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM event_logs WHERE run_id = :r"), {"r": result.run_id}
        ).scalar()
    engine.dispose()
    assert n and n > 5
    shutil.rmtree(home)
