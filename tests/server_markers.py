"""Which tests need which real server: decided from what each test uses, and checked while it runs.

The tiers of ``scripts/test`` select by these markers (``--fast`` runs the tests that carry none of them), so a
marker must never be missing:

- at collection, a test that requests a server fixture (directly or through other fixtures) gets that fixture's
  markers (``FIXTURE_MARKERS``), so nobody has to remember them;
- while it runs, a test fails when it starts a server without its marker, or a fresh Python without any marker
  (``PROGRAM_MARKERS``; every ``subprocess.Popen``, hence ``subprocess.run`` too, is looked at), or when it pulled
  a server fixture in through ``request.getfixturevalue`` without the marker.

tests/conftest.py imports the hooks; ``pytest -p tests.server_markers`` loads them alone (tests/test_markers.py).
"""

import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

MARKERS = {
    "postgres": "needs the PostgreSQL server at 127.0.0.1:5432 (a throwaway database)",
    "labelstudio": "needs a real Label Studio server (the session's, or one of its own)",
    "mlflow_server": "needs a real `mlflow server` (on PostgreSQL)",
    "browser": "drives a real headless Chromium (Debian's chromium + chromium-driver; scripts/test installs them)",
    "daemon": "runs a real dagster-daemon",
    "soak": "the self-driving loop under a real dagster-daemon with faults injected (tests/soak, minutes)",
    "gpu": "needs CUDA; skipped without it",
    "slow": "no server, but seconds of work: starts a fresh Python (a command, torchrun, an import probe) "
    "or crunches for more than ~5 s",
}
# `scripts/test --fast`: the tests that carry none of these.
FAST = "not (" + " or ".join(MARKERS) + ")"

# A fixture that starts (or connects to) a server -> the markers of every test that uses it.
FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "pg_databases": ("postgres",),  # every PostgreSQL fixture goes through it
    "postgres_store": ("postgres",),
    "label_studio": ("labelstudio",),
    "label_studio_postgres": ("labelstudio", "postgres"),
    "image_server": ("labelstudio",),
    "mlflow_server": ("mlflow_server", "postgres"),
    "chromium": ("browser",),
    "make_loop": ("soak", "labelstudio", "daemon"),  # tests/soak
}

# A program a test starts -> the marker it needs (by the executable's file name).
PROGRAM_MARKERS: dict[str, str] = {
    "label-studio": "labelstudio",
    "chromium": "browser",
    "chromium-browser": "browser",
    "chromedriver": "browser",
    "dagster-daemon": "daemon",
    "dagster-webserver": "daemon",
    # A fresh interpreter spends seconds importing dagster, torch or mlflow before it does anything.
    "labeling-assets": "slow",
    "torchrun": "slow",
    "dagster": "slow",
    "dvc": "slow",  # DVC's own venv (scripts/install_dvc.sh): a Python that imports DVC, ~0.5-1 s of CPU a call
}


def markers_of(item: pytest.Item) -> set[str]:
    return {mark.name for mark in item.iter_markers()}


def implied_markers(fixturenames: Iterable[str]) -> list[str]:
    """The markers the fixtures ``fixturenames`` imply, in a stable order."""
    found: list[str] = []
    for name in fixturenames:
        for marker in FIXTURE_MARKERS.get(name, ()):
            if marker not in found:
                found.append(marker)
    return found


def program_marker(args: Any) -> str | None:
    """The marker that starting ``args`` (as given to ``subprocess.Popen``) needs, or None."""
    if isinstance(args, str | bytes | os.PathLike):
        argv = [os.fsdecode(args).split()[0]] if os.fsdecode(args).strip() else []
    else:
        argv = [os.fsdecode(a) for a in args]
    if not argv:
        return None
    name = Path(argv[0]).name
    if name.startswith("python"):  # sys.executable, python3.11, ...
        if argv[1:3] == ["-m", "mlflow"] and "server" in argv:
            return "mlflow_server"
        if len(argv) > 1 and Path(argv[1]).name == "watch_orphans.py":
            return None  # Dagster's compute-log capture: a tiny watcher script, no imports to speak of
        return "slow"
    if name == "mlflow":
        return "mlflow_server" if "server" in argv else "slow"
    return PROGRAM_MARKERS.get(name)


_current: list[pytest.Item] = []  # the test being run (setup, call and teardown), if any


def check_program(args: Any) -> None:
    """Fail the running test when it starts ``args`` without the marker that program needs."""
    if not _current:
        return
    marker = program_marker(args)
    item = _current[-1]
    have = markers_of(item)
    if marker == "slow" and have & set(MARKERS):
        return  # a fresh Python only has to keep the test out of the fast tier, and any marker does
    if marker is not None and marker not in have:
        program = Path(os.fsdecode(args if isinstance(args, str | bytes | os.PathLike) else list(args)[0])).name
        pytest.fail(
            f"{item.nodeid} starts {program.split()[0]} without the `{marker}` marker: add "
            f"@pytest.mark.{marker} (or pytestmark) so `scripts/test --fast` leaves it out",
            pytrace=False,
        )


_POPEN_INIT = subprocess.Popen.__init__
_SAVED = pytest.StashKey[Any]()


def _checked_popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
    check_program(args)
    _POPEN_INIT(self, args, *rest, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    config.stash[_SAVED] = subprocess.Popen.__init__  # a pytest run inside a test (pytester) nests
    subprocess.Popen.__init__ = _checked_popen_init  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    subprocess.Popen.__init__ = config.stash.get(_SAVED, _POPEN_INIT)  # type: ignore[method-assign]


# What a test with the marker costs, roughly, in seconds (the durations table of a full run): the order in which
# pytest-xdist hands out test files (below).
MARKER_COST = {
    "soak": 300.0, "daemon": 30.0, "mlflow_server": 20.0, "browser": 15.0, "labelstudio": 10.0, "postgres": 2.0,
    "slow": 2.0,
}  # fmt: skip
UNMARKED_COST = 0.1


def module_cost(items: Iterable[pytest.Item]) -> float:
    """A test file's rough cost: each test counts as its dearest marker (any other marker as an unmarked test)."""
    return sum(
        max((MARKER_COST.get(m, UNMARKED_COST) for m in markers_of(item)), default=UNMARKED_COST) for item in items
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        have = markers_of(item)
        for marker in implied_markers(getattr(item, "fixturenames", ())):
            if marker not in have:
                item.add_marker(marker)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker (it sets its own dist option to "no")
        # Workers take whole files (--dist loadfile) in collection order (--no-loadscope-reorder): the dearest files
        # first, so the soak (minutes, one test) starts at once instead of last, when it alone was the run's tail.
        items[:] = dearest_files_first(items)


def dearest_files_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` grouped by file, the files by ``module_cost`` (dearest first; ties keep their order)."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::")[0], []).append(item)
    order = sorted(by_file, key=lambda path: -module_cost(by_file[path]))
    return [item for path in order for item in by_file[path]]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _current.append(item)
    try:
        return (yield)
    finally:
        _current.pop()


@pytest.fixture(autouse=True)
def _servers_carry_their_markers(request: pytest.FixtureRequest) -> Iterator[None]:
    """A server fixture pulled in with ``request.getfixturevalue`` is invisible at collection: check it after."""
    yield
    missing = [m for m in implied_markers(request.fixturenames) if m not in markers_of(request.node)]
    if missing:
        pytest.fail(
            f"{request.node.nodeid} uses a server fixture without the marker(s) {', '.join(missing)}: "
            "mark the test (or its parameter) so the test tiers select it right",
            pytrace=False,
        )


__all__ = [
    "FAST",
    "MARKERS",
    "_servers_carry_their_markers",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_protocol",
    "pytest_unconfigure",
]
