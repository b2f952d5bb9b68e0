"""Reporting: a sweep's results as a recommendation report (HTML, Markdown, PNG plots).

Compute, then render: :mod:`~nonbinary_ft.reporting.records` (with
:mod:`~nonbinary_ft.reporting.verdict`, :mod:`~nonbinary_ft.reporting.figures` and
:mod:`~nonbinary_ft.reporting.importance`) turns :class:`~nonbinary_ft.results.SweepResults`
into frozen records; :mod:`~nonbinary_ft.reporting.plots` and
:mod:`~nonbinary_ft.reporting.render` draw them. The sweep calls :func:`write_report` when it
ends; ``nbft report`` calls :func:`report_run`::

    paths = write_report(load_results("runs/caltech"), "runs/caltech")
    paths.html                  # report.html, self-contained
"""

from nonbinary_ft.reporting.records import Report, build_report
from nonbinary_ft.reporting.render import ReportPaths, write_report
from nonbinary_ft.reporting.run import ReportOutcome, report_run
from nonbinary_ft.reporting.verdict import Verdict, build_verdict

__all__ = [
    "Report",
    "ReportOutcome",
    "ReportPaths",
    "Verdict",
    "build_report",
    "build_verdict",
    "report_run",
    "write_report",
]
