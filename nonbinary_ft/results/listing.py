"""The sweeps under a storage root, each with its state and best result: ``nbft sweeps``.

A sweep's run folder (``<root>/<name>``) holds ``sweep.yaml`` and the results files; its
state is read from them alone, so the listing works on a finished, a stopped or a running
sweep, without Ray or MLflow:

- ``finished``: stage 3 wrote its final runs and the environment its end time;
- ``searching``: trials are written, stage 3 is not (running, or stopped: ``nbft sweep
  --resume`` continues it);
- ``planned``: the sweep file only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from nonbinary_ft.results.io import SWEEP_FILE, TRIALS_FILE, ResultsError, load_results
from nonbinary_ft.results.schema import BEST_LABEL, Missing
from nonbinary_ft.vocabulary import TrialStatus

__all__ = ["SweepSummary", "list_sweeps"]


@dataclass(frozen=True)
class SweepSummary:
    """One sweep of a storage root.

    Attributes:
        name: the sweep's name (its folder's name when the sweep file names none).
        folder: its run folder.
        state: ``finished``, ``searching`` or ``planned``.
        trials: search trials written; ``completed`` of them ran to the end.
        best_val: the best validation accuracy of the search (None before any).
        best_test: the best setting's mean test accuracy over the final seeds (None before).
        updated: when a results file last changed (ISO 8601, UTC).
    """

    name: str
    folder: str
    state: str
    trials: int
    completed: int
    best_val: float | None
    best_test: float | None
    updated: str


def _summary(folder: Path) -> SweepSummary:
    results = load_results(folder)
    trials = () if isinstance(results.trials, Missing) else results.trials
    done = [t for t in trials if t.status == TrialStatus.COMPLETED]
    scores = [t.final_val_accuracy for t in done if t.final_val_accuracy is not None]
    final = () if isinstance(results.final, Missing) else results.final
    best = [entry.mean for entry in final if entry.label == BEST_LABEL]
    ended = not isinstance(results.environment, Missing) and results.environment.ended_at
    state = "finished" if final and ended else "searching" if trials else "planned"
    stamp = max(path.stat().st_mtime for path in folder.iterdir() if path.is_file())
    return SweepSummary(
        name=results.name or folder.name,
        folder=str(folder),
        state=state,
        trials=len(trials),
        completed=len(done),
        best_val=max(scores) if scores else None,
        best_test=best[0] if best else None,
        updated=dt.datetime.fromtimestamp(stamp, dt.timezone.utc).isoformat(timespec="seconds"),
    )


def list_sweeps(root: str | Path) -> list[SweepSummary]:
    """Every sweep folder directly under ``root``, the most recently updated first.

    Raises:
        ResultsError: ``root`` is not a folder.
    """
    path = Path(root)
    if not path.is_dir():
        raise ResultsError(f"ROOT {root} is not a folder (the sweeps' storage root, e.g. runs)")
    folders = [
        child
        for child in sorted(path.iterdir())
        if child.is_dir() and ((child / SWEEP_FILE).is_file() or (child / TRIALS_FILE).is_file())
    ]
    summaries = []
    for folder in folders:
        try:
            summaries.append(_summary(folder))
        except ResultsError:
            continue  # a folder that only looks like a sweep's
    return sorted(summaries, key=lambda s: s.updated, reverse=True)
