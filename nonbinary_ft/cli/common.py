"""What every ``nbft`` command shares: its consoles, its flags and its error handling.

Exit status 0 on success, 2 on bad input (one line on stderr), 1 on a failure while running.
With ``--json`` a command prints one JSON document on stdout; logs always go to stderr.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from nonbinary_ft.errors import NbftError

__all__ = ["out", "err", "JsonFlag", "Verbose", "handle_errors", "print_json"]

out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging on stderr.")]


def handle_errors(command: F) -> F:
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


def print_json(document: Any) -> None:
    from nonbinary_ft.results import jsonable  # here: --help should not import pydantic

    sys.stdout.write(json.dumps(jsonable(document), indent=2, allow_nan=False) + "\n")
