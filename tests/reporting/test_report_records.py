"""The report's records: every number checked against the results, computed independently."""

from __future__ import annotations

import dataclasses
import statistics

import pytest
import yaml
from sweep_fixtures import BASE, BEST_ACCURACIES, DEFAULT_ACCURACIES, EPOCH_S

from nonbinary_ft.reporting import figures
from nonbinary_ft.reporting.importance import importance_chart
from nonbinary_ft.reporting.records import (
    build_evidence,
    build_pruning,
    build_report,
    build_search_note,
)
from nonbinary_ft.reporting.verdict import build_verdict
from nonbinary_ft.results import Missing, PruningDecision, TrialResult
from nonbinary_ft.vocabulary import DecisionKind


def test_verdict_matches_the_results(results):
    verdict = build_verdict(results)
    best = statistics.mean(BEST_ACCURACIES)
    default = statistics.mean(DEFAULT_ACCURACIES)
    assert verdict.regime == "fits_well" and not verdict.provisional
    assert verdict.settings == {**BASE, "reinit_layers": 2, "lr_high": 0.001, "l2sp_layers": "all"}
    assert verdict.mean == pytest.approx(best)
    assert verdict.std == pytest.approx(statistics.stdev(BEST_ACCURACIES))
    assert verdict.ensemble == 0.893
    assert verdict.default_mean == pytest.approx(default)
    assert verdict.gain == pytest.approx(best - default)
    assert f"{100 * (best - default):+.2f} points" in verdict.gain_text
    assert f"{100 * best:.2f} % ± {100 * statistics.stdev(BEST_ACCURACIES):.2f}" in (
        verdict.expected_text
    )
    # The best settings are what table 7 predicts for weights that fit well.
    assert len(verdict.table7) == 4 and all("(agrees)" in line for line in verdict.table7)
    assert verdict.notes == ()


def test_verdict_without_final_runs_falls_back_to_the_best_trial(results):
    verdict = build_verdict(dataclasses.replace(results, final=Missing("stage 3 never ran")))
    assert verdict.settings["l2sp_layers"] == "all"  # t09, the best validation accuracy
    assert "search trial t09" in verdict.settings_source
    assert verdict.mean is None and verdict.gain is None
    assert "89.00 % (validation accuracy" in verdict.expected_text
    assert any("stage 3 never ran" in note for note in verdict.notes)
    assert "not measured" in verdict.gain_text


def test_verdict_with_nothing_but_the_analysis(results):
    bare = dataclasses.replace(results, final=Missing("x"), trials=Missing("y"))
    verdict = build_verdict(bare)
    assert verdict.settings == results.analysis.recommended_settings
    assert verdict.settings_source == "analysis recommendation"


def test_evidence_is_table1_with_the_rule_and_disagreements(results):
    evidence = build_evidence(results.analysis, "tiny-sweep")
    row = evidence.table1.rows[0]
    assert row == (
        "tiny-sweep (this sweep)",
        "78.00 %",
        "62.00 %",
        "-16.00 points",
        "1.6",
        "0.55",
        "fits_well",
    )
    assert len(evidence.table1.rows) == 5  # and the paper's four targets
    assert evidence.rule.startswith("gap = scratch - fixed")
    assert "EMD" in evidence.disagreements[0]
    scores = dict(evidence.scores.rows)
    assert scores["LogME"] == "1.23"
    assert scores["LEEP"].startswith("missing: no source head")


def test_pruning_log_and_compute_saved(results):
    section = build_pruning(results.pruning, results.trials)
    # 2 + 3 + 8 epochs saved, every recorded epoch took EPOCH_S.
    assert section.epochs_saved == 13.0
    assert section.mean_epoch_s == EPOCH_S
    assert section.compute_saved_s == pytest.approx(13 * EPOCH_S)
    assert [row[1] for row in section.table.rows] == [
        "trial t10",
        "region (no longer sampled)",
        "trial t11",
    ]
    assert "2 pruned, 1 stopped, 1 diverged" in section.summary
    assert "0 settings of past sweeps queued first; 3 stops or vetoes" in section.summary
    assert "6.5 min of compute" in section.summary
    assert "gap=-0.16, fisher=1.6" in section.table.rows[0][3]


def test_warm_starts_are_listed_and_save_nothing(results):
    warm = PruningDecision(
        kind=DecisionKind.WARM_START, reason="#1 of past sweep a (0.900)",
        settings={**BASE, "lr_high": 0.01}, time_s=0.1, epochs_saved_estimate=0.0,
    )  # fmt: skip
    # Queued but never run: the budget ended first (no trial has lr_high 0.5).
    unrun = dataclasses.replace(warm, settings={**BASE, "lr_high": 0.5}, time_s=0.2)
    section = build_pruning((warm, unrun, *results.pruning), results.trials)
    assert section.table.rows[0][1] == "first trials (warm start)"
    assert section.epochs_saved == 13.0
    assert "2 settings of past sweeps queued first (1 ran); 3 stops or vetoes (2 running" in (
        section.summary
    )


def test_figure_records_hold_the_trials(results):
    trials = results.trials
    fig2 = figures.lr_by_reinit(trials).data
    assert isinstance(fig2, figures.LineChart) and fig2.log_x
    lines = {s.label: dict(zip(s.x, s.y, strict=True)) for s in fig2.series}
    assert lines["2 layers re-initialised"] == {0.001: 89.0, 0.01: 82.0}
    assert lines["1 layer re-initialised"][0.001] == 84.0
    fig3 = figures.low_layer_split(trials).data
    assert [(s.x, s.y) for s in fig3.series] == [((0, 4, 8), (80.0, 83.0, 81.0))]
    fig4 = figures.l2sp_alpha(trials).data
    assert fig4.references == (("best plain L2 (l2sp_layers=0)", 87.0),)
    fig5 = figures.l2sp_layers(trials).data
    assert [label for _, label in fig5.x_ticks] == ["0 (L2)", "4", "all"]
    fig6 = figures.default_vs_optimal(results.final).data
    assert fig6.labels[0].startswith("binary baseline") and fig6.ensembles == (85.6, 89.3)
    progress = figures.progress(trials, results.pruning).data
    assert list(progress.best_y) == sorted(progress.best_y) and progress.best_y[-1] == 89.0
    assert sum(p.status == "pruned" for p in progress.points) == 2
    assert len(progress.regions) == 1
    importance = importance_chart(trials).data
    assert isinstance(importance, figures.ImportanceChart)
    assert "reinit_layers" in importance.names and "lr_new" not in importance.names
    assert sum(importance.values) == pytest.approx(1.0)


def _only(trials: tuple[TrialResult, ...], **settings) -> tuple[TrialResult, ...]:
    return tuple(t for t in trials if all(t.settings[k] == v for k, v in settings.items()))


def test_a_plot_without_variation_is_a_note(results):
    plain = _only(results.trials, l2sp_layers=0, low_layers=0)
    assert figures.l2sp_alpha(plain).data == figures.NoData(
        "no completed trial used L2-SP (l2sp_layers=0)"
    )
    assert "every completed trial has l2sp_layers" in figures.l2sp_layers(plain).data.reason
    assert "low_layers > 0" in figures.low_layer_split(plain).data.reason
    three = plain[:3]
    assert importance_chart(three).data.reason.startswith("3 completed trials")
    one_lr = _only(results.trials, lr_high=0.001, l2sp_layers=0)
    assert "varied" in importance_chart(one_lr * 2).data.reason


def test_missing_trials_make_every_trial_plot_a_note(results):
    report = build_report(dataclasses.replace(results, trials=Missing("sweep interrupted")))
    notes = [f for f in report.figures if isinstance(f.data, figures.NoData)]
    assert {f.key for f in notes} == {f.key for f in report.figures} - {"fig6_default_vs_optimal"}
    assert all("sweep interrupted" in f.data.reason for f in notes)


@pytest.mark.parametrize(
    ("search", "veto", "says"),
    [
        ({}, False, ("Search 'zero_shot_model'", "of the same model", "not from this target's")),
        ({"algorithm": "nbft"}, True, ("nearest to this target", "veto ruled out")),
        ({"algorithm": "zero_shot"}, False, ("came from past sweeps, not from",)),
        ({"algorithm": "tpe"}, False, ("no past sweep and not from the evidence",)),
        ({"algorithm": "tpe"}, True, ("no past sweep and not from the evidence",)),
    ],
)
def test_search_note_says_what_the_first_trials_came_from(search, veto, says):
    document = {"sweep": {"search": search}, "analysis": {"veto": veto}}
    note = build_search_note(yaml.safe_dump(document))
    assert all(part in note for part in says), note
    assert ("veto" in note) == veto
    # Stage 1 waits for the search's end unless the search acts on it ('nbft', the veto).
    after = search.get("algorithm") != "nbft" and not veto
    assert ("ran after the search" in note) == after
    assert build_search_note(Missing("no sweep.yaml")) == ""


@pytest.mark.parametrize(
    "sweep_yaml", ["sweep: [", "- a list", "sweep: 3", "sweep: {search: {algorithm: [1]}}"]
)
def test_search_note_of_a_sweep_file_edited_into_nonsense_is_empty(sweep_yaml):
    assert build_search_note(sweep_yaml) == ""
