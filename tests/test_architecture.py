"""The shape issue 11 gave the package, kept: layering, no import circle, small modules, thin assets.

README's architecture section explains the layers; these tests stop them from eroding.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "labeling_assets"
CORE_MODULE_MAX_LINES = 500
ASSET_BODY_MAX_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _project_imports(path: Path, known: set[str]) -> set[str]:
    """Modules of this package that ``path`` imports (at any depth, function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports the module pkg.mod when it is one, else a name of pkg
            module = node.module
            names = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        for name in names:
            if name in known:
                found.add(name)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _project_imports(path, known) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (iterative DFS with colours)."""
    colour = dict.fromkeys(graph, 0)
    for root in sorted(graph):
        if colour[root]:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        path = [root]
        colour[root] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            # a package importing its own submodule (or the reverse) is how packages work, not a circle
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            if colour[nxt] == 1:
                return path[path.index(nxt) :] + [nxt]
            if colour[nxt] == 0:
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_the_import_graph_walker_finds_a_planted_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_the_package() -> None:
    assert _cycle(_import_graph()) is None


@pytest.mark.parametrize("layer", ["assets", "checks"])
def test_assets_and_checks_import_only_core_resources_and_shared_names(layer: str) -> None:
    """Assets and checks are thin: they use core/ and resources/, never each other or the CLI."""
    allowed = (
        "labeling_assets.core",
        "labeling_assets.resources",
        "labeling_assets.constants",
        "labeling_assets.partitions",
        "labeling_assets.lineage",  # instance reads shared by assets and checks (the current dataset version)
        "labeling_assets.stage",  # the decorator of every stage's asset (group, kinds, owners, eager)
    )
    offenders = {}
    for name, imports in _import_graph().items():
        if name.startswith(f"labeling_assets.{layer}."):
            bad = sorted(i for i in imports if not i.startswith(allowed))
            if bad:
                offenders[name] = bad
    assert offenders == {}


def test_core_never_imports_the_dagster_layers() -> None:
    outer = ("labeling_assets.assets", "labeling_assets.checks", "labeling_assets.resources", "labeling_assets.cli",
             "labeling_assets.local", "labeling_assets.definitions", "labeling_assets.env", "labeling_assets.sensors",
             "labeling_assets.jobs", "labeling_assets.lineage")  # fmt: skip
    offenders = {
        name: sorted(i for i in imports if i.startswith(outer))
        for name, imports in _import_graph().items()
        if name.startswith("labeling_assets.core") and any(i.startswith(outer) for i in imports)
    }
    assert offenders == {}


def test_no_core_module_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in (PACKAGE / "core").rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > CORE_MODULE_MAX_LINES} == {}


def _asset_bodies() -> dict[str, int]:
    """Lines of every function decorated as an asset, multi-asset or asset check (docstring excluded)."""
    decorators = {"asset", "multi_asset", "asset_check", "multi_asset_check"}
    sizes = {}
    for path in sorted((PACKAGE / "assets").rglob("*.py")) + sorted((PACKAGE / "checks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            names = set()
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                names.add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
            if names & decorators:
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    body = body[1:]  # the docstring
                start = body[0].lineno if body else node.lineno
                sizes[f"{path.relative_to(PACKAGE)}::{node.name}"] = (node.end_lineno or start) - start + 1
    return sizes


def test_the_body_counter_sees_every_asset() -> None:
    names = {key.split("::")[1] for key in _asset_bodies()}
    assert {"raw_images", "consensus_labels", "trained_model", "dataset_splits", "labeler_stats"} <= names


def test_every_asset_body_reads_as_orchestration() -> None:
    too_long = {name: n for name, n in _asset_bodies().items() if n > ASSET_BODY_MAX_LINES}
    assert too_long == {}
