"""What each plot shows, computed from the results: pure functions, no matplotlib here.

Each builder returns a :class:`FigureRecord` whose ``data`` is a small chart record (the
points to draw, in the units shown: accuracies in percent) or :class:`NoData` with the reason,
which the report prints instead of an empty axis. The figures follow the paper's: accuracy
against the learning rate per number of re-initialised layers (figure 2), the lower-layer LR
split (figure 3), L2-SP strength and layers (figures 4 and 5), default against optimal
settings (figure 6), plus the sweep's progress against compute.

A point of a line is the best validation accuracy over the completed trials that share the
line's settings and the point's x value: in a sweep the other settings vary too, and the best
over them is what the paper's one-at-a-time curves approximate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from nonbinary_ft.results import BINARY_DEFAULT_LABEL, FinalEntry, Missing, PruningDecision
from nonbinary_ft.results import TrialResult as Trial

__all__ = [
    "NoData",
    "Series",
    "LineChart",
    "BarChart",
    "TrialPoint",
    "ProgressChart",
    "ImportanceChart",
    "FigureRecord",
    "MAX_SERIES",
    "lr_by_reinit",
    "low_layer_split",
    "l2sp_alpha",
    "l2sp_layers",
    "default_vs_optimal",
    "progress",
]

# More lines than this make a legend nobody can read; the best-scoring ones are kept.
MAX_SERIES = 8


@dataclass(frozen=True)
class NoData:
    """A plot that cannot be drawn, and why (shown as "not enough data: <reason>")."""

    reason: str


@dataclass(frozen=True)
class Series:
    """One line: points sorted by x."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class LineChart:
    """Lines of accuracy (percent) against a setting; ``references`` are horizontal lines."""

    x_label: str
    y_label: str
    series: tuple[Series, ...]
    log_x: bool = False
    x_ticks: tuple[tuple[float, str], ...] = ()
    references: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class BarChart:
    """Bars of mean test accuracy (percent) with std error bars and ensemble markers."""

    labels: tuple[str, ...]
    means: tuple[float, ...]
    errors: tuple[float, ...]
    ensembles: tuple[float | None, ...]
    y_label: str


@dataclass(frozen=True)
class TrialPoint:
    """A trial on the progress plot: compute spent when it ended, its best accuracy."""

    x: float
    y: float
    status: str
    trial_id: str


@dataclass(frozen=True)
class ProgressChart:
    """Best-so-far validation accuracy (a step line) against cumulative trial time."""

    x_label: str
    best_x: tuple[float, ...]
    best_y: tuple[float, ...]
    points: tuple[TrialPoint, ...]
    regions: tuple[tuple[float, str], ...] = ()


@dataclass(frozen=True)
class ImportanceChart:
    """Hyperparameter importances, largest first."""

    names: tuple[str, ...]
    values: tuple[float, ...]
    method: str
    num_trials: int


ChartData = LineChart | BarChart | ProgressChart | ImportanceChart | NoData


@dataclass(frozen=True)
class FigureRecord:
    """A plot of the report: ``key`` names its PNG file."""

    key: str
    title: str
    caption: str
    data: ChartData


ACCURACY = "validation accuracy (%)"


def _key(value: Any) -> Any:
    """Settings as group keys: floats rounded to 3 significant digits (0.0100000001 = 0.01)."""
    return float(f"{value:.3g}") if isinstance(value, float) else value


def _setting(trial: Trial, name: str, default: Any = None) -> Any:
    value = trial.settings.get(name)
    # An unset count (null in JSON) means its default: 0 low layers, plain L2, head only.
    return _key(default if value is None else value)


def _completed(trials: Sequence[Trial]) -> list[Trial]:
    return [t for t in trials if t.status == "completed" and t.best_val_accuracy is not None]


def _shown_note(trials: Sequence[Trial], shown: int) -> str:
    left_out = len(trials) - shown
    if not left_out:
        return f"All {shown} trials shown."
    return (
        f"{shown} of {len(trials)} trials shown: only completed trials count (pruned, "
        "stopped and diverged ones never reached the full budget)."
    )


def _best_by(
    trials: Sequence[Trial], group_of: Callable[[Trial], Hashable], x_of: Callable[[Trial], Any]
) -> dict[Hashable, dict[Any, float]]:
    best: dict[Hashable, dict[Any, float]] = defaultdict(dict)
    for trial in trials:
        points = best[group_of(trial)]
        x, y = x_of(trial), 100 * (trial.best_val_accuracy or 0.0)
        points[x] = max(points.get(x, y), y)
    return best


def _order(value: Any) -> Any:
    """A sort key for group keys mixing numbers, "all" and tuples of them (2 before 10)."""
    if isinstance(value, tuple):
        return tuple(_order(item) for item in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _series(
    groups: dict[Hashable, dict[Any, float]], label_of: Callable[[Any], str]
) -> tuple[tuple[Series, ...], int]:
    """Lines sorted by group, capped at MAX_SERIES (best peaks kept); also how many dropped."""
    ranked = sorted(groups, key=lambda g: -max(groups[g].values()))[:MAX_SERIES]
    kept = [g for g in sorted(groups, key=_order) if g in ranked]
    lines = tuple(
        Series(
            label_of(g), tuple(sorted(groups[g])), tuple(groups[g][x] for x in sorted(groups[g]))
        )
        for g in kept
    )
    return lines, len(groups) - len(kept)


def _dropped_note(dropped: int) -> str:
    return f" {dropped} more lines with lower peaks are not drawn." if dropped else ""


def lr_by_reinit(trials: Sequence[Trial]) -> FigureRecord:
    """Figure 2: validation accuracy against ``lr_high``, one line per ``reinit_layers``."""
    title = "Learning rate per number of re-initialised layers (paper's figure 2)"
    done = _completed(trials)
    lrs = {_setting(t, "lr_high") for t in done}
    if len(lrs) < 2:
        why = "no completed trial" if not done else f"every completed trial used lr_high={lrs}"
        return FigureRecord("fig2_lr_by_reinit", title, "", NoData(why))
    groups = _best_by(
        done, lambda t: _setting(t, "reinit_layers", 1), lambda t: _setting(t, "lr_high")
    )
    lines, dropped = _series(groups, lambda k: f"{k} layer{'s' if k != 1 else ''} re-initialised")
    caption = (
        "Best validation accuracy at each learning rate of the transferred layers, per number "
        "of re-initialised layers (the paper found the best LR lower when more layers are "
        f"re-initialised). {_shown_note(trials, len(done))}{_dropped_note(dropped)}"
    )
    chart = LineChart("lr_high (transferred layers)", ACCURACY, lines, log_x=True)
    return FigureRecord("fig2_lr_by_reinit", title, caption, chart)


def low_layer_split(trials: Sequence[Trial]) -> FigureRecord:
    """Figure 3: accuracy against ``low_layers``, one line per (k, lr_high, lr_low).

    A trial with ``low_layers = 0`` has no low LR; it is the n = 0 point of every line with
    its (k, lr_high).
    """
    title = "Lower layers at a lower learning rate (paper's figure 3)"
    key = "fig3_low_layer_split"
    done = _completed(trials)
    counts = {_setting(t, "low_layers", 0) for t in done}
    if not any(n > 0 for n in counts):
        return FigureRecord(key, title, "", NoData("no completed trial set low_layers > 0"))
    if len(counts) < 2:
        return FigureRecord(
            key, title, "", NoData(f"every completed trial has low_layers={counts}")
        )

    def head(t: Trial) -> tuple[Any, Any]:
        return (_setting(t, "reinit_layers", 1), _setting(t, "lr_high"))

    split = [t for t in done if _setting(t, "low_layers", 0) > 0]
    groups = _best_by(
        split, lambda t: (*head(t), _setting(t, "lr_low")), lambda t: _setting(t, "low_layers", 0)
    )
    base = _best_by([t for t in done if _setting(t, "low_layers", 0) == 0], head, lambda t: 0)
    for group, points in groups.items():
        points.update(base.get(group[:2], {}))
    lines, dropped = _series(groups, lambda g: f"k={g[0]}, lr {g[1]:g} / low {g[2]:g}")
    caption = (
        "Best validation accuracy against the number of lower layers trained at the low "
        "learning rate; legend: re-initialised layers, high LR / low LR (the paper found the "
        "split helps when the best LR is high). "
        f"{_shown_note(trials, len(done))}{_dropped_note(dropped)}"
    )
    chart = LineChart("low_layers (trained at lr_low)", ACCURACY, lines)
    return FigureRecord(key, title, caption, chart)


def _l2sp_label(m: Any) -> str:
    return "L2-SP on all transferred layers" if m == "all" else f"L2-SP on the lowest {m} layers"


def l2sp_alpha(trials: Sequence[Trial]) -> FigureRecord:
    """Figure 4: accuracy against the L2-SP strength ``alpha``, one line per ``l2sp_layers``."""
    title = "L2-SP strength (paper's figure 4)"
    key = "fig4_l2sp_alpha"
    done = _completed(trials)
    l2sp = [t for t in done if _setting(t, "l2sp_layers", 0) not in (0, None)]
    alphas = {_setting(t, "alpha") for t in l2sp}
    if not l2sp:
        return FigureRecord(key, title, "", NoData("no completed trial used L2-SP (l2sp_layers=0)"))
    if len(alphas) < 2:
        return FigureRecord(key, title, "", NoData(f"every L2-SP trial used alpha={alphas}"))
    groups = _best_by(l2sp, lambda t: _setting(t, "l2sp_layers"), lambda t: _setting(t, "alpha"))
    lines, dropped = _series(groups, _l2sp_label)
    plain = [100 * (t.best_val_accuracy or 0.0) for t in done if _setting(t, "l2sp_layers", 0) == 0]
    references = (("best plain L2 (l2sp_layers=0)", max(plain)),) if plain else ()
    caption = (
        "Best validation accuracy against alpha, the strength of the decay towards the "
        "pre-trained weights, per number of L2-SP layers; the dashed line is the best trial "
        "with plain L2 (the paper: L2-SP helps when the weights fit well, and lower alpha is "
        f"usually better). {_shown_note(trials, len(done))}{_dropped_note(dropped)}"
    )
    chart = LineChart("alpha (L2-SP strength)", ACCURACY, lines, log_x=True, references=references)
    return FigureRecord(key, title, caption, chart)


def l2sp_layers(trials: Sequence[Trial]) -> FigureRecord:
    """Figure 5: accuracy against ``l2sp_layers`` (0 = plain L2), one line per (alpha, beta).

    ``"all"`` is placed one step right of the largest number. A plain-L2 trial has no alpha;
    it is the 0 point of every line with its beta.
    """
    title = "L2-SP layers, L2 on the rest (paper's figure 5)"
    key = "fig5_l2sp_layers"
    done = _completed(trials)
    values = {_setting(t, "l2sp_layers", 0) for t in done}
    if len(values) < 2:
        why = (
            "no completed trial" if not done else f"every completed trial has l2sp_layers={values}"
        )
        return FigureRecord(key, title, "", NoData(why))
    numbers = [v for v in values if v != "all"]
    all_at = max(numbers, default=0) + 1

    def position(t: Trial) -> float:
        m = _setting(t, "l2sp_layers", 0)
        return all_at if m == "all" else m

    l2sp = [t for t in done if _setting(t, "l2sp_layers", 0) != 0]
    groups = _best_by(l2sp, lambda t: (_setting(t, "alpha"), _setting(t, "beta")), position)
    plain = _best_by(
        [t for t in done if _setting(t, "l2sp_layers", 0) == 0],
        lambda t: _setting(t, "beta"),
        position,
    )
    for group, points in groups.items():
        points.update(plain.get(group[1], {}))
    for beta, points in plain.items():
        if not any(group[1] == beta for group in groups):
            groups[("L2", beta)] = points
    lines, dropped = _series(
        groups,
        lambda g: f"plain L2, beta {g[1]:g}" if g[0] == "L2" else f"alpha {g[0]:g}, beta {g[1]:g}",
    )
    ticks = tuple(
        (
            float(all_at if v == "all" else v),
            "all" if v == "all" else ("0 (L2)" if v == 0 else str(v)),
        )
        for v in sorted(values, key=lambda v: all_at if v == "all" else v)
    )
    caption = (
        "Best validation accuracy against the number of lower layers decayed towards their "
        "pre-trained values (L2-SP, strength alpha); every other weight decays towards 0 (L2, "
        "strength beta). The paper found a mix of L2-SP below and L2 above best where the "
        f"weights fit poorly. {_shown_note(trials, len(done))}{_dropped_note(dropped)}"
    )
    chart = LineChart("l2sp_layers (L2-SP on the lowest m)", ACCURACY, lines, x_ticks=ticks)
    return FigureRecord(key, title, caption, chart)


def default_vs_optimal(final: Sequence[FinalEntry] | Missing) -> FigureRecord:
    """Figure 6: mean test accuracy over seeds (std error bars) per final entry, default first."""
    title = "Binary default against the best settings (paper's figure 6)"
    key = "fig6_default_vs_optimal"
    if isinstance(final, Missing):
        return FigureRecord(key, title, "", NoData(f"no final runs ({final.reason})"))
    measured = [entry for entry in final if entry.mean is not None]
    if not measured:
        return FigureRecord(key, title, "", NoData("no final entry has a test accuracy"))
    measured.sort(key=lambda entry: entry.label != BINARY_DEFAULT_LABEL)
    labels = tuple(
        f"{e.label}\n({sum(a is not None for a in e.test_accuracies)}/{len(e.seeds)} seeds)"
        for e in measured
    )
    chart = BarChart(
        labels=labels,
        means=tuple(100 * (e.mean or 0.0) for e in measured),
        errors=tuple(100 * (e.std or 0.0) for e in measured),
        ensembles=tuple(
            None if e.ensemble_accuracy is None else 100 * e.ensemble_accuracy for e in measured
        ),
        y_label="test accuracy (%)",
    )
    caption = (
        "Mean test accuracy over the seeds, error bars one standard deviation; diamonds mark "
        "the accuracy of the seeds' ensemble (averaged softmax). Both settings ran in the same "
        "sweep, on the same splits."
    )
    return FigureRecord(key, title, caption, chart)


def _unit(total_s: float) -> tuple[float, str]:
    if total_s >= 2 * 3600:
        return 3600.0, "h"
    if total_s >= 120:
        return 60.0, "min"
    return 1.0, "s"


def _compute_at(trials: Sequence[Trial], when: float) -> float | None:
    """Trial time spent by wall time ``when`` (seconds since start); None without timestamps."""
    timed = [t for t in trials if t.started_at is not None and t.ended_at is not None]
    if not timed:
        return None
    spent = 0.0
    for t in timed:
        wall = max((t.ended_at or 0.0) - (t.started_at or 0.0), 1e-9)
        overlap = min(max(when - (t.started_at or 0.0), 0.0), wall)
        spent += t.time_s * overlap / wall
    return spent


def progress(trials: Sequence[Trial], pruning: Sequence[PruningDecision] | Missing) -> FigureRecord:
    """Best-so-far validation accuracy against cumulative trial time, pruned trials marked."""
    title = "Best so far against compute"
    key = "progress"
    if not any(t.best_val_accuracy is not None for t in trials):
        return FigureRecord(key, title, "", NoData("no trial reported a validation accuracy"))
    order = sorted(
        range(len(trials)),
        key=lambda i: (trials[i].ended_at is None, trials[i].ended_at or 0.0, i),
    )
    scale, unit = _unit(sum(t.time_s for t in trials))
    spent, points, best_x, best_y = 0.0, [], [], []
    best: float | None = None
    for index in order:
        trial = trials[index]
        spent += trial.time_s
        if trial.best_val_accuracy is None:
            continue
        y = 100 * trial.best_val_accuracy
        points.append(TrialPoint(spent / scale, y, trial.status, trial.trial_id))
        if trial.status == "completed" and (best is None or y > best):
            best = y
            best_x.append(spent / scale)
            best_y.append(y)
    if best_x:
        best_x.append(spent / scale)  # the step line runs on to the end of the sweep
        best_y.append(best_y[-1])
    regions: list[tuple[float, str]] = []
    if not isinstance(pruning, Missing):
        for decision in pruning:
            at = _compute_at(trials, decision.time_s) if decision.trial_id is None else None
            if at is not None:
                regions.append((at / scale, str(decision.kind)))
    caption = (
        "Best validation accuracy of the completed trials against the trial time spent so "
        "far (trials in the order they ended); crosses mark pruned trials, triangles trials "
        "stopped early by the scheduler, dotted lines the moments a region of the space was "
        "ruled out."
    )
    chart = ProgressChart(
        f"cumulative trial time ({unit})",
        tuple(best_x),
        tuple(best_y),
        tuple(points),
        tuple(regions),
    )
    return FigureRecord(key, title, caption, chart)
