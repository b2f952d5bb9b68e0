"""``nbft bench``: the replay benchmark's tables (collecting a task's learning curves)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nonbinary_ft.cli.common import JsonFlag, Verbose, err, handle_errors, out, print_json

__all__ = ["bench_app"]

bench_app = typer.Typer(
    name="bench",
    help="The replay benchmark: record a grid's learning curves to replay strategies on.",
    no_args_is_help=True,
)


@bench_app.command("collect")
@handle_errors
def collect(
    task_file: Annotated[Path, typer.Argument(help="The task's sweep file (YAML).")],
    grid: Annotated[
        Path, typer.Option("--grid", help="Search-space file of grids: the points to train.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="The table's folder.")],
    workers: Annotated[
        int | None,
        typer.Option(help="Trials at a time (default: sweep.resources.max_concurrent, or 1)."),
    ] = None,
    evidence: Annotated[
        bool, typer.Option(help="Also measure the task's stage-1 evidence.")
    ] = True,
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """Train every grid point of a task with every epoch recorded (resumes a killed run)."""
    from nonbinary_ft.history.table import read_table
    from nonbinary_ft.replay.collect import collect_task

    console = err if json_output else out
    folder = collect_task(
        task_file,
        grid,
        out_dir,
        workers=workers,
        evidence=evidence,
        progress=lambda line: console.print(line, highlight=False),
    )
    table = read_table(folder)
    summary = {
        "task": table.task,
        "folder": str(folder),
        "points": len(table.points),
        "epochs": table.epochs,
        "best_val_accuracy": table.best_val,
        "grid_compute_s": table.grid_compute_s,
        "evidence": table.evidence is not None,
    }
    if json_output:
        print_json(summary)
    else:
        console.print(
            f"{table.task}: {summary['points']} points x {table.epochs} epochs, best val "
            f"{table.best_val:.4f}, grid compute {table.grid_compute_s:.0f} s",
            highlight=False,
        )
