"""The replay benchmark: every strategy on every task's table, many seeds, in seconds.

    python -m benchmarks.replay [--tables DIR] [--history DIR] [--tasks suite-near,...]
        [--strategies tpe_asha,...] [--seeds 20] [--workers 1,8] [--budget 0.5]
        [--out benchmarks/replay/results]

Prints one JSON document: ``results`` (one row per task, strategy and worker count: the
median compute to come within 0.3 points of the table's best validation accuracy, how many
seeds reached it, the median final regret and the chosen configs' test accuracy),
``science`` (per task, the regime the evidence predicts against the table's best point on
table 7's rows), ``worse_than_tpe_asha`` (per task and worker count, the budgets where each
strategy's median regret is worse than TPE + ASHA's by more than the seeds' spread) and
``plots`` (regret against compute, one PNG per task). Strategies that
learn from other tasks see every table replayed and the project's tables (``--history``),
never the one replayed (leave one task out).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from nonbinary_ft.replay.benchmark import (
    DEFAULT_BUDGET,
    budgets_worse,
    run_benchmark,
    science_row,
)
from nonbinary_ft.replay.plots import write_regret_plots
from nonbinary_ft.replay.strategies import STRATEGIES
from nonbinary_ft.replay.table import CURVES_FILE, read_table
from nonbinary_ft.results import jsonable
from nonbinary_ft.search.regime_fit import refit_rule

HERE = Path(__file__).resolve().parent


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def science_table(rows: list) -> str:
    """The regime against each table's best point, as Markdown: a wrong prediction shows."""
    lines = [
        "| task | regime (gap, Fisher) | best point (val) | LR | re-init | L2-SP | low layers |",
        "|---|---|---|---|---|---|---|",
    ]
    mark = {True: "agrees", False: "**disagrees**", None: "-"}
    for row in rows:
        best = row.best_settings
        gap = "-" if row.gap is None else f"{row.gap:+.2f}"
        fisher = "-" if row.fisher is None else f"{row.fisher:.2f}"
        point = (
            f"k={best['reinit_layers']} lr={best['lr_high']:g} n={best['low_layers']} "
            f"m={best['l2sp_layers']} ({100 * row.best_val:.1f})"
        )
        cells = [
            mark[row.agrees.get(name)]
            for name in ("lr_high", "reinit_layers", "l2sp_layers", "low_layers")
        ]
        lines.append(
            f"| {row.task} | {row.regime} ({gap}, {fisher}) | {point} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def rule_text(rule: Any) -> str:
    """The paper's regime rule against the one refit on these tasks, as a Markdown line."""
    paper = "-" if rule.paper_accuracy is None else f"{100 * rule.paper_accuracy:.0f} %"
    line = f"The paper's rule gave the regime the winner speaks for on {paper} of {rule.sweeps}"
    line += " tasks"
    if rule.refit is not None:
        fit = rule.refit
        line += (
            f"; refit on them, `{fit.text}` is right on {100 * fit.train_accuracy:.0f} % "
            f"({100 * fit.cv_accuracy:.0f} % leave-one-task-out)"
        )
    return line + ".\n"


def results_table(rows: list) -> str:
    """Median compute to target (share of the grid's) and seeds that reached it, as Markdown."""
    lines = [
        "| task | strategy | W | median compute to target | reached | final regret |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        fraction = (
            "-"
            if row.median_fraction_to_target is None
            else f"{100 * row.median_fraction_to_target:.1f} %"
        )
        lines.append(
            f"| {row.task} | {row.strategy} | {row.workers} | {fraction} "
            f"| {row.reached}/{row.seeds} | {row.median_final_regret:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _worse_than_reference(curves: list, reference: str) -> dict[str, list[float]]:
    """'task/strategy/W' -> the budgets where it is worse than ``reference`` beyond spread."""
    by_key = {(c.task, c.strategy, c.workers): c for c in curves}
    worse = {}
    for curve in curves:
        base = by_key.get((curve.task, reference, curve.workers))
        if curve.strategy != reference and base is not None:
            worse[f"{curve.task}/{curve.strategy}/{curve.workers}"] = budgets_worse(curve, base)
    return worse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=Path, default=HERE / "tables")
    parser.add_argument(
        "--history",
        type=Path,
        default=HERE / "tables",
        help="tables a learning strategy may also learn from (never the task replayed); "
        "default: the project's",
    )
    parser.add_argument("--tasks", type=_names, default=None, help="default: every table")
    parser.add_argument("--strategies", type=_names, default=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=lambda t: [int(w) for w in _names(t)], default=[1, 8])
    parser.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET, help="share of the grid's compute"
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)

    folders = sorted(path.parent for path in args.tables.glob(f"*/{CURVES_FILE}"))
    if args.tasks is not None:
        folders = [folder for folder in folders if folder.name in args.tasks]
    unknown = sorted(set(args.strategies) - set(STRATEGIES))
    if not folders or unknown:
        what = f"unknown strategies {unknown}" if unknown else f"no tables under {args.tables}"
        print(f"error: {what}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    history = sorted(path.parent for path in args.history.glob(f"*/{CURVES_FILE}"))
    rows, curves = run_benchmark(
        folders, args.strategies, range(args.seeds), args.workers, args.budget, args.processes,
        history,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    plots = write_regret_plots(curves, args.out)
    worse = _worse_than_reference(curves, "tpe_asha")
    science = [science_row(read_table(folder)) for folder in folders]
    rule = refit_rule([read_table(folder).as_past_sweep() for folder in folders])
    document = {
        "tasks": [folder.name for folder in folders],
        "strategies": args.strategies,
        "seeds": args.seeds,
        "workers": args.workers,
        "budget_fraction": args.budget,
        "replay_s": round(elapsed, 1),
        "results": [dataclasses.asdict(row) for row in rows],
        "science": [dataclasses.asdict(row) for row in science],
        "regime_rule": dataclasses.asdict(rule),
        "worse_than_tpe_asha": worse,
        "plots": [str(path) for path in plots],
    }
    (args.out / "replay.json").write_text(json.dumps(jsonable(document), indent=2) + "\n")
    (args.out / "science.md").write_text(science_table(science) + "\n" + rule_text(rule))
    (args.out / "results.md").write_text(results_table(rows))
    print(science_table(science), file=sys.stderr)
    print(json.dumps(jsonable(document), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
