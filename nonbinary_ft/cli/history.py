"""``nbft history``: the past sweeps a search learns from, and what it would take first.

nbft history [--tracking-uri URI] [--table DIR ...] [--for SWEEP_FILE] [--no-prior] [--json]
nbft history export RUN_ID --tracking-uri URI --out DIR
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nonbinary_ft.cli.common import JsonFlag, Verbose, handle_errors, out, print_json

__all__ = ["history_app"]

history_app = typer.Typer(
    name="history",
    help="Past sweeps (MLflow parent runs tagged nbft.history.*, replay tables): list, export.",
    invoke_without_command=True,
)

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI of the history (default: that of --for's sweep file).",
    ),
]


def _first_trials(
    sweep_file: Path, history: list[Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The cheap evidence of ``sweep_file``'s target (measured only for a search that picks
    its first trials by it), and the trials its warm start runs: the past settings fitted to
    the sweep's space and model, as the sweep would run them."""
    from nonbinary_ft.analysis import analyse
    from nonbinary_ft.config import load_config
    from nonbinary_ft.search.algorithms import get_algorithm, warm_start_trials
    from nonbinary_ft.search.warm_start import EvidenceVector
    from nonbinary_ft.tuning.plan import plan_sweep

    config = load_config(sweep_file)
    plan = plan_sweep(config, sweep_file)
    search = config.sweep.search
    algorithm = get_algorithm(search.algorithm)
    document: dict[str, Any] = {}
    if algorithm.waits_for_evidence:
        workdir = Path("runs") / config.name / "analysis"
        document = analyse(config, workdir=workdir, scratch=False).to_dict()
    chosen = warm_start_trials(
        algorithm, EvidenceVector.from_document(document), history, search.warm_start,
        config.model.name, plan.spaces[0], plan.num_layers, config.settings,
    )  # fmt: skip
    return document, [
        {"settings": first.settings, "reason": first.point.reason} for first in chosen
    ]


def _existing_store(tracking_uri: str) -> str:
    """``--tracking-uri`` when it is no SQLite file or one that exists: MLflow would create
    a missing one, and a mistyped path would read as a store without past sweeps."""
    from nonbinary_ft.errors import ConfigError
    from nonbinary_ft.tracking.server import mlflow_database

    database = mlflow_database(tracking_uri)
    if database is not None and not database.is_file():
        raise ConfigError(
            "--tracking-uri", "an MLflow store that exists", tracking_uri, f"No file {database}."
        )
    return tracking_uri


def _tracking_uri(tracking_uri: str | None, sweep_file: Path | None) -> str | None:
    if tracking_uri is not None:
        return _existing_store(tracking_uri)
    if sweep_file is None:
        return None
    from nonbinary_ft.config import load_config
    from nonbinary_ft.tuning.plan import plan_sweep

    config = load_config(sweep_file)
    return config.sweep.search.history_uri or plan_sweep(config, sweep_file).tracking_uri


def _rule_lines(comparison: Any) -> list[str]:
    paper = comparison.paper_accuracy
    lines = [
        f"regime rule on {comparison.sweeps} past sweeps whose winner tells the regime: "
        f"the paper's rule right on {'-' if paper is None else f'{100 * paper:.0f} %'}"
    ]
    if comparison.refit is not None:
        fit = comparison.refit
        lines.append(
            f"refit: {fit.text}; right on {100 * fit.train_accuracy:.0f} % "
            f"({100 * fit.cv_accuracy:.0f} % leave-one-sweep-out)"
        )
    return lines


def _show(history: list[Any], points: list[Any], comparison: Any) -> None:
    table = Table(title=f"{len(history)} past sweeps")
    columns = ("sweep", "from", "regime", "fixed-feature acc", "Fisher", "best val", "winner")
    for column in columns:
        table.add_column(column)
    for past in history:
        best = f"{past.ranked[0][1]:.3f}" if past.ranked else "-"
        table.add_row(
            past.name, past.origin, past.regime, f"{past.evidence.fixed_feature_accuracy:.3f}",
            f"{past.evidence.fisher:.3g}", best, str(past.winner),
        )  # fmt: skip
    out.print(table)
    for line in _rule_lines(comparison):
        out.print(line, highlight=False)
    for index, point in enumerate(points, 1):
        line = f"first trial {index}: {point['settings']}  <- {point['reason']}"
        out.print(line, highlight=False)


@history_app.callback()
@handle_errors
def history(
    ctx: typer.Context,
    tracking_uri: TrackingUri = None,
    tables: Annotated[
        list[Path] | None, typer.Option("--table", help="A replay table's folder (repeatable).")
    ] = None,
    sweep_file: Annotated[
        Path | None,
        typer.Option(
            "--for",
            help="A sweep file: list the past settings its search would try first, fitted "
            "to its space and model (search 'nbft' measures the cheap evidence first: "
            "features, probe, scores).",
        ),
    ] = None,
    prior: Annotated[
        bool, typer.Option(help="Include the prior shipped with the package.")
    ] = True,
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """List the past sweeps (the user's store, the tracking server's, tables, the prior);
    with --for, what a new sweep would start from."""
    if ctx.invoked_subcommand is not None:
        return
    from nonbinary_ft.history.store import (
        read_prior,
        read_tables,
        read_user_store,
        unique,
        user_store,
    )
    from nonbinary_ft.search.regime_fit import refit_rule
    from nonbinary_ft.tracking.history import read_history

    uri = _tracking_uri(tracking_uri, sweep_file)
    history = read_user_store() + (read_history(uri) if uri else []) + read_tables(tables or [])
    history = unique(history + (read_prior() if prior else []))
    document, points = _first_trials(sweep_file, history) if sweep_file else (None, [])
    comparison = refit_rule(history)
    if json_output:
        print_json(
            {
                "tracking_uri": uri,
                "user_store": str(user_store()),
                "history": history,
                "regime_rule": comparison,
                "evidence": (document or {}).get("table1"),
                "first_trials": points,
            }
        )
        return
    _show(history, points, comparison)


@history_app.command("export")
@handle_errors
def export(
    run_id: Annotated[str, typer.Argument(help="The sweep's MLflow parent run id.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The table's folder.")],
    tracking_uri: Annotated[str, typer.Option("--tracking-uri", help="MLflow tracking URI.")],
    verbose: Verbose = False,
) -> None:
    """Write a past sweep's search trials as a replay table (benchmarks.replay reads it)."""
    import tempfile

    import yaml

    from nonbinary_ft.config import ExperimentConfig, validate_model
    from nonbinary_ft.history.store import export_table
    from nonbinary_ft.results import Missing, ResultsError
    from nonbinary_ft.tracking.artifacts import load_from_mlflow

    with tempfile.TemporaryDirectory() as workdir:
        results = load_from_mlflow(run_id, _existing_store(tracking_uri), workdir)
    if isinstance(results.sweep_yaml, Missing) or isinstance(results.analysis, Missing):
        raise ResultsError(f"run {run_id}: its results hold no sweep.yaml or no analysis.json")
    config = validate_model(
        ExperimentConfig, yaml.safe_load(results.sweep_yaml), f"run {run_id}: sweep.yaml"
    )
    num_layers = int(results.analysis.to_document().get("num_layers") or 0)
    folder = export_table(results, out_dir, num_layers, config.train.epochs)
    out.print(f"wrote the replay table {folder}", highlight=False)
