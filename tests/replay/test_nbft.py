"""The default strategy 'nbft' on a replay: past winners first, and never a one-way veto."""

from __future__ import annotations

import numpy as np
import pytest

from nonbinary_ft.history.table import read_table
from nonbinary_ft.replay.simulate import replay
from nonbinary_ft.replay.strategies import ReplayTask, make_setup
from tests.replay.conftest import make_table


@pytest.fixture(scope="module")
def task(table_folder) -> ReplayTask:
    return ReplayTask.from_table(read_table(table_folder))


@pytest.fixture(scope="module")
def inverted(tmp_path_factory) -> ReplayTask:
    """A past sweep of the same grid whose ranking is the task's upside down."""
    folder = make_table(tmp_path_factory.mktemp("inverted"), inverted=True)
    return ReplayTask.from_table(read_table(folder))


def _suggested(trace) -> list[int]:
    return [event.point for event in trace.events if event.kind == "suggest"]


def test_a_history_holding_the_same_task_puts_its_winner_first(task):
    table = task.table
    best = int(np.nanargmax(table.final_val))
    setup = make_setup("nbft", task, 0, [table.as_past_sweep()])
    trace = replay(table, setup, workers=1)
    assert _suggested(trace)[0] == best
    # Stage 1 held the only worker (the from-scratch run included) and is charged in full;
    # then that one trial was needed.
    evidence = table.evidence
    stage_one = evidence.cheap_s + evidence.scratch_s()
    assert setup.charged_analysis_s == pytest.approx(stage_one)
    assert trace.events[0].compute_s == pytest.approx(stage_one)
    assert trace.total_compute_s == pytest.approx(stage_one + np.nansum(table.epoch_s[best]))
    assert trace.incumbent_val[-1] == pytest.approx(table.best_val)


def test_with_two_workers_the_warm_start_waits_for_the_cheap_evidence_only(task):
    table = task.table
    trace = replay(table, make_setup("nbft", task, 0, [table.as_past_sweep()]), workers=2)
    # The second worker idles until the cheap evidence, not until the from-scratch run ends.
    best = int(np.nanargmax(table.final_val))
    assert trace.wall_s == pytest.approx(table.evidence.cheap_s + np.nansum(table.epoch_s[best]))


def test_a_misleading_history_is_tried_first_and_then_left_behind(task, inverted):
    table = task.table
    best = int(np.nanargmax(table.final_val))
    past = [inverted.table.as_past_sweep()]
    trace = replay(table, make_setup("nbft", task, 0, past), workers=1)
    suggested = _suggested(trace)
    # The past sweep's winner is the task's worst region: tried first, not a veto.
    assert suggested[0] == int(np.nanargmax(inverted.table.final_val))
    # The region the history ranked last is still sampled, and wins.
    assert best in suggested
    assert trace.incumbent_val[-1] == pytest.approx(table.best_val)


def test_without_a_history_nbft_is_tpe_rush_beside_stage_one(task):
    evidence = task.table.evidence
    stage_one = evidence.cheap_s + evidence.scratch_s()
    # 'nbft' acts on the evidence: stage 1 runs from the start, charged in full there. The
    # default search with no history (tpe_rush) does not: stage 1 waits for its end.
    for name, charged_first in (("nbft", stage_one), ("tpe_rush", 0.0)):
        setup = make_setup(name, task, 3)
        trace = replay(task.table, setup, workers=2)
        # Nothing to wait for: the first trial starts at once.
        assert trace.events[0].compute_s == pytest.approx(charged_first)
        assert trace.incumbent_val[-1] == pytest.approx(task.table.best_val)
        assert setup.charged_analysis_s == pytest.approx(stage_one)


@pytest.mark.parametrize("strategy", ["tpe", "tpe_asha", "random_asha", "grid"])
def test_plain_ray_tune_baselines_are_charged_no_analysis(task, strategy):
    setup = make_setup(strategy, task, 0)
    assert setup.charged_analysis_s == 0.0
    assert replay(task.table, setup, workers=1).events[0].compute_s == 0.0


def test_leave_one_task_out_drops_the_task_by_folder_and_by_name():
    from nonbinary_ft.replay.benchmark import history_for

    known = ["held/a", "held/b", "project/a", "project/c", "held/b"]
    assert history_for("held/a", known) == ("held/b", "project/c")
    assert history_for("held/b", known) == ("held/a", "project/a", "project/c")
