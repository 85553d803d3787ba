"""Training sweeps: a grid of training configurations named in a TOML file, one cell per combination, and the rule
that picks the grid's winner on validation (docs/model.md, "Sweeps").

The file (``LABELING_ASSETS_SWEEP`` names it)::

    name = "demo"              # the sweep's name (MLflow parent run, tags)
    [settings]                 # every cell's run settings (trained_model's names), unless [grid] varies them
    epochs = 4
    [grid]                     # each list is one axis; every combination is a cell
    backbone = ["small_cnn", "mobilenet_v3_small"]
    loss = ["ce", "focal"]
    teacher = ["none", "champion"]   # champion: distilled from the registry's champion (Hinton loss)
    temperature = [2.0, 4.0]         # distillation only: a cell without a teacher ignores them
    alpha = [0.5, 0.9]

Pure: no Dagster, MLflow or torch (the definitions import it).
"""

from __future__ import annotations

import itertools
import math
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from labeling_assets.core.training.config import (
    DEFAULTS,
    RUN_SETTINGS,
    TrainConfig,
    config_for_cache,
    effective_batch_size,
)

TEACHERS = ("none", "champion")
DISTILL_KEYS = ("temperature", "alpha")
# What a [settings] table or a [grid] axis may name: the run settings of trained_model, the image flip, the
# targets mode and the distillation knobs.
SETTABLE = (*RUN_SETTINGS, "hflip", "targets", "teacher", *DISTILL_KEYS)
DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.7
# More cells than this is a typo in a grid, not a plan: each cell is a training run.
MAX_CELLS = 64
TARGETS = ("auto", "hard", "soft")


class SweepError(ValueError):
    """A sweep file that cannot be read or names what the training does not have: one line."""


@dataclass(frozen=True)
class Cell:
    """One training configuration of the grid: its partition key, run settings and distillation."""

    key: str
    settings: dict[str, Any]  # run settings (RUN_SETTINGS names, hflip, targets): [settings] then the grid's values
    teacher: str = "none"
    temperature: float | None = None
    alpha: float | None = None

    @property
    def distilled(self) -> bool:
        return self.teacher != "none"

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "settings": self.settings, "teacher": self.teacher,
                "temperature": self.temperature, "alpha": self.alpha}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cell:
        return cls(key=str(data["key"]), settings=dict(data["settings"]), teacher=str(data.get("teacher", "none")),
                   temperature=data.get("temperature"), alpha=data.get("alpha"))  # fmt: skip

    def params(self) -> dict[str, Any]:
        """What the cell's MLflow run logs as parameters (besides the run's full config)."""
        params: dict[str, Any] = {"sweep_cell": self.key, "teacher": self.teacher}
        if self.distilled:
            params.update(distill_temperature=self.temperature, distill_alpha=self.alpha)
        return params


@dataclass(frozen=True)
class SweepPlan:
    name: str
    cells: list[Cell]
    grid: dict[str, list[Any]] = field(default_factory=dict)

    def cell(self, key: str) -> Cell:
        for cell in self.cells:
            if cell.key == key:
                return cell
        raise SweepError(f"cell {key!r} is not in sweep {self.name!r} (its cells: {', '.join(self.keys)})")

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.cells]


def read_plan(path: str | Path) -> SweepPlan:
    """The plan of the TOML sweep file at ``path``; a missing or wrong file is a :class:`SweepError`."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise SweepError(f"sweep file {file} not found (LABELING_ASSETS_SWEEP names it)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SweepError(f"sweep file {file} is not valid TOML: {exc}") from None
    return plan_from_dict(data, default_name=file.stem)


def plan_from_dict(data: Mapping[str, Any], default_name: str = "sweep") -> SweepPlan:
    """Every combination of the grid's axes over the shared settings, as cells (distillation knobs only on
    distilled cells; duplicates dropped)."""
    unknown = sorted(set(data) - {"name", "settings", "grid"})
    if unknown:
        raise SweepError(f"unknown sweep table or key {', '.join(unknown)}: use name, [settings] and [grid]")
    name = str(data.get("name") or default_name)
    shared = dict(data.get("settings") or {})
    grid = {k: v if isinstance(v, list) else [v] for k, v in dict(data.get("grid") or {}).items()}
    for key, value in [*shared.items(), *((k, v) for k, values in grid.items() for v in values)]:
        check_value(key, value)
    if any(not values for values in grid.values()):
        raise SweepError(f"grid axis {next(k for k, v in grid.items() if not v)} has no values")
    cells: dict[str, Cell] = {}
    axes = list(grid)
    for combination in itertools.product(*(grid[a] for a in axes)) if axes else [()]:
        chosen = {**shared, **dict(zip(axes, combination, strict=True))}
        cell = _cell(chosen, [a for a in axes if len(grid[a]) > 1])
        cells.setdefault(cell.key, cell)
    if len(cells) > MAX_CELLS:
        raise SweepError(f"sweep {name!r} has {len(cells)} cells, more than {MAX_CELLS}: narrow the grid")
    return SweepPlan(name=name, cells=list(cells.values()), grid=grid)


def _cell(chosen: dict[str, Any], varied: list[str]) -> Cell:
    teacher = str(chosen.pop("teacher", "none"))
    temperature = float(chosen.pop("temperature", DEFAULT_TEMPERATURE))
    alpha = float(chosen.pop("alpha", DEFAULT_ALPHA))
    distilled = teacher != "none"
    parts = []
    for axis in varied:
        if axis in DISTILL_KEYS and not distilled:
            continue
        if axis == "teacher":
            parts.append("kd" if distilled else "plain")
        elif axis in DISTILL_KEYS:
            parts.append(f"T{temperature:g}" if axis == "temperature" else f"a{alpha:g}")
        else:
            value = chosen[axis]
            parts.append(str(value) if isinstance(value, str) else f"{axis}{value:g}" if not isinstance(value, bool)
                         else f"{axis}-{str(value).lower()}")  # fmt: skip
    key = "-".join(parts) or "default"
    if distilled:
        return Cell(key=key, settings=chosen, teacher=teacher, temperature=temperature, alpha=alpha)
    return Cell(key=key, settings=chosen)


def check_value(key: str, value: Any) -> None:
    """A sweep setting the training has, with a value of its type (a Literal's values named on a mismatch)."""
    if key not in SETTABLE:
        raise SweepError(f"unknown sweep setting {key!r}; choose from {', '.join(SETTABLE)}")
    if key == "teacher":
        allowed: tuple[Any, ...] = TEACHERS
    elif key == "targets":
        allowed = TARGETS
    elif key == "hflip":
        allowed = (True, False)
    elif key in DISTILL_KEYS:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise SweepError(f"sweep setting {key} = {value!r}: expected a number")
        if key == "temperature" and value <= 0 or key == "alpha" and not 0 <= value <= 1:
            raise SweepError(f"sweep setting {key} = {value!r}: temperature > 0, alpha in [0, 1]")
        return
    else:
        allowed = _literal_values(key)
        if not allowed:
            expected = type(getattr(DEFAULTS, key))
            numeric = expected in (int, float) and isinstance(value, int | float) and not isinstance(value, bool)
            if getattr(DEFAULTS, key) is not None and not numeric and not isinstance(value, expected):
                raise SweepError(f"sweep setting {key} = {value!r}: expected {expected.__name__}")
            return
    if value not in allowed:
        raise SweepError(f"sweep setting {key} = {value!r}: choose one of {', '.join(map(str, allowed))}")


def _literal_values(key: str) -> tuple[Any, ...]:
    hint = typing.get_type_hints(TrainConfig).get(key)
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    return ()


def cell_config(cell: Cell, meta: Mapping[str, Any], n_train: int) -> TrainConfig:
    """The cell's TrainConfig for a tensor cache (classes and image shape from its ``meta``): trained_model's
    defaults, then the cell's settings, the batch fitted to ``n_train`` as in a plain run."""
    chosen: dict[str, Any] = {name: getattr(DEFAULTS, name) for name in RUN_SETTINGS}
    chosen["hflip"] = DEFAULTS.augment.hflip
    chosen.update({k: v for k, v in cell.settings.items() if k != "targets"})
    settings = SimpleNamespace(**chosen)
    return config_for_cache(meta, settings, batch_size=effective_batch_size(int(chosen["batch_size"]), n_train))


def targets_mode(cell: Cell) -> str:
    """The cell's training targets (trained_model's ``targets``): auto unless the sweep names them."""
    return str(cell.settings.get("targets", "auto"))


def score_name(task_kind: str) -> str:
    """The validation score a cell is judged by: the early-stopping score of the kind's head."""
    return "val_macro_auc" if task_kind == "multi_label" else "val_macro_f1"


# --- the winner -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellResult:
    """A trained cell as its run recorded it: the validation score the winner is picked by, and its size."""

    key: str
    val_score: float | None  # the kind's early-stopping score on val (macro-F1; macro-AUC for label sets)
    parameters: int
    run_id: str
    backbone: str = ""
    teacher: str = "none"
    temperature: float | None = None
    alpha: float | None = None
    epochs_run: int = 0
    seconds: float = 0.0


def choose_winner(results: Sequence[CellResult]) -> CellResult:
    """The best validation score; a tie goes to the smaller model, then to the first key. The test split is not
    read: it scores the winner once, after (model_evaluation)."""
    scored = [r for r in results if r.val_score is not None and math.isfinite(r.val_score)]
    if not scored:
        raise SweepError("no cell of the sweep has a validation score (is the val split empty?)")
    return min(scored, key=lambda r: (-float(r.val_score or 0.0), r.parameters, r.key))


def comparison_table(results: Sequence[CellResult], winner: str | None, score_name: str) -> str:
    """The cells side by side, best first (Markdown)."""
    rows = sorted(results, key=lambda r: (-(r.val_score if r.val_score is not None else -math.inf), r.key))
    lines = [f"| cell | backbone | teacher | T | alpha | {score_name} | parameters | epochs | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        mark = " (winner)" if r.key == winner else ""
        score = f"{r.val_score:.4f}" if r.val_score is not None else "n/a"
        t = f"{r.temperature:g}" if r.temperature is not None else ""
        a = f"{r.alpha:g}" if r.alpha is not None else ""
        lines.append(f"| {r.key}{mark} | {r.backbone} | {r.teacher} | {t} | {a} | {score} | {r.parameters:,} | "
                     f"{r.epochs_run} | {r.seconds:.1f} |")  # fmt: skip
    return "\n".join(lines)
