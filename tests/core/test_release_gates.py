"""Release gates: a model over its latency or size budget is never promoted; the figures are measured, not assumed.

The gate tests inject the measured figures (no timing is asserted); one test measures a tiny model to check
what the figures are made of.
"""

import pytest
import torch
from torch import nn

from labeling_assets.core.training import gates, promotion
from labeling_assets.core.training.gates import Baseline, GateSettings, Latency, Measurements, ModelSize

torch.set_num_threads(1)  # the CI machine is small and shared

MIB = 2**20


def _measured(cpu_p95_ms: float = 20.0, state_dict_bytes: int = 10 * MIB, gpu_p95_ms: float | None = None) -> Measurements:
    latency = [Latency("cpu", cpu_p95_ms / 2, cpu_p95_ms, 30)]
    if gpu_p95_ms is not None:
        latency.append(Latency("gpu", gpu_p95_ms / 2, gpu_p95_ms, 30))
    return Measurements(ModelSize(state_dict_bytes - 1000, state_dict_bytes), tuple(latency))


def _decide(gate: gates.GateResult, champion: str | None = "m/1") -> promotion.Decision:
    """The candidate m/2 scores better than the champion: only the gates can hold it back."""
    return promotion.decide(
        candidate="m/2", candidate_score=0.90, champion=champion, champion_score=0.80 if champion else None,
        basis="consensus", n_items=100, gate_failures=gate.failures,
    )  # fmt: skip


def test_a_model_over_the_size_budget_is_registered_as_challenger_with_the_reason() -> None:
    settings = GateSettings(max_size_ratio_to_baseline=0.5)
    teacher = Baseline("m/1", 20 * MIB)
    gate = gates.check_gates(_measured(state_dict_bytes=12 * MIB), settings, teacher)
    assert not gate.passed and gate.summary().startswith("failed")
    assert "60% of the baseline m/1" in gate.failures[0] and "50%" in gate.failures[0]
    decision = _decide(gate)
    assert decision.outcome == "failed_gates" and not decision.promote and decision.alias == "challenger"
    reason = decision.reason()
    assert "fails the release gates" in reason and "60% of the baseline" in reason and "m/1 stays champion" in reason
    # Under half the baseline it passes and, scoring better, becomes the champion.
    small = gates.check_gates(_measured(state_dict_bytes=9 * MIB), settings, teacher)
    assert small.passed and _decide(small).alias == "champion"


def test_a_model_over_the_latency_budget_is_never_promoted_not_even_as_the_first_model() -> None:
    gate = gates.check_gates(_measured(cpu_p95_ms=700.0), GateSettings(max_latency_ms_p95=500.0), None)
    assert gate.failures == ("CPU latency p95 700.0 ms per image over the budget of 500 ms",)
    decision = _decide(gate, champion=None)
    assert decision.outcome == "failed_gates" and decision.alias == "challenger"
    assert "there is no champion yet" in decision.reason()
    # The gate reads the CPU figure: a fast GPU does not let a slow CPU model through.
    assert not gates.check_gates(_measured(700.0, gpu_p95_ms=3.0), GateSettings(max_latency_ms_p95=500.0), None).passed


def test_a_model_within_every_budget_is_promoted_and_a_worse_one_still_loses_on_its_score() -> None:
    settings = GateSettings(max_latency_ms_p95=500.0, max_size_ratio_to_baseline=0.5)
    gate = gates.check_gates(_measured(cpu_p95_ms=40.0, state_dict_bytes=4 * MIB), settings, Baseline("m/1", 20 * MIB))
    assert gate.passed and gate.summary() == "passed"
    decision = _decide(gate)
    assert decision.outcome == "not_worse" and decision.promote and "release gates" not in decision.reason()
    worse = promotion.decide(candidate="m/2", candidate_score=0.5, champion="m/1", champion_score=0.8,
                             basis="gold", n_items=40, gate_failures=("too slow",))  # fmt: skip
    assert worse.outcome == "worse" and "also fails the release gates (too slow)" in worse.reason()


def test_gates_that_are_off_or_have_nothing_to_compare_with_hold_nothing_back() -> None:
    huge = _measured(cpu_p95_ms=10_000.0, state_dict_bytes=10**10)
    off = GateSettings(max_latency_ms_p95=None, max_size_ratio_to_baseline=None)
    assert gates.check_gates(huge, off, Baseline("m/1", 1)).summary() == "passed"
    # The defaults: both gates off (the figures are measured and stored all the same).
    assert GateSettings().max_latency_ms_p95 is None and GateSettings().max_size_ratio_to_baseline is None
    assert gates.check_gates(huge, GateSettings(), Baseline("m/1", 1)).summary() == "passed"
    # A first model has no champion to be a share of; a kind's own model has no figures: noted, not failed.
    first = gates.check_gates(_measured(), GateSettings(max_size_ratio_to_baseline=0.5), None)
    assert first.passed and "no size baseline (champion)" in first.summary()
    unmeasured = gates.check_gates(None, GateSettings(max_size_ratio_to_baseline=0.5), Baseline("m/1", 1))
    assert unmeasured.passed and "not measured" in unmeasured.summary()
    with pytest.raises(ValueError, match="'champion' or a registered version number"):
        GateSettings(size_baseline="teacher")
    assert GateSettings(size_baseline="3").size_baseline == "3"


def test_measured_figures_are_parameter_bytes_the_saved_state_dict_and_batch_one_percentiles() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4), nn.BatchNorm1d(4))
    threads = torch.get_num_threads()
    measured = gates.measure(model, (3, 8, 8), warmup=2, runs=7, gpu=False, threads=threads + 1)
    assert torch.get_num_threads() == threads  # timed on its own thread count, then put back
    assert measured.size.parameter_bytes == (192 * 4 + 4 + 4 + 4) * 4  # float32 weights and biases
    assert measured.size.state_dict_bytes > measured.size.parameter_bytes  # + buffers and the file's framing
    (cpu,) = measured.latency
    assert cpu.device == "cpu" and cpu.runs == 7 and 0.0 < cpu.p50_ms <= cpu.p95_ms
    figures = measured.figures()
    assert set(figures) == {"parameter_bytes", "state_dict_bytes", "latency_cpu_p50_ms", "latency_cpu_p95_ms"}
    assert not model.training  # measured in eval mode (BatchNorm with one image)
