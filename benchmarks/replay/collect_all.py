"""Collect every task's table that is not there yet, cheapest source first (resumable).

    python -m benchmarks.replay.collect_all [--tasks benchmarks/replay/tasks]
        [--tables nonbinary_ft/history/prior] [--only suite-seen,...] [--workers 2]

Runs ``nbft bench collect`` on each task file in turn (suite, hue, Lite0, Lite1, Lite2):
a killed run, started again, skips finished tables and resumes the unfinished one where it
stopped. One line per finished table on stderr; a task that fails is reported and skipped.
A task whose image family (:mod:`benchmarks.replay.families`) is not on this machine yet
gets it written first, as ``benchmarks.replay.tasks`` would.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

from benchmarks.replay.families import write_family
from benchmarks.replay.tasks import FAMILY_PER_CLASS
from nonbinary_ft.errors import NbftError
from nonbinary_ft.history.store import PRIOR_DIR
from nonbinary_ft.history.table import CURVES_FILE
from nonbinary_ft.replay.collect import collect_task

HERE = Path(__file__).resolve().parent
SOURCE_ORDER = ("suite", "hue", "lite0", "lite1", "lite2")


def ordered(task_files: list[Path]) -> list[Path]:
    """Task files by source (cheapest first), then by name."""

    def rank(path: Path) -> tuple[int, str]:
        source = path.stem.split("-")[0]
        return (SOURCE_ORDER.index(source) if source in SOURCE_ORDER else 99, path.stem)

    return sorted(task_files, key=rank)


def write_missing_family(task_file: Path) -> None:
    """Write the image family ``task_file`` reads when its folder is missing (the task
    files name it by a path relative to the repository root; a fresh clone has none)."""
    data = (yaml.safe_load(task_file.read_text()) or {}).get("data") or {}
    root = Path(data.get("root") or "")
    if data.get("kind") == "imagefolder" and root.name in FAMILY_PER_CLASS and not root.is_dir():
        write_family(root.name, root.parent, FAMILY_PER_CLASS[root.name])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=Path, default=HERE / "tasks")
    parser.add_argument("--tables", type=Path, default=PRIOR_DIR)
    parser.add_argument("--grid", type=Path, default=HERE / "grid.yaml")
    parser.add_argument("--only", default="", help="comma-separated task names")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    only = {name for name in args.only.split(",") if name}
    failed = 0
    for task_file in ordered(list(args.tasks.glob("*.yaml"))):
        name = task_file.stem
        folder = args.tables / name
        if (only and name not in only) or (folder / CURVES_FILE).is_file():
            continue
        started = time.monotonic()
        try:
            write_missing_family(task_file)
            collect_task(task_file, args.grid, folder, workers=args.workers)
        except NbftError as error:
            failed += 1
            print(f"{name}: failed: {error}", file=sys.stderr)
            continue
        print(f"{name}: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
