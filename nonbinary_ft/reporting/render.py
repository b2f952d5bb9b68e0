"""Renderers: the report records to a self-contained HTML page and to Markdown with PNGs.

The HTML embeds its images as base64 data URIs, so that one file can be mailed, attached to
an MLflow run or opened offline; the Markdown links PNG files written next to it. Both come
from Jinja templates in ``templates/``, which only lay out what the records already say.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from nonbinary_ft.reporting.figures import FigureRecord, NoData
from nonbinary_ft.reporting.plots import render_png
from nonbinary_ft.reporting.records import Report, build_report
from nonbinary_ft.results import SweepResults

__all__ = [
    "HTML_FILE",
    "MARKDOWN_FILE",
    "RECOMMENDED_FILE",
    "RenderedFigure",
    "ReportPaths",
    "render_figures",
    "render_html",
    "render_markdown",
    "write_report",
]

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
RECOMMENDED_FILE = "recommended.yaml"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class RenderedFigure:
    """A figure ready for a template: its PNG (file name and data URI) or its note."""

    key: str
    title: str
    caption: str
    filename: str | None
    data_uri: str | None
    note: str | None


@dataclass(frozen=True)
class ReportPaths:
    """The files :func:`write_report` wrote."""

    html: Path
    markdown: Path
    recommended: Path
    images: tuple[Path, ...]

    def to_dict(self) -> dict[str, Any]:
        """Paths as strings (for ``--json``)."""
        return {
            "html": str(self.html),
            "markdown": str(self.markdown),
            "recommended": str(self.recommended),
            "images": [str(path) for path in self.images],
        }


def render_figures(
    records: tuple[FigureRecord, ...],
) -> tuple[tuple[RenderedFigure, ...], dict[str, bytes]]:
    """Draw every figure; returns what the templates show and the PNG bytes by file name."""
    rendered, images = [], {}
    for record in records:
        png = render_png(record)  # None exactly when the record holds NoData
        if png is None or isinstance(record.data, NoData):
            reason = record.data.reason if isinstance(record.data, NoData) else "nothing drawn"
            note = f"not enough data: {reason}"
            rendered.append(RenderedFigure(record.key, record.title, "", None, None, note))
            continue
        filename = f"{record.key}.png"
        images[filename] = png
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        rendered.append(
            RenderedFigure(record.key, record.title, record.caption, filename, uri, None)
        )
    return tuple(rendered), images


def _markdown_cell(value: object) -> str:
    """A table cell that cannot break a Markdown table (pipes escaped, one line)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails loudly, not blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _markdown_cell
    return env


def render_html(report: Report, figures: tuple[RenderedFigure, ...]) -> str:
    """The report as one self-contained HTML page."""
    template = _environment(autoescape=True).get_template("report.html.j2")
    return template.render(report=report, figures=figures)


def render_markdown(report: Report, figures: tuple[RenderedFigure, ...]) -> str:
    """The report as Markdown that links the PNGs by file name (written next to it)."""
    template = _environment(autoescape=False).get_template("report.md.j2")
    return template.render(report=report, figures=figures)


def write_report(results: SweepResults, out_dir: str | Path) -> ReportPaths:
    """Write ``report.html``, ``report.md``, its PNGs and ``recommended.yaml`` into ``out_dir``.

    The sweep calls this at its end; ``nbft report`` calls it on a finished (or partial)
    sweep. Missing parts of ``results`` are shown as missing, never an error.

    Args:
        results: the sweep's results (:func:`nonbinary_ft.results.load_results`).
        out_dir: output folder, created if needed.

    Returns:
        The paths written.

    Raises:
        OSError: the folder cannot be written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(results)
    figures, images = render_figures(report.figures)
    image_paths = []
    for filename, png in images.items():
        (out / filename).write_bytes(png)
        image_paths.append(out / filename)
    paths = ReportPaths(
        html=out / HTML_FILE,
        markdown=out / MARKDOWN_FILE,
        recommended=out / RECOMMENDED_FILE,
        images=tuple(image_paths),
    )
    paths.html.write_text(render_html(report, figures), encoding="utf-8")
    paths.markdown.write_text(render_markdown(report, figures), encoding="utf-8")
    paths.recommended.write_text(report.verdict.config_yaml, encoding="utf-8")
    return paths
