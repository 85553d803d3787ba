"""The documentation says only what the code does: every relative link resolves, every ``labeling-assets ...``
command line is one the CLI's parser accepts, and every setting it names exists.

Commands are parsed with ``build_parser()`` and never executed. A documented line may use ``[--opt X]`` for an
optional part (parsed with it), ``a|b`` for alternatives (each parsed), ``...`` for "the rest", and placeholders
(``NAME``, ``<url>``) where a value goes.
"""

import argparse
import contextlib
import io
import itertools
import re
import shlex
import typing
from pathlib import Path

import pydantic
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("**/*.md"))]
CODE = [
    *sorted((REPO / "labeling_assets").rglob("*.py")),
    *sorted((REPO / "tests").glob("*.py")),  # the test suite's own settings (LABELING_ASSETS_TEST_PG_URL)
    *sorted((REPO / "scripts").iterdir()),
    *sorted((REPO / "docker").rglob("*")),
    *sorted((REPO / "benchmarks").rglob("*.py")),
    REPO / "dagster.yaml",
    REPO / "pyproject.toml",
]
PLACEHOLDER = re.compile(r"^(<[^>]+>|[A-Z][A-Z0-9_]*|\.\.\.)$")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --- links -----------------------------------------------------------------------------------------------------


def broken_links(path: Path, text: str) -> list[str]:
    """Relative links (``[x](target)``, images too) whose file or folder does not exist."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, an anchor in the same page
        if not (path.parent / target.split("#", 1)[0]).exists():
            broken.append(target)
    return broken


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path, _text(path)) == []


def test_a_link_to_a_missing_page_is_found(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("x")
    page = tmp_path / "README.md"
    text = "[ok](there.md) [anchor](#top) [web](https://example.org) [gone](docs/gone.md#part) ![pic](img/x.png)"
    assert broken_links(page, text) == ["docs/gone.md#part", "img/x.png"]


# --- commands --------------------------------------------------------------------------------------------------


def command_lines(text: str) -> list[tuple[str, bool]]:
    """Every ``labeling-assets ...`` command, with whether it is inline: in fenced code blocks (a line, from the
    command on, to a ``#`` comment or a shell operator) and in inline code spans (which may wrap across lines;
    there a command may be named without its arguments: `labeling-assets item`)."""
    found: list[tuple[str, bool]] = []
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            match = re.search(r"(?:^|[\s$(])(labeling-assets(?:\s.*)?)$", line)
            if match:
                found.append((re.split(r"\s+#|\s*(?:&&|\|\||;|\)|\s\|\s)", match.group(1))[0].strip(), False))
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`(labeling-assets(?:\s[^`]*)?)`", outside):
        if re.match(r"labeling-assets(?:\s+[\w-]+)*:\s", span):
            continue  # a message the command prints (`labeling-assets store backup: File exists: ...`)
        found.append((" ".join(span.split()), True))
    return found


def _variants(command: str) -> list[list[str]]:
    """The argument lists a documented line stands for: optional ``[...]`` parts in, each ``a|b`` choice."""
    words = shlex.split(command.replace("[", " ").replace("]", " "))[1:]
    choices = [word.split("|") if "|" in word and not word.startswith("-") else [word] for word in words]
    return [list(combo) for combo in itertools.product(*choices)]


def refusal(parser: argparse.ArgumentParser, argv: list[str], *, named: bool = False) -> str | None:
    """Why the parser refuses ``argv`` (its usage error), or None when it accepts it. Nothing runs. ``named``: a
    command named in a sentence, which may leave out its required arguments."""
    err = io.StringIO()
    attempts = [argv, [a for a in argv if a != "..."]]
    reason = None
    for attempt in attempts:
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(attempt)
            return None
        except SystemExit as exit_:
            if exit_.code == 0:  # --help
                return None
            reason = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "refused"
            bad = re.search(r"invalid \w+ value: '([^']*)'", reason)
            if bad and PLACEHOLDER.match(bad.group(1)):
                return None  # a placeholder where a number goes
            if named and "the following arguments are required" in reason:
                return None
            err = io.StringIO()
    return reason


def _parser() -> argparse.ArgumentParser:
    from labeling_assets.cli.main import build_parser

    return build_parser()


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_every_documented_command_is_accepted_by_the_cli(path: Path) -> None:
    parser = _parser()
    refused = {
        command: why
        for command, inline in command_lines(_text(path))
        for argv in _variants(command)
        if (why := refusal(parser, argv, named=inline)) is not None
    }
    assert refused == {}


def test_a_command_the_cli_does_not_have_is_refused() -> None:
    text = "\n".join(
        [
            "Run `labeling-assets store\nstatus` and `labeling-assets dataset diff V1 V2 [--json]`.",
            "It prints `labeling-assets store backup: File exists: /x (FileExistsError)`.",
            "```bash",
            "labeling-assets labeler pause NAME [--reason ...]   # a comment",
            "labeling-assets item item 4daa006f",
            "labeling-assets store migrate|explode",
            "```",
        ]
    )
    found = command_lines(text)
    assert found == [
        ("labeling-assets labeler pause NAME [--reason ...]", False),
        ("labeling-assets item item 4daa006f", False),
        ("labeling-assets store migrate|explode", False),
        ("labeling-assets store status", True),
        ("labeling-assets dataset diff V1 V2 [--json]", True),
    ]
    parser = _parser()
    verdicts = [[refusal(parser, argv, named=inline) is None for argv in _variants(line)] for line, inline in found]
    assert verdicts == [
        [True],
        [False],  # an item-history printout pasted after the command
        [True, False],
        [True],
        [True],
    ]
    assert refusal(parser, ["item"]) is not None  # a command line must be whole
    assert refusal(parser, ["item"], named=True) is None  # a sentence may name the command


# --- settings --------------------------------------------------------------------------------------------------

ENV_PREFIXES = ("LABELING_ASSETS_", "LABEL_STUDIO_", "LABEL_STORE_", "MLFLOW_", "DAGSTER_")


def documented_variables(text: str) -> set[str]:
    return {
        name
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)(?:=[^`]*)?`", text)
        if name.startswith(ENV_PREFIXES) and not name.endswith("_")
    }


def _code_text() -> str:
    return "\n".join(p.read_text(errors="replace") for p in CODE if p.is_file())


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_every_documented_environment_variable_is_read_by_the_code(path: Path) -> None:
    code = _code_text()
    assert sorted(name for name in documented_variables(_text(path)) if name not in code) == []


def config_fields() -> dict[str, object]:
    """Every run-config and resource field of the project, by name, with its type."""
    import dagster as dg

    from labeling_assets.definitions import defs

    fields: dict[str, object] = {}
    classes: list[type] = []
    for resource in (defs.resources or {}).values():
        classes.append(type(resource))
    import labeling_assets.assets
    import labeling_assets.resources

    for package in (labeling_assets.assets, labeling_assets.resources):
        for module_path in Path(package.__path__[0]).glob("*.py"):
            module = __import__(f"{package.__name__}.{module_path.stem}", fromlist=["_"])
            for value in vars(module).values():
                if isinstance(value, type) and issubclass(value, dg.Config | dg.ConfigurableResource):
                    classes.append(value)
    for cls in classes:
        if issubclass(cls, pydantic.BaseModel):
            for name, info in cls.model_fields.items():
                fields[name] = info.annotation
    fields.update({key: "resource" for key in (defs.resources or {})})
    return fields


def documented_settings(text: str) -> dict[str, list[str]]:
    """Setting names in the rows of a run-config table (``| `asset` | options (defaults) |``): a backticked name
    outside parentheses, with the bare words listed in its parentheses (its values)."""
    settings: dict[str, list[str]] = {}
    in_table = False
    for line in text.splitlines():
        if re.match(r"^\|\s*(asset|setting)\s*\|\s*options", line):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            in_table = False
        if not in_table or line.startswith("|---"):
            continue
        cells = line.strip("|").split("|", 1)
        if len(cells) < 2:
            continue
        options = cells[1]
        depth, i = 0, 0
        while i < len(options):
            char = options[i]
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            elif char == "`" and depth == 0:
                end = options.index("`", i + 1)
                name = options[i + 1 : end]
                values: list[str] = []
                after = options[end + 1 :].lstrip()
                if after.startswith("("):
                    inner, level = "", 0
                    for c in after:
                        level += c == "("
                        level -= c == ")"
                        inner += c
                        if level == 0:
                            break
                    head = re.split(r"[:]", inner[1:-1], maxsplit=1)[0]
                    for item in re.split(r"[;,]", head):  # one value an item: `a`; b, c, or d
                        word = re.fullmatch(r"\s*(?:or\s+)?`?([a-z][a-z0-9_]*)`?\s*", item)
                        if word:
                            values.append(word.group(1))
                if re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                    settings[name] = values
                i = end
            i += 1
    return settings


@pytest.mark.parametrize("path", DOCS, ids=_rel)
def test_every_documented_setting_exists_and_lists_only_values_it_takes(path: Path) -> None:
    known = config_fields()
    documented = documented_settings(_text(path))
    assert sorted(name for name in documented if name not in known) == []
    wrong = {}
    for name, values in documented.items():
        allowed = _literal_values(known.get(name))
        if allowed and (extra := [v for v in values if v not in allowed and v not in {"or", "and", "off", "on"}]):
            wrong[name] = extra
    assert wrong == {}


def _literal_values(annotation: object) -> set[str]:
    """The values a ``Literal[...]`` field (or ``Literal | None``) takes; empty for other types."""
    if typing.get_origin(annotation) is typing.Literal:
        return {str(v) for v in typing.get_args(annotation)}
    values: set[str] = set()
    for arg in typing.get_args(annotation):
        values |= _literal_values(arg)
    return values


def test_a_setting_or_a_value_the_code_does_not_have_is_found() -> None:
    table = "\n".join(
        [
            "| asset | options (defaults) |",
            "|---|---|",
            "| `labeling_tasks` | `max_new_tasks` (1000), `strategy` (`uncertainty`; margin, diversity, clairvoyance),"
            " `warp_speed` (9) |",
        ]
    )
    documented = documented_settings(table)
    assert documented == {
        "max_new_tasks": [],
        "strategy": ["uncertainty", "margin", "diversity", "clairvoyance"],
        "warp_speed": [],
    }
    known = config_fields()
    assert [name for name in documented if name not in known] == ["warp_speed"]
    allowed = _literal_values(known["strategy"])
    assert [v for v in documented["strategy"] if v not in allowed] == ["clairvoyance"]
    assert documented_variables("`LABELING_ASSETS_HOME` and `LABELING_ASSETS_QUEUE_LOW_WATER=0`") == {
        "LABELING_ASSETS_HOME",
        "LABELING_ASSETS_QUEUE_LOW_WATER",
    }
