"""The search strategies a replay compares, each built from the sweep's own search objects.

==================  ==============================================================
``grid``            every point in grid order, each to the end (the paper's way)
``random``          Optuna's random sampler over the grid's values, no early stops
``tpe``             Optuna's TPE (the sweep's searcher), no early stops
``random_asha``     random, ASHA stopping the weak at its rungs (grace period 1)
``tpe_asha``        TPE + ASHA as Ray Tune users run it (grace period 1)
``one_epoch_topk``  every point one epoch, then the best :data:`TOP_K` to the end
``tpe_rush``        ``nbft sweep`` without a history: TPE, RUSH stops, then stage 1
``evidence_veto``   TPE + ASHA + stage 1's regime policy (table 7 as a reversible veto,
                    acting once the analysis, from-scratch run included, is in)
``nbft``            once the cheap evidence is in, the nearest past sweeps' winners
                    first, then TPE; RUSH stops (no veto)
``nbft_random``     the ablation of ``nbft`` whose past sweeps are drawn at random (with the
                    seed) instead of by the evidence: does the evidence pick better?
``zero_shot``       Syne Tune's ZeroShotTransfer: the history's best settings across past
                    sweeps first (blind to the evidence), then TPE; RUSH stops
``zero_shot_model`` the same over past sweeps of the task's own model only: ``nbft
                    sweep``'s default
``bounding_box``    Syne Tune's BoundingBox: random search in the box around the past
                    sweeps' winners; RUSH stops
==================  ==============================================================

Past sweeps (``history``) come from other tasks: in a leave-one-task-out replay the task
itself is never among them.

Samplers draw from the grid's values (a ``choice`` per setting), so every suggestion is a
point of the table. Compute is what the table recorded. A strategy is charged what its real
sweep runs, when it runs it: ``nbft sweep`` (:data:`STAGE_ONE`: every strategy that is one of
its algorithms) runs stage 1, the cheap evidence and the from-scratch run, on one worker:
from the start where the search acts on the evidence (``evidence_veto``, ``nbft``,
``nbft_random``), after the search otherwise; the plain Ray Tune baselines run none.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from nonbinary_ft.config import ExperimentConfig, SweepConfig, validate_model
from nonbinary_ft.config.space import Choice, Fixed, SearchSpace
from nonbinary_ft.history.table import EVIDENCE_FILE, TableError, TaskEvidence, TaskTable
from nonbinary_ft.replay.simulate import Setup
from nonbinary_ft.search.algorithms import analysis_with_search
from nonbinary_ft.search.policy import DecisionLog
from nonbinary_ft.search.regime_policy import RegimePolicy
from nonbinary_ft.search.warm_start import PastSweep
from nonbinary_ft.tuning.scheduler import create_scheduler
from nonbinary_ft.tuning.searcher import GridSearcher, create_searcher
from nonbinary_ft.tuning.session import close_session, open_session

__all__ = [
    "STRATEGIES",
    "TOP_K",
    "ReplayTask",
    "OneEpochTopK",
    "make_setup",
]

TOP_K = 10
STRATEGIES = (
    "grid",
    "random",
    "tpe",
    "random_asha",
    "tpe_asha",
    "one_epoch_topk",
    "tpe_rush",
    "evidence_veto",
    "nbft",
    "nbft_random",
    "zero_shot",
    "zero_shot_model",
    "bounding_box",
)
LEARNERS = frozenset({"nbft", "nbft_random", "zero_shot", "zero_shot_model", "bounding_box"})
"""The strategies that learn from past sweeps."""
STAGE_ONE = frozenset({"tpe_rush", "evidence_veto"} | LEARNERS)
"""The strategies whose real sweep is ``nbft sweep``, stage 1 included."""


@dataclass(frozen=True)
class ReplayTask:
    """A table with what its strategies need: the task's config and the grid as a space."""

    table: TaskTable
    config: ExperimentConfig
    space: SearchSpace

    @property
    def source(self) -> str:
        """The pre-trained source: the model and where its weights come from."""
        model = self.config.model
        weights = model.checkpoint.name if model.checkpoint is not None else model.pretrained
        if model.checkpoint is not None:
            weights = f"{model.checkpoint.parent.name}/{weights}"
        return f"{model.name}:{weights}"

    @classmethod
    def from_table(cls, table: TaskTable) -> ReplayTask:
        """Read the task's sweep file from the table and make the grid samplable.

        Raises:
            TableError: the grid is not a full product of its values (a sampler could then
                suggest a point the table does not have).
        """
        config = validate_model(ExperimentConfig, yaml.safe_load(table.task_config), table.task)
        values = {
            name: sorted({point[name] for point in table.points}, key=repr)
            for name in table.points[0]
        }
        for combination in itertools.product(*values.values()):
            table.index_of(dict(zip(values, combination, strict=True)))  # raises when missing
        parameters = {
            name: Fixed(value=options[0]) if len(options) == 1 else Choice(values=options)
            for name, options in values.items()
        }
        space = SearchSpace(name=f"{table.task}-grid", parameters=parameters)
        return cls(table, config, space)


class OneEpochTopK(FIFOScheduler):
    """Every trial pauses after its first epoch; once all have, the best ``keep`` resume.

    A replay baseline: the trials left paused never end, which a real sweep would not allow.

    Args:
        total: trials the searcher makes (every grid point).
        keep: how many continue.
    """

    def __init__(self, total: int, keep: int, metric: str = "val_accuracy") -> None:
        super().__init__()
        self.total, self.keep, self._metric = total, keep, metric
        self.first: dict[str, float] = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        """Pause after the first epoch, remembering its accuracy."""
        if result["epoch"] == 1:
            self.first[trial.trial_id] = result[self._metric]
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        """New trials first; then, once every first epoch is in, the best paused ones."""
        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == "PENDING":
                return trial
        if len(self.first) < self.total:
            return None
        ranked = sorted(self.first, key=lambda trial_id: -self.first[trial_id])
        best = set(ranked[: self.keep])
        for trial in trials:
            if trial.status == "PAUSED" and trial.trial_id in best:
                return trial
        return None


def _sweep(algorithm: str, scheduler: str, seed: int) -> SweepConfig:
    return SweepConfig.model_validate(
        {
            "search": {"algorithm": algorithm, "seed": seed},
            "scheduler": {"kind": scheduler},
        }
    )


def _sampled(
    task: ReplayTask,
    algorithm: str,
    scheduler: str,
    seed: int,
    key: str,
    history: Sequence[PastSweep] = (),
) -> Setup:
    sweep = _sweep(algorithm, scheduler, seed)
    log = DecisionLog(None, task.table.epochs)
    table = task.table
    searcher = create_searcher(
        sweep, key, log, space=task.space, num_layers=table.num_layers,
        base=task.config.settings, history=history, model=task.config.model.name,
    )  # fmt: skip
    return Setup(searcher, create_scheduler(sweep, table.epochs, key, log))


def _evidence_of(task: ReplayTask) -> TaskEvidence:
    evidence = task.table.evidence
    if evidence is None:
        raise TableError(
            f"task {task.table.task}: the table holds no stage-1 evidence ({EVIDENCE_FILE} is "
            "missing or empty), which every strategy that runs stage 1 needs"
        )
    return evidence


def _grid(task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep]) -> Setup:
    return Setup(GridSearcher(list(task.table.points)), FIFOScheduler())


def _one_epoch_topk(task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep]) -> Setup:
    points = list(task.table.points)
    random.Random(seed).shuffle(points)
    return Setup(GridSearcher(points), OneEpochTopK(len(points), TOP_K))


def _stage_one(setup: Setup, evidence: TaskEvidence, algorithm: str, veto: bool = False) -> Setup:
    """What ``nbft sweep`` adds: stage 1 on one worker, cheap evidence then from scratch,
    beside the search or after it as the sweep's 'auto' timing has it."""
    stage_one_s = evidence.cheap_s + evidence.scratch_s()
    if analysis_with_search(algorithm, veto=veto):
        setup.analysis_s = stage_one_s
    else:
        setup.after_search_s = stage_one_s
    return setup


def _evidence_veto(task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep]) -> Setup:
    evidence = _evidence_of(task)
    analysis = task.config.analysis
    policy = RegimePolicy(
        None,
        analysis.prune_on_provisional,
        analysis.prune_min_rows,
        task.config.sweep.protect_top_fraction,
        veto=True,
    )
    open_session(key, policy=policy)
    setup = _stage_one(_sampled(task, "tpe", "asha", seed, key), evidence, "tpe", veto=True)
    setup.evidence_s = setup.analysis_s
    setup.on_evidence = lambda: policy.update(evidence.document)
    return setup


def _tpe_rush(task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep]) -> Setup:
    """``nbft sweep``'s default search with an empty history: plain TPE and RUSH, then
    stage 1."""
    return _stage_one(
        _sampled(task, "zero_shot_model", "auto", seed, key), _evidence_of(task), "zero_shot_model"
    )


def _warm_started(
    task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep], document: dict
) -> Setup:
    """``nbft sweep`` with ``history``: it waits for the cheap evidence (features, probe,
    scores), then warm-starts from the history as ``document`` directs; no veto."""
    evidence = _evidence_of(task)
    policy = RegimePolicy(None, veto=False, pending=True)
    open_session(key, policy=policy)
    setup = _stage_one(_sampled(task, "nbft", "auto", seed, key, history), evidence, "nbft")
    setup.evidence_s = evidence.cheap_s
    setup.on_evidence = lambda: policy.update(document)
    return setup


def _nbft(task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep]) -> Setup:
    """As ``nbft sweep``: the past sweeps nearest in the task's evidence first."""
    return _warm_started(task, seed, key, history, _evidence_of(task).document)


def _nbft_random(task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep]) -> Setup:
    """``nbft`` with its past sweeps in a random order (by the seed) and the evidence hidden
    from the warm start, which then takes them in that order: neighbours by chance."""
    shuffled = list(history)
    random.Random(seed).shuffle(shuffled)
    document = _evidence_of(task).document
    blind = {k: v for k, v in document.items() if k not in ("table1", "scores")}
    return _warm_started(task, seed, key, shuffled, blind)


def _transfer(algorithm: str) -> Callable[..., Setup]:
    """An evidence-blind algorithm that learns from past sweeps, as ``nbft sweep`` runs it."""

    def factory(task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep]) -> Setup:
        setup = _sampled(task, algorithm, "auto", seed, key, history)
        return _stage_one(setup, _evidence_of(task), algorithm)

    return factory


def _plain(algorithm: str, scheduler: str) -> Callable[..., Setup]:
    def factory(task: ReplayTask, seed: int, key: str, history: Sequence[PastSweep]) -> Setup:
        return _sampled(task, algorithm, scheduler, seed, key)

    return factory


_FACTORIES: dict[str, Callable[[ReplayTask, int, str, Sequence[PastSweep]], Setup]] = {
    "grid": _grid,
    "random": _plain("random", "none"),
    "tpe": _plain("tpe", "none"),
    "random_asha": _plain("random", "asha"),
    "tpe_asha": _plain("tpe", "asha"),
    "one_epoch_topk": _one_epoch_topk,
    "tpe_rush": _tpe_rush,
    "evidence_veto": _evidence_veto,
    "nbft": _nbft,
    "nbft_random": _nbft_random,
    "zero_shot": _transfer("zero_shot"),
    "zero_shot_model": _transfer("zero_shot_model"),
    "bounding_box": _transfer("bounding_box"),
}


def make_setup(name: str, task: ReplayTask, seed: int, history: Sequence[PastSweep] = ()) -> Setup:
    """The searcher and scheduler of strategy ``name`` for one replay.

    Args:
        name: one of :data:`STRATEGIES`.
        task: the task replayed.
        seed: the search seed.
        history: past sweeps a strategy may learn from (never the task itself in a
            leave-one-task-out replay).

    Raises:
        TableError: an unknown strategy, or evidence the table lacks.
    """
    if name not in _FACTORIES:
        raise TableError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    key = f"replay://{task.table.task}/{name}/{seed}"
    setup = _FACTORIES[name](task, seed, key, history)
    setup.cleanup = lambda: close_session(key)
    return setup
