"""The replay benchmark: every strategy on every task's table, many seeds, in minutes.

    python -m benchmarks.replay [--tables DIR] [--history DIR] [--split FILE]
        [--tasks suite-near,...] [--strategies tpe_asha,...] [--seeds 10] [--workers 1,8]
        [--budget 0.25] [--holdouts task,source] [--exhaustive] [--out DIR]

Prints one JSON document:

- ``results``: one row per task, strategy (and, for strategies that learn from past
  sweeps, holdout: ``task`` leaves the task out, ``source`` every table of its pre-trained
  source) and worker count: ``normalised_regret`` (the incumbent's test regret, keyed by
  budget as a share of the grid's compute, mean over seeds), ``target_points`` (how many
  points are as good as the best within the seeds' noise), ``charged_analysis_s`` (the
  stage-1 compute the strategy's real sweep pays), the median compute to target and how many
  seeds reached it;
- ``summary``: per split (design, evaluation) and worker count, each strategy's mean
  normalised regret and average rank per budget;
- ``science``: per task, the regime the evidence predicts against the table's best point;
- ``plots``: validation regret per task, normalised test regret across each split's tasks.

Past sweeps are each past table's own default sweep of 16 trials, replayed
(``--exhaustive``: whole tables, which is what the shipped prior gives a new user for tasks
like its own). The split comes from ``split.yaml``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.replay import read_split
from nonbinary_ft.history.store import PRIOR_DIR
from nonbinary_ft.history.table import CURVES_FILE, TableError, read_table
from nonbinary_ft.replay.benchmark import HOLDOUTS, run_benchmark, science_row
from nonbinary_ft.replay.metrics import BUDGETS, DEFAULT_BUDGET, summarise_tasks
from nonbinary_ft.replay.plots import write_regret_plots
from nonbinary_ft.replay.strategies import STRATEGIES
from nonbinary_ft.results import jsonable
from nonbinary_ft.search.regime_fit import refit_rule

HERE = Path(__file__).resolve().parent


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _worker_counts(text: str) -> list[int]:
    counts = [_positive_int(name) for name in _names(text)]
    if not counts:
        raise argparse.ArgumentTypeError(f"expected worker counts such as 1,8, got {text!r}")
    return counts


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a share of the grid's compute in (0, 1], got {text!r}"
        )
    return value


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


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def summary_table(summary: list) -> str:
    """Mean normalised regret (average rank) per budget, per split and worker count."""
    budgets = [f"{b:g}" for b in BUDGETS]
    lines = []
    for split in sorted({row.split for row in summary}):
        for workers in sorted({row.workers for row in summary}):
            rows = [r for r in summary if r.split == split and r.workers == workers]
            rows.sort(key=lambda r: r.mean_rank[budgets[2]])
            lines += [
                f"\n**{split or 'undeclared'} tables, W={workers}** (mean normalised test "
                "regret, average rank in brackets; median compute to target over tasks)\n",
                "| strategy | tasks | "
                + " | ".join(f"{100 * b:g} %" for b in BUDGETS)
                + " | to target |",
                "|---" * (len(budgets) + 3) + "|",
            ]
            for row in rows:
                cells = [f"{row.mean_regret[b]:.3f} ({row.mean_rank[b]:.1f})" for b in budgets]
                lines.append(
                    f"| {row.strategy} | {row.tasks} | "
                    + " | ".join(cells)
                    + f" | {_percent(row.median_fraction_to_target)} |"
                )
    return "\n".join(lines) + "\n"


def results_table(rows: list) -> str:
    """Per task: normalised regret at 5 and 10 %, compute to target, seeds that reached it."""
    lines = [
        "| task | split | strategy | W | targets | regret 5 % | regret 10 % | to target "
        "| reached | analysis s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.task} | {row.split or '-'} | {row.variant} | {row.workers} "
            f"| {row.target_points} | {row.normalised_regret['0.05']:.3f} "
            f"| {row.normalised_regret['0.1']:.3f} | {_percent(row.median_fraction_to_target)} "
            f"| {row.reached}/{row.seeds} | {row.charged_analysis_s:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replay", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--tables", type=Path, default=PRIOR_DIR, help="the folder of task tables to replay"
    )
    parser.add_argument(
        "--history",
        type=Path,
        default=PRIOR_DIR,
        help="tables a learning strategy may also learn from (never the task replayed); "
        "default: the project's",
    )
    parser.add_argument(
        "--split", type=Path, default=HERE / "split.yaml", help="the design/evaluation split"
    )
    parser.add_argument("--tasks", type=_names, default=None, help="default: every table")
    parser.add_argument(
        "--strategies", type=_names, default=list(STRATEGIES), help="comma-separated; default: all"
    )
    parser.add_argument(
        "--seeds", type=_positive_int, default=10, help="how many seeds (0 to N-1) per replay"
    )
    parser.add_argument(
        "--workers", type=_worker_counts, default=[1, 8], help="comma-separated worker counts"
    )
    parser.add_argument(
        "--budget", type=_share, default=DEFAULT_BUDGET, help="share of the grid's compute"
    )
    parser.add_argument(
        "--holdouts",
        type=_names,
        default=list(HOLDOUTS),
        help="what a learner's history leaves out, comma-separated: 'task' (the task "
        "replayed), 'source' (every table of its pre-trained source: the /loso rows)",
    )
    parser.add_argument(
        "--exhaustive",
        action="store_true",
        help="past tasks as whole tables (what the shipped prior gives a new user)",
    )
    parser.add_argument(
        "--processes", type=_positive_int, default=2, help="replays run side by side"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="where results and plots go"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    folders = sorted(path.parent for path in args.tables.glob(f"*/{CURVES_FILE}"))
    if args.tasks is not None:
        folders = [folder for folder in folders if folder.name in args.tasks]
    unknown = sorted(set(args.strategies) - set(STRATEGIES))
    bad_holdouts = sorted(set(args.holdouts) - set(HOLDOUTS))
    if not folders or unknown or bad_holdouts:
        what = (
            f"unknown strategies {unknown}" if unknown
            else f"unknown holdouts {bad_holdouts}" if bad_holdouts
            else f"no tables under {args.tables}"
        )  # fmt: skip
        print(f"error: {what}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    history = sorted(path.parent for path in args.history.glob(f"*/{CURVES_FILE}"))
    try:
        # Every table is read before any replay runs: one that cannot be read fails first.
        tables = [read_table(folder) for folder in folders]
        for folder in sorted(set(history) - set(folders)):
            read_table(folder)
        rows, curves = run_benchmark(
            folders, args.strategies, range(args.seeds), args.workers, args.budget,
            args.processes, history, read_split(args.split), args.holdouts, args.exhaustive,
        )  # fmt: skip
    except TableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    summary = summarise_tasks(rows)
    plots = write_regret_plots(curves, args.out)
    science = [science_row(table) for table in tables]
    rule = refit_rule([table.as_past_sweep() for table in tables if table.evidence is not None])
    document = {
        "tasks": [folder.name for folder in folders],
        "strategies": args.strategies,
        "seeds": args.seeds,
        "workers": args.workers,
        "budget_fraction": args.budget,
        "budgets": list(BUDGETS),
        "history": "whole tables (the shipped prior)"
        if args.exhaustive
        else "past sweeps of 16 trials",
        "replay_s": round(elapsed, 1),
        "results": [{**dataclasses.asdict(row), "variant": row.variant} for row in rows],
        "summary": [dataclasses.asdict(row) for row in summary],
        "science": [dataclasses.asdict(row) for row in science],
        "regime_rule": dataclasses.asdict(rule),
        "plots": [str(path) for path in plots],
    }
    (args.out / "replay.json").write_text(json.dumps(jsonable(document), indent=2) + "\n")
    (args.out / "science.md").write_text(science_table(science) + "\n" + rule_text(rule))
    (args.out / "results.md").write_text(summary_table(summary) + "\n" + results_table(rows))
    print(summary_table(summary), file=sys.stderr)
    print(json.dumps(jsonable(document), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
