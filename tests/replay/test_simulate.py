"""The replay: the sweep's own searchers and schedulers driven in simulated time."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.schedulers import FIFOScheduler

from nonbinary_ft.history.table import TableError, read_table
from nonbinary_ft.replay.metrics import (
    BUDGETS,
    compute_to_target,
    normalised_regret,
    summarise,
)
from nonbinary_ft.replay.simulate import Setup, Trace, regret_at, replay
from nonbinary_ft.replay.strategies import STRATEGIES, OneEpochTopK, ReplayTask, make_setup
from nonbinary_ft.tuning.searcher import GridSearcher
from tests.replay.conftest import EPOCHS, make_table


@pytest.fixture(scope="module")
def task(table_folder) -> ReplayTask:
    return ReplayTask.from_table(read_table(table_folder))


def test_the_grid_trains_points_in_order_until_it_has_the_best(task):
    table = task.table
    best = int(np.nanargmax(table.final_val))
    one = replay(table, make_setup("grid", task, 0), workers=1)
    # Once the best point is in, nothing is left to gain: the replay ends there.
    assert one.total_compute_s == pytest.approx(np.nansum(table.epoch_s[: best + 1]))
    suggested = [event.point for event in one.events if event.kind == "suggest"]
    assert suggested == list(range(best + 1))
    assert one.incumbent_val[-1] == pytest.approx(table.best_val)
    # Two workers spend about the same compute in about half the time.
    two = replay(table, make_setup("grid", task, 0), workers=2)
    assert two.incumbent_val[-1] == pytest.approx(table.best_val)
    assert two.wall_s < 0.65 * one.wall_s
    assert one.wall_s == pytest.approx(one.total_compute_s)


def test_one_epoch_for_all_then_the_best_continue_from_where_they_paused(task):
    table = task.table
    keep = 3
    setup = Setup(GridSearcher(list(table.points)), OneEpochTopK(len(table.points), keep))
    trace = replay(table, setup, workers=2)
    first = np.nan_to_num(table.val[:, 0], nan=-1.0)
    best = np.argsort(-first, kind="stable")[:keep]
    expected = np.nansum(table.epoch_s[:, 0]) + np.nansum(table.epoch_s[best, 1:])
    assert trace.total_compute_s == pytest.approx(expected)
    ended = sorted(event.point for event in trace.events if event.kind == "end")
    assert ended == sorted(best.tolist())


def test_asha_stops_weak_trials_at_its_rungs(task):
    trace = replay(task.table, make_setup("tpe_asha", task, 0), workers=1)
    stops = [event for event in trace.events if event.kind == "stop"]
    assert stops and {event.epoch for event in stops} <= {1, 3}
    assert trace.total_compute_s <= task.table.grid_compute_s + 4 * EPOCHS


def test_evidence_costs_a_worker_before_it_acts(task):
    evidence_s = task.table.evidence.cheap_s + task.table.evidence.scratch_s()
    trace = replay(task.table, make_setup("evidence_veto", task, 0), workers=1)
    first = trace.events[0]
    assert first.kind == "suggest" and first.compute_s == pytest.approx(evidence_s)
    with_two = replay(task.table, make_setup("evidence_veto", task, 0), workers=2)
    assert with_two.events[0].compute_s == pytest.approx(evidence_s)  # charged at the start


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_replays_within_its_budget(task, strategy):
    budget = 0.5 * task.table.grid_compute_s
    trace = replay(task.table, make_setup(strategy, task, 1), workers=2, budget_s=budget)
    # The last epoch started before the budget ran out may end after it.
    assert trace.total_compute_s < budget + 4.0
    assert all(a <= b for a, b in zip(trace.compute_s, trace.compute_s[1:], strict=False))


def test_regret_reads_the_incumbent_and_the_target_is_a_set_of_points(task):
    table = task.table
    order = [int(i) for i in np.argsort(-np.nan_to_num(table.mean_test, nan=-1))]
    trace = Trace(
        compute_s=[10.0, 30.0], incumbent_val=[0.8, 0.9], incumbent_test=[0.7, 0.85],
        incumbent_point=[order[3], order[0]], completed=[(10.0, order[3]), (30.0, order[0])],
    )  # fmt: skip
    assert compute_to_target(trace, {order[0]}) == 30.0
    assert compute_to_target(trace, {order[0], order[3]}) == 10.0
    assert compute_to_target(trace, {order[1]}) is None
    regret = regret_at(trace, 0.9, np.array([5.0, 10.0, 20.0, 40.0]))
    assert np.isnan(regret[0]) and regret[1:].tolist() == pytest.approx([10.0, 10.0, 0.0])
    normalised = normalised_regret(trace, table, np.array([5.0, 10.0, 40.0]))
    test = table.mean_test
    span = np.nanmax(test) - np.nanmin(test)
    expected = [1.0, (test[order[0]] - test[order[3]]) / span, 0.0]
    assert normalised.tolist() == pytest.approx(expected)


def test_a_summary_counts_the_seeds_that_reached_the_target(task):
    table = task.table
    setups = [make_setup("random", task, seed) for seed in range(4)]
    traces = [replay(table, setup, 1) for setup in setups]
    row = summarise(table, "random", 1, traces)
    reached = [compute_to_target(trace, table.target_points) for trace in traces]
    assert row.reached == sum(value is not None for value in reached)
    assert row.target_points == len(table.target_points)
    assert set(row.normalised_regret) == {f"{b:g}" for b in BUDGETS}
    assert all(0.0 <= value <= 1.0 for value in row.normalised_regret.values())
    assert row.grid_compute == pytest.approx(table.grid_compute_s)


def test_a_grid_that_is_not_a_full_product_is_refused(tmp_path, table_folder):
    with pytest.raises(TableError, match="no point of the table"):
        ReplayTask.from_table(read_table(make_table(tmp_path, skip=5)))
    with pytest.raises(TableError, match="unknown strategy"):
        make_setup("bayes", ReplayTask.from_table(read_table(table_folder)), 0)


def test_fifo_without_suggestions_ends_the_replay(task):
    trace = replay(task.table, Setup(GridSearcher([]), FIFOScheduler()), workers=2)
    assert trace.trials == 0 and trace.total_compute_s == 0.0
