"""The ``nbft`` command line: thin shells that load a config, call the library and print.

Exit status 0 on success, 2 on bad input (one line on stderr), 1 on a failure while running.
With ``--json`` a command prints one JSON document on stdout; logs always go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nonbinary_ft.cli.bench import bench_app
from nonbinary_ft.cli.common import (
    JsonFlag,
    Overrides,
    Verbose,
    err,
    handle_errors,
    inputs_checked,
    out,
    print_json,
)
from nonbinary_ft.cli.history import history_app
from nonbinary_ft.cli.sweeps import sweeps

app = typer.Typer(
    name="nbft",
    help="Non-binary fine-tuning of pre-trained image classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"nbft {version('nonbinary-ft')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Non-binary fine-tuning of pre-trained image classifiers."""


@app.command()
@handle_errors
def layers(
    model: Annotated[str, typer.Argument(help="timm model name, e.g. inception_v4.")],
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """Print a model's layer map: index from the bottom and the top, modules, parameters."""
    from nonbinary_ft.config import ModelConfig
    from nonbinary_ft.errors import ConfigError
    from nonbinary_ft.models.layers import build_layer_map
    from nonbinary_ft.models.loading import create_backbone

    try:
        built = create_backbone(ModelConfig(name=model, pretrained="none"), None)
    except ConfigError as error:
        if error.field != "model.name":
            raise
        # Here the name is the command's argument, not a sweep file's field.
        raise ConfigError("MODEL", error.expected, error.got, error.fix) from None
    layer_map = build_layer_map(built, model)
    total = len(layer_map)
    rows = [
        {
            "index": layer.index,
            "from_top": total - layer.index + 1,
            "label": layer.label,
            "modules": list(layer.module_names),
            "num_params": layer.num_params,
        }
        for layer in layer_map.layers
    ]
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"{model}: {total} layers ({layer_map.grouping})")
    for column in ("layer", "from top", "modules", "parameters"):
        table.add_column(column, justify="right" if column != "modules" else "left")
    for row in rows:
        table.add_row(
            str(row["index"]), str(row["from_top"]), row["label"], f"{row['num_params']:,}"
        )
    out.print(table)


def _epoch_line(record: Any) -> str:
    """One epoch of ``nbft finetune``, as a line."""
    return (
        f"epoch {record.epoch:>3}  train loss {record.train_loss:.4f}  "
        f"train acc {record.train_accuracy:.3f}  val acc {record.val_accuracy:.3f}  "
        f"l2sp {record.l2sp_penalty:.3g}  l2 {record.l2_penalty:.3g}  "
        f"{record.images_per_s:.0f} img/s"
    )


def _check_checkpoint_folder(resume: Path | None) -> None:
    """--resume names a folder (the trial's checkpoint loader then names a missing state.pt)."""
    if resume is not None and not resume.is_dir():
        from nonbinary_ft.errors import ConfigError

        why = "It is a file." if resume.exists() else "It does not exist."
        raise ConfigError("--resume", "a trial's checkpoint folder (the one holding state.pt)",
                          str(resume), why)  # fmt: skip


@app.command()
@handle_errors
def finetune(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep file (YAML).")],
    set_: Overrides = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Run folder (default: runs/<name>/finetune)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Resume from this trial checkpoint folder (the one holding state.pt)."),
    ] = None,
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """Run one fine-tuning trial with the sweep file's settings (and --set overrides)."""
    from nonbinary_ft.config import apply_overrides, load_config
    from nonbinary_ft.results import EpochRecord, write_json
    from nonbinary_ft.training.trial import run_trial

    config = apply_overrides(load_config(sweep_file), set_ or [])
    _check_checkpoint_folder(resume)
    workdir = out_dir or Path("runs") / config.name / "finetune"
    console = err if json_output else out
    settings = config.settings.model_dump()
    console.print(
        f"[bold]{config.name}[/bold]: {config.model.name} on {config.data.kind}, "
        f"settings {settings}",
        highlight=False,
    )

    def show_epoch(record: EpochRecord, checkpoint: Path | None) -> None:
        console.print(_epoch_line(record), highlight=False)

    result = run_trial(config, show_epoch, workdir=workdir, resume_from=resume)
    summary = {
        "name": config.name,
        "status": result.status,
        "settings": settings,
        "epochs": len(result.history),
        "best_val_accuracy": result.best_val_accuracy,
        "test_accuracy": result.test_accuracy,
        "final": result.history[-1].to_report() if result.history else {},
        "checkpoint": str(Path(workdir) / "checkpoint"),
    }
    write_json(Path(workdir) / "result.json", summary)
    if json_output:
        print_json(summary)
    elif result.status == "diverged":
        console.print("[red]diverged[/red]: the loss became NaN or infinite.")
    else:
        console.print(
            f"test accuracy {result.test_accuracy:.4f} "
            f"(best val {result.best_val_accuracy:.4f}); "
            f"results in {workdir}/result.json",
            highlight=False,
        )
    if result.status == "diverged":
        raise typer.Exit(1)


@app.command()
@handle_errors
def recommend(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep file (YAML).")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: runs/<name>/analysis)."),
    ] = None,
    no_scratch: Annotated[
        bool,
        typer.Option(
            "--no-scratch",
            help="Skip the from-scratch baseline: decide on the cheap evidence, provisionally.",
        ),
    ] = False,
    set_: Overrides = None,
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """Analyse how well the pre-trained weights fit the target; recommend settings and a space.

    Writes analysis.json, recommended.yaml (a ready sweep file) and space.yaml.
    """
    from nonbinary_ft.analysis import analyse, write_outputs
    from nonbinary_ft.cli.analysis_view import show_analysis
    from nonbinary_ft.config import apply_overrides, load_config

    config = apply_overrides(load_config(sweep_file), set_ or [])
    workdir = out_dir or Path("runs") / config.name / "analysis"
    report = analyse(config, workdir=workdir, scratch=not no_scratch)
    paths = write_outputs(report, config, workdir)
    if json_output:
        print_json({**report.to_dict(), "files": {k: str(v) for k, v in paths.items()}})
    else:
        show_analysis(report, paths, out)


def _dry_run(config: Any, sweep_file: Path, json_output: bool) -> None:
    """The plan and the preflight, without Ray."""
    from nonbinary_ft.cli.sweep_view import show_plan
    from nonbinary_ft.tuning import plan_sweep
    from nonbinary_ft.tuning.preflight import preflight

    plan = plan_sweep(config, sweep_file)
    warnings = preflight(config, plan.tracking_uri, plan.storage, sweep_file, plan_only=True)
    for warning in warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    if json_output:
        print_json({**plan.to_dict(), "warnings": warnings})
    else:
        show_plan(plan, out)


@app.command()
@handle_errors
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep file (YAML) with a 'sweep' section.")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the resolved space, the number of trials, the resources per trial and "
            "an estimate of GPU-hours (trials x expected epochs x sweep.budget.epoch_time_s x "
            "GPUs per trial), without starting Ray.",
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the sweep stored at sweep.storage (finished trials stay)."
        ),
    ] = False,
    register: Annotated[
        str | None,
        typer.Option(
            "--register",
            help="Register the recommended settings' best model in the MLflow Model Registry "
            "under this name (sweep.mlflow.register_as).",
        ),
    ] = None,
    set_: Overrides = None,
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """Sweep the non-binary space with Ray Tune, then re-run the best settings with seeds.

    Connects to the cluster at RAY_ADDRESS, or starts Ray on this machine. Trials are tracked
    in MLflow (a parent run per sweep, a child run per trial).
    """
    from nonbinary_ft.cli.sweep_view import SweepDisplay, show_result
    from nonbinary_ft.config import apply_overrides, load_config

    config = apply_overrides(load_config(sweep_file), set_ or [])
    if register is not None:
        register_as = [f"sweep.mlflow.register_as={json.dumps(register)}"]
        config = apply_overrides(config, register_as, "--register")
    if dry_run:
        _dry_run(config, sweep_file, json_output)
        return
    from nonbinary_ft.tuning import run_sweep

    # Ray prints what its processes log (a lost node's raylet, a worker's output) on the
    # driver's stdout: while the sweep runs, that is stderr, so stdout holds only the result.
    with contextlib.redirect_stdout(sys.stderr), SweepDisplay(err, config.name) as display:
        result = run_sweep(
            config,
            source=sweep_file,
            resume=resume,
            progress=display.update,
            on_checked=inputs_checked,
        )
    if json_output:
        print_json(result.to_dict())
    else:
        show_result(result, out)


@app.command()
@handle_errors
def schema(
    kind: Annotated[
        str, typer.Argument(help="'sweep' (a sweep file) or 'space' (a search-space file).")
    ] = "sweep",
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The reference page of both formats instead.")
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Print the JSON Schema of the sweep file or the space file (or their reference page)."""
    from nonbinary_ft.config.schema import SCHEMAS, json_schema, reference_markdown
    from nonbinary_ft.errors import ConfigError

    if markdown:
        sys.stdout.write(reference_markdown())
        return
    if kind not in SCHEMAS:
        raise ConfigError("KIND", f"one of {', '.join(SCHEMAS)}", kind)
    print_json(json_schema(kind))  # type: ignore[arg-type]


@app.command()
@handle_errors
def report(
    run: Annotated[str, typer.Argument(help="A sweep's run folder, or its MLflow parent run id.")],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default: the run folder; runs/<name>/report for a run id).",
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI: where to find a run id, and where the report is logged "
            "(default: MLFLOW_TRACKING_URI for a run id; the sweep file's, or the folder's "
            "mlflow.db, for a folder).",
        ),
    ] = None,
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """Write a sweep's recommendation report: report.html, report.md, plots, recommended.yaml.

    Logs the report to the sweep's MLflow parent run when a tracking URI is known.
    """
    from nonbinary_ft.reporting import report_run

    outcome = report_run(run, out_dir=out_dir, tracking_uri=tracking_uri)
    if json_output:
        print_json(outcome.to_dict())
        return
    verdict = outcome.verdict
    out.print(f"[bold]regime[/bold] {verdict.regime or 'unknown'}: {verdict.regime_text}")
    out.print(f"[bold]expected[/bold] {verdict.expected_text}", highlight=False)
    out.print(f"[bold]gain[/bold] {verdict.gain_text}", highlight=False)
    out.print(f"wrote {outcome.paths.html} and {outcome.paths.markdown}", highlight=False)
    out.print(outcome.log_note or "", highlight=False)


app.add_typer(bench_app)
app.add_typer(history_app)
app.command()(handle_errors(sweeps))

k8s_app = typer.Typer(
    name="k8s", help="Kubernetes: the KubeRay and MLflow manifests (k8s/).", no_args_is_help=True
)
app.add_typer(k8s_app)


@k8s_app.command("render")
@handle_errors
def k8s_render(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep file (YAML), validated first.")],
    overlay: Annotated[
        str, typer.Option(help="Overlay under k8s/overlays/ (its sweep stack): dev, gpu-cluster.")
    ] = "dev",
    image: Annotated[
        str | None, typer.Option(help="nbft image, e.g. registry.example.com/nbft:0.1.0.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write <rayjob>.yaml and sweep.yaml here, not to stdout.",
        ),
    ] = None,
    k8s_dir: Annotated[
        Path | None, typer.Option(help="The kustomize tree (default: this checkout's k8s/).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="The job continues the sweep stored at sweep.storage.")
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Render the RayJob (and its ConfigMaps) that runs `nbft sweep` on SWEEP_FILE.

    Runs `kubectl kustomize` on a temporary copy of k8s/ holding the sweep file; prints the
    manifests for `kubectl apply -f -`.
    """
    from nonbinary_ft.deploy import RenderError, render_sweep

    try:
        rendered = render_sweep(sweep_file, overlay, image, k8s_dir, resume=resume)
    except RenderError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if out_dir is None:
        sys.stdout.write(rendered.manifests)
        return
    for path in rendered.write(out_dir):
        err.print(f"wrote {path}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
