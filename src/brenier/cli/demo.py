"""`brenier demo`: the main job on built-in data, written to a folder with pictures and JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console


def demo(out: Path = typer.Option(Path("out/demo"), "--out", help="output folder"),
         seed: int = typer.Option(0, help="random seed")):
    """Solve built-in problems (square → grid-25, disc → crescent) and write pictures + summary."""
    from ..demo import run_demo

    summary = run_demo(out, seed=seed)
    console.print(f"wrote {out}/ ({', '.join(sorted(summary['files']))})")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
