"""The written report: verdict first, every plot embedded or linked, missing parts marked."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import re
import statistics
from pathlib import Path

import pytest
import yaml
from PIL import Image
from sweep_fixtures import BEST_ACCURACIES, DEFAULT_ACCURACIES, make_partial, make_results

from nonbinary_ft.config import load_config
from nonbinary_ft.reporting import build_report, write_report
from nonbinary_ft.results import Missing

PLOTS = (
    "fig2_lr_by_reinit",
    "fig3_low_layer_split",
    "fig4_l2sp_alpha",
    "fig5_l2sp_layers",
    "fig6_default_vs_optimal",
    "progress",
    "importance",
)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The tiny sweep's report, written once for the module (drawing takes seconds)."""
    out = tmp_path_factory.mktemp("report")
    return write_report(make_results(), out)


def _text(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_verdict_comes_first_with_the_results_values(written):
    page = written.html.read_text()
    text = _text(page)
    mean = statistics.mean(BEST_ACCURACIES)
    std = statistics.stdev(BEST_ACCURACIES)
    gain = mean - statistics.mean(DEFAULT_ACCURACIES)
    verdict = text[text.index("1. Verdict") : text.index("2. Evidence")]
    assert "Regime: fits_well" in " ".join(verdict.split())
    assert f"{100 * mean:.2f} % ± {100 * std:.2f}" in verdict
    assert "89.30 % (ensemble of the 3 seeds)" in verdict
    assert f"{100 * gain:+.2f} points over the binary baseline" in verdict
    block = yaml.safe_load(
        html.unescape(re.search(r'id="settings-yaml">(.*?)</pre>', page, re.S)[1])
    )
    expected = {"reinit_layers": 2, "lr_high": 0.001, "low_layers": 0, "l2sp_layers": "all"}
    assert block["settings"] == {**expected, "alpha": 0.01, "beta": 0.0001}


def test_recommended_yaml_is_a_runnable_sweep_file(written):
    config = load_config(written.recommended)
    assert config.name == "tiny-sweep"
    assert config.settings.reinit_layers == 2 and config.settings.l2sp_layers == "all"
    assert config.settings.lr_high == 0.001


def test_html_is_self_contained_with_every_plot(written):
    page = written.html.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(PLOTS)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).verify()
    assert "not enough data" not in page
    for section in ("2. Evidence", "3. Plots", "4. Decision log", "5. Reproducibility"):
        assert section in page
    assert "-16.00 points" in page and "Caltech256-30 (paper)" in page
    assert "Search &#39;zero_shot_model&#39;: the first trials came from" in page
    assert "6.5 min of compute" in page


def test_markdown_links_pngs_written_next_to_it(written):
    markdown = written.markdown.read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert sorted(linked) == sorted(f"{key}.png" for key in PLOTS)
    for name in linked:
        assert (written.markdown.parent / name).stat().st_size > 0
    assert sorted(Path(p).name for p in written.images) == sorted(linked)
    assert "```yaml\nsettings:\n  reinit_layers: 2" in markdown
    assert "Search 'zero_shot_model': the first trials came from" in markdown
    # Tables stay tables: every row of table 1 has as many cells as its header.
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert rows and all(row.count(" | ") >= 1 for row in rows)


def test_partial_sweep_renders_with_missing_parts_marked(tmp_path):
    paths = write_report(make_partial(), tmp_path)
    text = " ".join(_text(paths.html.read_text()).split())
    assert "missing: not run: the sweep had analysis.scratch.enabled = false" in text
    assert "fits_well (provisional)" in text
    assert "'best' seed 2 failed: worker died: CUDA out of memory" in text
    assert "over 2 of 3 seeds" in text
    assert "n/a: the ensemble needs every seed; seed 2 failed" in text
    assert "Environment missing: environment.json not written" in text
    markdown = paths.markdown.read_text()
    assert "missing: not run" in markdown and "seed 2 failed" in markdown


def test_interrupted_sweep_with_only_a_sweep_file_still_renders(tmp_path):
    interrupted = dataclasses.replace(
        make_results(),
        analysis=Missing("analysis.json not written"),
        trials=Missing("trials.json not written"),
        pruning=Missing("pruning.json not written"),
        final=Missing("final.json not written"),
        environment=Missing("environment.json not written"),
    )
    paths = write_report(interrupted, tmp_path)
    page = paths.html.read_text()
    assert "<img" not in page and paths.images == ()
    assert page.count("not enough data:") == len(PLOTS)
    assert "Analysis missing: analysis.json not written" in _text(page)
    assert "nothing to recommend" in page


@pytest.mark.parametrize("trials", [slice(0, 1), slice(9, None)], ids=["one", "unfinished"])
def test_small_sweeps_render_notes_for_what_they_cannot_plot(trials, tmp_path):
    results = make_results()
    paths = write_report(dataclasses.replace(results, trials=results.trials[trials]), tmp_path)
    page = paths.html.read_text()
    assert page.count("<img") + page.count("not enough data:") == len(PLOTS)
    assert page.count("not enough data:") >= 4


def test_null_settings_and_no_final_entries_build_records():
    """Nulls in settings read as their defaults (0 low layers, plain L2); an empty final list
    is not an error. Records only: drawing them is what the tests above already do."""
    results = make_results()
    trial = results.trials[0]
    nulls = {**trial.settings, "low_layers": None, "l2sp_layers": None, "reinit_layers": None}
    trials = (dataclasses.replace(trial, settings=nulls), *results.trials[1:])
    report = build_report(dataclasses.replace(results, trials=trials, final=()))
    kinds = {record.key: type(record.data).__name__ for record in report.figures}
    assert kinds["fig3_low_layer_split"] == "LineChart" and kinds["fig5_l2sp_layers"] == "LineChart"
    assert kinds["fig6_default_vs_optimal"] == "NoData"
    assert report.verdict.settings["l2sp_layers"] == "all"  # the best trial, t09
