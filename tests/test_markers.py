"""The server markers the test tiers select by are added from the fixtures a test uses, and a test that starts a
server (or a fresh Python) without its marker fails (tests/server_markers.py).

Each case runs a small test file in a pytest session of its own (pytester, in this process) with only the
markers plugin loaded, and plants the violation the check guards against.
"""

import sys

import pytest

from tests.server_markers import FAST, MARKERS, dearest_files_first, program_marker

PLUGIN = ("-p", "tests.server_markers")

SERVER_FIXTURES = """
import pytest

@pytest.fixture(scope="session")
def label_studio():
    return "a server"

@pytest.fixture
def project(label_studio):
    return label_studio
"""


def test_a_test_using_a_server_fixture_through_another_fixture_gets_its_marker(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SERVER_FIXTURES)
    pytester.makepyfile(
        """
        def test_uses_the_server(project):
            pass

        def test_needs_nothing():
            pass
        """
    )
    selected = pytester.runpytest(*PLUGIN, "-m", "labelstudio", "--collect-only", "-q")
    assert "test_uses_the_server" in selected.stdout.str()
    assert "test_needs_nothing" not in selected.stdout.str()
    fast = pytester.runpytest(*PLUGIN, "-m", FAST, "--collect-only", "-q")
    assert "test_needs_nothing" in fast.stdout.str()
    assert "test_uses_the_server" not in fast.stdout.str()


def test_a_server_fixture_pulled_in_at_run_time_without_the_marker_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SERVER_FIXTURES)
    pytester.makepyfile(
        """
        import pytest

        def test_unmarked(request):
            request.getfixturevalue("label_studio")

        @pytest.mark.labelstudio
        def test_marked(request):
            request.getfixturevalue("label_studio")
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=2, errors=1)  # the unmarked one passes its body, then fails its teardown
    result.stdout.fnmatch_lines(["*test_unmarked uses a server fixture without the marker(s) labelstudio*"])


def test_starting_a_server_or_a_fresh_python_without_its_marker_fails_and_with_it_runs(
    pytester: pytest.Pytester,
) -> None:
    server = pytester.path / "bin" / "label-studio"
    server.parent.mkdir()
    server.write_text("#!/bin/sh\nexit 0\n")
    server.chmod(0o755)
    pytester.makepyfile(
        f"""
        import subprocess, sys
        import pytest

        def test_unmarked_server():
            subprocess.run([{str(server)!r}, "start"], check=True)

        @pytest.mark.labelstudio
        def test_marked_server():
            subprocess.run([{str(server)!r}, "start"], check=True)

        def test_unmarked_python():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        @pytest.mark.postgres
        def test_a_python_in_a_server_test():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        def test_a_plain_program_needs_nothing():
            subprocess.run(["true"], check=True)
        """
    )
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked_server starts label-studio without the `labelstudio` marker*",
            "*test_unmarked_python starts python* without the `slow` marker*",
        ]
    )


@pytest.mark.parametrize(
    ("argv", "marker"),
    [
        (["/opt/ls/bin/label-studio", "start"], "labelstudio"),
        (["/venv/bin/mlflow", "server", "--port", "1"], "mlflow_server"),
        ([sys.executable, "-m", "mlflow", "server"], "mlflow_server"),
        (["/usr/bin/chromedriver", "--port=1"], "browser"),
        (["/usr/bin/chromium", "--headless"], "browser"),
        (["dagster-daemon", "run", "-f", "defs.py"], "daemon"),
        ([sys.executable, "-m", "torch.distributed.run"], "slow"),
        ("/venv/bin/labeling-assets status", "slow"),
        (["git", "clone", "a", "b"], None),
        (["psql", "-c", "select 1"], None),
    ],
)
def test_each_program_needs_the_marker_of_what_it_is(argv: list[str] | str, marker: str | None) -> None:
    assert program_marker(argv) == marker


def test_the_fast_tier_leaves_out_every_marker() -> None:
    assert all(f" {name}" in FAST or f"({name}" in FAST for name in MARKERS)


def test_parallel_workers_get_the_dearest_files_first_and_each_file_whole(pytester: pytest.Pytester) -> None:
    # xdist's own order (most tests first) put the one-test soak last, where it alone was the run's tail.
    pytester.makepyfile(
        test_a_many_quick="def test_1(): pass\ndef test_2(): pass\ndef test_3(): pass\n",
        test_b_labelstudio="import pytest\n@pytest.mark.labelstudio\ndef test_1(): pass\n",
        test_c_soak="import pytest\n@pytest.mark.soak\ndef test_1(): pass\n",
        test_d_quick="import pytest\n@pytest.mark.parametrize('x', [1, 2])\ndef test_1(x): pass\n",
    )
    items, _ = pytester.inline_genitems()

    files = [item.nodeid.split("::")[0] for item in dearest_files_first(items)]

    assert files == [
        "test_c_soak.py", "test_b_labelstudio.py", "test_a_many_quick.py", "test_a_many_quick.py",
        "test_a_many_quick.py", "test_d_quick.py", "test_d_quick.py",
    ]  # fmt: skip
