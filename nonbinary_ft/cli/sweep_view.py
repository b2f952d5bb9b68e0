"""How ``nbft sweep`` shows a plan, the live progress and the result (rich; no computing)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

__all__ = ["show_plan", "show_result", "SweepDisplay"]

STATUS_STYLE = {
    "running": "cyan",
    "pending": "dim",
    "completed": "green",
    "pruned": "yellow",
    "early_stopped": "yellow",
    "diverged": "red",
    "error": "bold red",
    "stopped": "magenta",
}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _settings_text(settings: dict[str, Any] | None) -> str:
    if not settings:
        return "-"
    short = {"reinit_layers": "k", "low_layers": "n", "l2sp_layers": "m"}
    parts = []
    for name, value in settings.items():
        if value is None:
            continue
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{short.get(name, name)}={shown}")
    return " ".join(parts)


STAGE_ONE_WORDS = {
    "with_search": "from the start, beside the search (analysis.when)",
    "after_search": "after the search, beside stage 3 (analysis.when)",
    "off": "not run (analysis.in_sweep: false)",
}


def show_plan(plan: Any, console: Console) -> None:
    """Print what ``--dry-run`` resolved: the space, trials, resources and the estimate."""
    cost = plan.cost
    table = Table(title=f"{plan.name}: sweep plan (nothing started)", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    rows = [
        ("model", f"{plan.model_name} ({plan.num_layers} layers)"),
        ("search", plan.algorithm),
        ("search trials", str(plan.num_trials)),
        ("final trials", f"{cost.final_trials} (top N x seeds, test split)"),
        ("baseline re-runs", f"at most {cost.baseline_trials_max} (binary baseline x seeds)"),
        ("stage 1 (analysis)", STAGE_ONE_WORDS[plan.stage_one]),
        ("from-scratch run", f"{cost.scratch_epochs} epochs (stage 1; 0 when cached)"),
        ("resources per trial", f"{plan.resources['CPU']:g} CPU, {plan.resources['GPU']:g} GPU"),
        (
            "epochs per trial",
            f"{cost.epochs_per_trial} (expected {cost.expected_epochs_per_trial:g})",
        ),
        ("epoch time (assumed)", f"{cost.epoch_time_s:g} s (sweep.budget.epoch_time_s)"),
        ("trial-hours", f"{cost.trial_hours:g} (at most: every stage)"),
        ("GPU-hours", f"{cost.gpu_hours:g}"),
        ("storage", plan.storage.root),
        ("MLflow", f"{plan.tracking_uri} (experiment {plan.mlflow_experiment!r})"),
    ]
    if cost.max_wall_time_s:
        rows.append(("wall-time cap", f"{cost.max_wall_time_s:g} s (search stage)"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for note in plan.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(Syntax(plan.spaces_yaml(), "yaml", background_color="default"))


class SweepDisplay:
    """A live panel (one screen) of a running sweep: counts, best so far, recent trials.

    Args:
        console: where to draw (stderr, so that --json keeps stdout).
        name: the sweep's name.
    """

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self.live = Live(console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> SweepDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def update(self, progress: Any) -> None:
        """Redraw from a ``SweepProgress`` snapshot."""
        self.live.update(self.render(progress))

    def render(self, progress: Any) -> Panel:
        """The panel for one snapshot (at most a screen: the newest trials first)."""
        counts = progress.counts
        done = sum(v for k, v in counts.items() if k not in ("running", "pending"))
        summary = Text(
            f"{progress.stage}: {done}/{progress.total} done  "
            f"running {counts.get('running', 0)}  pending {counts.get('pending', 0)}  "
            f"pruned {counts.get('pruned', 0) + counts.get('early_stopped', 0)}  "
            f"diverged {counts.get('diverged', 0)}  errors {counts.get('error', 0)}  "
            f"{progress.elapsed_s:.0f} s"
        )
        best = Text(
            f"best val acc {_percent(progress.best_val_accuracy)} %  "
            f"{_settings_text(progress.best_settings)}",
            style="bold",
        )
        table = Table(expand=True, pad_edge=False)
        for column in ("trial", "status", "epoch", "val acc %", "settings"):
            table.add_column(column, no_wrap=column != "settings")
        room = max(3, self.console.height - 10)
        order = {"running": 0, "pending": 2}
        rows = sorted(progress.rows, key=lambda r: (order.get(r.status, 1), r.trial_id))
        for row in rows[:room]:
            style = STATUS_STYLE.get(row.status, "")
            table.add_row(
                row.trial_id,
                Text(row.status, style=style),
                str(row.epoch),
                _percent(row.val_accuracy),
                _settings_text(row.settings),
            )
        hidden = len(rows) - room
        footer = Text(f"... {hidden} more", style="dim") if hidden > 0 else Text("")
        return Panel(Group(summary, best, table, footer), title=f"nbft sweep {self.name}")


def show_result(result: Any, console: Console) -> None:
    """Print the search counts, the best settings and the final runs' statistics."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts().items()))
    console.print(f"[bold]{result.name}[/bold]: search trials: {counts}", highlight=False)
    best = result.best
    if best is not None:
        console.print(
            f"best val accuracy {_percent(best.val_accuracy)} % with "
            f"{_settings_text(best.settings)}",
            highlight=False,
        )
    if result.finals:
        table = Table(title="final runs (test split)")
        for column in ("", "settings", "seeds", "test acc % (mean +- std)", "ensemble %"):
            table.add_column(column)
        for final in result.finals:
            mean_std = (
                "-" if final.mean is None else f"{_percent(final.mean)} +- {_percent(final.std)}"
            )
            table.add_row(
                final.label,
                _settings_text(final.settings),
                ",".join(str(s) for s in final.seeds),
                mean_std,
                _percent(final.ensemble_accuracy),
            )
        console.print(table)
    console.print(
        f"MLflow: {result.tracking_uri} (experiment {result.mlflow_experiment!r}, parent run "
        f"{result.parent_run_id}); Ray results: {result.storage}",
        highlight=False,
    )
    show_published(result, console)


def show_published(result: Any, console: Console) -> None:
    """Where the report is, and how to browse the sweep's runs in the MLflow UI."""
    published = result.published
    if published is not None and published.report_html:
        console.print(
            f"report: {published.report_html} and {published.report_markdown}",
            highlight=False,
            soft_wrap=True,
        )
    for note in published.notes if published is not None else ():
        console.print(f"[yellow]warning[/yellow]: {note}", highlight=False, soft_wrap=True)
    if published is not None and published.mlflow_database:
        console.print(
            f"MLflow database: {published.mlflow_database}", highlight=False, soft_wrap=True
        )
    command = (published.mlflow_ui_command if published is not None else None) or (
        f"mlflow ui --backend-store-uri {result.tracking_uri}"
    )
    console.print(f"browse the runs: {command}", highlight=False, soft_wrap=True)
    if result.runs_page:
        console.print(f"  then open {result.runs_page}", highlight=False, soft_wrap=True)
    if result.models is not None and result.models.uri:
        load = f"mlflow.pyfunc.load_model('{result.models.uri}')"
        console.print(f"model: {result.models.uri}  (load it: {load})", highlight=False,
                      soft_wrap=True)  # fmt: skip
