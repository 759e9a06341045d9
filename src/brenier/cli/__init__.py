"""The `brenier` command: one sub-command per job. Each module in COMMAND_MODULES defines
`register(app: typer.Typer)` and adds its commands (or a sub-app) there."""

from __future__ import annotations

import importlib
import sys

import typer

from ..validation import BrenierError

COMMAND_MODULES = ["ot", "demo", "analyze", "morph", "generate", "aeot"]

app = typer.Typer(help="brenier: optimal-transport generative modelling.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    """Console entry point: user errors print one line and exit 2, never a traceback."""
    try:
        app()
    except BrenierError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
