"""The ``nbft`` command line: thin shells that load a config, call the library and print.

Exit status 0 on success, 2 on bad input (one line on stderr), 1 on a failure while running.
With ``--json`` a command prints one JSON document on stdout; logs always go to stderr.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from nonbinary_ft.errors import NbftError

app = typer.Typer(
    name="nbft",
    help="Non-binary fine-tuning of pre-trained image classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging on stderr.")]


def _handle_errors(command: F) -> F:
    """Bad input: one line on stderr, exit 2. Any other failure: exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logging.basicConfig(
            level=logging.DEBUG if kwargs.get("verbose") else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        try:
            return command(*args, **kwargs)
        except NbftError as error:
            err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


@app.command()
@_handle_errors
def layers(
    model: Annotated[str, typer.Argument(help="timm model name, e.g. inception_v4.")],
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """Print a model's layer map: index from the bottom and the top, modules, parameters."""
    from nonbinary_ft.config import ModelConfig
    from nonbinary_ft.models.layers import build_layer_map
    from nonbinary_ft.models.loading import create_backbone

    built = create_backbone(ModelConfig(name=model, pretrained="none"), None)
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
        _print_json(rows)
        return
    table = Table(title=f"{model}: {total} layers ({layer_map.grouping})")
    for column in ("layer", "from top", "modules", "parameters"):
        table.add_column(column, justify="right" if column != "modules" else "left")
    for row in rows:
        table.add_row(
            str(row["index"]), str(row["from_top"]), row["label"], f"{row['num_params']:,}"
        )
    out.print(table)


@app.command()
@_handle_errors
def finetune(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep file (YAML).")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a setting: reinit_layers=2, train.epochs=3."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default: runs/<name>/finetune).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Resume from this checkpoint directory.")
    ] = None,
    json_output: JsonFlag = False,
    verbose: Verbose = False,
) -> None:
    """Run one fine-tuning trial with the sweep file's settings (and --set overrides)."""
    from nonbinary_ft.config import apply_overrides, load_config
    from nonbinary_ft.training.trial import run_trial

    config = apply_overrides(load_config(sweep_file), set_ or [])
    workdir = out_dir or Path("runs") / config.name / "finetune"
    console = err if json_output else out
    console.print(
        f"[bold]{config.name}[/bold]: {config.model.name} on {config.data.kind}, "
        f"settings {config.settings.model_dump()}",
        highlight=False,
    )

    def show_epoch(metrics: dict[str, Any], checkpoint: Path | None) -> None:
        line = (
            f"epoch {metrics['epoch']:>3}  train loss {metrics['train_loss']:.4f}  "
            f"train acc {metrics['train_accuracy']:.3f}  "
            f"val acc {metrics['val_accuracy']:.3f}  "
            f"l2sp {metrics['l2sp_penalty']:.3g}  l2 {metrics['l2_penalty']:.3g}  "
            f"{metrics['images_per_s']:.0f} img/s"
        )
        console.print(line, highlight=False)

    result = run_trial(config, show_epoch, workdir=workdir, resume_from=resume)
    summary = {
        "name": config.name,
        "status": result.status,
        "settings": config.settings.model_dump(),
        "epochs": len(result.history),
        "best_val_accuracy": result.best_val_accuracy,
        "test_accuracy": result.test_accuracy,
        "final": result.final,
        "checkpoint": str(Path(workdir) / "checkpoint"),
    }
    (Path(workdir) / "result.json").write_text(json.dumps(summary, indent=2, default=str))
    if json_output:
        _print_json(summary)
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


if __name__ == "__main__":  # pragma: no cover
    app()
