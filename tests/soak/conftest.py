"""The soak test's setup: one throwaway self-driving loop (tests/soak/harness.py) per test, torn down after it.

On a failure the runs (with what started each) and the tail of the daemon's log are printed, so a red soak
says what the loop was doing.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from labeling_assets.local import labelstudio as ls_server
from tests.soak.harness import SelfDrivingLoop


@pytest.fixture
def make_loop(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[type[SelfDrivingLoop]]:
    if not ls_server.is_installed():
        pytest.skip(f"Label Studio is not installed at {ls_server.ls_venv()} (run scripts/install_label_studio.sh)")
    made: list[SelfDrivingLoop] = []

    class Loop(SelfDrivingLoop):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(tmp_path / f"loop{len(made)}", *args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Loop
    for loop in made:
        report = request.node.stash.get(FAILED, False)
        if report:
            print("\n".join(describe(loop)))
        loop.close()


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call" and report.failed:  # type: ignore[attr-defined]
        item.stash[FAILED] = True
    return report


def describe(loop: SelfDrivingLoop) -> list[str]:
    lines = ["== runs (created, job, status, started by, trigger, failure)"]
    try:
        for r in loop.runs():
            lines.append(f"  {r.created:.0f} {r.job:<14} {r.status:<9} {r.started_by:<28} {r.trigger[:60]} {r.failure[:300]}")
    except Exception as exc:  # the instance may be what broke
        lines.append(f"  (cannot read the runs: {exc})")
    if loop.crowd is not None:
        lines.append(f"== crowd {loop.crowd.log}")
    log = loop.home / "daemon.log"
    if log.is_file():
        lines += ["== daemon log (tail)", *log.read_text(errors="replace").splitlines()[-40:]]
    return lines
