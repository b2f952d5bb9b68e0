"""The replay's yardstick: targets within noise, honest charges, realistic histories, holdouts."""

from __future__ import annotations

import numpy as np
import pytest

from nonbinary_ft.history.table import read_table
from nonbinary_ft.replay.benchmark import HISTORY_TRIALS, history_for, past_sweep, run_group
from nonbinary_ft.replay.metrics import compute_to_target, summarise_tasks
from nonbinary_ft.replay.simulate import Trace, replay
from nonbinary_ft.replay.strategies import STAGE_ONE, STRATEGIES, ReplayTask, make_setup
from tests.replay.conftest import make_table
from tests.replay.test_table import _seeded_table

WITH_SEARCH = {"evidence_veto", "nbft", "nbft_random"}


def test_two_points_within_noise_count_either_as_reached(tmp_path):
    table, (best, second) = _seeded_table(tmp_path, spread=0.15)
    assert {best, second} <= table.target_points
    for point in (best, second):
        assert compute_to_target(Trace(completed=[(5.0, point)]), table.target_points) == 5.0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_strategy_is_charged_its_from_scratch_run_exactly_when_its_sweep_runs_one(
    table_folder, strategy
):
    task = ReplayTask.from_table(read_table(table_folder))
    evidence = task.table.evidence
    setup = make_setup(strategy, task, 0, [task.table.as_past_sweep()])
    expected = evidence.cheap_s + evidence.scratch_s() if strategy in STAGE_ONE else 0.0
    assert setup.charged_analysis_s == pytest.approx(expected)
    trace = replay(task.table, setup, workers=2, max_trials=3, stop_at_best=False)
    trained = sum(np.nansum(task.table.epoch_s[e.point, : e.epoch]) for e in _last_events(trace))
    assert trace.total_compute_s == pytest.approx(trained + expected)
    # Charged up front only where the search acts on the evidence; else once it is over.
    first = trace.events[0].compute_s
    assert first == pytest.approx(expected if strategy in WITH_SEARCH else 0.0)


def _last_events(trace: Trace) -> list:
    """Each trial's last event: its end, the scheduler's stop, or a pause it never left."""
    last = {e.trial_id: e for e in trace.events if e.kind in ("end", "stop", "pause")}
    return list(last.values())


def test_a_realistic_history_holds_only_what_its_past_sweep_completed(table_folder):
    table = read_table(table_folder)
    past = past_sweep(str(table_folder), seed=4)
    # The same default sweep, replayed here: its completed trials are the history's.
    task = ReplayTask.from_table(table)
    trace = replay(
        table, make_setup("tpe_rush", task, 4), 1, max_trials=HISTORY_TRIALS, stop_at_best=False
    )
    completed = {point for _, point in trace.completed}
    assert {table.index_of(settings) for settings, _ in past.ranked} == completed
    stopped = {e.point for e in trace.events if e.kind == "stop"}
    assert stopped and not stopped & completed  # RUSH stopped some: they are not history
    values = [value for _, value in past.ranked]
    assert values == sorted(values, reverse=True)
    assert len(past.ranked) < len(table.as_past_sweep().ranked)
    assert past_sweep(str(table_folder), 4, exhaustive=True) == table.as_past_sweep()


def test_leave_one_source_out_excludes_every_sibling(tmp_path, table_folder):
    sibling = make_table(tmp_path / "sibling", name="sibling")  # same model, same weights
    other = make_table(
        tmp_path / "other", name="other", model={"name": "resnet18", "pretrained": "none"}
    )
    known = [str(table_folder), str(sibling), str(other)]
    assert history_for(str(table_folder), known, "task") == (str(sibling), str(other))
    assert history_for(str(table_folder), known, "source") == (str(other),)


def test_a_learner_replays_per_holdout_and_the_summary_ranks_per_split(tmp_path, table_folder):
    other = make_table(
        tmp_path / "other", name="other", model={"name": "resnet18", "pretrained": "none"}
    )
    rows = []
    for folder, split in ((table_folder, "design"), (other, "evaluation")):
        history = history_for(str(folder), [str(table_folder), str(other)], "task")
        for strategy in ("tpe", "nbft"):
            row, curve = run_group(
                str(folder), strategy, 1, (0, 1), history=history if strategy == "nbft" else (),
                holdout="task" if strategy == "nbft" else "-", split=split,
            )  # fmt: skip
            assert curve.strategy == row.variant and len(curve.normalised) == len(curve.median)
            rows.append(row)
    summary = summarise_tasks(rows)
    assert {(s.split, s.strategy) for s in summary} == {
        (split, name) for split in ("design", "evaluation") for name in ("tpe", "nbft")
    }
    for split in ("design", "evaluation"):
        ranks = [s.mean_rank["0.05"] for s in summary if s.split == split]
        assert sorted(ranks) in ([1.0, 2.0], [1.5, 1.5])
    nbft = next(r for r in rows if r.strategy == "nbft")
    assert nbft.charged_analysis_s > 0 and np.isfinite(list(nbft.normalised_regret.values())).all()
