"""What every ``nbft`` command shares: its consoles, its flags and its error handling.

Exit status 0 on success, 2 on bad input (one line on stderr), 1 on a failure while running.
With ``--json`` a command prints one JSON document on stdout; logs always go to stderr.
"""

from __future__ import annotations

import functools
import json
import logging
import logging.handlers
import sys
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from nonbinary_ft.errors import ConfigError, DataError, ModelError, NbftError
from nonbinary_ft.paths import check_writable_folder

__all__ = [
    "out",
    "err",
    "JsonFlag",
    "Overrides",
    "Verbose",
    "handle_errors",
    "inputs_checked",
    "print_json",
]

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging on stderr.")]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a field of the sweep file (repeatable): reinit_layers=2, "
        "train.epochs=3, sweep.budget.num_samples=32.",
    ),
]


HOLD_LOGS_S = 10.0
"""At most this long are log lines held back (bad input is found within seconds)."""


class _HeldLogs(logging.handlers.MemoryHandler):
    """Holds the log lines until the command's input has been checked.

    Bad input then prints its one ``error:`` line and nothing else; once the checks pass
    (:func:`inputs_checked`), or after :data:`HOLD_LOGS_S` seconds, the held lines are
    written and later ones go straight through. A warning or an error is never held back.
    """

    def __init__(self) -> None:
        target = logging.StreamHandler(sys.stderr)
        target.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        super().__init__(capacity=100_000, flushLevel=logging.WARNING, target=target)

    def pass_through(self) -> None:
        """Write what is held; from now on every line goes out at once.

        (Not ``release``: that is the handler's lock.)
        """
        self.capacity = 1
        self.flush()

    def drop(self) -> None:
        """Forget what is held (the input was bad: the error line says it all)."""
        with self.lock:
            self.buffer.clear()


_held: _HeldLogs | None = None


def inputs_checked() -> None:
    """Called by a command once its input passed every check: the held logs go out."""
    if _held is not None:
        _held.pass_through()


def _install_logging(verbose: bool) -> _HeldLogs:
    global _held
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _HeldLogs)]:
        root.removeHandler(handler)
    _held = _HeldLogs()
    root.addHandler(_held)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    timer = threading.Timer(HOLD_LOGS_S, _held.pass_through)
    timer.daemon = True
    timer.start()
    return _held


def _named_with_file(error: NbftError, sweep_file: Any) -> NbftError:
    """``error``, naming the sweep file, and the section of a data set that cannot be read
    or a model that cannot be built when the message does not name it already."""
    if isinstance(error, ConfigError):
        return error if error.field.startswith("--") else error.from_file(sweep_file)
    # The readers and loaders speak of a folder or a file, not of which section gave it.
    # A data error that reaches here is the target's: source samples are named
    # 'analysis.source_sample' where they are read.
    section = {DataError: "data", ModelError: "model"}.get(type(error))
    if section is None:
        return error
    named = "" if f"{section}." in str(error) else f"'{section}': "
    return type(error)(f"{sweep_file}: {named}{error}")


def handle_errors(command: F) -> F:
    """Bad input: one line on stderr, exit 2. Any other failure: exit 1.

    A command's ``--out`` folder (``out_dir``) is checked first: a file in its way is found
    before any work. A setting found bad while running (a device this machine lacks, a data
    folder that is not there, ...) is named with the command's sweep file when the error does
    not name a file already (an option's error, ``--out``, names none)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        held = _install_logging(bool(kwargs.get("verbose")))
        try:
            if kwargs.get("out_dir") is not None:
                check_writable_folder(kwargs["out_dir"], "--out")
            return command(*args, **kwargs)
        except NbftError as error:
            source = kwargs.get("sweep_file") or kwargs.get("task_file")
            if source is not None:
                error = _named_with_file(error, source)
            held.drop()
            err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        finally:
            held.pass_through()

    return wrapper  # type: ignore[return-value]


def print_json(document: Any) -> None:
    from nonbinary_ft.results import jsonable  # here: --help should not import pydantic

    sys.stdout.write(json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n")
