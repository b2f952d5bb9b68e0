"""Which settings mattered: Optuna's fANOVA over the sweep's completed trials.

The trials become an in-memory Optuna study (``optuna.trial.create_trial`` with the
distributions the values span), so that the importance is Optuna's, whatever searcher ran the
sweep. fANOVA fits a random forest: below ``MIN_TRIALS`` completed trials, or with a single
varied setting, there is nothing sensible to say and the figure is replaced by a note.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from nonbinary_ft.reporting.figures import FigureRecord, ImportanceChart, NoData
from nonbinary_ft.results import TrialResult

__all__ = ["MIN_TRIALS", "trial_params", "importance_chart"]

logger = logging.getLogger(__name__)

MIN_TRIALS = 4
# Optuna's default depth (64) lets every tree grow a leaf per trial: at 500 completed trials
# fANOVA took 7.7 s of a 10 s report and dominated resuming a finished 1,000-trial sweep.
# Depth 8 (at most 256 leaves) changes nothing below a few hundred trials and took 1.2 s
# there, moving each importance by at most 0.03 where seeds 0-2 at full depth moved it by
# up to 0.035 (measured on the sweep_scale benchmark's 1,000-trial sweep).
MAX_TREE_DEPTH = 8
TITLE = "Hyperparameter importance (fANOVA)"
KEY = "importance"


def trial_params(trial: TrialResult) -> dict[str, Any]:
    """The settings as the sweep really ran them: ``lr_new`` defaults to ``lr_high``, and
    ``lr_low`` only exists when some layers train at it (a conditional parameter)."""
    params = {name: value for name, value in trial.settings.items() if value is not None}
    if "lr_high" in params:
        params.setdefault("lr_new", params["lr_high"])
    if not params.get("low_layers"):
        params.pop("lr_low", None)
    return params


def _distribution(values: Sequence[Any]) -> tuple[Any, list[Any]]:
    """An Optuna distribution spanning ``values``, and the values as it holds them."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and all(isinstance(v, int) for v in values):
        return IntDistribution(min(values), max(values)), list(values)
    if numeric:
        low, high = float(min(values)), float(max(values))
        # LRs and strengths span decades: log scale when it is defined.
        return FloatDistribution(low, high, log=low > 0), [float(v) for v in values]
    labels = [str(v) for v in values]
    return CategoricalDistribution(sorted(set(labels))), labels


def _importances(params: list[dict[str, Any]], names: list[str], values: list[float]) -> dict:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import create_trial

    columns = {name: _distribution([p[name] for p in params]) for name in names}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" chatter
    try:
        study = optuna.create_study(direction="maximize")
        for row, value in enumerate(values):
            study.add_trial(
                create_trial(
                    params={name: columns[name][1][row] for name in names},
                    distributions={name: columns[name][0] for name in names},
                    value=value,
                )
            )
        return get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0, max_depth=MAX_TREE_DEPTH)
        )
    finally:
        optuna.logging.set_verbosity(verbosity)


def importance_chart(trials: Sequence[TrialResult]) -> FigureRecord:
    """The fANOVA importance of each varied setting for the best validation accuracy."""
    done = [t for t in trials if t.status == "completed" and t.best_val_accuracy is not None]
    if len(done) < MIN_TRIALS:
        why = f"{len(done)} completed trials; fANOVA needs at least {MIN_TRIALS}"
        return FigureRecord(KEY, TITLE, "", NoData(why))
    params = [trial_params(t) for t in done]
    if all(p.get("lr_new") == p.get("lr_high") for p in params):
        # Never set apart from lr_high: one setting, not two perfectly correlated ones.
        for p in params:
            p.pop("lr_new", None)
    # Optuna's importance uses the parameters every trial has (its intersection search space).
    shared = [name for name in params[0] if all(name in p for p in params)]
    varied = [name for name in shared if len({str(p[name]) for p in params}) > 1]
    if len(varied) < 2:
        why = f"only {varied or 'no setting'} varied across the completed trials: nothing to rank"
        return FigureRecord(KEY, TITLE, "", NoData(why))
    values = [float(t.best_val_accuracy or 0.0) for t in done]
    if len(set(values)) < 2:
        return FigureRecord(KEY, TITLE, "", NoData("every completed trial reached one accuracy"))
    try:
        importances = _importances(params, varied, values)
    except (ValueError, RuntimeError) as error:
        logger.warning("fANOVA failed: %s", error)
        return FigureRecord(KEY, TITLE, "", NoData(f"fANOVA failed: {error}"))
    chart = ImportanceChart(
        names=tuple(importances),
        values=tuple(float(v) for v in importances.values()),
        method=f"Optuna fANOVA, trees at most {MAX_TREE_DEPTH} deep, seed 0",
        num_trials=len(done),
    )
    caption = (
        f"Share of the variance of the best validation accuracy over {len(done)} completed "
        "trials that each setting explains (fANOVA on a random forest; settings every trial "
        "had). With few trials, read it as a rough ranking."
    )
    return FigureRecord(KEY, TITLE, caption, chart)
