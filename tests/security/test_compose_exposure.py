"""No open door in docker/docker-compose.yml, read as Docker Compose reads it (YAML, then ${VAR} interpolation).

- every published port binds 127.0.0.1, except the proxy's, whose service is in the "proxy" profile (off by
  default) and which puts a login in front of each UI;
- no command, entrypoint or healthcheck carries a secret (a secret variable, or a URL with a password);
- each secret of docker/.env.example is documented there and holds no real value.
"""

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|API_KEY|SECRET|_HASH")
VARIABLE = re.compile(r"\$\{?(\w+)")


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "docker-compose.yml").read_text()))


def _env_example() -> list[tuple[str, str, list[str]]]:
    """(name, value, the comment lines just above it) for every variable of docker/.env.example."""
    out: list[tuple[str, str, list[str]]] = []
    comments: list[str] = []
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.startswith("#"):
            comments.append(line)
        elif "=" in line:
            name, value = line.split("=", 1)
            out.append((name, value, comments))
            comments = []
        else:
            comments = []
    return out


def _host_ip(port: Any) -> str:
    """The host address of one entry of ``ports`` (short or long syntax); "" = every interface."""
    if isinstance(port, dict):
        return str(port.get("host_ip", ""))
    parts = str(port).rsplit(":", 2)
    return parts[0] if len(parts) == 3 else ""


def test_host_ip_reads_every_short_and_long_form() -> None:
    assert _host_ip("127.0.0.1:3000:3000") == "127.0.0.1"
    assert _host_ip("3000:3000") == "" and _host_ip("3000") == ""
    assert _host_ip({"target": 80, "published": 8080, "host_ip": "127.0.0.1"}) == "127.0.0.1"
    assert _host_ip({"target": 80, "published": 8080}) == ""


def test_every_published_port_binds_localhost_unless_the_proxy_profile_is_on() -> None:
    services = _compose()["services"]
    exposed = {
        name: [p for p in service.get("ports", []) if _host_ip(p) != "127.0.0.1"]
        for name, service in services.items()
    }
    assert {name for name, ports in exposed.items() if ports} == {"proxy"}
    assert services["proxy"]["profiles"] == ["proxy"]  # off unless `--profile proxy`
    for name in ("postgres", "user-code", "dagster-daemon"):  # no UI: no host port at all
        assert "ports" not in services[name], name


def test_each_ui_behind_the_proxy_asks_for_a_login() -> None:
    services = _compose()["services"]
    caddyfile = (DOCKER / "Caddyfile").read_text()
    sites = dict(re.findall(r"^https://\S+:(\d+) \{\n(.*?)^\}", caddyfile, flags=re.M | re.S))
    assert set(sites) == {"3443", "8443", "5443"}
    assert {str(p).split(":")[-1] for p in services["proxy"]["ports"]} == set(sites)
    # Dagster has no login of its own: basic auth in the proxy; the others log people in themselves.
    assert "basic_auth" in sites["3443"] and "reverse_proxy dagster-webserver:3000" in sites["3443"]
    assert "reverse_proxy labelstudio:8080" in sites["8443"]
    assert services["labelstudio"]["environment"]["LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK"] == "true"
    assert "reverse_proxy mlflow:5000" in sites["5443"]
    assert "--app-name basic-auth" in services["mlflow"]["command"]
    assert all(re.search(r"^\s*tls \{\$PROXY_TLS\}$", body, flags=re.M) for body in sites.values())


def _commands(service: dict[str, Any]) -> list[str]:
    parts: list[Any] = [service.get("command", ""), service.get("entrypoint", "")]
    parts.append(service.get("healthcheck", {}).get("test", ""))
    return [" ".join(map(str, p)) if isinstance(p, list) else str(p) for p in parts]


def test_no_command_of_any_service_carries_a_secret() -> None:
    for name, service in _compose()["services"].items():
        for command in _commands(service):
            assert not [v for v in VARIABLE.findall(command) if SECRET_NAME.search(v)], (name, command)
            assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", command), (name, command)  # user:password@host


def test_secrets_reach_the_services_only_as_variables_of_docker_env() -> None:
    """A secret in a service's environment is a ${VAR} of docker/.env, never a literal: the variable itself, or the
    password part of a URL."""
    for name, service in _compose()["services"].items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key) and "USERNAME" not in key and str(value) not in {"true", "false"}:
                assert re.fullmatch(r"\$\{\w+(:[?-][^}]*)?\}", str(value)), (name, key)
            for password in re.findall(r"://[^/\s:@]+:([^@]+)@", str(value)):
                assert re.fullmatch(r"\$\{\w+(:[?-][^}]*)?\}", password), (name, key)


def test_every_secret_of_the_env_example_is_documented_and_unset() -> None:
    entries = _env_example()
    secrets = [(name, value, notes) for name, value, notes in entries if SECRET_NAME.search(name)]
    assert len(secrets) >= 9
    for name, value, notes in secrets:
        assert value in {"change-me", "''", ""}, name
        assert notes, f"{name} has no comment above it in docker/.env.example"


def test_init_env_writes_a_private_file_with_a_random_value_for_every_secret(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    done = subprocess.run(["bash", str(DOCKER / "init-env.sh"), str(target)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    written = dict(line.split("=", 1) for line in target.read_text().splitlines() if "=" in line and line[0] != "#")
    filled = [n for n, v, _ in _env_example() if v == "change-me"]
    assert all(re.fullmatch(r"[0-9a-f]{48}", written[n]) for n in filled)
    assert len({written[n] for n in filled}) == len(filled)  # no value shared between two secrets
    assert not any(written[n] in done.stdout + done.stderr for n in filled)  # never printed
    again = subprocess.run(["bash", str(DOCKER / "init-env.sh"), str(target)], capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr  # an existing docker/.env is never overwritten

