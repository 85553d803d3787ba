"""The layout rules DESIGN.md §2 and §9 promise, enforced."""

import ast
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "labeling_assets" / "core"
# core/ runs where only torch is installed (a GPU box): these must never be imported there.
FORBIDDEN_IN_CORE = {"dagster", "dagster_postgres", "dagster_webserver", "mlflow"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_modules_import_neither_dagster_nor_mlflow() -> None:
    offenders = {
        str(path.relative_to(CORE)): sorted(_imported_roots(path) & FORBIDDEN_IN_CORE)
        for path in sorted(CORE.rglob("*.py"))
        if _imported_roots(path) & FORBIDDEN_IN_CORE
    }
    assert offenders == {}


def test_the_required_top_level_exists() -> None:
    for name in ("pyproject.toml", "definitions.py", "dagster.yaml", "workspace.yaml", "README.md"):
        assert (REPO / name).is_file(), name
    for name in ("labeling_assets", "tests", "docker", "benchmarks"):
        assert (REPO / name).is_dir(), name


def test_definitions_load_and_every_asset_has_a_group_and_a_description() -> None:
    from definitions import defs

    assert isinstance(defs, dg.Definitions)
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("raw_images") in graph.materializable_asset_keys
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert node.description, key


def test_every_dependency_is_an_asset_of_the_project() -> None:
    from definitions import defs

    graph = defs.resolve_asset_graph()
    assert graph.get_all_asset_keys() - graph.materializable_asset_keys == set()


def test_local_servers_take_ports_outside_the_range_outgoing_connections_get() -> None:
    """A restart on the same port must not find it taken by an outgoing connection (the ephemeral range)."""
    from labeling_assets.local import labelstudio as server

    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert all(not low <= server.free_port() <= high for _ in range(20))
