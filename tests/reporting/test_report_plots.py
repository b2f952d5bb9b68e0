"""The plots: matplotlib drew the records' data, and the PNGs are real images with content."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sweep_fixtures import make_results

from nonbinary_ft.reporting import figures
from nonbinary_ft.reporting.plots import DPI, draw, to_png
from nonbinary_ft.reporting.records import build_figures

RECORDS = {record.key: record for record in build_figures(make_results())}


def _drawn(record: figures.FigureRecord) -> None:
    """Assert that the figure's artists carry the record's data, before any PNG is made."""
    figure = draw(record)
    assert figure is not None
    ax = figure.axes[0]
    data = record.data
    if isinstance(data, figures.LineChart):
        lines = [line for line in ax.lines if len(line.get_xdata()) > 0]
        assert len(lines) == len(data.series) + len(data.references)
        for line, series in zip(lines, data.series, strict=False):
            assert tuple(line.get_ydata()) == series.y
    elif isinstance(data, figures.BarChart):
        heights = [patch.get_height() for patch in ax.patches]
        assert heights == pytest.approx(list(data.means))
        assert len(ax.collections) >= 1  # the ensemble markers (and error bars)
    elif isinstance(data, figures.ProgressChart):
        assert len(ax.lines[0].get_xdata()) == len(data.best_x)  # the best-so-far step
        drawn = sum(len(c.get_offsets()) for c in ax.collections)
        assert drawn == len(data.points)
    elif isinstance(data, figures.ImportanceChart):
        widths = sorted(patch.get_width() for patch in ax.patches)
        assert widths == pytest.approx(sorted(data.values))
    else:
        pytest.fail(f"unexpected chart {type(data).__name__}")
    return figure


@pytest.mark.parametrize("key", sorted(RECORDS))
def test_every_plot_draws_its_data_into_a_png(key):
    record = RECORDS[key]
    assert not isinstance(record.data, figures.NoData), record.data
    png = to_png(_drawn(record))
    image = Image.open(io.BytesIO(png))
    image.verify()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.format is None or image.format == "PNG"
    width, height = image.size
    assert width > 300 and height > 200
    # Data is drawn in colour; background, grid, ticks and text are white, grey or black.
    inner = image.crop((width // 10, height // 10, width * 9 // 10, height * 9 // 10))
    colours = inner.getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 3
    coloured = sum(count for count, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 60)
    assert coloured > 300, f"only {coloured} coloured pixels: nothing drawn?"


def test_no_data_draws_nothing():
    record = figures.FigureRecord("x", "x", "", figures.NoData("nothing varied"))
    assert draw(record) is None


def test_png_size_follows_the_dpi():
    png = to_png(_drawn(RECORDS["fig2_lr_by_reinit"]))
    width, _ = Image.open(io.BytesIO(png)).size
    assert width == pytest.approx(7.5 * DPI, abs=2)
