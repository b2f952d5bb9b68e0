"""How ``nbft recommend`` shows an analysis: rich tables built from the report, no computing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from nonbinary_ft.analysis.outputs import settings_yaml
from nonbinary_ft.analysis.runner import AnalysisReport

__all__ = ["show_analysis"]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _evidence_table(report: AnalysisReport) -> Table:
    """The paper's table 1 for this target (accuracies in percent, validation split)."""
    evidence = report.evidence
    table = Table(title=f"{report.name}: {report.model} (table 1, validation accuracy in %)")
    for column in ("fixed features", "from scratch", "gap (scratch - fixed)", "Fisher", "EMD"):
        table.add_column(column, justify="right")
    gap = evidence.gap
    table.add_row(
        _percent(evidence.fixed_accuracy),
        _percent(evidence.scratch_accuracy) if report.scratch_note is None else "not run",
        "-" if gap is None else f"{100 * gap:+.1f}",
        "-" if evidence.fisher is None else f"{evidence.fisher:.3g}",
        "-" if evidence.emd is None else f"{evidence.emd:.3g}",
    )
    return table


def _scores_table(report: AnalysisReport) -> Table:
    table = Table(title="transferability scores (pre-trained features, training split)")
    table.add_column("score")
    table.add_column("value", justify="right")
    table.add_column("better")
    for name, result in report.scores.items():
        shown = (
            f"{result.value:.4g}" if result.value is not None else f"not computed: {result.reason}"
        )
        table.add_row(name, shown, "higher" if result.higher_is_better else "lower")
    return table


def show_analysis(report: AnalysisReport, paths: dict[str, Path], console: Console) -> None:
    """Print the evidence, the scores, the regime with its rule and the recommended settings."""
    probe = report.probe
    console.print(_evidence_table(report))
    console.print(
        f"fixed features: linear probe, weight decay {probe.weight_decay:g}; "
        f"test accuracy {_percent(probe.test_accuracy)}%",
        highlight=False,
    )
    if report.scratch_note:
        console.print(f"from scratch: {report.scratch_note}", highlight=False)
    console.print(_scores_table(report))
    regime = report.regime
    status = " (provisional)" if regime.provisional else ""
    console.print(f"[bold]regime: {regime.label}{status}[/bold]", highlight=False)
    console.print(f"rule: {regime.rule}", highlight=False, soft_wrap=True)
    for line in regime.disagreements:
        console.print(f"[yellow]disagreement:[/yellow] {line}", highlight=False)
    for line in regime.notes:
        console.print(f"note: {line}", highlight=False)
    console.print(
        f"\nrecommended settings (L = {report.num_layers} layers, base lr "
        f"{report.recommendation.base_lr:g}):",
        highlight=False,
    )
    # soft_wrap: long reason comments must not break the YAML when it is copied.
    console.print(
        settings_yaml(report.recommendation), highlight=False, markup=False, soft_wrap=True
    )
    console.print(
        f"wrote {paths['analysis']}, {paths['recommended']} (run it with nbft finetune) and "
        f"{paths['space']}",
        highlight=False,
    )
