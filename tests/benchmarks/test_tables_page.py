"""The replay tables' generated page: a row per finished table, the rest listed apart."""

from __future__ import annotations

import shutil

from benchmarks.replay.tables_page import main, render
from nonbinary_ft.history.store import PRIOR_DIR
from nonbinary_ft.history.table import read_table


def test_the_page_has_a_row_per_finished_table_and_lists_unfinished_ones(tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(PRIOR_DIR / "suite-near", tables / "suite-near",
                    ignore=shutil.ignore_patterns("work", "points"))  # fmt: skip
    (tables / "lite9-new" / "points").mkdir(parents=True)
    for run in range(3):
        (tables / "lite9-new" / "points" / f"{run}.json").write_text("{}")
    split = tmp_path / "split.yaml"
    split.write_text("design: [suite-seen]\nevaluation: [suite-near, lite9-new]\n")

    page = render(tables, split)
    (row,) = [line for line in page.splitlines() if line.startswith("| suite-near ")]
    table = read_table(PRIOR_DIR / "suite-near")
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # Two suite sources share the architecture: the checkpoint's content key tells them apart.
    assert cells[1:3] == ["evaluation", "test_resnet @ ef3bf09f"]
    assert cells[3] == "new_shape (6 classes, isoluminant)"
    assert cells[4] == f"{len(table.points)} x 3"
    assert cells[12] == str(len(table.target_points))
    assert "- lite9-new: 3 runs in" in page

    assert main(["--tables", str(tables), "--split", str(split)]) == 0
    assert (tables / "README.md").read_text() == page
