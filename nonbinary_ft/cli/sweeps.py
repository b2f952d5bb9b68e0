"""``nbft sweeps [ROOT]``: the sweeps under a storage root, their state and best result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nonbinary_ft.cli.common import JsonFlag, Verbose, out, print_json

__all__ = ["sweeps"]


def _accuracy(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def sweeps(
    root: Annotated[
        Path, typer.Argument(help="The storage root: sweep.storage.path of the sweeps.")
    ] = Path("runs"),
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """List the sweeps under a storage root: state, trials, best validation and test."""
    from dataclasses import asdict

    from nonbinary_ft.results.listing import list_sweeps

    found = list_sweeps(root)
    if json_output:
        print_json([asdict(summary) for summary in found])
        return
    table = Table(title=f"sweeps under {root}")
    for column in ("name", "state", "trials", "best val", "best test", "updated"):
        table.add_column(
            column, justify="right" if column.startswith(("trials", "best")) else "left"
        )
    for summary in found:
        table.add_row(
            summary.name, summary.state, f"{summary.completed}/{summary.trials}",
            _accuracy(summary.best_val), _accuracy(summary.best_test), summary.updated,
        )  # fmt: skip
    out.print(table)
    if not found:
        out.print(f"no sweep folder (holding sweep.yaml or trials.json) under {root}")
