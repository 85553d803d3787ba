"""What a kind of labeling task must provide: one :class:`TaskKind` per kind, chosen once from the project settings.

Every stage asks the project's kind instead of branching on it: the Label Studio config and how a result becomes
a stored answer, consensus, agreement and labeler statistics, gold scoring, the stratification key of splits,
export formats, the pre-label payload and the active-learning score. The torch side (training head, loss,
validation metrics, thresholds) is :class:`TrainingHead`, in the kind's ``training`` module, so that
``core/training`` still imports only torch, torchvision and numpy (pandas appears here only for type checking).

A kind whose model is not the image classifier of ``core/training`` (a detector, a span tagger) has no training
head: it has a :class:`KindTrainer` instead (``TaskKind.trainer``), which fits its own model on a dataset
version's rows, saves it as a torch-only checkpoint, loads it back and predicts the kind's ``probs`` for files.
A kind has exactly one of the two: ``trainer`` None and a training head, or a trainer and no head.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from labeling_assets.core.labelstudio.answers import Answer
    from labeling_assets.core.training.config import TrainConfig
    from labeling_assets.core.training.device_data import DeviceData
    from labeling_assets.core.training.distributed import Distributed
    from labeling_assets.core.training.types import AnyArray


# Rows of a consensus run's labeler table (metadata stays readable with a large crowd).
LABELER_TABLE_ROWS = 30


class Markdown(str):
    """Text a report means as Markdown (a table), not as plain text: the asset shows it as such."""


@dataclass(frozen=True)
class Json:
    """A report value the asset shows as JSON, even when it is text or a number (a dict or list is JSON anyway)."""

    value: Any


@dataclass(frozen=True)
class ItemMedia:
    """What a kind may need to draw a stored answer on its item (:meth:`TaskKind.answer_result`): a text kind's
    text, an image's size in pixels (None: not known)."""

    text: str | None = None
    width: float | None = None
    height: float | None = None


@dataclass(frozen=True)
class ConsensusOutcome:
    """What a kind's consensus hands back: the result, the gold items it used, the probabilities to store."""

    result: Any  # ConsensusResult | SetConsensusResult (not imported: core/consensus may import this module)
    n_gold: int
    probabilities: dict[str, dict[str, float]] | None
    no_bakeoff: str | None = None  # why this kind's consensus never runs a bake-off (None: it can)


@dataclass(frozen=True)
class TestMetric:
    """The score a kind's model is judged by on the frozen test split, and the floor the check
    ``<name>_above_floor`` holds it to by default (``ProjectSettings.test_score_floor`` overrides it)."""

    __test__ = False  # not a pytest test class

    name: str  # the metric's key in metrics, tags and reports (``TestSplitReport.score_name``)
    label: str  # what people call it (the champion rule's reason, the check's description)
    floor: float  # the default floor: what a useful model of this kind reaches at least on this score


# F1 averaged over classes: a model under 0.5 gets about every other class wrong.
MACRO_F1 = TestMetric("test_macro_f1", "macro-F1", 0.5)

# The gold gate's default thresholds (``TaskKind.gold_gate_threshold``; ``ProjectSettings.gold_gate_threshold``
# overrides it). The gate (the check labeler_gold_accuracy_at_least_0_8 and the automatic pause) fails a labeler
# only when the 95% Wilson interval of their gold score is entirely below it.
# Class kinds: the share of gold answers right (label sets: the worse of sensitivity and specificity); a labeler
# surely wrong on more than one answer in five is worse than the crowd needs.
GOLD_ACCURACY_THRESHOLD = 0.8
# Spans and boxes: matched / (gold + false) (a Jaccard score: one off by a token or under IoU 0.5 costs a false one
# and a missed one), so 0.5 is an F1 of 2/3. The demo crowds (benchmarks/gold_gate_thresholds.py, 2,000 items):
# good span labelers 0.60-0.75 strict, good box labelers 0.81-0.87, average box labelers 0.53-0.60, the spammers
# 0.01-0.02; on the demos' 30 gold items over 20 seeds, 0.5 paused no good or average labeler and the spammer in
# every seed (the boundary-sloppy span labeler, 0.26, in 19 of 20), while 0.8 paused a good span labeler in 30-40%
# of seeds and 0.6 in 5%.
GOLD_MATCH_THRESHOLD = 0.5


@dataclass(frozen=True)
class TestSplitReport:
    """What a kind reports about a model scored on the frozen test split (model_evaluation logs and shows it)."""

    __test__ = False  # not a pytest test class

    metrics: dict[str, float]  # MLflow metrics of the training run (``test_`` prefixed)
    files: dict[str, bytes]  # MLflow artifacts (plots, curve data)
    texts: dict[str, str]  # MLflow text artifacts (Markdown tables)
    tags: dict[str, str]  # model version tags (besides the dataset version and the promotion)
    summary: str  # one log line
    report: dict[str, Any]  # plain values (Markdown for tables and plots), in the order shown
    score_name: str = MACRO_F1.name  # the metric ``test_score`` gives (in metrics, tags and report)


class ConsensusFailure(ValueError):
    """Consensus cannot run as configured (a method the kind does not have, an item without its image): one line."""


@runtime_checkable
class TaskKind(Protocol):
    """One kind of labeling task (``ProjectSettings.task_type`` names it). ``tests/core/test_task_kinds.py`` runs
    the same contract over every registered kind; CONTRIBUTING ("Adding a kind of task") lists the parts."""

    name: str  # the settings value, e.g. "single_label"
    consensus_methods: tuple[str, ...]  # the run config's choices; "auto" first
    export_formats: tuple[str, ...]  # what a dataset of this kind exports to
    export_note: str  # why another format is refused ("" when none is)
    skip_reasons: tuple[str, ...]  # why a stored answer is not a vote (keys of Votes.skipped)
    gold_gate_rate: str  # what the gold gate judges when not gold accuracy itself ("" when it is)
    gold_gate_threshold: float  # the gold gate's default threshold on that score (``GOLD_*_THRESHOLD``)
    label_issue_model: str  # what scores consensus labels out of sample for label issues
    decision_thresholds: bool  # a model's answer is decided by per-class thresholds (pre-fill, evaluation)
    qa_view: Any  # reporting.answer_views.AnswerView: how the QA report reads and names its answers
    gold_accuracy_name: str  # what a labeler's gold accuracy is for this kind (review tasks show it by this name)
    test_metric: TestMetric  # what ``test_score`` computes (``test_report``'s score_name) and its default floor
    # None: the kind trains the image classifier through its training head (``training_head()``); else the
    # kind's own model (and ``training_head()`` raises: a kind has exactly one of the two).
    trainer: KindTrainer | None

    # Label Studio: the config a labeler sees, and how its result becomes a stored answer (or why it holds none).
    def label_config(self, classes: Sequence[str], allow_empty: bool = True) -> str: ...
    def owns_config(self, config: str) -> bool: ...  # answers given in this config are this kind's
    def read_answer(self, result: Any) -> Answer: ...  # any shape Label Studio stored; never raises
    def answer_from_result(self, result: Sequence[Mapping[str, Any]] | None) -> Any: ...  # its label
    # A stored answer drawn as a labeler's result would draw it (a review task pre-draws the consensus with it);
    # None when it cannot be drawn (not an answer of the kind; a box answer on an image of unknown size).
    def answer_result(self, answer: Any, media: ItemMedia) -> list[dict[str, Any]] | None: ...
    # ``allow_empty`` and ``allow_overlap`` are the project's settings (ProjectSettings.allow_empty_set,
    # .allow_overlapping_spans), passed by the callers; a kind they mean nothing to ignores them.
    def votes(
        self, annotations: pd.DataFrame, classes: Sequence[str], allow_empty: bool = True, *,
        allow_overlap: bool = False,
    ) -> Any: ...  # core.consensus.votes.Votes

    # Gold (and expert answers): a gold file's entry, which stored values are answers of this kind, how an answer
    # scores. ``parse_gold``: (the answer to store, None), or (what was read, why it is refused).
    def parse_gold(
        self, text: str, classes: Sequence[str] | None, allow_empty: bool = True
    ) -> tuple[Any, str | None]: ...
    def valid_answers(self, stored: pd.Series, classes: Sequence[str]) -> pd.Series: ...
    def gold_score(self, labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> tuple[int, int]: ...
    def gold_gate(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], threshold: float
    ) -> tuple[Any, dict[str, Any]]: ...  # (gates.RateGate, per-class gate metadata)
    def gold_report(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]: ...

    # Consensus, agreement, labeler statistics.
    def consensus(
        self, eligible: pd.DataFrame, method: str, classes: Sequence[str], gold: pd.Series, *,
        pred_probs: pd.DataFrame | None = None, thresholds: Mapping[str, float] | None = None,
        allow_empty: bool = True, allow_overlap: bool = False,
    ) -> ConsensusOutcome: ...
    def agreement(self, eligible: pd.DataFrame, classes: Sequence[str]) -> Any: ...  # agreement.FleissKappa
    def classes_of(self, answer: Any) -> list[str]: ...
    def consensus_report(
        self, result: Any, eligible: pd.DataFrame, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]: ...  # plain values (Markdown for tables), in the order shown
    def quality_inputs(
        self, votes: pd.DataFrame, gold: pd.Series, adjudicated: pd.Series, consensus: pd.Series,
        classes: Sequence[str],
    ) -> Any: ...  # leaderboard.QualityInputs: what labeler statistics read
    def is_answer(self, value: Any, classes: Sequence[str]) -> bool: ...
    def find_label_issues(
        self, item_ids: list[str], labels: list[Any], features: Any, classes: list[str], n_folds: int
    ) -> tuple[Any, float]: ...  # (issues, the model's agreement with consensus)
    def label_issue_inputs(
        self, store: Any, item_ids: list[str], uris: list[str], *, feature_size: int, n_folds: int
    ) -> tuple[Any, str]: ...  # (the ``features`` find_label_issues scores against, what they are in one line)
    def labeler_stats(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, population_shares: Mapping[str, float],
    ) -> Any: ...
    def weekly_trend(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, last_weeks: int,
    ) -> list[Any]: ...

    # Datasets: which consensus rows a version holds, and its card.
    def usable_labels(
        self, frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
    ) -> tuple[pd.DataFrame, dict[str, int]]: ...
    def dataset_card(self, inputs: Any, *, with_plot: bool = True) -> str: ...
    def annotation_summary(self, annotations: pd.DataFrame) -> tuple[int, int, float | None]: ...
    def split_balance(self, manifest: pd.DataFrame, classes: Sequence[str]) -> tuple[str, float]: ...
    def export(self, rows: pd.DataFrame, out_dir: Any, formats: list[str], classes: list[str]) -> Any: ...
    # The checks of a version's splits: proportions per split, what misses a split, what thresholds need in val/test.
    def split_deviations(self, manifest: pd.DataFrame, classes: Sequence[str], tolerance: float) -> pd.DataFrame: ...
    def missing_from_splits(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame: ...
    def missing_for_thresholds(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame: ...

    # Splits: stratified by what the kind's answers are (the class; each class of a set), then the manifest.
    def assign_splits(
        self, rows: pd.DataFrame, classes: Sequence[str], *, existing: pd.Series, ratios: Any, seed: int
    ) -> Any: ...  # core.dataset.splits.SplitAssignment
    def manifest(
        self, manifest: pd.DataFrame, classes: Sequence[str], *, previous_version: str | None,
        extra: Mapping[str, Any],
    ) -> tuple[str, dict[str, float], dict[str, Any]]: ...

    # Pre-labels and active learning.
    def prediction(
        self, probs: Mapping[str, float], model_version: str | None, *, allow_empty: bool = True,
        thresholds: Mapping[str, float] | None = None,
    ) -> dict[str, Any]: ...
    def informativeness(self, probs: Mapping[str, float] | None, strategy: str) -> float: ...
    def review_model_line(self, probs: Mapping[str, float] | None, model_version: str | None) -> str | None: ...
    def fit_baseline(self, store: Any, classes: list[str], size: int) -> tuple[Any, str]: ...  # (model | None, why)
    def prediction_report(self, probs: Any, classes: list[str], thresholds: list[float] | None) -> dict[str, Any]: ...

    # Evaluation on the frozen test split: the rows and truth the champion is decided on, the score, the report.
    def test_scoring(
        self, store: Any, item_ids: list[str], answers: AnyArray, classes: list[str], min_gold: int
    ) -> Any: ...  # promotion.ScoringSet; ``answers``: the test items' consensus as :meth:`encode` gives it
    def test_score(self, probs: AnyArray, truth: AnyArray, thresholds: list[float] | None) -> float: ...
    def test_report(
        self, answers: AnyArray, probs: AnyArray, failed: list[int], classes: list[str],
        thresholds: list[float] | None, *, model: str, ece_bins: int,
    ) -> TestSplitReport: ...

    # Training: the hard labels a training head reads, and the torch side (imported only when a run trains).
    # A trainer kind: ``encode`` gives its answers as an object array (what ``test_score`` reads as truth),
    # ``stored_targets`` None (no soft targets), ``training_head`` raises.
    def encode(self, answers: Sequence[Any], classes: Sequence[str]) -> Any: ...  # numpy array
    def stored_targets(self, store: Any, item_ids: list[str], labels: Any, classes: list[str]) -> Any: ...
    def training_head(self) -> TrainingHead: ...


@dataclass
class Sampling:
    """How a training run draws its batches and weighs its loss (see :meth:`TrainingHead.sampling`)."""

    sample_weights: torch.Tensor | None = None
    weigh: Any = None  # Callable[[Tensor], Tensor] | None: per-item weights of a streamed chunk's labels
    loss_weight: torch.Tensor | None = None


@runtime_checkable
class TrainingHead(Protocol):
    """A kind's training head: outputs, loss, class weights, sampler, validation metrics, thresholds."""

    own_settings: tuple[str, ...]  # the TrainConfig fields only this head reads (runs of other kinds skip them)

    def check_labels(
        self, labels: AnyArray, targets: AnyArray | None, num_classes: int
    ) -> tuple[AnyArray, AnyArray | None]: ...
    def class_weights(self, labels: AnyArray, targets: AnyArray | None, config: TrainConfig) -> list[float]: ...
    def loss(
        self, logits: torch.Tensor, y: torch.Tensor, config: TrainConfig, weight: torch.Tensor | None
    ) -> torch.Tensor: ...
    def sampling(
        self, data: DeviceData, labels: AnyArray, targets: AnyArray | None, weights: torch.Tensor, config: TrainConfig
    ) -> Sampling: ...
    def select_val(self, labels: AnyArray, num_classes: int, distributed: Distributed) -> tuple[slice, AnyArray]: ...
    def val_tensor(self, labels: AnyArray) -> torch.Tensor: ...
    def validate(self, logits: torch.Tensor, y: torch.Tensor, distributed: Distributed) -> dict[str, float]: ...
    def early_stopping_score(self, scores: Mapping[str, Any]) -> float | None: ...
    def probabilities(self, logits: torch.Tensor) -> torch.Tensor: ...
    def thresholds(
        self, val_labels: AnyArray | None, val_probs: Callable[[], AnyArray] | None, num_classes: int,
        best: float | None,
    ) -> tuple[list[float] | None, float | None]: ...


@dataclass(frozen=True)
class EpochReport:
    """One epoch of a :class:`KindTrainer`'s fit: its number (from 1) and metrics (``train_loss``, ``val_*``...)."""

    epoch: int
    metrics: dict[str, float]


@dataclass
class FittedModel:
    """What a :class:`KindTrainer` fits, saves and loads: the model, what it was trained for and how it went."""

    model: Any  # the kind's model (a torch module), on ``device``
    classes: list[str]
    settings: dict[str, Any]  # every setting of the run, defaults filled in (tracked as parameters)
    metrics: dict[str, float] = field(default_factory=dict)  # summary (``best_val_*``, ``best_epoch``...)
    history: list[EpochReport] = field(default_factory=list)
    device: str = "cpu"


class TrainerSettingsError(ValueError):
    """A trainer was given a setting it does not have, or a value it cannot use: one line."""


@runtime_checkable
class KindTrainer(Protocol):
    """A kind's own model (``TaskKind.trainer``), for kinds whose model is not ``core/training``'s classifier.

    Pure of Dagster and MLflow (the assets log what it returns). Rows are a dataset version's split as
    ``DatasetSnapshot.split`` gives it: a DataFrame with ``item_id``, ``uri``, ``label`` (the stored answer, as
    the kind stores it) and ``confidence`` (consensus confidence; may be absent or NaN).
    """

    model_name: str  # what the model is, for logs and tags (e.g. "faster_rcnn")

    def default_settings(self) -> dict[str, Any]: ...  # every setting fit takes, with its default
    def fit(
        self, train: pd.DataFrame, val: pd.DataFrame, classes: Sequence[str], settings: Mapping[str, Any], *,
        log: Callable[[str], None] | None = None, on_epoch: Callable[[EpochReport], None] | None = None,
    ) -> FittedModel: ...  # settings: overrides of default_settings (an unknown name: TrainerSettingsError)
    def save(self, fitted: FittedModel, path: Path) -> None: ...  # a torch-only checkpoint (no pickled code)
    def load(self, path: Path, device: str = "cpu") -> FittedModel: ...  # torch.load(weights_only=True)
    def predict(
        self, fitted: FittedModel, uris: Sequence[str], *, batch_size: int = 16
    ) -> tuple[list[Any], list[int]]: ...  # (per uri the kind's ``probs``, None where it failed; failed indices)


def model_outputs(outputs: Sequence[Any], classes: Sequence[str]) -> Any:
    """A trainer's per-item outputs (None for an item that failed) as the stages pass ``probs`` on: class
    probabilities (``{class: p}`` over exactly the classes, as a text classifier gives) as the (n, K) float array
    the class kinds score and store (0 where an item failed); any other output (a detector's boxes) as a 1-d object
    array."""
    import numpy as np

    names = [str(c) for c in classes]
    given = [o for o in outputs if o is not None]
    if given and all(isinstance(o, Mapping) and sorted(map(str, o)) == sorted(names) for o in given):
        table = np.zeros((len(outputs), len(names)), dtype=np.float32)
        for n, output in enumerate(outputs):
            if output is not None:
                table[n] = [float(output[c]) for c in names]
        return table
    found = np.empty(len(outputs), dtype=object)
    found[:] = list(outputs)
    return found


def usable_rows(
    frame: pd.DataFrame, reason_of: Callable[[Any], str | None], what: str, excluded: dict[str, int]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """A kind's :meth:`TaskKind.usable_labels` over a per-answer rule: the consensus rows whose ``label``
    ``reason_of`` passes (None), and the others counted in ``excluded`` as "consensus label is not ``what``
    (the reason)"."""
    import numpy as np

    keep = []
    for value in frame["label"]:
        reason = reason_of(value)
        if reason is not None:
            why = f"consensus label is not {what} ({reason})"
            excluded[why] = excluded.get(why, 0) + 1
        keep.append(reason is None)
    return frame[np.array(keep, dtype=bool)].reset_index(drop=True), excluded
